/* /metrics: Prometheus text on a listener of its own (DUCHA_METRICS_LISTEN), never the API's.
 *
 * Where each number lives:
 *   - requests by operation and status, and their latency: counted here (metrics_request, from
 *     http.c when a request completes), C11 atomics, a few relaxed adds per request;
 *   - requests in flight: conn.c; streams open: http.c; the pool and statements timed out: db.c;
 *     the background jobs' runs and failures: worker.c. Read when /metrics is asked for. */
#ifndef DUCHA_METRICS_H
#define DUCHA_METRICS_H

#include "config.h"

/* Counters for the route table's routes (index 0 .. ROUTE_COUNT-1). 0, or -1 out of memory. */
int metrics_init(void) __attribute__((warn_unused_result));
/* A finished request: route is its index in ROUTES, -1 when it matched no operation. */
void metrics_request(int route, long http_status, long long duration_us);
/* Listens on DUCHA_METRICS_LISTEN (nothing when it is off); -1 when it cannot. */
int metrics_start(const struct config *cfg) __attribute__((warn_unused_result));
void metrics_stop(void);

/* The exposition text (caller frees), *len its length; NULL out of memory. */
char *metrics_text(size_t *len);

/* From http.c: streamed responses open now. */
long http_streams_open(void);

#endif
