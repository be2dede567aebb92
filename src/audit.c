/* 留痕, written: one event per change, appended to its hash chain by audit_append (SQL).
 * Reading them back: audit_events.c. */
#include "audit.h"

#include <stdio.h>
#include <string.h>

static const char *SQL_APPEND =
    "SELECT audit_append(nullif($1, '0')::bigint, $2, $3, nullif($4, '0')::bigint, $5, $6, $7::jsonb,"
    " $8::jsonb, ducha_entity_scope($3, nullif($4, '0')::bigint))";

status audit_db(db_conn *db, int64_t actor, const char *request_id, const char *address, const char *action,
                const char *entity_type, int64_t entity_id, const json_t *before, const json_t *after) {
  struct num a = num(actor), id = num(entity_id);
  char *b = before ? json_dumps(before, JSON_COMPACT) : NULL, *f = after ? json_dumps(after, JSON_COMPACT) : NULL;
  const char *params[] = {a.s, action, entity_type, id.s, request_id, address && *address ? address : NULL, b, f};
  status s = db_exec(db, NULL, SQL_APPEND, 8, params);
  free(b);
  free(f);
  return s;
}

status audit_write(struct call *c, const char *action, const char *entity_type, int64_t entity_id,
                   const json_t *before, const json_t *after) {
  status s = audit_db(c->db, c->who.user_id, c->request_id, c->client_address, action, entity_type, entity_id,
                      before, after);
  return s == ST_OK ? ST_OK : fail(c, s == ST_UNAVAILABLE || s == ST_QUERY_TIMEOUT ? s : ST_INTERNAL,
                                        "the change could not be recorded");
}

/* Fields whose change is not news of its own. */
static int incidental(const char *key) {
  return !strcmp(key, "updated_at") || !strcmp(key, "counts") || !strcmp(key, "problem_count") ||
         !strcmp(key, "rectification_count") || !strcmp(key, "task_count");
}

status audit_change(struct call *c, const char *entity_type, int64_t entity_id, const json_t *before,
                    const json_t *after) {
  json_t *b = json_object(), *a = json_object();
  const char *key;
  json_t *value;
  json_object_foreach((json_t *)after, key, value) {
    json_t *old = json_object_get(before, key);
    if (incidental(key) || (old && json_equal(old, value)))
      continue;
    json_object_set(b, key, old ? old : json_null());
    json_object_set(a, key, value);
  }
  status s = json_object_size(a) ? audit_write(c, "update", entity_type, entity_id, b, a) : ST_OK;
  json_decref(b);
  json_decref(a);
  return s;
}
