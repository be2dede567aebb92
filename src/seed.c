/* The seed: the 22 departments and the default checklist (version 1, 38 tasks) from the form. */
#include <stdio.h>
#include <string.h>

#include "migrate.h"
#include "resources.h"

static const char *SQL_DEPARTMENT =
    "INSERT INTO departments (name, kind) VALUES ($1, $2)"
    " ON CONFLICT ((coalesce(parent_id, 0)), name) DO NOTHING";
static const char *SQL_DEPARTMENT_ID =
    "SELECT id FROM departments WHERE parent_id IS NULL AND name = $1";
static const char *SQL_HAS_DEFAULT = "SELECT 1 FROM checklists WHERE code = 'default'";

static int step(status s, const char *what) {
  if (s != ST_OK)
    fprintf(stderr, "ducha: seed: %s failed\n", what);
  return s == ST_OK ? 0 : -1;
}

/* {code, title, tasks: [{content, material_department_ids, source_truncated}]} from the form. */
static json_t *default_checklist(db_conn *db, const json_t *form) {
  json_t *tasks = json_array();
  size_t i, j;
  json_t *task, *name;
  json_array_foreach(json_object_get(form, "tasks"), i, task) {
    json_t *ids = json_array();
    json_array_foreach(json_object_get(task, "material_departments"), j, name) {
      const char *params[] = {json_string_value(name)};
      PGresult *r;
      if (db_row(db, &r, SQL_DEPARTMENT_ID, 1, params) != ST_OK) {
        fprintf(stderr, "ducha: seed: task %zu names an unknown department\n", i + 1);
        json_decref(ids);
        json_decref(tasks);
        return NULL;
      }
      json_array_append_new(ids, json_integer(strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
      PQclear(r);
    }
    json_array_append_new(tasks, json_pack("{s:O, s:o, s:b}", "content", json_object_get(task, "content"),
                                           "material_department_ids", ids, "source_truncated",
                                           json_is_true(json_object_get(task, "source_truncated"))));
  }
  return json_pack("{s:s, s:O, s:o}", "code", "default", "title",
                   json_object_get(json_object_get(form, "form"), "title"), "tasks", tasks);
}

int seed_run(db_conn *db, const char *path) {
  json_error_t err;
  json_t *form = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  size_t i;
  json_t *dept;
  PGresult *r;
  int rc = -1;
  if (!form) {
    fprintf(stderr, "ducha: seed: cannot read %s: %s\n", path, err.text);
    return -1;
  }
  if (step(db_begin(db), "begin") ||
      step(db_exec(db, NULL, "SELECT pg_advisory_xact_lock(hashtext('ducha seed'))", 0, NULL), "lock"))
    goto out;
  json_array_foreach(json_object_get(form, "departments"), i, dept) {
    const char *params[] = {json_string_value(json_object_get(dept, "name")),
                            json_string_value(json_object_get(dept, "kind"))};
    if (step(db_exec(db, NULL, SQL_DEPARTMENT, 2, params), "departments"))
      goto out;
  }
  status s = db_exec(db, &r, SQL_HAS_DEFAULT, 0, NULL);
  if (step(s, "checklist lookup"))
    goto out;
  int have = PQntuples(r) > 0;
  PQclear(r);
  if (!have) {
    json_t *checklist = default_checklist(db, form);
    int64_t id;
    s = checklist ? checklist_insert(db, checklist, &id) : ST_INVALID;
    json_decref(checklist);
    if (step(s, "default checklist"))
      goto out;
  }
  if (step(db_commit(db), "commit"))
    goto out;
  printf("seeded %zu departments and the default checklist (%zu tasks)%s\n",
         json_array_size(json_object_get(form, "departments")), json_array_size(json_object_get(form, "tasks")),
         have ? "; they were there already" : "");
  rc = 0;
out:
  if (rc)
    db_rollback(db);
  json_decref(form);
  return rc;
}
