/* 存在问题: the numbered problems found on an item; deleted with its measures, only while nothing
 * was done on them (rectifications_untouched). */
#include "ordinal.h"
#include "resources.h"

static const struct field CREATE[] = {
  {"description", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  PUBLIC_FIELDS,
  {0},
};
static const struct field PATCH[] = {
  {"description", F_TEXT, 0, 1, 2000, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  PUBLIC_FIELDS,
  {0},
};

static const struct ordinal_sql ORDINALS = {
  .lock = "SELECT 1 FROM items WHERE id = $1 FOR UPDATE",
  .count = "SELECT count(*) FROM problems WHERE item_id = $1",
  .position = "SELECT item_id, ordinal FROM problems WHERE id = $1",
  .shift = "UPDATE problems SET ordinal = ordinal + $4::int, version = version + 1, updated_at = now()"
           " WHERE item_id = $1 AND ordinal BETWEEN $2 AND $3 AND ($5::bigint IS NULL OR id <> $5)",
};

#define JSON_OF_P                                                                              \
  "json_build_object('id', p.id, 'item_id', p.item_id, 'inspection_id', it.inspection_id,"    \
  " 'ordinal', p.ordinal, 'description', p.description, 'public', p.public, 'public_text', p.public_text," \
  " 'rectification_count', (SELECT count(*) FROM rectifications r WHERE r.problem_id = p.id)," \
  " 'created_at', p.created_at, 'updated_at', p.updated_at)"
#define FROM_P " FROM problems p JOIN items it ON it.id = p.item_id"

static status before_create(struct call *c) {
  status s = ordinal_for_create(c, &ORDINALS, c->id);
  return s == ST_OK ? inspection_editable(c,
                                          "SELECT i.status FROM items it JOIN inspections i ON i.id = it.inspection_id"
                                          " WHERE it.id = $1 FOR SHARE OF i", c->id)
                    : s;
}

/* What the public view shows of it (公示) stays editable once the findings are final. */
static status before_change(struct call *c, int deleting) {
  if (!deleting && public_fields_only(c->body))
    return ST_OK;
  status s = inspection_editable(c,
                                 "SELECT i.status FROM problems p JOIN items it ON it.id = p.item_id"
                                 " JOIN inspections i ON i.id = it.inspection_id WHERE p.id = $1 FOR SHARE OF i",
                                 c->id);
  if (s != ST_OK)
    return s;
  return deleting ? rectifications_untouched(c, 1, c->id) : ordinal_for_patch(c, &ORDINALS);
}

const struct resource PROBLEMS = {
  .name = "problem",
  .collection = "/api/v1/problems",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT p.version, " JSON_OF_P FROM_P " WHERE p.id = $1"
             " AND ducha_in_scope((SELECT target_department_id FROM inspections WHERE id = it.inspection_id))",
  /* The item first, as a create does: siblings are renumbered under its lock. */
  .sql_lock = "WITH parent AS (SELECT id FROM items WHERE id = (SELECT item_id FROM problems WHERE id = $1) FOR UPDATE)"
              " SELECT p.version FROM problems p, parent WHERE p.id = $1 FOR UPDATE OF p",
  .sql_insert = "INSERT INTO problems (item_id, ordinal, description, public, public_text, created_by)"
                " SELECT $1::bigint, (b->>'ordinal')::int, b->>'description', " PUBLIC_INSERT ", $3::bigint"
                " FROM (SELECT $2::jsonb AS b) s RETURNING id",
  .sql_update = "UPDATE problems SET description = coalesce(b->>'description', description),"
                " ordinal = coalesce((b->>'ordinal')::int, ordinal), " PUBLIC_UPDATE ","
                " updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "WITH d AS (DELETE FROM problems WHERE id = $1 RETURNING item_id, ordinal)"
                " UPDATE problems p SET ordinal = p.ordinal - 1, version = p.version + 1, updated_at = now()"
                " FROM d WHERE p.item_id = d.item_id AND p.ordinal > d.ordinal",
  .list = {
    .sql_parent = "SELECT 1 FROM items it JOIN inspections i ON i.id = it.inspection_id"
                  " WHERE it.id = $1 AND ducha_in_scope(i.target_department_id)",
    .sql_page = "SELECT p.ordinal, " JSON_OF_P FROM_P " WHERE p.item_id = $1"
                " AND ($2::int IS NULL OR p.ordinal > $2) ORDER BY p.ordinal LIMIT $3",
    .sql_count = "SELECT count(*) FROM problems p WHERE p.item_id = $1",
  },
  .before_create = before_create,
  .before_change = before_change,
};
