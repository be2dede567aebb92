/* The log of `ducha serve`: one line per request and per message, on stderr, as JSON (one object
 * a line: time, level, msg, and the request's fields) or as text (DUCHA_LOG_FORMAT). Every
 * y_log_message of the service, Ulfius' and yder's own included, comes through here. */
#ifndef DUCHA_LOG_H
#define DUCHA_LOG_H

#include <stdint.h>

#include "config.h"

/* Starts logging at cfg's level in cfg's format (auto: JSON, text when stderr is a terminal). */
void log_open(const struct config *cfg);
void log_close(void);

/* The request (or job) this thread works for, named in the messages it logs until the next call;
 * NULL for none. The string must live until then. */
void log_set_request(const char *request_id);

/* One line for a finished request: info, or warning for a 5xx. */
struct log_request {
  const char *request_id;
  const char *method;
  const char *route;   /* the operation's path template (openapi.yaml), NULL when none matched */
  const char *path;
  long status;
  double ms;
  int64_t user_id;     /* 0: no caller */
};
void log_request(const struct log_request *r);

/* One error line for a request that failed on the server's side (a 5xx): its problem type and
 * detail, with the request's id, route and status. */
void log_request_error(const struct log_request *r, const char *problem_type, const char *detail);

#endif
