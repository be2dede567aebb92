/* The connection layer between libmicrohttpd and Ulfius: what happens to a connection before a
 * request is dispatched and after its response is sent.
 *  - a request must arrive whole: headers within a deadline, the body at a minimum rate, else
 *    the connection is closed (a watchdog thread checks every connection);
 *  - open connections per client address are limited (trusted proxies exempt);
 *  - requests framed ambiguously (smuggling) are refused with 400 and the connection closed,
 *    before anything is dispatched;
 *  - upload bodies go to upload.c instead of into memory;
 *  - requests in flight are counted, for the drain at shutdown. */
#ifndef DUCHA_CONN_H
#define DUCHA_CONN_H

#include <microhttpd.h>
#include <stdint.h>

struct conn_limits {
  long request_timeout_ms;  /* headers whole within this after the connection is ready */
  long body_min_rate;       /* bytes per second, after request_timeout_ms of grace */
  long per_address;         /* open connections per client address; 0: no limit */
  const char *trusted;      /* comma-separated addresses exempt from per_address */
  uint64_t upload_limit;    /* the largest upload body kept */
  int (*is_upload)(const char *method, const char *url);
};

/* Starts the daemon (ulfius_start_framework_with_mhd_options with ducha's layer around
 * Ulfius's handler) and the watchdog. ops must leave room: conn_start adds two options. */
int conn_start(void *ulfius_instance, unsigned int flags, struct MHD_OptionItem *ops,
               const struct conn_limits *limits);
/* Stops the watchdog; call after the daemon has stopped. */
void conn_stop(void);
/* Requests whose headers have arrived and whose response is not yet sent. */
int conn_requests_in_flight(void);

#endif
