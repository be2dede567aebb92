/* ducha: inspection and rectification tracking. One binary, several subcommands. */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yder.h>

#include "auth_cache.h"
#include "cli.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "resources.h"
#include "webhook_delivery.h"
#include "worker.h"

#ifndef DUCHA_VERSION
#define DUCHA_VERSION "dev"
#endif

static void usage(FILE *out) {
  fprintf(out,
          "usage: ducha COMMAND [OPTIONS]\n\n"
          "Commands:\n"
          "  serve                          serve the HTTP API until SIGTERM or SIGINT\n"
          "  migrate                        apply the SQL migrations not yet applied\n"
          "  seed                           load the default checklist and departments (idempotent)\n"
          "  user create --username U --role ROLE [--department-id N] [--display-name NAME]\n"
          "              --password-stdin   create a user (roles: admin, inspector, department, viewer)\n"
          "  token create --user U [--ttl-days N]\n"
          "                                 print a new bearer token for user U (default 30 days)\n"
          "  routes                         list the HTTP routes\n"
          "  --help, --version\n\n");
  config_usage(out);
}

static int serve(const struct config *cfg) {
  char path[1024];
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits this; http_serve sigwaits */
  config_resolve_path(cfg->openapi_file, path, sizeof path);
  if (openapi_load(path))
    y_log_message(Y_LOG_LEVEL_WARNING, "cannot read %s; /openapi.yaml will answer 404", path);
  config_resolve_path(cfg->docs_dir, path, sizeof path);
  if (docs_load(path))
    y_log_message(Y_LOG_LEVEL_WARNING, "cannot read Swagger UI in %s (DUCHA_DOCS_DIR); /docs will answer 404", path);
  if (db_pool_init(cfg, (int)cfg->threads + 1)) {
    y_log_message(Y_LOG_LEVEL_ERROR, "out of memory");
    return 1;
  }
  if (metrics_init() || metrics_start(cfg)) {
    metrics_stop();
    db_pool_close();
    openapi_unload();
    docs_unload();
    return 1;
  }
  auth_cache_init(cfg->token_cache_seconds * 1000);
  if (worker_start(cfg))
    y_log_message(Y_LOG_LEVEL_ERROR, "worker: cannot start; background jobs will not run here");
  if (webhook_delivery_start(cfg))
    y_log_message(Y_LOG_LEVEL_ERROR, "webhooks: cannot start; no deliveries from here");
  int rc = http_serve(cfg);
  webhook_delivery_stop();
  worker_stop();
  metrics_stop();
  auth_cache_free();
  db_pool_close();
  openapi_unload();
  docs_unload();
  y_log_message(Y_LOG_LEVEL_INFO, "stopped");
  return rc;
}

/* The role the service connects as: the user named in its URL. */
static void app_role_of(const char *url, char *out, size_t size) {
  PQconninfoOption *opts = PQconninfoParse(url, NULL);
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (!strcmp(o->keyword, "user") && o->val)
      snprintf(out, size, "%s", o->val);
  PQconninfoFree(opts);
}

int main(int argc, char **argv) {
  struct config cfg;
  char err[2048], path[1024];
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("ducha %s\n", DUCHA_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "routes")) {
    http_print_routes();
    return 0;
  }
  const char *cmd = argv[1];
  int known = !strcmp(cmd, "serve") || !strcmp(cmd, "migrate") || !strcmp(cmd, "seed") ||
              ((!strcmp(cmd, "user") || !strcmp(cmd, "token")) && argc >= 3 && !strcmp(argv[2], "create"));
  if (!known) {
    fprintf(stderr, "ducha: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
  }
  /* before any thread: libcurl's set-up is not thread-safe (webhooks) */
  if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
    fprintf(stderr, "ducha: cannot set up libcurl\n");
    return 1;
  }
  atexit(curl_global_cleanup);
  if (config_load(&cfg, (config_getenv_fn)getenv, err, sizeof err)) {
    fprintf(stderr, "ducha: bad configuration: %s\n", err);
    return 2;
  }
  int rc;
  if (!strcmp(cmd, "serve") && worker_check(&cfg, err, sizeof err)) {
    fprintf(stderr, "ducha: bad configuration: %s\n", err);
    return 2;
  }
  if (!strcmp(cmd, "serve")) {
    log_open(&cfg);
    rc = serve(&cfg);
    log_close();
  } else {
    char app_role[128] = "";
    if (!strcmp(cmd, "migrate") && cfg.migration_database_url[0]) {
      app_role_of(cfg.database_url, app_role, sizeof app_role);
      memcpy(cfg.database_url, cfg.migration_database_url, sizeof cfg.database_url);
    }
    db_conn *db = db_open(&cfg);
    if (!db)
      return 1;
    if (!strcmp(cmd, "migrate")) {
      config_resolve_path("migrations", path, sizeof path);
      rc = migrate_run(db, path, *app_role ? app_role : NULL) ? 1 : 0;
    } else if (!strcmp(cmd, "seed")) {
      config_resolve_path(cfg.seed_file, path, sizeof path);
      rc = seed_run(db, path) ? 1 : 0;
    } else {
      rc = cli_admin_command(db, cmd, argc - 2, argv + 2);
    }
    db_close(db);
  }
  return rc;
}
