/* 督察批次: a round of inspections over one checklist version. */
#include "resources.h"

static const struct field CREATE[] = {
  {"name", F_LINE, FIELD_REQUIRED, 1, 100, NULL, 0},
  {"checklist_id", F_ID, 0, 0, 0, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"name", F_LINE, 0, 1, 100, NULL, 0},
  {0},
};

const struct qparam BATCH_FILTERS[] = {
  {"q", Q_TEXT, NULL},
  {0},
};

#define JSON_OF_B                                                                              \
  "json_build_object('id', b.id, 'name', b.name, 'checklist_id', b.checklist_id,"             \
  " 'checklist', json_build_object('id', c.id, 'name', c.title),"                              \
  " 'created_at', b.created_at, 'updated_at', b.updated_at)"
#define FROM_B " FROM batches b JOIN checklists c ON c.id = b.checklist_id"
#define FILTER_B " WHERE ($1::text IS NULL OR b.name ILIKE ducha_contains($1))"

const struct resource BATCHES = {
  .name = "batch",
  .collection = "/api/v1/batches",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT b.version, " JSON_OF_B FROM_B " WHERE b.id = $1",
  .sql_lock = "SELECT version FROM batches WHERE id = $1 FOR UPDATE",
  .sql_insert = "INSERT INTO batches (name, checklist_id, created_by)"
                " SELECT j->>'name', coalesce((j->>'checklist_id')::bigint,"
                "   (SELECT id FROM checklists WHERE code = 'default' ORDER BY version DESC LIMIT 1)), $2::bigint"
                " FROM (SELECT $1::jsonb AS j) s RETURNING id",
  .sql_update = "UPDATE batches SET name = coalesce(j->>'name', name), updated_at = now(),"
                " version = version + 1 FROM (SELECT $2::jsonb AS j) s WHERE id = $1",
  .sql_delete = "DELETE FROM batches WHERE id = $1",
  .list = {
    .sql_page = "SELECT b.id, " JSON_OF_B FROM_B FILTER_B
                " AND ($2::bigint IS NULL OR b.id < $2) ORDER BY b.id DESC LIMIT $3",
    .sql_count = "SELECT count(*) FROM batches b" FILTER_B,
  },
};
