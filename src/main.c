/* ducha: inspection and rectification tracking. One binary, several subcommands. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yder.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "migrate.h"
#include "password.h"
#include "resources.h"

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

static int log_level(const char *name) {
  if (!strcmp(name, "error"))
    return Y_LOG_LEVEL_ERROR;
  if (!strcmp(name, "warning"))
    return Y_LOG_LEVEL_WARNING;
  if (!strcmp(name, "debug"))
    return Y_LOG_LEVEL_DEBUG;
  return Y_LOG_LEVEL_INFO;
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
  if (db_pool_init(cfg, (int)cfg->threads + 1)) {
    y_log_message(Y_LOG_LEVEL_ERROR, "out of memory");
    return 1;
  }
  int rc = http_serve(cfg);
  db_pool_close();
  openapi_unload();
  y_log_message(Y_LOG_LEVEL_INFO, "stopped");
  return rc;
}

static status find_user(db_conn *db, const char *username, int64_t *id) {
  const char *params[] = {username};
  char text[24];
  status s = db_value(db, text, sizeof text, "SELECT id FROM users WHERE username = $1", 1, params);
  if (s == ST_OK)
    *id = strtoll(text, NULL, 10);
  return s;
}

/* user create / token create: for the first admin and for automation. */
static int admin_command(db_conn *db, const char *what, int argc, char **argv) {
  static const struct option opts[] = {
    {"username", required_argument, 0, 'u'}, {"user", required_argument, 0, 'u'},
    {"role", required_argument, 0, 'r'},     {"department-id", required_argument, 0, 'd'},
    {"display-name", required_argument, 0, 'n'}, {"password-stdin", no_argument, 0, 'p'},
    {"ttl-days", required_argument, 0, 't'}, {0, 0, 0, 0},
  };
  const char *username = NULL, *role = NULL, *department = NULL, *display = "";
  int password_stdin = 0, opt;
  long ttl = 30;
  while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'u': username = optarg; break;
    case 'r': role = optarg; break;
    case 'd': department = optarg; break;
    case 'n': display = optarg; break;
    case 'p': password_stdin = 1; break;
    case 't': ttl = strtol(optarg, NULL, 10); break;
    default: return 2;
    }
  }
  if (!username) {
    fprintf(stderr, "ducha: --username is required\n");
    return 2;
  }
  if (!strcmp(what, "token")) {
    int64_t id;
    char token[TOKEN_LENGTH + 1];
    if (ttl < 1 || ttl > 3650) {
      fprintf(stderr, "ducha: --ttl-days must be from 1 to 3650\n");
      return 2;
    }
    status s = find_user(db, username, &id);
    if (s == ST_NOT_FOUND) {
      fprintf(stderr, "ducha: no user %s\n", username);
      return 1;
    }
    if (s != ST_OK || auth_token_create(db, id, ttl, token) != ST_OK) {
      fprintf(stderr, "ducha: could not create the token: %s\n", db_last_error(db)->message);
      return 1;
    }
    printf("%s\n", token);
    return 0;
  }
  char password[1024] = "";
  if (!role || !password_stdin) {
    fprintf(stderr, "ducha: user create needs --role and --password-stdin\n");
    return 2;
  }
  if (!fgets(password, sizeof password, stdin))
    password[0] = '\0';
  password[strcspn(password, "\r\n")] = '\0';
  if (strlen(password) < 8) {
    fprintf(stderr, "ducha: the password must be at least 8 characters\n");
    return 2;
  }
  char hash[PASSWORD_HASH_MAX];
  int hashed = password_hash(password, hash, sizeof hash);
  memset(password, 0, sizeof password);
  if (hashed) {
    fprintf(stderr, "ducha: could not hash the password\n");
    return 1;
  }
  const char *params[] = {username, display, role, department, hash};
  status s = db_exec(db, NULL,
                     "INSERT INTO users (username, display_name, role, department_id, password_hash)"
                     " VALUES ($1, $2, $3, $4::bigint, $5)",
                     5, params);
  if (s != ST_OK) {
    fprintf(stderr, "ducha: could not create the user: %s\n", db_last_error(db)->message);
    return 1;
  }
  printf("created user %s (%s)\n", username, role);
  return 0;
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
  if (config_load(&cfg, (config_getenv_fn)getenv, err, sizeof err)) {
    fprintf(stderr, "ducha: bad configuration: %s\n", err);
    return 2;
  }
  int rc;
  if (!strcmp(cmd, "serve")) {
    y_init_logs("ducha", Y_LOG_MODE_CONSOLE, (unsigned long)log_level(cfg.log_level), NULL, "starting");
    rc = serve(&cfg);
    y_close_logs();
  } else {
    db_conn *db = db_open(&cfg);
    if (!db)
      return 1;
    if (!strcmp(cmd, "migrate")) {
      config_resolve_path("migrations", path, sizeof path);
      rc = migrate_run(db, path) ? 1 : 0;
    } else if (!strcmp(cmd, "seed")) {
      config_resolve_path(cfg.seed_file, path, sizeof path);
      rc = seed_run(db, path) ? 1 : 0;
    } else {
      rc = admin_command(db, cmd, argc - 2, argv + 2);
    }
    db_close(db);
  }
  return rc;
}
