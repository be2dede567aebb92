/* Configuration: defaults, then the environment, then one check that reports every problem. */
#ifndef DUCHA_CONFIG_H
#define DUCHA_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct config {
  char database_url[1024];
  char migration_database_url[1024];
  char listen_host[64];
  unsigned listen_port;
  char metrics_host[64];  /* DUCHA_METRICS_LISTEN: Prometheus text at /metrics, a listener of its own */
  unsigned metrics_port;  /* 0: off */
  char log_format[8];     /* json, text or auto (json, text when stderr is a terminal) */
  char docs_dir[512];     /* the Swagger UI files /docs serves (scripts/lib.sh installs them) */
  long threads;
  long max_connections;
  long per_ip_connections;
  long idle_timeout;
  long body_limit;
  long statement_timeout;
  long report_timeout;    /* ms: the longer budget of reports */
  char cors_origins[1024];
  char log_level[16];
  char timezone[64];
  char seed_file[512];
  char openapi_file[512];
  char trusted_proxies[1024];
  long token_ttl_hours;
  long token_cache_seconds;
  long hash_concurrency;
  long upload_limit;
  char audit_key_file[512];  /* the key that signs audit checkpoints; never in the database */
  long request_timeout;   /* seconds for a request's headers to arrive whole */
  long body_min_rate;     /* bytes per second a body must keep up, after that grace */
  long max_streams;       /* streamed responses at once */
  long max_reports;       /* requests under the report budget at once (db_report) */
  long shutdown_grace;    /* seconds /readyz answers 503 before the listener closes */
  long drain_timeout;     /* seconds requests in flight may take to finish at shutdown */
  long prepare;           /* 1: named prepared statements (off behind PgBouncer 1.18) */
  char jobs[256];         /* the background jobs this process runs (worker.c), comma-separated */
  long job_poll_ms;       /* how often the worker looks for a due job */
  long checkpoint_every;  /* seconds between audit checkpoints (with an audit key) */
  long idempotency_purge_every; /* seconds between purges of expired Idempotency-Keys */
  long escalation_blue_days, escalation_red_days, escalation_red_urges; /* 督办: N, M, K */
  long escalation_every;  /* seconds between runs of the escalation job */
  long public_rate_limit; /* requests a minute per client address on the public view (0: none) */
  long statistics_every;  /* seconds between runs of the statistics job */
  char webhook_allow[1024];   /* networks webhooks may reach although not public (address.c) */
  long webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_for, webhook_secret_overlap;
  long webhook_concurrency, webhook_poll_ms;
};

typedef const char *(*config_getenv_fn)(const char *name);

/* Fills *cfg from defaults and get(name). On any bad value returns -1 and writes one message
 * naming every bad value into err. */
int config_load(struct config *cfg, config_getenv_fn get, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Writes the list of variables with their defaults and meaning. */
void config_usage(FILE *out);

/* 1 when origin is in the comma-separated DUCHA_CORS_ORIGINS list. */
int config_cors_allows(const struct config *cfg, const char *origin);

/* Finds a data file named relative to the working directory or, failing that, to the checkout
 * the binary was built in (build/ducha -> ./). Writes the path to use into out. */
void config_resolve_path(const char *path, char *out, size_t size);

#endif
