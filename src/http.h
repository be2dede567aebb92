/* The HTTP side: Ulfius set-up, the middleware chain and the one function that turns a status
 * into a response. */
#ifndef DUCHA_HTTP_H
#define DUCHA_HTTP_H

#include "config.h"

/* Callback priorities, in the order they run. */
enum {
  PRIORITY_PREPARE = 0,  /* request id, CORS, body limit */
  PRIORITY_AUTH = 1,     /* bearer token for /api/v1 */
  PRIORITY_APP = 2,        /* the route table: paths without a parameter */
  PRIORITY_APP_PARAMS = 3, /* then those with one, so that /rectifications/export is not {id} */
  PRIORITY_FALLBACK = 4    /* 404 / 405 */
};

/* Serves until SIGINT or SIGTERM (which the caller has blocked); 0 on a clean stop. */
int http_serve(const struct config *cfg);

/* Prints "METHOD /path" for every route. */
void http_print_routes(void);

#endif
