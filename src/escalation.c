/* 督办 recorded: what escalation_job writes (the levels themselves are derived, see
 * ducha_escalation in migrations/0013). */
#include "escalation.h"

#include <stdlib.h>

/* Turns recorded by one run at most: a first run over a large ledger records its backlog in
 * slices, the worker coming back a second later ({"more": true}). A run's transaction holds its
 * audit chain's head (audit_append) until it commits, and requests on that chain wait for it:
 * a slice takes some 50 ms, never near their statement timeout. */
#define BATCH "200"

/* One statement: the open rectifications past their deadline with their level now; the records
 * that no longer hold go, the new ones come with their audit events ($1: the request id). */
static const char *SQL_RECORD =
    "WITH now_late AS (SELECT r.id, r.escalation, r.deadline, -r.working_days_left AS late, r.urge_count"
    "   FROM rectification_rows r WHERE r.status IN ('pending', 'in_progress') AND r.deadline < ducha_today()),"
    " gone AS (DELETE FROM rectification_escalations e WHERE NOT EXISTS (SELECT 1 FROM now_late n"
    "   WHERE n.id = e.rectification_id AND (e.level = 'yellow' OR n.escalation = 'red')) RETURNING 1),"
    " fresh AS (INSERT INTO rectification_escalations (rectification_id, level)"
    "   SELECT n.id, l.level FROM now_late n, unnest(CASE n.escalation WHEN 'red' THEN '{yellow,red}'::text[]"
    "   ELSE '{yellow}' END) l(level) WHERE NOT EXISTS (SELECT 1 FROM rectification_escalations e"
    "   WHERE e.rectification_id = n.id AND e.level = l.level) ORDER BY n.id, l.level DESC LIMIT " BATCH
    "   ON CONFLICT DO NOTHING RETURNING rectification_id, level),"
    " told AS (SELECT f.level, audit_append(NULL, CASE f.level WHEN 'yellow' THEN 'overdue' ELSE 'escalated' END,"
    "   'rectification', f.rectification_id, $1, NULL, NULL, jsonb_build_object('escalation', f.level,"
    "   'deadline', n.deadline, 'working_days_late', n.late, 'urge_count', n.urge_count),"
    "   ducha_entity_scope('rectification', f.rectification_id))"
    "   FROM fresh f JOIN now_late n ON n.id = f.rectification_id ORDER BY f.rectification_id, f.level DESC)"
    " SELECT (SELECT count(*) FROM told WHERE level = 'yellow'), (SELECT count(*) FROM told WHERE level = 'red'),"
    "   (SELECT count(*) FROM gone)";

status escalation_job(struct call *c, json_t **result) {
  const char *params[] = {c->request_id};
  PGresult *r;
  status s = db_row(c->db, &r, SQL_RECORD, 1, params);
  if (s != ST_OK)
    return s;
  json_int_t overdue = strtoll(PQgetvalue(r, 0, 0), NULL, 10), escalated = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  *result = json_pack("{s:I, s:I, s:I, s:b}", "overdue", overdue, "escalated", escalated, "cleared",
                      (json_int_t)strtoll(PQgetvalue(r, 0, 2), NULL, 10), "more",
                      overdue + escalated == strtoll(BATCH, NULL, 10));
  PQclear(r);
  return ST_OK;
}
