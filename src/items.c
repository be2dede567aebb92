/* 督察事项: one row of an inspection's form, one per task, made with the inspection. */
#include "resources.h"

static const char *const COMPLETIONS[] = {"not_assessed", "completed", "not_completed", NULL};

static const struct field PATCH[] = {
  {"completion", F_ENUM, 0, 0, 0, COMPLETIONS, 0},
  {"note", F_TEXT, FIELD_NULLABLE, 0, 2000, NULL, 0},
  {"material_department_ids", F_IDS, 0, 0, 50, NULL, 0},
  {0},
};

const struct qparam ITEM_FILTERS[] = {
  {"completion", Q_ENUMS, COMPLETIONS},
  {0},
};

#define JSON_OF_IT                                                                             \
  "json_build_object('id', it.id, 'inspection_id', it.inspection_id, 'seq', it.seq,"          \
  " 'task_id', it.task_id, 'task', json_build_object('id', t.id, 'content', t.content),"       \
  " 'completion', it.completion, 'note', it.note,"                                             \
  " 'material_department_ids', coalesce((SELECT json_agg(m.department_id ORDER BY m.position)" \
  "   FROM item_material_departments m WHERE m.item_id = it.id), '[]'),"                       \
  " 'material_departments', coalesce((SELECT json_agg(json_build_object('id', d.id, 'name', d.name)" \
  "   ORDER BY m.position) FROM item_material_departments m JOIN departments d ON d.id = m.department_id" \
  "   WHERE m.item_id = it.id), '[]'),"                                                        \
  " 'problem_count', (SELECT count(*) FROM problems p WHERE p.item_id = it.id),"              \
  " 'updated_at', it.updated_at)"
#define FROM_IT " FROM items it JOIN tasks t ON t.id = it.task_id"

static status before_change(struct call *c, int deleting) {
  (void)deleting;
  status s = inspection_editable(c,
                                 "SELECT i.status FROM items it JOIN inspections i ON i.id = it.inspection_id"
                                 " WHERE it.id = $1 FOR SHARE OF i", c->id);
  return s == ST_OK ? departments_exist(c, json_object_get(c->body, "material_department_ids"),
                                        "/material_department_ids")
                    : s;
}

const struct resource ITEMS = {
  .name = "item",
  .patch_fields = PATCH,
  .sql_get = "SELECT it.version, " JSON_OF_IT FROM_IT " WHERE it.id = $1"
             " AND ducha_in_scope((SELECT target_department_id FROM inspections WHERE id = it.inspection_id))",
  .sql_lock = "SELECT version FROM items WHERE id = $1 FOR UPDATE",
  /* Material departments are replaced as a list: delete the ones left out, upsert the rest. */
  .sql_update =
      "WITH j AS (SELECT $2::jsonb AS b),"
      " u AS (UPDATE items SET"
      "   completion = coalesce(b->>'completion', completion),"
      "   note = CASE WHEN b ? 'note' THEN b->>'note' ELSE note END,"
      "   updated_at = now(), version = version + 1 FROM j WHERE id = $1 RETURNING id),"
      " m AS (SELECT v::bigint AS department_id, ord::int AS position"
      "   FROM j, jsonb_array_elements_text(b->'material_department_ids') WITH ORDINALITY e(v, ord)),"
      " del AS (DELETE FROM item_material_departments x USING j WHERE x.item_id = $1"
      "   AND b ? 'material_department_ids' AND x.department_id NOT IN (SELECT department_id FROM m)),"
      " ups AS (INSERT INTO item_material_departments (item_id, department_id, position)"
      "   SELECT $1, department_id, position FROM m"
      "   ON CONFLICT (item_id, department_id) DO UPDATE SET position = EXCLUDED.position)"
      " SELECT count(*) FROM u",
  .list = {
    .sql_parent = "SELECT 1 FROM inspections WHERE id = $1 AND ducha_in_scope(target_department_id)",
    .sql_page = "SELECT it.seq, " JSON_OF_IT FROM_IT " WHERE it.inspection_id = $1"
                " AND ($2::text[] IS NULL OR it.completion = ANY ($2))"
                " AND ($3::int IS NULL OR it.seq > $3) ORDER BY it.seq LIMIT $4",
    .sql_count = "SELECT count(*) FROM items it WHERE it.inspection_id = $1"
                 " AND ($2::text[] IS NULL OR it.completion = ANY ($2))",
  },
  .before_change = before_change,
};
