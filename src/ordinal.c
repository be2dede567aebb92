#include "ordinal.h"

#include <stdio.h>

#include "resource.h"

static status count_of(struct call *c, const struct ordinal_sql *o, int64_t parent, long *n) {
  struct num p = num(parent);
  const char *params[] = {p.s};
  char text[24];
  status s = db_value(c->db, text, sizeof text, o->count, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  *n = strtol(text, NULL, 10);
  return ST_OK;
}

static status shift(struct call *c, const struct ordinal_sql *o, int64_t parent, long from, long to,
                    int delta, int64_t except) {
  struct num p = num(parent), f = num(from), t = num(to), d = num(delta), e = num(except);
  const char *params[] = {p.s, f.s, t.s, d.s, except ? e.s : NULL};
  status s = db_exec(c->db, NULL, o->shift, 5, params);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

static status out_of_range(struct call *c, long most) {
  char msg[64];
  snprintf(msg, sizeof msg, "must be from 1 to %ld", most);
  return invalid(c, "/ordinal", msg);
}

status ordinal_for_create(struct call *c, const struct ordinal_sql *o, int64_t parent) {
  long n = 0;
  struct num p = num(parent);
  const char *params[] = {p.s};
  char found[8];
  status s = db_value(c->db, found, sizeof found, o->lock, 1, params);
  if (s == ST_NOT_FOUND)
    return fail(c, s, "no such record");
  if (s == ST_OK)
    s = count_of(c, o, parent, &n);
  if (s != ST_OK)
    return s;
  json_t *given = json_object_get(c->body, "ordinal");
  long want = given ? (long)json_integer_value(given) : n + 1;
  if (want < 1 || want > n + 1)
    return out_of_range(c, n + 1);
  if (want <= n && (s = shift(c, o, parent, want, n, 1, 0)) != ST_OK)
    return s;
  json_object_set_new(c->body, "ordinal", json_integer(want));
  return ST_OK;
}

status ordinal_for_patch(struct call *c, const struct ordinal_sql *o) {
  json_t *given = json_object_get(c->body, "ordinal");
  if (!given)
    return ST_OK;
  struct num id = num(c->id);
  const char *params[] = {id.s};
  PGresult *r;
  status s = db_row(c->db, &r, o->position, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int64_t parent = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  long old = strtol(PQgetvalue(r, 0, 1), NULL, 10), want = (long)json_integer_value(given), n = 0;
  PQclear(r);
  if ((s = count_of(c, o, parent, &n)) != ST_OK)
    return s;
  if (want < 1 || want > n)
    return out_of_range(c, n);
  if (want < old)
    return shift(c, o, parent, want, old - 1, 1, c->id);
  if (want > old)
    return shift(c, o, parent, old + 1, want, -1, c->id);
  return ST_OK;
}
