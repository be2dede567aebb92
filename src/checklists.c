/* 督察清单: versioned catalogues of work tasks. A version that an inspection or batch uses is
 * immutable; changes come as a new version. */
#include "audit.h"
#include "resources.h"

#include <string.h>

static const struct field CREATE[] = {
  {"code", F_CODE, 0, 1, 50, NULL, 0},
  {"title", F_LINE, FIELD_REQUIRED, 1, 200, NULL, 0},
  {0},
};
static const struct field TASK[] = {
  {"content", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"material_department_ids", F_IDS, 0, 0, 50, NULL, 0},
  {"carries_over_seq", F_INT, FIELD_NULLABLE, 1, 200, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"title", F_LINE, 0, 1, 200, NULL, 0},
  {0},
};

const struct qparam CHECKLIST_FILTERS[] = {
  {"code", Q_CODE, NULL},
  {0},
};

#define IN_USE_C                                                                               \
  "(EXISTS (SELECT 1 FROM inspections i WHERE i.checklist_id = c.id)"                         \
  " OR EXISTS (SELECT 1 FROM batches b WHERE b.checklist_id = c.id))"
#define JSON_OF_C                                                                              \
  "json_build_object('id', c.id, 'code', c.code, 'version', c.version, 'title', c.title,"     \
  " 'task_count', (SELECT count(*) FROM tasks t WHERE t.checklist_id = c.id),"                 \
  " 'in_use', " IN_USE_C ", 'created_at', c.created_at)"
#define FILTER_C " WHERE ($1::text IS NULL OR c.code = $1)"

static status unused(struct call *c, int deleting) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char used[8];
  status s = db_value(c->db, used, sizeof used, "SELECT " IN_USE_C " FROM checklists c WHERE c.id = $1", 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(used, "t"))
    return fail(c, ST_CONFLICT, "this checklist version is in use and cannot be %s; create a new version",
                deleting ? "deleted" : "changed");
  return ST_OK;
}

const struct resource CHECKLISTS = {
  .name = "checklist",
  .collection = "/api/v1/checklists",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT c.row_version, " JSON_OF_C " FROM checklists c WHERE c.id = $1",
  .sql_lock = "SELECT row_version FROM checklists WHERE id = $1 FOR UPDATE",
  .sql_update = "UPDATE checklists SET title = coalesce(b->>'title', title), updated_at = now(),"
                " row_version = row_version + 1 FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "DELETE FROM checklists WHERE id = $1",
  .list = {
    .sql_page = "SELECT c.id, " JSON_OF_C " FROM checklists c" FILTER_C
                " AND ($2::bigint IS NULL OR c.id > $2) ORDER BY c.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM checklists c" FILTER_C,
  },
  .before_change = unused,
};

#define JSON_OF_T                                                                              \
  "json_build_object('id', t.id, 'checklist_id', t.checklist_id, 'seq', t.seq, 'content', t.content," \
  " 'source_truncated', t.source_truncated, 'carries_over_seq', t.carries_over_seq,"           \
  " 'material_department_ids', coalesce((SELECT json_agg(m.department_id ORDER BY m.position)" \
  "   FROM task_material_departments m WHERE m.task_id = t.id), '[]'),"                        \
  " 'material_departments', coalesce((SELECT json_agg(json_build_object('id', d.id, 'name', d.name)" \
  "   ORDER BY m.position) FROM task_material_departments m JOIN departments d ON d.id = m.department_id" \
  "   WHERE m.task_id = t.id), '[]'))"

/* Tasks are read through their checklist only. */
const struct resource TASKS = {
  .name = "task",
  .list = {
    .sql_parent = "SELECT 1 FROM checklists WHERE id = $1",
    .sql_page = "SELECT t.seq, " JSON_OF_T " FROM tasks t WHERE t.checklist_id = $1"
                " AND ($2::int IS NULL OR t.seq > $2) ORDER BY t.seq LIMIT $3",
    .sql_count = "SELECT count(*) FROM tasks t WHERE t.checklist_id = $1",
  },
};

static const char *SQL_INSERT_CHECKLIST =
    "WITH lock AS (SELECT pg_advisory_xact_lock(hashtext('checklist:' || $1)))"
    " INSERT INTO checklists (code, version, title)"
    " SELECT $1, coalesce((SELECT max(version) FROM checklists WHERE code = $1), 0) + 1, $2 FROM lock"
    " RETURNING id";
/* Each task continues the task whose seq is its carries_over_seq (absent: its own seq; null: none)
 * in the latest earlier version that has that seq, and so belongs to that task's lineage
 * (carry-over, migrations/0015); a seq no earlier version has continues none. */
#define CONTINUED(seq)                                                                         \
  "(SELECT pt.seq, pt.lineage_id FROM checklists c JOIN checklists p ON p.code = c.code AND p.version < c.version" \
  " JOIN tasks pt ON pt.checklist_id = p.id AND pt.seq = " seq " WHERE c.id = $1 ORDER BY p.version DESC LIMIT 1)"
static const char *SQL_INSERT_TASKS =
    "INSERT INTO tasks (checklist_id, seq, content, source_truncated, carries_over_seq, lineage_id)"
    " SELECT $1, t.ord, t.v->>'content', coalesce((t.v->>'source_truncated')::boolean, false), pt.seq, pt.lineage_id"
    " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY t(v, ord)"
    " LEFT JOIN LATERAL " CONTINUED("CASE WHEN t.v ? 'carries_over_seq' THEN (t.v->>'carries_over_seq')::int ELSE t.ord END")
    " pt ON true";
/* The tasks that name a seq no earlier version has: their index and that seq, and whether there is
 * an earlier version at all. */
static const char *SQL_UNCONTINUED =
    "SELECT t.ord - 1, t.v->>'carries_over_seq', EXISTS (SELECT FROM checklists c JOIN checklists p"
    "   ON p.code = c.code AND p.version < c.version WHERE c.id = $1)"
    " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY t(v, ord)"
    " JOIN tasks k ON k.checklist_id = $1 AND k.seq = t.ord"
    " WHERE jsonb_typeof(t.v->'carries_over_seq') = 'number' AND k.carries_over_seq IS NULL ORDER BY t.ord";
static const char *SQL_INSERT_MATERIALS =
    "INSERT INTO task_material_departments (task_id, department_id, position)"
    " SELECT k.id, m.v::bigint, m.ord"
    " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY t(v, ord)"
    " JOIN tasks k ON k.checklist_id = $1 AND k.seq = t.ord,"
    " jsonb_array_elements_text(coalesce(t.v->'material_department_ids', '[]')) WITH ORDINALITY m(v, ord)";

status checklist_insert(db_conn *db, const json_t *checklist, int64_t *id) {
  const char *code = json_string_value(json_object_get(checklist, "code"));
  const char *title = json_string_value(json_object_get(checklist, "title"));
  char *tasks = json_dumps(json_object_get(checklist, "tasks"), JSON_COMPACT);
  const char *p1[] = {code ? code : "default", title};
  PGresult *r;
  status s = db_row(db, &r, SQL_INSERT_CHECKLIST, 2, p1);
  if (s == ST_OK) {
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    struct num cid = num(*id);
    const char *p2[] = {cid.s, tasks};
    s = db_exec(db, NULL, SQL_INSERT_TASKS, 2, p2);
    if (s == ST_OK)
      s = db_exec(db, NULL, SQL_INSERT_MATERIALS, 2, p2);
  }
  free(tasks);
  return s;
}

/* A task's carries_over_seq must name a task of an earlier version (known once the new version is
 * numbered, under its lock); else the request fails and its transaction is rolled back. */
static status continued(struct call *c, int64_t id) {
  struct num cid = num(id);
  char *tasks = json_dumps(json_object_get(c->body, "tasks"), JSON_COMPACT);
  const char *params[] = {cid.s, tasks};
  PGresult *r;
  status s = db_exec(c->db, &r, SQL_UNCONTINUED, 2, params);
  free(tasks);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int n = PQntuples(r);
  for (int i = 0; i < n; i++) {
    char ptr[64], msg[96];
    snprintf(ptr, sizeof ptr, "/tasks/%s/carries_over_seq", PQgetvalue(r, i, 0));
    if (strcmp(PQgetvalue(r, i, 2), "t"))
      snprintf(msg, sizeof msg, "this is the first version of the checklist: there is no task to continue");
    else
      snprintf(msg, sizeof msg, "no earlier version of this checklist has a task %s", PQgetvalue(r, i, 1));
    errors_add(c->errors, ptr, msg);
  }
  PQclear(r);
  return n ? fail(c, ST_INVALID, "the checklist has invalid fields; see errors") : ST_OK;
}

status checklist_create(struct call *c) {
  json_t *tasks = json_object_get(c->body, "tasks");
  size_t i;
  json_t *task;
  /* The fields besides "tasks", then "tasks": an array of task objects. */
  json_t *copy = json_deep_copy(c->body);
  json_object_del(copy, "tasks");
  validate_body(copy, CREATE, 1, c->errors);
  json_decref(copy);
  if (!json_is_array(tasks) || json_array_size(tasks) < 1 || json_array_size(tasks) > 200)
    invalid(c, "/tasks", "must be an array of 1 to 200 tasks");
  else
    json_array_foreach(tasks, i, task) {
      char ptr[32];
      snprintf(ptr, sizeof ptr, "/tasks/%zu", i);
      if (!json_is_object(task))
        invalid(c, ptr, "must be an object");
      else
        validate_body_at(task, TASK, 1, ptr, c->errors);
    }
  if (!json_array_size(c->errors))
    json_array_foreach(tasks, i, task) {
      char ptr[64];
      snprintf(ptr, sizeof ptr, "/tasks/%zu/material_department_ids", i);
      status s = departments_exist(c, json_object_get(task, "material_department_ids"), ptr);
      if (s != ST_OK && s != ST_INVALID)
        return s;
    }
  if (json_array_size(c->errors))
    return fail(c, ST_INVALID, "the checklist has invalid fields; see errors");
  int64_t id;
  status s = checklist_insert(c->db, c->body, &id);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if ((s = continued(c, id)) != ST_OK)
    return s;
  snprintf(c->location, sizeof c->location, "/api/v1/checklists/%lld", (long long)id);
  if ((s = resource_load(c, &CHECKLISTS, id)) != ST_OK)
    return s;
  json_t *after = json_deep_copy(c->body);
  json_object_set(after, "version", json_object_get(c->result, "version"));
  s = audit_write(c, "create", "checklist", id, NULL, after);
  json_decref(after);
  return s;
}
