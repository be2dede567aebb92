/* 整改进展: dated notes on a rectification with percent done; and the records its lifecycle
 * keeps — closures, deadlines, extension requests — read through it.
 *
 * Where its rules live: who may report and when, RECTIFICATION_WORK (resources.h, shared with
 * evidence.c) and the route's roles (routes.c); a lower percent needs a reason, before_create;
 * who reads the notes and records, RECTIFICATION_VISIBLE_SQL; the records themselves are written
 * by the lifecycle (rectification_actions.c) and by the trigger rectifications_history
 * (deadlines, migrations/0003). */
#include <string.h>

#include "audit.h"
#include "resources.h"

static const struct field CREATE[] = {
  {"note", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"percent", F_INT, FIELD_REQUIRED, 0, 100, NULL, 0},
  {"reason", F_TEXT, 0, 1, 2000, NULL, 0},
  {0},
};

#define EVIDENCE_BRIEF                                                                         \
  "coalesce((SELECT json_agg(json_build_object('id', e.id, 'filename', e.filename, 'content_type', e.content_type," \
  " 'size', e.size, 'sha256', encode(e.sha256, 'hex')) ORDER BY e.id) FROM evidence e WHERE e.progress_id = g.id), '[]')"
#define JSON_OF_G                                                                              \
  "json_build_object('id', g.id, 'rectification_id', g.rectification_id, 'note', g.note,"     \
  " 'percent', g.percent, 'reason', g.reason, 'author', " USER_REF("u") ","                    \
  " 'created_at', g.created_at, 'evidence', " EVIDENCE_BRIEF ")"
#define FROM_G " FROM progress_updates g LEFT JOIN users u ON u.id = g.author_id"

/* Who may report and when: RECTIFICATION_WORK (resources.h); a percent lower than the last
 * one needs a reason. */
static const char *SQL_CAN_REPORT = RECTIFICATION_WORK(
    "  WHEN $2::int < coalesce((SELECT g.percent FROM progress_updates g WHERE g.rectification_id = x.id"
    "    ORDER BY g.id DESC LIMIT 1), 0) AND $3::text IS NULL THEN 'lower'",
    " FOR NO KEY UPDATE OF x");

static status before_create(struct call *c) {
  struct num id = num(c->id), percent = num(json_integer_value(json_object_get(c->body, "percent")));
  const char *params[] = {id.s, percent.s, json_string_value(json_object_get(c->body, "reason"))};
  char verdict[40];
  status s = resource_value(c, "rectification", verdict, sizeof verdict, SQL_CAN_REPORT, 3, params);
  if (s != ST_OK)
    return s;
  if (!strcmp(verdict, "lower"))
    return invalid(c, "/reason", "is required when the percent is lower than the last report's");
  if (strcmp(verdict, "ok")) {
    c->allowed = json_array();
    return fail(c, ST_BAD_TRANSITION, "progress is reported on a pending or in-progress rectification of a"
                                      " submitted inspection (this one: %s)", verdict);
  }
  return ST_OK;
}

const struct resource PROGRESS = {
  .name = "progress",
  .collection = "/api/v1/progress",
  .create_fields = CREATE,
  .sql_get = "SELECT 1, " JSON_OF_G FROM_G " WHERE g.id = $1 AND " RECTIFICATION_VISIBLE("g.rectification_id"),
  .sql_insert = "INSERT INTO progress_updates (rectification_id, note, percent, reason, author_id)"
                " SELECT $1, b->>'note', (b->>'percent')::int, b->>'reason', $3::bigint"
                " FROM (SELECT $2::jsonb AS b) s RETURNING id",
  .list = {
    .sql_parent = RECTIFICATION_VISIBLE_SQL,
    .sql_page = "SELECT g.id, " JSON_OF_G FROM_G " WHERE g.rectification_id = $1"
                " AND ($2::bigint IS NULL OR g.id > $2) ORDER BY g.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM progress_updates g WHERE g.rectification_id = $1",
  },
  .before_create = before_create,
};

/* ---- what the lifecycle keeps ---------------------------------------------------------------- */

const struct resource CLOSURES = {
  .name = "closure",
  .list = {
    .sql_parent = RECTIFICATION_VISIBLE_SQL,
    .sql_page = "SELECT k.id, json_build_object('id', k.id, 'closed_by', " USER_REF("cu") ", 'closed_at', k.closed_at,"
                " 'opinion', k.opinion, 'on_time', k.on_time, 'evidence', k.evidence, 'revoked_at', k.revoked_at,"
                " 'revoked_by', " USER_REF("ru") ", 'revoke_reason', k.revoke_reason)"
                " FROM closures k LEFT JOIN users cu ON cu.id = k.closed_by LEFT JOIN users ru ON ru.id = k.revoked_by"
                " WHERE k.rectification_id = $1 AND ($2::bigint IS NULL OR k.id < $2) ORDER BY k.id DESC LIMIT $3",
    .sql_count = "SELECT count(*) FROM closures k WHERE k.rectification_id = $1",
  },
};

const struct resource DEADLINES = {
  .name = "deadline",
  .list = {
    .sql_parent = RECTIFICATION_VISIBLE_SQL,
    .sql_page = "SELECT h.id, json_build_object('id', h.id, 'deadline', h.deadline, 'kind', h.kind, 'reason', h.reason,"
                " 'set_by', " USER_REF("u") ", 'set_at', h.set_at)"
                " FROM rectification_deadlines h LEFT JOIN users u ON u.id = h.set_by"
                " WHERE h.rectification_id = $1 AND ($2::bigint IS NULL OR h.id > $2) ORDER BY h.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM rectification_deadlines h WHERE h.rectification_id = $1",
  },
};

const struct resource EXTENSION_REQUESTS = {
  .name = "extension request",
  .list = {
    .sql_parent = RECTIFICATION_VISIBLE_SQL,
    .sql_page = "SELECT x.id, json_build_object('id', x.id, 'deadline', x.deadline, 'reason', x.reason,"
                " 'status', x.status, 'requested_by', " USER_REF("q") ", 'requested_at', x.requested_at,"
                " 'decided_by', " USER_REF("d") ", 'decided_at', x.decided_at, 'decision_reason', x.decision_reason)"
                " FROM extension_requests x LEFT JOIN users q ON q.id = x.requested_by"
                " LEFT JOIN users d ON d.id = x.decided_by"
                " WHERE x.rectification_id = $1 AND ($2::bigint IS NULL OR x.id > $2) ORDER BY x.id LIMIT $3",
    .sql_count = "SELECT count(*) FROM extension_requests x WHERE x.rectification_id = $1",
  },
};
