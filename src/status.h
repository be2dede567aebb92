/* The one status type of the service: every layer returns one of these, and http.c alone turns
 * it into an HTTP status and a problem+json body. What each means, with its HTTP status and
 * problem type: problem_types.def. */
#ifndef DUCHA_STATUS_H
#define DUCHA_STATUS_H

typedef enum {
  ST_OK = 0,
#define PROBLEM(st, http, slug, title) st,
#include "problem_types.def"
#undef PROBLEM
  ST__COUNT
} status;

#endif
