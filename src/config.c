#include "config.h"

#include "address.h"
#include "net.h"
#include "validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STRING, K_LONG, K_LISTEN, K_LEVEL, K_METRICS, K_LOG_FORMAT };

struct var {
  const char *name;
  const char *def;
  enum kind kind;
  size_t offset;
  size_t size;   /* K_STRING: buffer size */
  long min, max; /* K_LONG */
  const char *help;
};

#define STR(field) K_STRING, offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define NUM(field, lo, hi) K_LONG, offsetof(struct config, field), 0, lo, hi

static const struct var VARS[] = {
  {"DATABASE_URL", "", STR(database_url), 0, 0, "PostgreSQL connection URI (required)"},
  {"DUCHA_MIGRATION_DATABASE_URL", "", STR(migration_database_url), 0, 0,
   "the schema owner's URI for migrate; DATABASE_URL's role then gets only the rights it needs"},
  {"DUCHA_LISTEN", "127.0.0.1:8080", K_LISTEN, 0, 0, 0, 0, "address and port to serve on"},
  {"DUCHA_METRICS_LISTEN", "127.0.0.1:9464", K_METRICS, 0, 0, 0, 0,
   "address and port of /metrics (Prometheus text), a listener apart from the API's; off for none"},
  {"DUCHA_THREADS", "8", NUM(threads, 1, 256), "worker threads (and database connections)"},
  {"DUCHA_MAX_CONNECTIONS", "4096", NUM(max_connections, 1, 1000000),
   "open client connections at most (each takes a file descriptor)"},
  {"DUCHA_PER_IP_CONNECTIONS", "64", NUM(per_ip_connections, 0, 1000000),
   "open connections per client address at most (0: no limit; DUCHA_TRUSTED_PROXIES exempt)"},
  {"DUCHA_IDLE_TIMEOUT", "30", NUM(idle_timeout, 1, 3600), "seconds before a connection with no traffic closes"},
  {"DUCHA_REQUEST_TIMEOUT", "10", NUM(request_timeout, 1, 3600),
   "seconds for a request's headers to arrive whole, else the connection closes"},
  {"DUCHA_BODY_MIN_RATE", "1024", NUM(body_min_rate, 1, 1073741824),
   "bytes per second a request body must average after that grace, else the connection closes"},
  {"DUCHA_MAX_STREAMS", "32", NUM(max_streams, 1, 100000),
   "file downloads sent at once; more answer 429"},
  {"DUCHA_SHUTDOWN_GRACE", "5", NUM(shutdown_grace, 0, 3600),
   "seconds after SIGTERM that /readyz answers 503 before new connections are refused"},
  {"DUCHA_DRAIN_TIMEOUT", "20", NUM(drain_timeout, 0, 3600),
   "seconds the requests in flight may then take to finish"},
  {"DUCHA_PREPARED_STATEMENTS", "1", NUM(prepare, 0, 1),
   "1: prepare statements once per connection; 0: behind PgBouncer in transaction mode"},
  {"DUCHA_BODY_LIMIT", "1048576", NUM(body_limit, 1024, 1073741824), "largest request body in bytes"},
  {"DUCHA_STATEMENT_TIMEOUT", "800", NUM(statement_timeout, 100, 600000),
   "milliseconds a statement may run (then 504); a database silent for longer answers 503"},
  {"DUCHA_MAX_REPORTS", "2", NUM(max_reports, 1, 256),
   "reports (statistics, exports, audit verification) running at once, each on a database connection of "
   "the pool for up to DUCHA_REPORT_TIMEOUT; more answer 429"},
  {"DUCHA_REPORT_TIMEOUT", "10000", NUM(report_timeout, 100, 3600000),
   "milliseconds a report (audit verification; statistics and exports) may run"},
  {"DUCHA_CORS_ORIGINS", "", STR(cors_origins), 0, 0, "comma-separated origins allowed by CORS"},
  {"DUCHA_LOG_LEVEL", "info", K_LEVEL, offsetof(struct config, log_level), sizeof(((struct config *)0)->log_level),
   0, 0, "error, warning, info or debug"},
  {"DUCHA_LOG_FORMAT", "auto", K_LOG_FORMAT, offsetof(struct config, log_format),
   sizeof(((struct config *)0)->log_format), 0, 0,
   "json (one object a line on stderr) or text; auto: json, text when stderr is a terminal"},
  {"DUCHA_TIMEZONE", "Asia/Shanghai", STR(timezone), 0, 0, "time zone of deadlines (local dates)"},
  {"DUCHA_SEED_FILE", "data/inspection-form.json", STR(seed_file), 0, 0, "the form that seed loads"},
  {"DUCHA_OPENAPI_FILE", "openapi.yaml", STR(openapi_file), 0, 0, "the contract served at /openapi.yaml"},
  {"DUCHA_DOCS_DIR", "docs/node_modules/swagger-ui-dist", STR(docs_dir), 0, 0,
   "the Swagger UI files the page /docs needs (scripts/run installs them)"},
  {"DUCHA_TRUSTED_PROXIES", "", STR(trusted_proxies), 0, 0,
   "comma-separated proxy addresses (a.b.c.d or a.b.c.d/n) whose X-Forwarded-For is believed"},
  {"DUCHA_TOKEN_TTL_HOURS", "12", NUM(token_ttl_hours, 1, 8760), "hours a login token stays valid"},
  {"DUCHA_TOKEN_CACHE_SECONDS", "5", NUM(token_cache_seconds, 0, 3600),
   "seconds a verified token is trusted without asking the database (0: always ask)"},
  {"DUCHA_UPLOAD_LIMIT", "20971520", NUM(upload_limit, 1, 1073741824), "largest evidence file in bytes"},
  {"DUCHA_HASH_CONCURRENCY", "2", NUM(hash_concurrency, 1, 64),
   "password hashes computed at once at most (each takes 19 MiB)"},
  {"DUCHA_AUDIT_KEY_FILE", "", STR(audit_key_file), 0, 0,
   "file of at least 32 secret bytes (mode 0600) that signs audit checkpoints; keep a copy apart from the database"},
  {"DUCHA_ESCALATION_BLUE_DAYS", "3", NUM(escalation_blue_days, 0, 365),
   "督办 blue: an open rectification's deadline is within this many working days"},
  {"DUCHA_ESCALATION_RED_DAYS", "5", NUM(escalation_red_days, 0, 365),
   "督办 red: overdue by more than this many working days (else yellow)"},
  {"DUCHA_ESCALATION_RED_URGES", "2", NUM(escalation_red_urges, 1, 1000),
   "督办 red also: overdue and urged at least this many times"},
  {"DUCHA_ESCALATION_EVERY", "600", NUM(escalation_every, 1, 86400),
   "seconds between the records of rectifications turned overdue or red (job escalation)"},
  {"DUCHA_PUBLIC_RATE_LIMIT", "120", NUM(public_rate_limit, 0, 1000000),
   "requests a minute per client address on the public view /api/v1/public/... (as many at once; more: 429),"
   " counted by each replica (0: no limit)"},
  {"DUCHA_STATISTICS_EVERY", "300", NUM(statistics_every, 1, 86400),
   "seconds between catch-ups of the statistics' counts: past deadlines, a replaced calendar (job statistics)"},
  {"DUCHA_JOBS", "purge-idempotency-keys,audit-checkpoint,escalation,statistics,webhooks", STR(jobs), 0, 0,
   "background jobs this process takes part in (comma-separated, or none); each run happens once across replicas;"
   " webhooks: the delivery of webhook events"},
  {"DUCHA_JOB_POLL_MS", "5000", NUM(job_poll_ms, 50, 3600000), "milliseconds between the worker's looks for a due job"},
  {"DUCHA_CHECKPOINT_EVERY", "3600", NUM(checkpoint_every, 1, 31536000),
   "seconds between audit checkpoints (job audit-checkpoint, when an audit key is set and events came)"},
  {"DUCHA_IDEMPOTENCY_PURGE_EVERY", "3600", NUM(idempotency_purge_every, 1, 31536000),
   "seconds between purges of Idempotency-Keys past their 24 hours (job purge-idempotency-keys)"},
  {"DUCHA_WEBHOOK_ALLOW", "", STR(webhook_allow), 0, 0,
   "addresses and networks (IPv4 or IPv6, comma-separated) webhooks may be delivered to although they are"
   " loopback, private or link-local ones"},
  {"DUCHA_WEBHOOK_TIMEOUT_MS", "10000", NUM(webhook_timeout_ms, 100, 120000),
   "milliseconds a receiver has to answer a delivery with a 2xx"},
  {"DUCHA_WEBHOOK_RETRY_BASE_MS", "10000", NUM(webhook_retry_base_ms, 10, 3600000),
   "pause before a failed delivery's second attempt; it doubles for each attempt after (at most an hour)"},
  {"DUCHA_WEBHOOK_RETRY_FOR", "86400", NUM(webhook_retry_for, 1, 2592000),
   "seconds after its event that a delivery is tried, then it is failed"},
  {"DUCHA_WEBHOOK_SECRET_OVERLAP", "86400", NUM(webhook_secret_overlap, 0, 2592000),
   "seconds a webhook's old secret still signs deliveries after a new one is set"},
  {"DUCHA_WEBHOOK_CONCURRENCY", "8", NUM(webhook_concurrency, 1, 256), "webhook deliveries under way at once in this process, at most half of them for one subscription"},
  {"DUCHA_WEBHOOK_POLL_MS", "1000", NUM(webhook_poll_ms, 10, 3600000),
   "milliseconds between looks for due deliveries (a change's own notification wakes the loop at once)"},
};

static void append(char *err, size_t errlen, const char *name, const char *value, const char *why) {
  size_t used = strlen(err);
  if (used < errlen)
    snprintf(err + used, errlen - used, "%s%s=\"%s\" %s", used ? "; " : "", name, value, why);
}

static int parse_long(const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || *s == ' ' || *s == '+')
    return -1;
  *out = v;
  return 0;
}

/* HOST:PORT into host (64 bytes) and *port. */
static int parse_listen(const char *s, char host[64], unsigned *port) {
  const char *colon = strrchr(s, ':');
  long n;
  if (!colon || colon == s || colon - s >= 64)
    return -1;
  if (parse_long(colon + 1, &n) || n < 1 || n > 65535)
    return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (unsigned)n;
  return 0;
}

int config_load(struct config *cfg, config_getenv_fn get, char *err, size_t errlen) {
  memset(cfg, 0, sizeof *cfg);
  err[0] = '\0';
  for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) {
    const struct var *v = &VARS[i];
    const char *value = get(v->name);
    if (!value || !*value)
      value = v->def;
    char *field = (char *)cfg + v->offset;
    switch (v->kind) {
    case K_STRING:
    case K_LEVEL:
    case K_LOG_FORMAT:
      if (strlen(value) >= v->size) {
        append(err, errlen, v->name, value, "is too long");
        break;
      }
      if (v->kind == K_LEVEL && strcmp(value, "error") && strcmp(value, "warning") &&
          strcmp(value, "info") && strcmp(value, "debug")) {
        append(err, errlen, v->name, value, "is not one of error, warning, info, debug");
        break;
      }
      if (v->kind == K_LOG_FORMAT && strcmp(value, "json") && strcmp(value, "text") && strcmp(value, "auto")) {
        append(err, errlen, v->name, value, "is not one of json, text, auto");
        break;
      }
      strcpy(field, value);
      break;
    case K_LONG: {
      long n;
      if (parse_long(value, &n) || n < v->min || n > v->max) {
        char why[96];
        snprintf(why, sizeof why, "is not a whole number from %ld to %ld", v->min, v->max);
        append(err, errlen, v->name, value, why);
        break;
      }
      memcpy(field, &n, sizeof n);
      break;
    }
    case K_LISTEN:
      if (parse_listen(value, cfg->listen_host, &cfg->listen_port))
        append(err, errlen, v->name, value, "is not HOST:PORT");
      break;
    case K_METRICS:
      if (strcmp(value, "off") && parse_listen(value, cfg->metrics_host, &cfg->metrics_port))
        append(err, errlen, v->name, value, "is not HOST:PORT or off");
      break;
    }
  }
  if (strstr(cfg->timezone, "..") || cfg->timezone[0] == '/' || !*cfg->timezone) {
    append(err, errlen, "DUCHA_TIMEZONE", cfg->timezone, "is not a time zone name");
  } else {
    char zone[128];
    snprintf(zone, sizeof zone, "/usr/share/zoneinfo/%s", cfg->timezone);
    if (access(zone, R_OK))
      append(err, errlen, "DUCHA_TIMEZONE", cfg->timezone, "is not a time zone this machine knows");
  }
  if (!proxies_valid(cfg->trusted_proxies))
    append(err, errlen, "DUCHA_TRUSTED_PROXIES", cfg->trusted_proxies, "is not a list of addresses or networks");
  if (!cidr_list_valid(cfg->webhook_allow))
    append(err, errlen, "DUCHA_WEBHOOK_ALLOW", cfg->webhook_allow, "is not a list of addresses or networks");
  if (!cfg->database_url[0])
    append(err, errlen, "DATABASE_URL", "", "is required");
  return err[0] ? -1 : 0;
}

/* The name in a column of its own, the words wrapped to 100 columns under each other. */
void config_usage(FILE *out) {
  enum { NAME = 30, WIDTH = 100 - NAME - 3 };
  fprintf(out, "Environment (default in brackets):\n");
  for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) {
    char text[512];
    snprintf(text, sizeof text, "%s [%s]", VARS[i].help, *VARS[i].def ? VARS[i].def : "none");
    const char *p = text;
    int first = 1;
    while (*p) {
      size_t n = strlen(p);
      if (n > WIDTH) { /* break at the last space that fits (or cut a word longer than the line) */
        n = WIDTH;
        while (n > 0 && p[n] != ' ')
          n--;
        if (n == 0)
          n = WIDTH;
      }
      fprintf(out, "  %-*s %.*s\n", NAME, first ? VARS[i].name : "", (int)n, p);
      p += n;
      while (*p == ' ')
        p++;
      first = 0;
    }
  }
}

int config_cors_allows(const struct config *cfg, const char *origin) {
  return list_has(cfg->cors_origins, origin);
}

void config_resolve_path(const char *path, char *out, size_t size) {
  char exe[512];
  snprintf(out, size, "%s", path);
  if (path[0] == '/' || access(path, R_OK) == 0)
    return;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return;
  *slash = '\0';
  char candidate[1024];
  snprintf(candidate, sizeof candidate, "%s/../%s", exe, path);
  if (access(candidate, R_OK) == 0)
    snprintf(out, size, "%s", candidate);
}
