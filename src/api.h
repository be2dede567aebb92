/* What every handler sees: one call, transport-neutral. http.c fills the inputs from the HTTP
 * request and turns the outputs into the response; handlers apply the rules and call db_*. */
#ifndef DUCHA_API_H
#define DUCHA_API_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "query.h"
#include "status.h"

enum role_bits {
  ROLE_ADMIN = 1,
  ROLE_INSPECTOR = 2,
  ROLE_DEPARTMENT = 4,
  ROLE_VIEWER = 8,
};
#define ROLES_STAFF (ROLE_ADMIN | ROLE_INSPECTOR)
#define ROLES_ALL (ROLE_ADMIN | ROLE_INSPECTOR | ROLE_DEPARTMENT | ROLE_VIEWER)
#define ROLES_READ_ALL (ROLE_ADMIN | ROLE_INSPECTOR | ROLE_VIEWER)

struct principal {
  int64_t user_id;       /* 0 for anonymous calls */
  int64_t token_id;
  char role[16];
  unsigned role_bit;
  int64_t department_id; /* 0 when none */
  int must_change_password;
  char *scope;           /* for db_begin_as: 'all', or the department ids it may see (owned) */
};

struct call {
  /* inputs */
  const struct route *route;
  const struct config *cfg;
  const char *request_id;
  const char *path;        /* the request's path */
  char client_address[64]; /* the socket's, or what a trusted proxy forwarded */
  struct principal who;
  int64_t id;              /* the {id} of the path, 0 when the route has none */
  json_t *body;            /* the request's JSON object, NULL when it has none */
  struct query query;
  const char *if_match;    /* the If-Match header, NULL when absent (see etag_matches) */
  db_conn *db;
  /* outputs */
  json_t *result;          /* success body (owned) */
  char *text;              /* or the success body as JSON text (owned): what PostgreSQL built, sent as it is */
  size_t text_len;
  const char *if_none_match; /* the If-None-Match header, NULL when absent */
  long etag;               /* version for the ETag header; 0 for none */
  char location[160];      /* Location of a created resource */
  char link_next[256];     /* the next page's cursor, for the Link header */
  json_t *errors;          /* problem errors [{pointer, message}] (owned, always allocated) */
  json_t *allowed;         /* allowed_transitions, with ST_BAD_TRANSITION (owned) */
  char detail[256];        /* plain words for the problem's detail */
  const char *content_type;        /* request headers some handlers read */
  const char *content_disposition;
  /* outputs */
  long retry_after;        /* seconds, with ST_TOO_MANY */
  char etag_text[80];      /* an ETag other than the version (a file's hash), quoted */
  char disposition[1100];  /* Content-Disposition of a download */
  /* a streamed body: stream_read(data, offset, out, max) gives the next bytes (-1 at the end) */
  long (*stream_read)(void *data, uint64_t offset, char *out, size_t max);
  void (*stream_free)(void *data);
  void *stream_data;
  uint64_t stream_size;
  const char *stream_type;
  const char *raw;         /* a non-JSON success body (not owned), with raw_type */
  size_t raw_len;
  const char *raw_type;
};

typedef status (*handler_fn)(struct call *c);

enum route_flags {
  R_PUBLIC = 1,        /* no token needed */
  R_BODY = 2,          /* takes a JSON object body */
  R_BODY_OPTIONAL = 4, /* the body may be empty (transitions) */
  R_CREATED = 8,       /* success is 201 with Location */
  R_NO_CONTENT = 16,   /* success is 204 */
  R_IF_MATCH = 32,     /* If-Match is required */
  R_LIST = 64,         /* a collection: limit, cursor, include_total */
  R_NO_DB = 128,       /* needs no database connection */
  R_SECRET = 256,      /* the response carries a secret: never stored for Idempotency-Key */
  R_MERGE_PATCH = 512, /* also accepts application/merge-patch+json */
  R_OWN_TX = 1024,     /* the handler runs its own transactions (logins record failures) */
  R_BEFORE_PASSWORD_CHANGE = 2048, /* allowed while the user must change the password */
  R_UPLOAD = 4096,     /* the body is a file, streamed to disk before dispatch (upload.c) */
  R_PRIVATE = 8192,    /* carries tokens or personal data: Cache-Control: no-store */
  R_CALLERS = 16384,   /* changes who callers are or what they see: verified tokens forgotten */
  R_DEADLINE = 32768,  /* the body's deadline may come as deadline_in_working_days (calendar.c) */
  R_ONE_STATEMENT = 65536, /* a read of one statement: no BEGIN or COMMIT (DB_ONE_READ, db.h) */
  R_PUBLIC_VIEW = 131072,  /* the public view (公示): cacheable by anyone, rate-limited per address (http.c) */
  R_PAGE = 262144      /* a page for browsers (/docs): loads nothing from elsewhere (CSP) */
};

struct resource;

struct route {
  const char *method;
  const char *path;        /* as in openapi.yaml: /api/v1/departments/{id} */
  handler_fn handler;
  unsigned flags;
  const struct qparam *query;      /* the filters it allows */
  const struct resource *resource; /* for the generic handlers in resource.c */
  unsigned roles;                  /* ROLE_* bits allowed; 0 with R_PUBLIC */
};

/* The ROLE_* bit of a role name; 0 for an unknown one. */
unsigned role_bit(const char *role);

extern const struct route ROUTES[];
extern const int ROUTE_COUNT;

/* call.c: the helpers every layer uses.
 *
 * Sets c->detail (printf-style) and returns s: `return fail(c, ST_CONFLICT, "...")`. */
status fail(struct call *c, status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Adds one {pointer, message} and returns ST_INVALID. */
status invalid(struct call *c, const char *pointer, const char *message);

/* 1 when the client's If-None-Match names c->etag_text (or is *): its copy is current, 304. */
int call_not_modified(const struct call *c);

/* 1 once SIGTERM came (service_stop): the service is draining. */
int service_stopping(void);
void service_stop(void);

/* calendar.c, for routes marked R_DEADLINE before their handler: a body's
 * deadline_in_working_days becomes its deadline, counted from today in DUCHA_TIMEZONE (day 1 is
 * the next working day); ST_INVALID for a bad count or for both given. */
status calendar_deadline(struct call *c);

/* Text form of an int64 for SQL parameters. */
struct num { char s[24]; };
struct num num(int64_t v);

#endif
