#include "resource.h"

#include "audit.h"
#include "text.h"

#include <stdio.h>
#include <string.h>

/* Constraints the schema names, and what they mean for the client. */
static const struct {
  const char *constraint;
  status st;
  const char *pointer;
  const char *message;
} KNOWN[] = {
  {"departments_parent_id_fkey", ST_INVALID, "/parent_id", "no such department"},
  {"departments_no_cycle", ST_INVALID, "/parent_id", "would make the department its own ancestor"},
  {"departments_not_own_parent", ST_INVALID, "/parent_id", "would make the department its own ancestor"},
  {"departments_name_key", ST_CONFLICT, "/name", "a department with this name already exists under this parent"},
  {"checklists_code_version_key", ST_CONFLICT, "/code", "this checklist version exists already; try again"},
  {"task_material_departments_department_id_fkey", ST_INVALID, "/tasks", "names a department that does not exist"},
  {"batches_checklist_id_fkey", ST_INVALID, "/checklist_id", "no such checklist"},
  {"inspections_checklist_id_fkey", ST_INVALID, "/checklist_id", "no such checklist"},
  {"inspections_batch_id_fkey", ST_INVALID, "/batch_id", "no such batch"},
  {"inspections_target_department_id_fkey", ST_INVALID, "/target_department_id", "no such department"},
  {"item_material_departments_department_id_fkey", ST_INVALID, "/material_department_ids", "names a department that does not exist"},
  {"rectifications_responsible_department_id_fkey", ST_INVALID, "/responsible_department_id", "no such department"},
  {"users_department_id_fkey", ST_INVALID, "/department_id", "no such department"},
  {"users_department_id_merged", ST_INVALID, "/department_id", "the department was merged into another"},
  {"departments_parent_id_merged", ST_INVALID, "/parent_id", "the department was merged into another"},
  {"inspections_target_department_id_merged", ST_INVALID, "/target_department_id", "the department was merged into another"},
  {"rectifications_responsible_department_id_merged", ST_INVALID, "/responsible_department_id",
   "the department was merged into another"},
  {"users_department_role", ST_INVALID, "/department_id", "is required for the department role, and only for it"},
  {"users_username_key", ST_CONFLICT, "/username", "this username is taken"},
  {"users_username_check", ST_INVALID, "/username", "may contain only A-Z, a-z, 0-9, '.', '_' and '-'"},
};

status resource_value(struct call *c, const char *what, char *out, size_t size, const char *sql, int n,
                      const char *const *params) {
  status s = db_value(c->db, out, size, sql, n, params);
  if (s == ST_NOT_FOUND)
    return fail(c, s, "no such %s", what);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

status resource_row(struct call *c, const char *what, PGresult **res, const char *sql, int n,
                    const char *const *params) {
  status s = db_row(c->db, res, sql, n, params);
  if (s == ST_NOT_FOUND)
    return fail(c, s, "no such %s", what);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

status resource_db_failure(struct call *c, status s) {
  const struct db_error *e = db_last_error(c->db);
  if (s != ST_INVALID && s != ST_CONFLICT)
    return s == ST_UNAVAILABLE    ? fail(c, s, "the database is unavailable; try again shortly")
           : s == ST_QUERY_TIMEOUT ? fail(c, s, "the request needed more than its time budget; narrow it down")
                                   : s;
  for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
    if (!strcmp(e->constraint, KNOWN[i].constraint)) {
      if (KNOWN[i].st == ST_INVALID)
        return invalid(c, KNOWN[i].pointer, KNOWN[i].message);
      return fail(c, KNOWN[i].st, "%s", KNOWN[i].message);
    }
  if (!strcmp(e->sqlstate, "23503"))
    return fail(c, ST_REFERENCED, "other records still refer to it");
  if (s == ST_CONFLICT)
    return fail(c, s, "the change conflicts with another one; try again");
  return fail(c, ST_INVALID, "the database refused the values: %s", e->message);
}

static const struct resource *res_of(const struct call *c) { return c->route->resource; }

status resource_report(struct call *c) {
  status s = db_report(c->db);
  if (s == ST_TOO_MANY) {
    c->retry_after = 1;
    return fail(c, s, "%ld reports are running; try again shortly", c->cfg->max_reports);
  }
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

/* Row id of r: (version, json) in *res (caller clears it), and the version as the ETag. A
 * version "N.more" is a tag of its own: N for If-Match, the whole for If-None-Match. */
static status get_row(struct call *c, const struct resource *r, int64_t id, PGresult **res) {
  struct num n = num(id);
  const char *params[] = {n.s};
  status s = resource_row(c, r->name, res, r->sql_get, 1, params);
  if (s != ST_OK)
    return s;
  const char *tag = PQgetvalue(*res, 0, 0);
  c->etag = strtol(tag, NULL, 10);
  if (strchr(tag, '.'))
    snprintf(c->etag_text, sizeof c->etag_text, "\"%s\"", tag);
  return ST_OK;
}

status resource_load(struct call *c, const struct resource *r, int64_t id) {
  PGresult *res;
  status s = get_row(c, r, id, &res);
  if (s != ST_OK)
    return s;
  json_decref(c->result);
  c->result = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
  PQclear(res);
  return c->result ? ST_OK : fail(c, ST_INTERNAL, "could not read the %s", r->name);
}

/* A read: the JSON PostgreSQL built goes to the client as it is, never parsed here. */
status res_get(struct call *c) {
  PGresult *res;
  status s = get_row(c, res_of(c), c->id, &res);
  if (s != ST_OK)
    return s;
  s = resource_text(c, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
  PQclear(res);
  return s;
}

status resource_tagged(struct call *c, const char *what, const char *sql_tag, const char *prefix, const char *sql_json) {
  struct num n = num(c->id);
  const char *params[] = {n.s};
  char tag[64];
  status s = resource_value(c, what, tag, sizeof tag, sql_tag, 1, params);
  if (s != ST_OK)
    return s;
  snprintf(c->etag_text, sizeof c->etag_text, "\"%s%s\"", prefix, tag);
  if (call_not_modified(c))
    return ST_OK; /* 304: the client's copy is current */
  PGresult *r;
  if ((s = resource_row(c, what, &r, sql_json, 1, params)) != ST_OK)
    return s;
  s = resource_text(c, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  return s;
}

status resource_text(struct call *c, const char *json, size_t len) {
  free(c->text);
  c->text = malloc(len + 1);
  if (!c->text)
    return fail(c, ST_INTERNAL, "out of memory");
  memcpy(c->text, json, len);
  c->text[len] = '\0';
  c->text_len = len;
  return ST_OK;
}
status res_create(struct call *c) { return resource_create(c, res_of(c)); }
status res_patch(struct call *c) { return resource_patch(c, res_of(c)); }
status res_delete(struct call *c) { return resource_delete(c, res_of(c)); }

status res_list(struct call *c) { return resource_list(c, res_of(c)); }

status resource_list(struct call *c, const struct resource *r) {
  const struct list_def *l = &r->list;
  const char *params[QUERY_MAX + 4];
  int n = 0;
  struct num parent = num(c->id);
  PGresult *res = NULL;
  status s;
  if (l->sql_parent) {
    params[n++] = parent.s;
    s = resource_row(c, "record", &res, l->sql_parent, 1, params);
    PQclear(res);
    if (s != ST_OK)
      return s;
  }
  for (int i = 0; c->route->query && c->route->query[i].name; i++)
    params[n++] = c->query.values[i];
  return resource_page(c, l->sql_page, l->sql_count, NULL, params, n, 0);
}

/* The JSON of the page's rows from sql_json ($1: their ids as an array, in order), into *json. */
static status page_json(struct call *c, const char *sql_json, PGresult *page, int rows, PGresult **json) {
  struct text ids = {0};
  text_put(&ids, "{");
  for (int i = 0; i < rows; i++) {
    if (i)
      text_add(&ids, ",", 1);
    text_put(&ids, PQgetvalue(page, i, 0));
  }
  text_put(&ids, "}");
  char *list = text_take(&ids, NULL);
  if (!list)
    return fail(c, ST_INTERNAL, "out of memory");
  const char *params[] = {list};
  status s = db_exec(c->db, json, sql_json, 1, params);
  free(list);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (PQntuples(*json) == rows)
    return ST_OK;
  PQclear(*json);
  return fail(c, ST_INTERNAL, "a row of the page could not be read");
}

status resource_page(struct call *c, const char *sql_page, const char *sql_count, const char *sql_json,
                     const char **params, int nfilters, int pair) {
  struct num cursor = num(c->query.cursor), limit = num(c->query.limit + 1);
  PGresult *res = NULL;
  status s;
  int n = nfilters;
  if (pair)
    params[n++] = c->query.has_cursor ? c->query.cursor_value : NULL;
  params[n++] = c->query.has_cursor ? cursor.s : NULL;
  params[n++] = limit.s;
  if (c->query.has_cursor && pair != (c->query.cursor_value != NULL)) {
    invalid(c, "/query/cursor", "belongs to another listing");
    return fail(c, ST_BAD_QUERY, "see errors");
  }
  if ((s = db_query(c->db, &res, sql_page, n, params)) != ST_OK)
    return resource_db_failure(c, s);
  /* The page is assembled from the rows' JSON as PostgreSQL built it. */
  int rows = PQntuples(res), shown = rows < c->query.limit ? rows : (int)c->query.limit;
  PGresult *json = res;
  if (sql_json && (s = page_json(c, sql_json, res, shown, &json)) != ST_OK) {
    PQclear(res);
    return s;
  }
  int col = sql_json ? 0 : 1;
  struct text page = {0};
  text_put(&page, "{\"data\":[");
  for (int i = 0; i < shown; i++) {
    if (i)
      text_add(&page, ",", 1);
    text_add(&page, PQgetvalue(json, i, col), (size_t)PQgetlength(json, i, col));
  }
  if (json != res)
    PQclear(json);
  text_put(&page, "],\"next_cursor\":");
  if (rows > c->query.limit) {
    int last = (int)c->query.limit - 1;
    int64_t key = strtoll(PQgetvalue(res, last, 0), NULL, 10);
    char *next = pair ? cursor_encode_pair(PQgetvalue(res, last, 2), key) : cursor_encode(key);
    snprintf(c->link_next, sizeof c->link_next, "%s", next);
    text_put(&page, "\"");
    text_put(&page, next); /* base64url: nothing to escape */
    text_put(&page, "\"");
    free(next);
  } else {
    text_put(&page, "null");
  }
  PQclear(res);
  if (c->query.include_total) {
    if ((s = db_query(c->db, &res, sql_count, nfilters, params)) != ST_OK) {
      free(text_take(&page, NULL));
      return resource_db_failure(c, s);
    }
    text_put(&page, ",\"total\":");
    text_put(&page, PQgetvalue(res, 0, 0));
    PQclear(res);
  }
  text_put(&page, "}");
  free(c->text);
  c->text = text_take(&page, &c->text_len);
  return c->text ? ST_OK : fail(c, ST_INTERNAL, "out of memory");
}

status resource_create(struct call *c, const struct resource *r) {
  status s;
  if (validate_body(c->body, r->create_fields, 1, c->errors))
    return fail(c, ST_INVALID, "the %s has invalid fields; see errors", r->name);
  if (r->before_create && (s = r->before_create(c)) != ST_OK)
    return s;
  return resource_insert(c, r, c->id, c->body);
}

status resource_insert(struct call *c, const struct resource *r, int64_t parent_id, const json_t *fields) {
  char *body = json_dumps(fields, JSON_COMPACT);
  struct num parent = num(parent_id), user = num(c->who.user_id);
  const char *params[] = {parent.s, body, user.s};
  int skip = parent_id ? 0 : 1; /* top-level resources have no parent parameter */
  PGresult *res;
  status s = db_row(c->db, &res, r->sql_insert, 3 - skip, params + skip);
  free(body);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  snprintf(c->location, sizeof c->location, "%s/%lld", r->collection, (long long)id);
  if ((s = resource_load(c, r, id)) != ST_OK)
    return s;
  return audit_write(c, "create", r->name, id, NULL, c->result);
}

status resource_lock(struct call *c, const struct resource *r) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char text[24];
  status s = resource_value(c, r->name, text, sizeof text, r->sql_lock, 1, params);
  if (s != ST_OK)
    return s;
  long version = strtol(text, NULL, 10);
  if (c->if_match && !etag_matches(c->if_match, version))
    return fail(c, ST_PRECONDITION_FAILED, "the %s has changed since you read it (ETag \"%ld\")", r->name, version);
  return ST_OK;
}

status resource_patch(struct call *c, const struct resource *r) {
  status s;
  if (validate_body(c->body, r->patch_fields, 0, c->errors))
    return fail(c, ST_INVALID, "the %s has invalid fields; see errors", r->name);
  if ((s = resource_lock(c, r)) != ST_OK)
    return s;
  if (r->before_change && (s = r->before_change(c, 0)) != ST_OK)
    return s;
  return resource_update(c, r, c->id, c->body);
}

status resource_update(struct call *c, const struct resource *r, int64_t id, const json_t *fields) {
  if (!json_object_size(fields))
    return resource_load(c, r, id);
  status s = resource_load(c, r, id);
  if (s != ST_OK)
    return s;
  json_t *before = c->result;
  c->result = NULL;
  char *body = json_dumps(fields, JSON_COMPACT);
  struct num n = num(id);
  const char *params[] = {n.s, body};
  s = db_exec(c->db, NULL, r->sql_update, 2, params);
  free(body);
  if (s != ST_OK)
    s = resource_db_failure(c, s);
  else if ((s = resource_load(c, r, id)) == ST_OK)
    s = audit_change(c, r->name, id, before, c->result);
  json_decref(before);
  return s;
}

status resource_delete(struct call *c, const struct resource *r) {
  status s;
  if ((s = resource_lock(c, r)) != ST_OK)
    return s;
  if (r->before_change && (s = r->before_change(c, 1)) != ST_OK)
    return s;
  /* The event is written first: the record, and so its scope, is still there to read. */
  if ((s = resource_load(c, r, c->id)) != ST_OK || (s = audit_write(c, "delete", r->name, c->id, c->result, NULL)) != ST_OK)
    return s;
  json_decref(c->result);
  c->result = NULL;
  struct num id = num(c->id);
  const char *params[] = {id.s};
  s = db_exec(c->db, NULL, r->sql_delete, 1, params);
  if (s == ST_INVALID && !strcmp(db_last_error(c->db)->sqlstate, "23503"))
    return fail(c, ST_REFERENCED, "the %s is still referenced by other records", r->name);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}
