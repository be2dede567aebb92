/* 留痕, read back: GET /audit-events (who sees which events) and GET /audit-events/verify (the
 * hash chains, then the signed checkpoints: checkpoint.c). Writing them is audit.c's. */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "checkpoint.h"
#include "resource.h"

const struct qparam AUDIT_FILTERS[] = {
  {"entity_type", Q_TEXT, NULL},
  {"entity_id", Q_ID, NULL},
  {"actor_id", Q_ID, NULL},
  {"action", Q_TEXT, NULL},
  {"from", Q_TIME, NULL},
  {"to", Q_TIME, NULL},
  {0},
};

#define JSON_OF_E                                                                              \
  "json_build_object('id', e.id, 'occurred_at', e.occurred_at, 'actor_id', e.actor_id,"       \
  " 'actor_name', e.actor_name, 'action', e.action, 'entity_type', e.entity_type,"             \
  " 'entity_id', e.entity_id, 'request_id', e.request_id, 'client_address', e.client_address," \
  " 'before', e.before, 'after', e.after)"
/* A department user sees the events on records in its scope now (a record moved to another
 * unit takes its history with it). Events on users, their sessions and tokens (logins, with
 * the addresses they came from) are for administrators only ($7). */
#define FILTER_E                                                                               \
  " WHERE (ducha_scope() IS NULL OR ducha_entity_scope(e.entity_type, e.entity_id) && ducha_scope())" \
  "   AND ($7::boolean OR e.entity_type NOT IN ('user', 'session', 'token'))"                   \
  "   AND ($1::text IS NULL OR e.entity_type = $1) AND ($2::bigint IS NULL OR e.entity_id = $2)" \
  "   AND ($3::bigint IS NULL OR e.actor_id = $3) AND ($4::text IS NULL OR e.action = $4)"      \
  "   AND ($5::timestamptz IS NULL OR e.occurred_at >= $5) AND ($6::timestamptz IS NULL OR e.occurred_at < $6)"

static const char *SQL_AUDIT_PAGE = "SELECT e.id, " JSON_OF_E " FROM audit_events e" FILTER_E
                                    " AND ($8::bigint IS NULL OR e.id < $8) ORDER BY e.id DESC LIMIT $9";
static const char *SQL_AUDIT_COUNT = "SELECT count(*) FROM audit_events e" FILTER_E;

status audit_list(struct call *c) {
  const char *params[QUERY_MAX + 4];
  int n = 0;
  for (; AUDIT_FILTERS[n].name; n++)
    params[n] = c->query.values[n];
  params[n++] = c->who.role_bit == ROLE_ADMIN ? "true" : "false";
  return resource_page(c, SQL_AUDIT_PAGE, SQL_AUDIT_COUNT, NULL, params, n, 0);
}

const struct qparam AUDIT_VERIFY_PARAMS[] = {
  {"from", Q_TIME, NULL},
  {"to", Q_TIME, NULL},
  {0},
};

#define VERIFY_MAX 50000

static const char *SQL_COUNT_RANGE =
    "SELECT count(*) FROM audit_events WHERE occurred_at >= $1 AND occurred_at < $2";
static const char *SQL_VERIFY =
    "SELECT coalesce(json_agg(json_build_object('event_id', v.event_id, 'chain', v.chain,"
    " 'chain_seq', v.chain_seq, 'problem', v.problem)), '[]') FROM audit_verify($1, $2) v";

status audit_verify(struct call *c) {
  const char *from = c->query.values[0], *to = c->query.values[1];
  if (!from)
    invalid(c, "/query/from", "is required");
  if (!to)
    invalid(c, "/query/to", "is required");
  if (!from || !to)
    return fail(c, ST_BAD_QUERY, "give the range to verify as from and to");
  const char *params[] = {from, to};
  char count[24];
  status s = resource_report(c);
  if (s != ST_OK)
    return s;
  if ((s = db_value(c->db, count, sizeof count, SQL_COUNT_RANGE, 2, params)) != ST_OK)
    return resource_db_failure(c, s);
  if (strtol(count, NULL, 10) > VERIFY_MAX) {
    char msg[120];
    snprintf(msg, sizeof msg, "the range holds %s events; verify at most %d at a time", count, VERIFY_MAX);
    invalid(c, "/query/from", msg);
    return fail(c, ST_BAD_QUERY, "%s", msg);
  }
  PGresult *r;
  if ((s = db_row(c->db, &r, SQL_VERIFY, 2, params)) != ST_OK)
    return resource_db_failure(c, s);
  json_t *problems = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  if (!problems)
    return fail(c, ST_INTERNAL, "could not read the verification");
  json_int_t events = strtoll(count, NULL, 10);
  c->result = json_pack("{s:s, s:s, s:I}", "from", from, "to", to, "events_checked", events);
  /* The chains alone do not stop the database's owner: the signed checkpoints do. */
  s = checkpoint_verify(c, from, to, events, problems, c->result);
  json_object_set_new(c->result, "ok", json_boolean(json_array_size(problems) == 0));
  json_object_set_new(c->result, "problems", problems);
  return s;
}
