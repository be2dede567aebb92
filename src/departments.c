/* 部门 / 单位: organisations, in a tree through parent_id. */
#include "resources.h"

#include <stdio.h>

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
  " 'created_at', d.created_at, 'updated_at', d.updated_at)"
#define FROM_D " FROM departments d LEFT JOIN departments p ON p.id = d.parent_id"
#define FILTER_D                                                                               \
  " WHERE ($1::bigint IS NULL OR d.parent_id = $1) AND ($2::text[] IS NULL OR d.kind = ANY ($2))" \
  "   AND ($3::text IS NULL OR d.name ILIKE ducha_contains($3))"

const struct resource DEPARTMENTS = {
  .name = "department",
  .collection = "/api/v1/departments",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT d.version, " JSON_OF_D FROM_D " WHERE d.id = $1",
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
