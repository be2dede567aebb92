/* Validation of request bodies against a field table: every problem is gathered into one
 * `errors` array of {pointer, message}, so a client learns all of them from one 400. */
#ifndef DUCHA_VALIDATE_H
#define DUCHA_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum ftype {
  F_LINE,    /* one line of text: no control characters */
  F_TEXT,    /* text; newlines and tabs allowed */
  F_ID,      /* positive integer id */
  F_IDS,     /* array of distinct ids */
  F_DATE,    /* "YYYY-MM-DD", a real date */
  F_ENUM,    /* one of values */
  F_BOOL,
  F_INT,     /* integer from min to max */
  F_LINES,   /* array of F_LINE strings, each min..max characters; items_max items at most */
  F_CODE,    /* [a-z0-9_-], min..max characters */
  F_ENUMS    /* array of min..max distinct values from values */
};

enum { FIELD_REQUIRED = 1, FIELD_NULLABLE = 2 };

struct field {
  const char *name;
  enum ftype type;
  unsigned flags;
  long min, max;              /* characters (strings), value (ints), items (F_IDS, F_ENUMS) */
  const char *const *values;  /* F_ENUM, F_ENUMS: NULL-terminated */
  long items_max;             /* F_LINES: items at most */
};

#define ID_MAX 9007199254740991LL /* 2^53 - 1: exact in every JSON parser */

/* Checks body (an object) against spec; with creating, FIELD_REQUIRED fields must be present.
 * Unknown members are errors. Appends to errors; returns how many it appended. */
size_t validate_body(const json_t *body, const struct field *spec, int creating, json_t *errors);
/* The same for an object nested at prefix (a JSON pointer such as "/tasks/3"). */
size_t validate_body_at(const json_t *body, const struct field *spec, int creating, const char *prefix,
                        json_t *errors);

/* A problem lists at most ERRORS_MAX errors, and how many there were (errors_total). */
#define ERRORS_MAX 50

/* Appends {pointer, message} to errors. Past ERRORS_MAX an error is counted, not kept: it is
 * appended as null, so json_array_size(errors) stays the number of errors. */
void errors_add(json_t *errors, const char *pointer, const char *message);
/* The errors kept (at most ERRORS_MAX {pointer, message}), as a new reference. */
json_t *errors_kept(json_t *errors);

/* 1 when the comma-separated list (spaces around entries ignored) has an entry equal to item. */
int list_has(const char *list, const char *item);

/* Number of characters of valid UTF-8 s. */
size_t utf8_chars(const char *s);
/* 1 when s[0..len) is valid UTF-8 without NUL bytes. */
int utf8_valid(const char *s, size_t len);
/* Makes NUL-terminated s text the database takes: each byte that starts no valid UTF-8 character
 * becomes '?' (what a remote server answered, kept in a log). */
void utf8_mend(char *s);
/* 1 when s is "YYYY-MM-DD" and a real date. */
int date_valid(const char *s);
/* 1 when s is an RFC 3339 date-time ("2026-11-26T08:00:00Z", "...+08:00", fractions allowed).
 * A space where the offset's '+' belongs (a '+' left unencoded in a URL) is mended in place. */
int time_valid(char *s);
/* Parses a canonical positive id ("1" .. "9007199254740991", no sign, no leading zero). */
int id_parse(const char *s, int64_t *out);

#endif
