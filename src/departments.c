/* 部门 / 单位: organisations, in a tree through parent_id.
 *
 * Where its rules live: no cycle in the tree, trigger departments_no_cycle (migrations/0001);
 * a merged unit is kept as it was, unmerged below, and nothing new may point at it, triggers
 * *_merged (migrations/0004); what a merge moves and who reads what afterwards, department_merge
 * below and rectification_readers (migrations/0008); a change to the tree or a merge forgets
 * the verified tokens (R_CALLERS on its routes), because scopes are computed from the tree. */
#include "resources.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"

static const char *const KINDS[] = {"department", "group", NULL};

static const struct field CREATE[] = {
  {"name", F_LINE, FIELD_REQUIRED, 1, 100, NULL, 0},
  {"kind", F_ENUM, 0, 0, 0, KINDS, 0},
  {"parent_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"name", F_LINE, 0, 1, 100, NULL, 0},
  {"kind", F_ENUM, 0, 0, 0, KINDS, 0},
  {"parent_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {0},
};

const struct qparam DEPARTMENT_FILTERS[] = {
  {"parent_id", Q_ID, NULL},
  {"kind", Q_ENUMS, KINDS},
  {"q", Q_TEXT, NULL},
  {0},
};

#define JSON_OF_D                                                                              \
  "json_build_object('id', d.id, 'name', d.name, 'kind', d.kind, 'parent_id', d.parent_id,"    \
  " 'parent', CASE WHEN p.id IS NULL THEN NULL ELSE json_build_object('id', p.id, 'name', p.name) END," \
  " 'merged_into_id', d.merged_into_id,"                                                       \
  " 'merged_into', CASE WHEN m.id IS NULL THEN NULL ELSE json_build_object('id', m.id, 'name', m.name) END," \
  " 'merged_at', d.merged_at, 'created_at', d.created_at, 'updated_at', d.updated_at)"
#define FROM_D                                                                                 \
  " FROM departments d LEFT JOIN departments p ON p.id = d.parent_id"                          \
  " LEFT JOIN departments m ON m.id = d.merged_into_id"
/* A department user sees its own unit and what lies under it. */
#define FILTER_D                                                                               \
  " WHERE ducha_in_scope(d.id) AND ($1::bigint IS NULL OR d.parent_id = $1)"                   \
  "   AND ($2::text[] IS NULL OR d.kind = ANY ($2))"                                             \
  "   AND ($3::text IS NULL OR d.name ILIKE ducha_contains($3))"

/* A merged department stays as it was, for the records that still point at it. */
static status unmerged(struct call *c, int deleting) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char merged[8];
  status s = db_value(c->db, merged, sizeof merged, "SELECT merged_into_id IS NOT NULL FROM departments WHERE id = $1",
                      1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(merged, "t"))
    return fail(c, ST_CONFLICT, "the department was merged into another and is kept as it was%s",
                deleting ? "" : "; change its successor instead");
  return ST_OK;
}

const struct resource DEPARTMENTS = {
  .name = "department",
  .collection = "/api/v1/departments",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT d.version, " JSON_OF_D FROM_D " WHERE d.id = $1 AND ducha_in_scope(d.id)",
  .sql_lock = "SELECT version FROM departments WHERE id = $1 FOR UPDATE",
  .sql_insert = "INSERT INTO departments (name, kind, parent_id, created_by)"
                " SELECT b->>'name', coalesce(b->>'kind', 'department'), (b->>'parent_id')::bigint, $2::bigint"
                " FROM (SELECT $1::jsonb AS b) s RETURNING id",
  .sql_update = "UPDATE departments SET"
                " name = CASE WHEN b ? 'name' THEN b->>'name' ELSE name END,"
                " kind = CASE WHEN b ? 'kind' THEN b->>'kind' ELSE kind END,"
                " parent_id = CASE WHEN b ? 'parent_id' THEN (b->>'parent_id')::bigint ELSE parent_id END,"
                " updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "DELETE FROM departments WHERE id = $1",
  .before_change = unmerged,
  .list = {
    .sql_page = "SELECT d.id, " JSON_OF_D FROM_D FILTER_D
                " AND ($4::bigint IS NULL OR d.id > $4) ORDER BY d.id LIMIT $5",
    .sql_count = "SELECT count(*) FROM departments d" FILTER_D,
  },
};

static const char *SQL_MISSING =
    "SELECT e.ord - 1 FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY e(v, ord)"
    " WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.id = e.v::bigint) ORDER BY e.ord";

status departments_exist(struct call *c, const json_t *ids, const char *pointer) {
  if (!json_array_size(ids))
    return ST_OK;
  char *text = json_dumps(ids, JSON_COMPACT);
  const char *params[] = {text};
  PGresult *r;
  status s = db_exec(c->db, &r, SQL_MISSING, 1, params);
  free(text);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  for (int i = 0; i < PQntuples(r); i++) {
    char ptr[96];
    snprintf(ptr, sizeof ptr, "%s/%s", pointer, PQgetvalue(r, i, 0));
    errors_add(c->errors, ptr, "no such department");
  }
  s = PQntuples(r) ? ST_INVALID : ST_OK;
  PQclear(r);
  return s;
}

/* ---- 机构改革: merging a department into its successor ------------------------------------- */

static const struct field MERGE[] = {
  {"successor_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 500, NULL, 0},
  {0},
};

/* What the successor may be: not the unit itself, not under it, not merged itself. */
static const char *SQL_SUCCESSOR =
    "SELECT CASE WHEN s.id = o.id OR s.id = ANY (ducha_subtree(o.id)) THEN 'inside'"
    "            WHEN s.merged_into_id IS NOT NULL THEN 'merged'"
    "            WHEN o.merged_into_id IS NOT NULL THEN 'already' ELSE 'ok' END"
    " FROM departments o, departments s WHERE o.id = $1 AND s.id = $2";

/* The successor takes over open rectifications, department users and sub-units; closed
 * rectifications keep pointing at the old unit, which keeps its name. */
static const char *SQL_MERGE =
    "WITH r AS (UPDATE rectifications SET responsible_department_id = $2, updated_at = now(), version = version + 1"
    "           WHERE responsible_department_id = $1 AND status <> 'closed' RETURNING id),"
    " u AS (UPDATE users SET department_id = $2, updated_at = now(), version = version + 1"
    "       WHERE department_id = $1 RETURNING id),"
    " d AS (UPDATE departments SET parent_id = $2, updated_at = now(), version = version + 1"
    "       WHERE parent_id = $1 RETURNING id),"
    " m AS (UPDATE departments SET merged_into_id = $2, merged_at = now(), updated_at = now(), version = version + 1"
    "       WHERE id = $1 RETURNING id)"
    " SELECT json_build_object("
    "   'rectification_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM r), '[]'),"
    "   'user_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM u), '[]'),"
    "   'sub_unit_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM d), '[]'))"
    " FROM m";

status department_merge(struct call *c) {
  status s;
  if (validate_body(c->body, MERGE, 1, c->errors))
    return fail(c, ST_INVALID, "send successor_id and reason");
  if ((s = resource_lock(c, &DEPARTMENTS)) != ST_OK)
    return s;
  json_int_t successor = json_integer_value(json_object_get(c->body, "successor_id"));
  struct num id = num(c->id), to = num(successor);
  const char *params[] = {id.s, to.s};
  char verdict[16];
  s = db_value(c->db, verdict, sizeof verdict, SQL_SUCCESSOR, 2, params);
  if (s == ST_NOT_FOUND)
    return invalid(c, "/successor_id", "no such department");
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(verdict, "inside"))
    return invalid(c, "/successor_id", "is the department itself or one of its sub-units");
  if (!strcmp(verdict, "merged"))
    return fail(c, ST_CONFLICT, "the successor was itself merged into another department");
  if (!strcmp(verdict, "already"))
    return fail(c, ST_CONFLICT, "the department was merged already");
  if ((s = resource_load(c, &DEPARTMENTS, c->id)) != ST_OK)
    return s;
  json_t *before = c->result;
  c->result = NULL;
  PGresult *r = NULL;
  s = db_row(c->db, &r, SQL_MERGE, 2, params);
  if (s == ST_OK)
    s = resource_load(c, &DEPARTMENTS, c->id);
  if (s == ST_OK) {
    json_t *after = json_pack("{s:I, s:O, s:o*}", "merged_into_id", successor, "reason",
                              json_object_get(c->body, "reason"), "moved", json_loads(PQgetvalue(r, 0, 0), 0, NULL));
    json_t *was = json_pack("{s:O, s:O}", "name", json_object_get(before, "name"), "merged_into_id",
                            json_object_get(before, "merged_into_id"));
    s = audit_write(c, "merge", "department", c->id, was, after);
    json_decref(after);
    json_decref(was);
  } else {
    s = resource_db_failure(c, s);
  }
  PQclear(r);
  json_decref(before);
  return s;
}
