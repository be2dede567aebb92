/* 整改措施: the numbered measures decided for a problem, each with a responsible unit and a
 * deadline, tracked to closure. */
#include "ordinal.h"
#include "resources.h"

#include <string.h>

static const struct field CREATE[] = {
  {"measure", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"responsible_department_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"deadline", F_DATE, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"measure", F_TEXT, 0, 1, 2000, NULL, 0},
  {"responsible_department_id", F_ID, 0, 0, 0, NULL, 0},
  {"deadline", F_DATE, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  {0},
};

static const struct ordinal_sql ORDINALS = {
  .lock = "SELECT 1 FROM problems WHERE id = $1 FOR UPDATE",
  .count = "SELECT count(*) FROM rectifications WHERE problem_id = $1",
  .position = "SELECT problem_id, ordinal FROM rectifications WHERE id = $1",
  .shift = "UPDATE rectifications SET ordinal = ordinal + $4::int, version = version + 1, updated_at = now()"
           " WHERE problem_id = $1 AND ordinal BETWEEN $2 AND $3 AND ($5::bigint IS NULL OR id <> $5)",
};

#define JSON_OF_R                                                                              \
  "json_build_object('id', r.id, 'problem_id', r.problem_id, 'item_id', p.item_id,"           \
  " 'inspection_id', it.inspection_id, 'ordinal', r.ordinal, 'measure', r.measure,"            \
  " 'responsible_department_id', r.responsible_department_id,"                                 \
  " 'responsible_department', json_build_object('id', d.id, 'name', d.name),"                  \
  " 'deadline', r.deadline, 'status', r.status, 'overdue', ducha_overdue(r.deadline, r.status)," \
  " 'created_at', r.created_at, 'updated_at', r.updated_at)"
/* A department user sees the rectifications assigned to its units and those of its own
 * inspections. */
#define VISIBLE_R                                                                              \
  "(ducha_in_scope(r.responsible_department_id)"                                               \
  " OR ducha_in_scope((SELECT target_department_id FROM inspections WHERE id = it.inspection_id)))"
#define FROM_R                                                                                 \
  " FROM rectifications r JOIN problems p ON p.id = r.problem_id JOIN items it ON it.id = p.item_id" \
  " JOIN departments d ON d.id = r.responsible_department_id"

/* A deadline is set for the future (or today), in the local zone of deadlines. */
static status deadline_ok(struct call *c) {
  json_t *deadline = json_object_get(c->body, "deadline");
  if (!json_is_string(deadline))
    return ST_OK;
  const char *params[] = {json_string_value(deadline)};
  PGresult *r;
  status s = db_row(c->db, &r, "SELECT $1::date < ducha_today(), ducha_today()::text", 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  char msg[96];
  int past = !strcmp(PQgetvalue(r, 0, 0), "t");
  snprintf(msg, sizeof msg, "must not be before today (%s in %s)", PQgetvalue(r, 0, 1), c->cfg->timezone);
  PQclear(r);
  return past ? invalid(c, "/deadline", msg) : ST_OK;
}

static status before_create(struct call *c) {
  status s = ordinal_for_create(c, &ORDINALS, c->id);
  if (s == ST_OK)
    s = inspection_editable(c,
                            "SELECT i.status FROM problems p JOIN items it ON it.id = p.item_id"
                            " JOIN inspections i ON i.id = it.inspection_id WHERE p.id = $1 FOR SHARE OF i",
                            c->id);
  return s == ST_OK ? deadline_ok(c) : s;
}

static status before_change(struct call *c, int deleting) {
  status s = inspection_editable(c,
                                 "SELECT i.status FROM rectifications r JOIN problems p ON p.id = r.problem_id"
                                 " JOIN items it ON it.id = p.item_id JOIN inspections i ON i.id = it.inspection_id"
                                 " WHERE r.id = $1 FOR SHARE OF i", c->id);
  if (s != ST_OK || deleting)
    return s;
  if ((s = deadline_ok(c)) != ST_OK)
    return s;
  return ordinal_for_patch(c, &ORDINALS);
}

const struct resource RECTIFICATIONS = {
  .name = "rectification",
  .collection = "/api/v1/rectifications",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT r.version, " JSON_OF_R FROM_R " WHERE r.id = $1 AND " VISIBLE_R,
  /* The problem first, as a create does: siblings are renumbered under its lock. */
  .sql_lock = "WITH parent AS (SELECT id FROM problems WHERE id = (SELECT problem_id FROM rectifications WHERE id = $1)"
              " FOR UPDATE) SELECT r.version FROM rectifications r, parent WHERE r.id = $1 FOR UPDATE OF r",
  .sql_insert = "INSERT INTO rectifications (problem_id, ordinal, measure, responsible_department_id, deadline,"
                "   created_by)"
                " SELECT $1::bigint, (b->>'ordinal')::int, b->>'measure',"
                "   (b->>'responsible_department_id')::bigint, (b->>'deadline')::date, $3::bigint"
                " FROM (SELECT $2::jsonb AS b) s RETURNING id",
  .sql_update = "UPDATE rectifications SET measure = coalesce(b->>'measure', measure),"
                " responsible_department_id = coalesce((b->>'responsible_department_id')::bigint, responsible_department_id),"
                " deadline = CASE WHEN b ? 'deadline' THEN (b->>'deadline')::date ELSE deadline END,"
                " ordinal = coalesce((b->>'ordinal')::int, ordinal), updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "WITH d AS (DELETE FROM rectifications WHERE id = $1 RETURNING problem_id, ordinal)"
                " UPDATE rectifications r SET ordinal = r.ordinal - 1, version = r.version + 1, updated_at = now()"
                " FROM d WHERE r.problem_id = d.problem_id AND r.ordinal > d.ordinal",
  .list = {
    .sql_parent = "SELECT 1 FROM problems p JOIN items it ON it.id = p.item_id"
                  " JOIN inspections i ON i.id = it.inspection_id WHERE p.id = $1 AND ducha_in_scope(i.target_department_id)",
    .sql_page = "SELECT r.ordinal, " JSON_OF_R FROM_R " WHERE r.problem_id = $1"
                " AND ($2::int IS NULL OR r.ordinal > $2) ORDER BY r.ordinal LIMIT $3",
    .sql_count = "SELECT count(*) FROM rectifications r WHERE r.problem_id = $1",
  },
  .before_create = before_create,
  .before_change = before_change,
};
