#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yder.h>

#include "api.h"
#include "conn.h"
#include "db.h"
#include "text.h"
#include "webhook_delivery.h"
#include "worker.h"

#ifndef DUCHA_VERSION
#define DUCHA_VERSION "dev"
#endif

/* The statuses the API answers with, each counted apart; anything else counts as "other". */
static const int CODES[] = {200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413,
                            415, 422, 428, 429, 500, 503, 504};
#define NCODES (sizeof CODES / sizeof CODES[0])
#define SLOTS (NCODES + 1) /* the last: other */

/* Latency buckets in seconds (upper bounds; +Inf after them). */
static const double BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBOUNDS (sizeof BOUNDS / sizeof BOUNDS[0])

/* One per route, and one more for the requests that matched none (404, 405, OPTIONS). Buckets
 * are kept apart (not cumulative) so that a request adds to one; the text sums them. */
struct route_counts {
  atomic_ullong by_status[SLOTS];
  atomic_ullong bucket[NBOUNDS + 1];
  atomic_ullong sum_us;
};

static struct {
  struct route_counts *routes; /* ROUTE_COUNT + 1 */
  unsigned char slot_of[600];  /* HTTP status -> index in CODES (+1); 0: other */
  char status_label[SLOTS][24]; /* ,status="200" ... ,status="other" */
  char le_label[NBOUNDS + 1][24]; /* ,le="0.001" ... ,le="+Inf" */
  long long started;           /* unix seconds */
  struct MHD_Daemon *daemon;
} M;

int metrics_init(void) {
  M.routes = calloc((size_t)ROUTE_COUNT + 1, sizeof *M.routes);
  if (!M.routes)
    return -1;
  for (int r = 0; r <= ROUTE_COUNT; r++) {
    for (size_t i = 0; i < SLOTS; i++)
      atomic_init(&M.routes[r].by_status[i], 0);
    for (size_t i = 0; i <= NBOUNDS; i++)
      atomic_init(&M.routes[r].bucket[i], 0);
    atomic_init(&M.routes[r].sum_us, 0);
  }
  for (size_t i = 0; i < NCODES; i++) {
    M.slot_of[CODES[i]] = (unsigned char)(i + 1);
    snprintf(M.status_label[i], sizeof M.status_label[i], ",status=\"%d\"", CODES[i]);
  }
  snprintf(M.status_label[NCODES], sizeof M.status_label[NCODES], ",status=\"other\"");
  for (size_t i = 0; i < NBOUNDS; i++)
    snprintf(M.le_label[i], sizeof M.le_label[i], ",le=\"%g\"", BOUNDS[i]);
  snprintf(M.le_label[NBOUNDS], sizeof M.le_label[NBOUNDS], ",le=\"+Inf\"");
  M.started = (long long)time(NULL);
  return 0;
}

void metrics_request(int route, long http_status, long long duration_us) {
  if (!M.routes)
    return;
  struct route_counts *rc = &M.routes[route >= 0 && route < ROUTE_COUNT ? route : ROUTE_COUNT];
  size_t slot = http_status > 0 && http_status < 600 && M.slot_of[http_status] ? M.slot_of[http_status] - 1u : NCODES;
  double seconds = (double)duration_us / 1e6;
  size_t b = 0;
  while (b < NBOUNDS && seconds > BOUNDS[b])
    b++;
  atomic_fetch_add_explicit(&rc->by_status[slot], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&rc->bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&rc->sum_us, (unsigned long long)(duration_us > 0 ? duration_us : 0),
                            memory_order_relaxed);
}

/* ---- the text ----------------------------------------------------------------------------------- */

static void family(struct text *t, const char *name, const char *type, const char *help) {
  text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample of route r: NAME{method="...",route="..."EXTRA} VALUE */
static void route_sample(struct text *t, const char *name, int r, const char *extra, const char *value) {
  if (r < ROUTE_COUNT)
    text_printf(t, "%s{method=\"%s\",route=\"%s\"%s} %s\n", name, ROUTES[r].method, ROUTES[r].path, extra, value);
  else
    text_printf(t, "%s{method=\"other\",route=\"unmatched\"%s} %s\n", name, extra, value);
}

static void route_count(struct text *t, const char *name, int r, const char *extra, unsigned long long n) {
  char value[24];
  snprintf(value, sizeof value, "%llu", n);
  route_sample(t, name, r, extra, value);
}

static void requests(struct text *t) {
  family(t, "ducha_http_requests_total", "counter",
         "HTTP requests answered, by operation (openapi.yaml path template; unmatched: 404, 405, OPTIONS) and status.");
  for (int r = 0; r <= ROUTE_COUNT; r++)
    for (size_t i = 0; i < SLOTS; i++) {
      unsigned long long n = atomic_load_explicit(&M.routes[r].by_status[i], memory_order_relaxed);
      if (n)
        route_count(t, "ducha_http_requests_total", r, M.status_label[i], n);
    }
  family(t, "ducha_http_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer (a download: to its headers), by operation.");
  for (int r = 0; r <= ROUTE_COUNT; r++) {
    unsigned long long cum = 0, b[NBOUNDS + 1];
    for (size_t i = 0; i <= NBOUNDS; i++)
      cum += b[i] = atomic_load_explicit(&M.routes[r].bucket[i], memory_order_relaxed);
    if (!cum)
      continue;
    cum = 0;
    for (size_t i = 0; i <= NBOUNDS; i++) {
      cum += b[i];
      route_count(t, "ducha_http_request_duration_seconds_bucket", r, M.le_label[i], cum);
    }
    char sum[32];
    snprintf(sum, sizeof sum, "%.6f", (double)atomic_load_explicit(&M.routes[r].sum_us, memory_order_relaxed) / 1e6);
    route_sample(t, "ducha_http_request_duration_seconds_sum", r, "", sum);
    route_count(t, "ducha_http_request_duration_seconds_count", r, "", cum);
  }
}

static void gauge(struct text *t, const char *name, const char *help, long long value) {
  family(t, name, "gauge", help);
  text_printf(t, "%s %lld\n", name, value);
}

static void jobs(struct text *t) {
  struct worker_job_stats js[32];
  size_t n = worker_job_stats(js, sizeof js / sizeof js[0]);
  family(t, "ducha_job_runs_total", "counter", "Background job runs in this process (failed ones included).");
  for (size_t i = 0; i < n; i++)
    text_printf(t, "ducha_job_runs_total{job=\"%s\"} %llu\n", js[i].name, js[i].runs);
  family(t, "ducha_job_failures_total", "counter", "Background job runs in this process that failed.");
  for (size_t i = 0; i < n; i++)
    text_printf(t, "ducha_job_failures_total{job=\"%s\"} %llu\n", js[i].name, js[i].failures);
}

static void webhooks(struct text *t) {
  struct webhook_stats w;
  webhook_delivery_stats(&w);
  family(t, "ducha_webhook_deliveries_total", "counter",
         "Webhook delivery attempts of this process by outcome: delivered, retry (tried again later),"
         " failed (given up after DUCHA_WEBHOOK_RETRY_FOR).");
  text_printf(t, "ducha_webhook_deliveries_total{outcome=\"delivered\"} %llu\n", w.delivered);
  text_printf(t, "ducha_webhook_deliveries_total{outcome=\"retry\"} %llu\n", w.retried);
  text_printf(t, "ducha_webhook_deliveries_total{outcome=\"failed\"} %llu\n", w.failed);
  gauge(t, "ducha_webhook_in_flight", "Webhook deliveries being attempted by this process now.", w.in_flight);
  if (w.running) /* known to the processes that deliver */
    gauge(t, "ducha_webhook_queue", "Webhook deliveries pending (all replicas), at the delivery loop's last look.",
          w.queue);
}

char *metrics_text(size_t *len) {
  struct text t = {0};
  struct db_pool_stats pool;
  db_pool_stats(&pool);
  family(&t, "ducha_build_info", "gauge", "The running version (always 1).");
  text_printf(&t, "ducha_build_info{version=\"%s\"} 1\n", DUCHA_VERSION);
  gauge(&t, "ducha_start_time_seconds", "When the process started, in unix seconds.", M.started);
  if (M.routes)
    requests(&t);
  gauge(&t, "ducha_http_requests_in_flight", "Requests being received, handled or sent now.",
        conn_requests_in_flight());
  gauge(&t, "ducha_streams_open", "Downloads being sent now (at most DUCHA_MAX_STREAMS).", http_streams_open());
  gauge(&t, "ducha_db_pool_connections", "Database connections of the request pool.", pool.size);
  gauge(&t, "ducha_db_pool_in_use", "Pool connections taken by a request now.", pool.in_use);
  gauge(&t, "ducha_db_pool_waiting", "Requests waiting for a pool connection now.", pool.waiting);
  family(&t, "ducha_db_statement_timeouts_total", "counter",
         "Statements cancelled by statement_timeout (answered 504 query-timeout).");
  text_printf(&t, "ducha_db_statement_timeouts_total %llu\n", pool.timeouts);
  jobs(&t);
  webhooks(&t);
  return text_take(&t, len);
}

/* ---- the listener ---------------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, char *body, size_t len, int owned,
                             const char *type) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, owned ? MHD_RESPMEM_MUST_FREE
                                                                             : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    if (owned)
      free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result rc = MHD_queue_response(conn, code, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_size, void **state) {
  (void)cls, (void)version, (void)upload_data, (void)upload_size, (void)state;
  static char not_found[] = "not found: this listener serves GET /metrics only\n";
  static char not_allowed[] = "GET /metrics only\n";
  if (strcmp(url, "/metrics"))
    return reply(conn, 404, not_found, strlen(not_found), 0, "text/plain; charset=utf-8");
  if (strcmp(method, "GET") && strcmp(method, "HEAD"))
    return reply(conn, 405, not_allowed, strlen(not_allowed), 0, "text/plain; charset=utf-8");
  size_t len;
  char *text = metrics_text(&len);
  if (!text)
    return MHD_NO;
  return reply(conn, 200, text, len, 1, "text/plain; version=0.0.4; charset=utf-8");
}

int metrics_start(const struct config *cfg) {
  if (!cfg->metrics_port)
    return 0;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->metrics_port)};
  const char *host = strcmp(cfg->metrics_host, "localhost") ? cfg->metrics_host : "127.0.0.1";
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    y_log_message(Y_LOG_LEVEL_ERROR, "DUCHA_METRICS_LISTEN host %s is not an IPv4 address", cfg->metrics_host);
    return -1;
  }
  M.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)cfg->metrics_port, NULL, NULL, answer, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 16u,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (!M.daemon) {
    y_log_message(Y_LOG_LEVEL_ERROR, "cannot listen on %s:%u (DUCHA_METRICS_LISTEN)", cfg->metrics_host,
                  cfg->metrics_port);
    return -1;
  }
  y_log_message(Y_LOG_LEVEL_INFO, "metrics on http://%s:%u/metrics", cfg->metrics_host, cfg->metrics_port);
  return 0;
}

void metrics_stop(void) {
  if (M.daemon)
    MHD_stop_daemon(M.daemon);
  M.daemon = NULL;
  free(M.routes);
  M.routes = NULL;
}
