/* 督办 recorded: what escalation_job writes (the levels themselves are derived, see
 * ducha_escalation in migrations/0013). */
#include "escalation.h"

#include <stdlib.h>

/* Turns recorded by one run at most: a first run over a large ledger records its backlog in
 * slices, the worker coming back a second later ({"more": true}). A run's transaction holds its
 * audit chain's head (audit_append) until it commits, and requests on that chain wait for it:
 * a slice takes some 50 ms, never near their statement timeout. */
#define BATCH "200"

/* A slice of the turns not yet recorded, each with its audit event ($1: the request id). No
 * order: the scan of the open rectifications past their deadline (a partial index) stops at the
 * slice's end instead of reading every one of them for every slice of a backlog. */
static const char *SQL_RECORD =
    "WITH fresh AS (INSERT INTO rectification_escalations (rectification_id, level)"
    "   SELECT r.id, l.level FROM rectification_rows r, unnest(CASE r.escalation WHEN 'red'"
    "     THEN '{yellow,red}'::text[] ELSE '{yellow}' END) l(level)"
    "   WHERE r.status IN ('pending', 'in_progress') AND r.deadline < ducha_today() AND NOT EXISTS"
    "     (SELECT 1 FROM rectification_escalations e WHERE e.rectification_id = r.id AND e.level = l.level)"
    "   LIMIT " BATCH " ON CONFLICT DO NOTHING RETURNING rectification_id, level),"
    " told AS (SELECT f.level, audit_append(NULL, CASE f.level WHEN 'yellow' THEN 'overdue' ELSE 'escalated' END,"
    "   'rectification', f.rectification_id, $1, NULL, NULL, jsonb_build_object('escalation', f.level,"
    "   'deadline', r.deadline, 'working_days_late', -r.working_days_left, 'urge_count', r.urge_count),"
    "   ducha_entity_scope('rectification', f.rectification_id))"
    "   FROM fresh f JOIN rectification_rows r ON r.id = f.rectification_id ORDER BY f.rectification_id, f.level DESC)"
    " SELECT count(*) FILTER (WHERE level = 'yellow'), count(*) FILTER (WHERE level = 'red') FROM told";
/* The records that no longer hold (a deadline extended, a submission, back from red), once the
 * backlog is recorded: a later turn then counts again. */
static const char *SQL_FORGET =
    "WITH gone AS (DELETE FROM rectification_escalations e USING rectification_rows r"
    "   WHERE r.id = e.rectification_id AND (r.status IN ('pending', 'in_progress') AND r.deadline < ducha_today()"
    "   AND (e.level = 'yellow' OR r.escalation = 'red')) IS NOT TRUE RETURNING 1)"
    " SELECT count(*) FROM gone";

status escalation_job(struct call *c, json_t **result) {
  const char *params[] = {c->request_id};
  PGresult *r;
  status s = db_row(c->db, &r, SQL_RECORD, 1, params);
  if (s != ST_OK)
    return s;
  json_int_t overdue = strtoll(PQgetvalue(r, 0, 0), NULL, 10), escalated = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  int more = overdue + escalated == strtoll(BATCH, NULL, 10);
  char cleared[24] = "0";
  if (!more && (s = db_value(c->db, cleared, sizeof cleared, SQL_FORGET, 0, NULL)) != ST_OK)
    return s;
  *result = json_pack("{s:I, s:I, s:I, s:b}", "overdue", overdue, "escalated", escalated, "cleared",
                      (json_int_t)strtoll(cleared, NULL, 10), "more", more);
  return ST_OK;
}
