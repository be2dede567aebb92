/* Query strings: strict parsing of the parameters a route allows, and the opaque list cursor. */
#ifndef DUCHA_QUERY_H
#define DUCHA_QUERY_H

#include <jansson.h>
#include <stdint.h>

#include "status.h"

enum qtype {
  Q_ID,      /* positive id */
  Q_DATE,    /* YYYY-MM-DD */
  Q_BOOL,    /* true | false */
  Q_TEXT,    /* 1-100 characters of text */
  Q_ENUMS,   /* values from the list, comma-separated or the name repeated; a PostgreSQL array literal */
  Q_CODE,    /* [a-z0-9_-]{1,50} */
  Q_TIME,    /* RFC 3339 date-time */
  Q_ENUM     /* one value from the list */
};

struct qparam {
  const char *name;
  enum qtype type;
  const char *const *values; /* Q_ENUMS: NULL-terminated */
};

#define QUERY_MAX 16

struct query {
  long limit;                  /* 1-200, default 50 */
  int include_total;
  int has_cursor;
  int64_t cursor;              /* the key (or id) after which the page starts */
  char *cursor_value;          /* with a two-part cursor, the sort value before the id; owned */
  char *values[QUERY_MAX];     /* by position in the spec; NULL when absent; owned */
};

/* Parses raw ("a=1&b=2", may be NULL) against spec (NULL-name terminated; may be NULL).
 * With is_list, limit, cursor and include_total are allowed too. Problems go to errors as
 * {pointer: "/query/<name>"}; returns ST_OK or ST_BAD_QUERY. Call query_free either way. */
status query_parse(const char *raw, const struct qparam *spec, int is_list, struct query *q,
                   json_t *errors);
void query_free(struct query *q);

/* Cursor text for key, or for a sort value and an id (caller owns the result). */
char *cursor_encode(int64_t key);
char *cursor_encode_pair(const char *value, int64_t id);
/* 1 when text is a cursor this service made: *key, and *value (owned; NULL for a one-part
 * cursor). */
int cursor_decode(const char *text, int64_t *key, char **value);

/* 1 when an If-Match header value ("*", or a list of "n" entity tags) matches version. */
int etag_matches(const char *if_match, long version);

#endif
