/* The one status type of the service: every layer returns one of these, and http.c alone turns
 * it into an HTTP status and a problem+json body. */
#ifndef DUCHA_STATUS_H
#define DUCHA_STATUS_H

typedef enum {
  ST_OK = 0,
  ST_INVALID,              /* 400 validation-failed, with errors */
  ST_MALFORMED,            /* 400 malformed-json */
  ST_BAD_QUERY,            /* 400 invalid-query, with errors */
  ST_BAD_REQUEST,          /* 400 malformed-request: framing that could be read two ways */
  ST_UNAUTHORIZED,         /* 401 */
  ST_FORBIDDEN,            /* 403: the role may not do this */
  ST_PASSWORD_CHANGE,      /* 403: the password must be changed first */
  ST_NOT_FOUND,            /* 404, also for what is outside the caller's scope */
  ST_METHOD_NOT_ALLOWED,   /* 405 */
  ST_BAD_TRANSITION,       /* 409 invalid-transition, with allowed_transitions */
  ST_CONFLICT,             /* 409 conflict (duplicate, missing prerequisite) */
  ST_REFERENCED,           /* 409 still-referenced */
  ST_FROZEN,               /* 409 frozen: the inspection's findings are final */
  ST_IDEM_RUNNING,         /* 409 idempotency-in-progress */
  ST_PRECONDITION_FAILED,  /* 412 */
  ST_TOO_LARGE,            /* 413 */
  ST_UNSUPPORTED_MEDIA,    /* 415 */
  ST_IDEM_REUSED,          /* 422 */
  ST_PRECONDITION_REQUIRED,/* 428 */
  ST_TOO_MANY,             /* 429, with Retry-After */
  ST_INTERNAL,             /* 500 */
  ST_UNAVAILABLE,          /* 503: the database is away (or hangs) */
  ST_QUERY_TIMEOUT,        /* 504: a statement ran out of its time budget */
  ST__COUNT
} status;

#endif
