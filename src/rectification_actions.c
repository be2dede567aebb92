/* The rectification lifecycle: pending -> in_progress -> submitted -> closed (销号), with
 * reject, extensions, reassignment (转办), urging (督办) and revocation. Each action locks the
 * row, checks that the caller may take it now, applies it and records it, in one transaction.
 *
 * Where its rules live:
 *   - which roles may call an action at all: its route (routes.c, ACTION);
 *   - which actions the caller may take on this row now (status, the responsible unit, four
 *     eyes: the submitter does not close or reject, a pending extension request):
 *     ducha_rectification_actions() in migrations/0009 — the same list the API returns as
 *     allowed_transitions, so what is offered and what is allowed cannot drift apart;
 *   - that a department acts only for the units assigned the row: SQL_STATE (may_act,
 *     RECTIFICATION_ASSIGNED in resources.h); that the findings must be final: act() below;
 *   - what each action needs and changes: its fields and its function below (evidence before a
 *     submission: submit; the closure record and an inspection that closes itself: close_;
 *     a revocation reopens it: revoke; the new deadline must be later: rectification_deadline_check);
 *   - what a change leaves behind without being asked: triggers — the deadline and unit history
 *     (rectifications_history, migrations/0003; an extension names itself through the settings
 *     ducha.deadline_kind and ducha.deadline_reason, set in extend), who may read the row
 *     (rectification_readers, migrations/0008), the form's ETag (migrations/0010; of the later
 *     inspections that carry it over, 0015);
 *   - the audit event: act() below, one per action. */
#include <string.h>

#include "audit.h"
#include "resources.h"

static const struct field NOTE[] = {
  {"note", F_TEXT, 0, 1, 2000, NULL, 0},
  {0},
};
static const struct field OPINION[] = {
  {"opinion", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {0},
};
static const struct field REASON[] = {
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {0},
};
static const struct field REQUEST[] = {
  {"deadline", F_DATE, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {0},
};
static const struct field EXTEND[] = {
  {"deadline", F_DATE, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"reason", F_TEXT, 0, 1, 2000, NULL, 0},
  {0},
};
static const struct field REASSIGN[] = {
  {"responsible_department_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {0},
};

/* The row as the action found it. */
struct rect {
  char status[16];
  json_t *actions;     /* what the caller may do now (owned by the call, as its allowed_transitions) */
  char submitted_by[24];
  char deadline[16];
  int64_t inspection_id;
};

#define PARAM(name) json_string_value(json_object_get(c->body, name))

static status exec(struct call *c, const char *sql, int n, const char *const *params) {
  status s = db_exec(c->db, NULL, sql, n, params);
  return s == ST_OK ? ST_OK : resource_db_failure(c, s);
}

/* ---- the actions --------------------------------------------------------------------------- */

static status start(struct call *c, struct rect *r) {
  (void)r;
  struct num id = num(c->id);
  const char *params[] = {id.s};
  return exec(c, "UPDATE rectifications SET status = 'in_progress', updated_at = now(), version = version + 1"
                 " WHERE id = $1", 1, params);
}

static const char *SQL_HAS_EVIDENCE = "SELECT EXISTS (SELECT 1 FROM evidence WHERE rectification_id = $1)";

static status submit(struct call *c, struct rect *r) {
  (void)r;
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *params[] = {id.s, user.s};
  char has[8];
  status s = db_value(c->db, has, sizeof has, SQL_HAS_EVIDENCE, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (strcmp(has, "t")) {
    errors_add(c->errors, "/evidence", "add at least one piece of evidence (佐证材料) first");
    return fail(c, ST_CONFLICT, "a rectification is submitted with its evidence");
  }
  return exec(c, "UPDATE rectifications SET status = 'submitted', submitted_by = $2, submitted_at = now(),"
                 " updated_at = now(), version = version + 1 WHERE id = $1", 2, params);
}

/* The submission was on time when it came on or before the deadline, in local dates. */
static const char *SQL_CLOSE =
    "WITH r AS (UPDATE rectifications SET status = 'closed', closed_by = $2, closed_at = now(), close_opinion = $3,"
    "   closed_on_time = deadline IS NULL"
    "     OR (submitted_at AT TIME ZONE current_setting('ducha.timezone'))::date <= deadline,"
    "   updated_at = now(), version = version + 1 WHERE id = $1 RETURNING id, closed_on_time)"
    " INSERT INTO closures (rectification_id, closed_by, opinion, on_time, evidence)"
    " SELECT r.id, $2, $3, r.closed_on_time, coalesce((SELECT json_agg(json_build_object('id', e.id,"
    "   'sha256', encode(e.sha256, 'hex'), 'filename', e.filename) ORDER BY e.id)"
    "   FROM evidence e WHERE e.rectification_id = r.id), '[]') FROM r";

/* An inspection whose findings are all put right closes itself. */
static const char *SQL_CLOSE_INSPECTION =
    "UPDATE inspections i SET status = 'closed', closed_at = now(), updated_at = now(), version = version + 1"
    " WHERE i.id = $1 AND i.status = 'submitted' AND NOT EXISTS (SELECT 1 FROM rectification_rows r"
    "   WHERE r.inspection_id = i.id AND r.status <> 'closed')"
    " RETURNING id";

static status inspection_moved(struct call *c, struct rect *r, const char *sql, const char *action,
                               const char *from, const char *to) {
  struct num insp = num(r->inspection_id);
  const char *params[] = {insp.s};
  PGresult *res;
  status s = db_exec(c->db, &res, sql, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int moved = PQntuples(res) > 0;
  PQclear(res);
  if (!moved)
    return ST_OK;
  json_t *before = json_pack("{s:s}", "status", from), *after = json_pack("{s:s, s:I}", "status", to,
                                                                         "rectification_id", (json_int_t)c->id);
  s = audit_write(c, action, "inspection", r->inspection_id, before, after);
  json_decref(before);
  json_decref(after);
  return s;
}

static status close_(struct call *c, struct rect *r) {
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *params[] = {id.s, user.s, PARAM("opinion")};
  status s = exec(c, SQL_CLOSE, 3, params);
  return s == ST_OK ? inspection_moved(c, r, SQL_CLOSE_INSPECTION, "close", "submitted", "closed") : s;
}

static status reject(struct call *c, struct rect *r) {
  (void)r;
  struct num id = num(c->id);
  const char *params[] = {id.s};
  return exec(c, "UPDATE rectifications SET status = 'in_progress', updated_at = now(), version = version + 1"
                 " WHERE id = $1", 1, params);
}

static status request_extension(struct call *c, struct rect *r) {
  status s = rectification_deadline_check(c, r->deadline[0] ? r->deadline : NULL);
  if (s != ST_OK)
    return s;
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *params[] = {id.s, PARAM("deadline"), PARAM("reason"), user.s};
  return exec(c, "INSERT INTO extension_requests (rectification_id, deadline, reason, requested_by)"
                 " VALUES ($1, $2, $3, $4)", 4, params);
}

static const char *SQL_DECIDE =
    "UPDATE extension_requests SET status = $2, decided_by = $3, decided_at = now(), decision_reason = $4"
    " WHERE rectification_id = $1 AND status = 'pending'";

static status extend(struct call *c, struct rect *r) {
  (void)r;
  status s = rectification_deadline_check(c, NULL);
  if (s != ST_OK)
    return s;
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *set[] = {id.s, PARAM("deadline"), PARAM("reason")};
  const char *decide[] = {id.s, "granted", user.s, PARAM("reason")};
  /* The deadline's history row (a trigger) takes its kind and reason from these settings. */
  if ((s = exec(c, "SELECT set_config('ducha.deadline_kind', 'extension', true),"
                   " set_config('ducha.deadline_reason', coalesce($1, ''), true)", 1, set + 2)) != ST_OK)
    return s;
  if ((s = exec(c, "UPDATE rectifications SET deadline = $2, updated_at = now(), version = version + 1 WHERE id = $1",
                2, set)) != ST_OK)
    return s;
  return exec(c, SQL_DECIDE, 4, decide);
}

static status refuse_extension(struct call *c, struct rect *r) {
  (void)r;
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *decide[] = {id.s, "refused", user.s, PARAM("reason")};
  return exec(c, SQL_DECIDE, 4, decide);
}

static status reassign(struct call *c, struct rect *r) {
  (void)r;
  json_int_t to = json_integer_value(json_object_get(c->body, "responsible_department_id"));
  struct num id = num(c->id), dept = num(to);
  const char *params[] = {id.s, dept.s};
  char verdict[16];
  status s = db_value(c->db, verdict, sizeof verdict,
                      "SELECT CASE WHEN d.merged_into_id IS NOT NULL THEN 'merged'"
                      " WHEN d.id = r.responsible_department_id THEN 'same' ELSE 'ok' END"
                      " FROM departments d, rectifications r WHERE d.id = $2 AND r.id = $1",
                      2, params);
  if (s == ST_NOT_FOUND)
    return invalid(c, "/responsible_department_id", "no such department");
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (strcmp(verdict, "ok"))
    return invalid(c, "/responsible_department_id",
                   !strcmp(verdict, "same") ? "is already the responsible unit" : "was merged into another department");
  return exec(c, "UPDATE rectifications SET responsible_department_id = $2, updated_at = now(), version = version + 1"
                 " WHERE id = $1", 2, params);
}

static status urge(struct call *c, struct rect *r) {
  (void)r;
  struct num id = num(c->id);
  const char *params[] = {id.s};
  return exec(c, "UPDATE rectifications SET urge_count = urge_count + 1, last_urged_at = now(),"
                 " updated_at = now(), version = version + 1 WHERE id = $1", 1, params);
}

static const char *SQL_REOPEN_INSPECTION =
    "UPDATE inspections SET status = 'submitted', closed_at = NULL, updated_at = now(), version = version + 1"
    " WHERE id = $1 AND status = 'closed' RETURNING id";

static status revoke(struct call *c, struct rect *r) {
  struct num id = num(c->id), user = num(c->who.user_id);
  const char *params[] = {id.s, user.s, PARAM("reason")};
  status s = exec(c, "UPDATE closures SET revoked_by = $2, revoked_at = now(), revoke_reason = $3"
                     " WHERE rectification_id = $1 AND revoked_at IS NULL", 3, params);
  if (s == ST_OK)
    s = exec(c, "UPDATE rectifications SET status = 'in_progress', closed_by = NULL, closed_at = NULL,"
                " close_opinion = NULL, closed_on_time = NULL, updated_at = now(), version = version + 1"
                " WHERE id = $1", 1, params);
  return s == ST_OK ? inspection_moved(c, r, SQL_REOPEN_INSPECTION, "reopen", "closed", "submitted") : s;
}

struct action {
  const char *name; /* as in its path and in the audit trail */
  const struct field *fields;
  status (*apply)(struct call *c, struct rect *r);
};

static status act(struct call *c, const struct action *a);

/* The route of each action names its handler (routes.c), which gives act() the action. */
#define ACTION(fn, name, fields, apply)                                                        \
  status rectification_##fn(struct call *c) {                                                  \
    static const struct action a = {name, fields, apply};                                      \
    return act(c, &a);                                                                         \
  }
ACTION(start, "start", NOTE, start)
ACTION(submit, "submit", NOTE, submit)
ACTION(close, "close", OPINION, close_)
ACTION(reject, "reject", REASON, reject)
ACTION(request_extension, "request-extension", REQUEST, request_extension)
ACTION(extend, "extend", EXTEND, extend)
ACTION(refuse_extension, "refuse-extension", REASON, refuse_extension)
ACTION(reassign, "reassign", REASSIGN, reassign)
ACTION(urge, "urge", NOTE, urge)
ACTION(revoke, "revoke", REASON, revoke)

/* ---- the one handler ------------------------------------------------------------------------ */

/* Locks the rectification (only: actions come after the findings are final, when no edit of
 * the numbered lists locks in the other order). */
static const char *SQL_STATE =
    "SELECT x.status, to_json(ducha_rectification_actions(x.status, x.responsible_department_id, x.submitted_by,"
    "   e.id IS NOT NULL))::text AS actions, coalesce(x.submitted_by::text, '') AS submitted_by,"
    "   coalesce(x.deadline::text, '') AS deadline, r.inspection_id, r.inspection_status, x.version,"
    "   " RECTIFICATION_ASSIGNED("x") " AS may_act, e.id IS NOT NULL AS pending"
    " FROM rectifications x JOIN rectification_rows r ON r.id = x.id"
    " LEFT JOIN extension_requests e ON e.rectification_id = x.id AND e.status = 'pending'"
    " WHERE x.id = $1 AND " RECTIFICATION_VISIBLE("x.id")
    " FOR NO KEY UPDATE OF x";

/* The value of column name of SQL_STATE's row. */
#define COL(res, name) PQgetvalue(res, 0, PQfnumber(res, name))

static int may(const struct rect *r, const char *action) {
  size_t i;
  json_t *name;
  json_array_foreach(r->actions, i, name)
    if (!strcmp(json_string_value(name), action))
      return 1;
  return 0;
}

static status act(struct call *c, const struct action *a) {
  if (validate_body(c->body, a->fields, 1, c->errors))
    return fail(c, ST_INVALID, "see errors");
  struct num id = num(c->id);
  const char *params[] = {id.s};
  PGresult *res;
  status s = resource_row(c, "rectification", &res, SQL_STATE, 1, params);
  if (s != ST_OK)
    return s;
  /* A department acts on what is assigned to its units; what it only reads is, for acting, not there. */
  if (strcmp(COL(res, "may_act"), "t")) {
    PQclear(res);
    return fail(c, ST_NOT_FOUND, "no such rectification among those assigned to your units");
  }
  int pending = !strcmp(COL(res, "pending"), "t");
  char inspection[16];
  long version = strtol(COL(res, "version"), NULL, 10);
  snprintf(inspection, sizeof inspection, "%s", COL(res, "inspection_status"));
  struct rect r;
  snprintf(r.status, sizeof r.status, "%s", COL(res, "status"));
  r.actions = c->allowed = json_loads(COL(res, "actions"), 0, NULL);
  snprintf(r.submitted_by, sizeof r.submitted_by, "%s", COL(res, "submitted_by"));
  snprintf(r.deadline, sizeof r.deadline, "%s", COL(res, "deadline"));
  r.inspection_id = strtoll(COL(res, "inspection_id"), NULL, 10);
  PQclear(res);
  if (c->if_match && !etag_matches(c->if_match, version))
    return fail(c, ST_PRECONDITION_FAILED, "the rectification has changed since you read it (ETag \"%ld\")", version);
  if (strcmp(inspection, "submitted") && strcmp(inspection, "closed")) {
    json_array_clear(c->allowed); /* nothing can be done to it yet */
    return fail(c, ST_BAD_TRANSITION, "the inspection is %s: rectification waits until its findings are submitted",
                inspection);
  }
  if (!may(&r, a->name)) {
    struct num me = num(c->who.user_id);
    if ((!strcmp(a->name, "close") || !strcmp(a->name, "reject")) && !strcmp(r.status, "submitted") &&
        !strcmp(r.submitted_by, me.s))
      return fail(c, ST_CONFLICT, "you submitted this rectification: another inspector must %s it", a->name);
    if (!strcmp(a->name, "request-extension") && pending && strcmp(r.status, "submitted") && strcmp(r.status, "closed"))
      return fail(c, ST_CONFLICT, "an extension request is waiting for a decision already");
    return fail(c, ST_BAD_TRANSITION, "cannot %s a rectification that is %s", a->name, r.status);
  }
  if ((s = a->apply(c, &r)) != ST_OK)
    return s;
  if ((s = resource_load(c, &RECTIFICATIONS, c->id)) != ST_OK)
    return s;
  json_t *before = json_pack("{s:s}", "status", r.status);
  json_t *after = json_deep_copy(c->body);
  json_object_set(after, "status", json_object_get(c->result, "status"));
  s = audit_write(c, a->name, "rectification", c->id, before, after);
  json_decref(before);
  json_decref(after);
  return s;
}

/* ---- urging many at once -------------------------------------------------------------------- */

static const struct field URGE_MANY[] = {
  {"ids", F_IDS, FIELD_REQUIRED, 1, 200, NULL, 0},
  {"note", F_TEXT, 0, 1, 2000, NULL, 0},
  {0},
};

/* POST /rectifications/urge: each rectification is urged as POST /rectifications/{id}/urge urges
 * one (act: the same checks, one audit event each), all or none. What stands in the way of one
 * is an error at /ids/<index>; with any, the request fails and its transaction, with the urges
 * already made, is rolled back: 400 when an id names no rectification the caller sees, else 409. */
status rectification_urge_many(struct call *c) {
  if (validate_body(c->body, URGE_MANY, 1, c->errors))
    return fail(c, ST_INVALID, "see errors");
  json_t *ids = json_object_get(c->body, "ids");
  json_t *body = c->body, *one = json_object(), *done = json_array();
  if (json_object_get(body, "note"))
    json_object_set(one, "note", json_object_get(body, "note"));
  c->body = one;     /* what each urge sees: the note */
  c->if_match = NULL; /* no one version for them all */
  status s = ST_OK;
  size_t unknown = 0;
  for (size_t i = 0; i < json_array_size(ids); i++) {
    c->id = json_integer_value(json_array_get(ids, i));
    c->detail[0] = '\0';
    s = rectification_urge(c);
    json_decref(c->allowed);
    c->allowed = NULL;
    if (s == ST_OK) {
      json_array_append_new(done, c->result);
      c->result = NULL;
      continue;
    }
    if (s != ST_NOT_FOUND && s != ST_BAD_TRANSITION && s != ST_CONFLICT)
      break; /* the database failed: that is the answer */
    char ptr[32];
    snprintf(ptr, sizeof ptr, "/ids/%zu", i);
    errors_add(c->errors, ptr, c->detail);
    unknown += s == ST_NOT_FOUND;
    s = ST_OK;
  }
  c->body = body;
  c->id = 0;
  c->etag = 0;
  json_decref(one);
  size_t refused = json_array_size(c->errors);
  if (s != ST_OK || refused) {
    json_decref(done);
    if (s != ST_OK)
      return s;
    return fail(c, unknown ? ST_INVALID : ST_CONFLICT, "%zu of the %zu rectifications cannot be urged; none was: see errors",
                refused, json_array_size(ids));
  }
  c->result = json_pack("{s:o}", "data", done);
  return ST_OK;
}
