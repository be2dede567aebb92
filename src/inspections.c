/* 督察: one inspection of one target department on a date, with one item per task of its
 * checklist version; draft -> in_progress -> submitted -> closed, and back to in_progress by an
 * admin's reopen.
 *
 * Where its rules live: start, submit and reopen, lock_for and the functions below (a submission
 * needs a deadline on every measure and makes the findings final, inspection_editable, which
 * items.c, problems.c and rectifications.c call before any change but to what the public view
 * shows of a problem or measure, public_fields_only; what was worked on cannot be deleted once
 * reopened, rectifications_untouched in rectifications.c); closing by itself when its last measure
 * closes, and going back to submitted on a revocation, rectification_actions.c; who reads it, the
 * target's subtree (FILTER_I, ducha_in_scope); the form's ETag, migrations/0010, and its
 * carried-over measures (SQL_FORM), migrations/0015; many at once for a batch,
 * inspection_create_many; published (公示), set_published, and what the public sees of it,
 * public.c and migrations/0017. */
#include "audit.h"
#include "resources.h"

#include <stdlib.h>
#include <string.h>

static const char *const STATUSES[] = {"draft", "in_progress", "submitted", "closed", NULL};

static const struct field CREATE[] = {
  {"title", F_LINE, FIELD_REQUIRED, 1, 200, NULL, 0},
  {"target_department_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"inspected_on", F_DATE, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"inspectors", F_LINES, 0, 1, 50, NULL, 20},
  {"batch_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"checklist_id", F_ID, 0, 0, 0, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"title", F_LINE, 0, 1, 200, NULL, 0},
  {"target_department_id", F_ID, 0, 0, 0, NULL, 0},
  {"inspected_on", F_DATE, 0, 0, 0, NULL, 0},
  {"inspectors", F_LINES, 0, 1, 50, NULL, 20},
  {"batch_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {0},
};

const struct qparam INSPECTION_FILTERS[] = {
  {"status", Q_ENUMS, STATUSES},
  {"target_department_id", Q_ID, NULL},
  {"batch_id", Q_ID, NULL},
  {"inspected_from", Q_DATE, NULL},
  {"inspected_to", Q_DATE, NULL},
  {"q", Q_TEXT, NULL},
  {0},
};

#define REF(alias, name) "json_build_object('id', " alias ".id, 'name', " alias "." name ")"
#define JSON_OF_I                                                                              \
  "json_build_object('id', i.id, 'title', i.title, 'checklist_id', i.checklist_id,"           \
  " 'checklist', " REF("c", "title") ", 'batch_id', i.batch_id,"                               \
  " 'batch', CASE WHEN bt.id IS NULL THEN NULL ELSE " REF("bt", "name") " END,"                \
  " 'target_department_id', i.target_department_id, 'target_department', " REF("d", "name") "," \
  " 'inspected_on', i.inspected_on, 'inspectors', to_json(i.inspectors), 'status', i.status,"  \
  " 'published', i.published, 'published_at', i.published_at, 'submitted_at', i.submitted_at," \
  " 'closed_at', i.closed_at, 'counts', (SELECT json_build_object('items', count(*),"          \
  "   'completed', count(*) FILTER (WHERE it.completion = 'completed'),"                       \
  "   'not_completed', count(*) FILTER (WHERE it.completion = 'not_completed'),"               \
  "   'not_assessed', count(*) FILTER (WHERE it.completion = 'not_assessed'),"                 \
  "   'problems', (SELECT count(*) FROM problems p JOIN items pi ON pi.id = p.item_id WHERE pi.inspection_id = i.id)," \
  "   'rectifications', (SELECT count(*) FROM rectification_rows r WHERE r.inspection_id = i.id))" \
  "   FROM items it WHERE it.inspection_id = i.id),"                                           \
  " 'created_at', i.created_at, 'updated_at', i.updated_at)"
#define FROM_I                                                                                 \
  " FROM inspections i JOIN checklists c ON c.id = i.checklist_id"                             \
  " JOIN departments d ON d.id = i.target_department_id LEFT JOIN batches bt ON bt.id = i.batch_id"
/* A department user sees the inspections of its own unit and what lies under it. */
#define FILTER_I                                                                               \
  " WHERE ducha_in_scope(i.target_department_id) AND ($1::text[] IS NULL OR i.status = ANY ($1)) AND ($2::bigint IS NULL OR i.target_department_id = $2)" \
  "   AND ($3::bigint IS NULL OR i.batch_id = $3) AND ($4::date IS NULL OR i.inspected_on >= $4)" \
  "   AND ($5::date IS NULL OR i.inspected_on <= $5) AND ($6::text IS NULL OR i.title ILIKE ducha_contains($6))"

/* The actions the caller may take from each state (reopen comes with the admin role). */
static json_t *allowed_from(const struct call *c, const char *state) {
  if (!strcmp(state, "draft"))
    return json_pack("[s]", "start");
  if (!strcmp(state, "in_progress"))
    return json_pack("[s]", "submit");
  return (c->who.role_bit & ROLE_ADMIN) ? json_pack("[s]", "reopen") : json_array();
}

/* The state of the inspection that sql finds from $1 = id. */
static status state_of(struct call *c, const char *sql, int64_t id, char *state, size_t size) {
  struct num n = num(id);
  const char *params[] = {n.s};
  return resource_value(c, "record", state, size, sql, 1, params);
}

#define SQL_STATE "SELECT status FROM inspections WHERE id = $1"

static status bad_transition(struct call *c, const char *action, const char *state) {
  c->allowed = allowed_from(c, state);
  return fail(c, ST_BAD_TRANSITION, "cannot %s an inspection that is %s", action, state);
}

status inspection_editable(struct call *c, const char *sql, int64_t id) {
  char state[16];
  status s = state_of(c, sql, id, state, sizeof state);
  if (s != ST_OK)
    return s;
  if (strcmp(state, "draft") && strcmp(state, "in_progress"))
    return fail(c, ST_FROZEN, "the inspection is %s: its rows, problems and measures are final", state);
  return ST_OK;
}

/* A batch is a round over one checklist version: the checklist_id of the body, when given, must
 * be the batch's. sql finds the batch's checklist from $1 = batch. */
static status batch_checklist(struct call *c, const char *sql, int64_t batch) {
  json_t *checklist = json_object_get(c->body, "checklist_id");
  struct num b = num(batch), want = num(json_integer_value(checklist));
  const char *params[] = {b.s};
  char have[24];
  status s = db_value(c->db, have, sizeof have, sql, 1, params);
  if (s != ST_OK)
    return s == ST_NOT_FOUND ? s : resource_db_failure(c, s);
  int same = !checklist || !strcmp(have, want.s);
  return same ? ST_OK : invalid(c, "/checklist_id", "differs from the checklist of the batch");
}

static status before_create(struct call *c) {
  json_t *batch = json_object_get(c->body, "batch_id");
  if (!json_is_integer(batch) || !json_object_get(c->body, "checklist_id"))
    return ST_OK;
  status s = batch_checklist(c, "SELECT checklist_id FROM batches WHERE id = $1", json_integer_value(batch));
  return s == ST_NOT_FOUND ? invalid(c, "/batch_id", "no such batch") : s;
}

static status before_change(struct call *c, int deleting) {
  char state[16];
  status s = state_of(c, SQL_STATE, c->id, state, sizeof state);
  if (s != ST_OK)
    return s;
  if (deleting && strcmp(state, "draft"))
    return bad_transition(c, "delete", state);
  if (!deleting && strcmp(state, "draft") && strcmp(state, "in_progress"))
    return fail(c, ST_FROZEN, "the inspection is %s and can no longer be changed", state);
  json_t *batch = json_object_get(c->body, "batch_id");
  if (deleting || !json_is_integer(batch))
    return ST_OK;
  struct num b = num(json_integer_value(batch)), id = num(c->id);
  const char *params[] = {b.s, id.s};
  char same[8];
  s = db_value(c->db, same, sizeof same,
               "SELECT b.checklist_id = i.checklist_id FROM batches b, inspections i WHERE b.id = $1 AND i.id = $2",
               2, params);
  if (s == ST_NOT_FOUND)
    return invalid(c, "/batch_id", "no such batch");
  if (s != ST_OK)
    return resource_db_failure(c, s);
  return strcmp(same, "t") ? invalid(c, "/batch_id", "the batch is over another checklist version") : ST_OK;
}

const struct resource INSPECTIONS = {
  .name = "inspection",
  .collection = "/api/v1/inspections",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT i.version, " JSON_OF_I FROM_I " WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)",
  .sql_lock = "SELECT version FROM inspections WHERE id = $1 FOR UPDATE",
  /* The inspection and one item per task of its checklist, with the task's material
   * departments, in one statement. */
  .sql_insert =
      "WITH j AS (SELECT $1::jsonb AS b),"
      " cl AS (SELECT coalesce((b->>'checklist_id')::bigint,"
      "   (SELECT checklist_id FROM batches WHERE id = (b->>'batch_id')::bigint),"
      "   (SELECT id FROM checklists WHERE code = 'default' ORDER BY version DESC LIMIT 1)) AS id FROM j),"
      " ins AS (INSERT INTO inspections (title, checklist_id, batch_id, target_department_id,"
      "   inspected_on, inspectors, created_by)"
      "   SELECT b->>'title', cl.id, (b->>'batch_id')::bigint, (b->>'target_department_id')::bigint,"
      "     (b->>'inspected_on')::date, ARRAY(SELECT jsonb_array_elements_text(b->'inspectors')), $2::bigint"
      "   FROM j, cl RETURNING id, checklist_id),"
      " it AS (INSERT INTO items (inspection_id, task_id, seq)"
      "   SELECT ins.id, t.id, t.seq FROM ins JOIN tasks t ON t.checklist_id = ins.checklist_id"
      "   RETURNING id, task_id),"
      " im AS (INSERT INTO item_material_departments (item_id, department_id, position)"
      "   SELECT it.id, m.department_id, m.position FROM it JOIN task_material_departments m ON m.task_id = it.task_id)"
      " SELECT id FROM ins",
  .sql_update =
      "UPDATE inspections SET"
      " title = coalesce(b->>'title', title),"
      " target_department_id = coalesce((b->>'target_department_id')::bigint, target_department_id),"
      " inspected_on = coalesce((b->>'inspected_on')::date, inspected_on),"
      " inspectors = CASE WHEN b ? 'inspectors' THEN ARRAY(SELECT jsonb_array_elements_text(b->'inspectors')) ELSE inspectors END,"
      " batch_id = CASE WHEN b ? 'batch_id' THEN (b->>'batch_id')::bigint ELSE batch_id END,"
      " updated_at = now(), version = version + 1"
      " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "DELETE FROM inspections WHERE id = $1",
  .list = {
    .sql_page = "SELECT i.id, " JSON_OF_I FROM_I FILTER_I
                " AND ($7::bigint IS NULL OR i.id < $7) ORDER BY i.id DESC LIMIT $8",
    .sql_count = "SELECT count(*) FROM inspections i" FILTER_I,
  },
  .before_create = before_create,
  .before_change = before_change,
};

static const struct field NO_FIELDS[] = {{0}};
static const struct field REASON[] = {
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {0},
};

/* Locks the inspection, checks If-Match (optional here), that it is in state from (or, when
 * given, or_from; any state without from) and that the body holds fields and no others; *state
 * receives the state. */
static status lock_for(struct call *c, const char *action, const char *from, const char *or_from,
                       const struct field *fields, char state[16]) {
  status s = resource_lock(c, &INSPECTIONS);
  if (s == ST_OK)
    s = state_of(c, SQL_STATE, c->id, state, 16);
  if (s != ST_OK)
    return s;
  if (from && strcmp(state, from) && (!or_from || strcmp(state, or_from)))
    return bad_transition(c, action, state);
  if (validate_body(c->body, fields, 1, c->errors))
    return fail(c, ST_INVALID, fields[0].name ? "see errors" : "this action takes no fields");
  return ST_OK;
}

/* Reads the inspection after action and records the move from state from, with the body's
 * reason when it has one. */
static status transitioned(struct call *c, const char *action, const char *from) {
  status s = resource_load(c, &INSPECTIONS, c->id);
  if (s != ST_OK)
    return s;
  json_t *before = json_pack("{s:s}", "status", from);
  json_t *after = json_pack("{s:O}", "status", json_object_get(c->result, "status"));
  if (json_is_string(json_object_get(c->result, "closed_at")))
    json_object_set(after, "closed_at", json_object_get(c->result, "closed_at"));
  if (json_object_get(c->body, "reason"))
    json_object_set(after, "reason", json_object_get(c->body, "reason"));
  s = audit_write(c, action, "inspection", c->id, before, after);
  json_decref(before);
  json_decref(after);
  return s;
}

status inspection_start(struct call *c) {
  char state[16];
  status s = lock_for(c, "start", "draft", NULL, NO_FIELDS, state);
  if (s != ST_OK)
    return s;
  struct num n = num(c->id);
  const char *params[] = {n.s};
  s = db_exec(c->db, NULL,
              "UPDATE inspections SET status = 'in_progress', updated_at = now(), version = version + 1"
              " WHERE id = $1", 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  return transitioned(c, "start", "draft");
}

static const char *SQL_MISSING_DEADLINES =
    "SELECT r.id FROM rectification_rows r WHERE r.inspection_id = $1 AND r.deadline IS NULL ORDER BY r.id";

/* Submitted findings are final; with no rectification left to track (none, or, submitted again
 * after a reopen, all closed) the inspection closes at once. submitted_at keeps the first
 * submission: rectification counts from it. */
static const char *SQL_SUBMIT =
    "UPDATE inspections i SET submitted_at = coalesce(submitted_at, now()), updated_at = now(), version = version + 1,"
    " status = CASE WHEN x.n > 0 THEN 'submitted' ELSE 'closed' END,"
    " closed_at = CASE WHEN x.n > 0 THEN NULL ELSE now() END"
    " FROM (SELECT count(*) AS n FROM rectification_rows r WHERE r.inspection_id = $1 AND r.status <> 'closed') x"
    " WHERE i.id = $1";

status inspection_submit(struct call *c) {
  char state[16];
  status s = lock_for(c, "submit", "in_progress", NULL, NO_FIELDS, state);
  if (s != ST_OK)
    return s;
  struct num n = num(c->id);
  const char *params[] = {n.s};
  PGresult *r;
  if ((s = db_exec(c->db, &r, SQL_MISSING_DEADLINES, 1, params)) != ST_OK)
    return resource_db_failure(c, s);
  for (int i = 0; i < PQntuples(r); i++) {
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/rectifications/%s/deadline", PQgetvalue(r, i, 0));
    errors_add(c->errors, ptr, "every rectification needs a deadline before the inspection is submitted");
  }
  int missing = PQntuples(r);
  PQclear(r);
  if (missing)
    return fail(c, ST_CONFLICT, "%d rectification%s no deadline yet; see errors", missing,
                missing == 1 ? " has" : "s have");
  if ((s = db_exec(c->db, NULL, SQL_SUBMIT, 1, params)) != ST_OK)
    return resource_db_failure(c, s);
  return transitioned(c, "submit", "in_progress");
}

/* Back to in_progress, so that the findings can be corrected: rows, problems and measures are
 * editable again (inspection_editable). The measures keep their status and wait — no action,
 * progress or evidence (rectification_actions.c, RECTIFICATION_WORK) — until it is submitted
 * again, which needs every deadline as the first time did. */
static const char *SQL_REOPEN =
    "UPDATE inspections SET status = 'in_progress', closed_at = NULL, updated_at = now(), version = version + 1"
    " WHERE id = $1";

status inspection_reopen(struct call *c) {
  char state[16];
  status s = lock_for(c, "reopen", "submitted", "closed", REASON, state);
  if (s != ST_OK)
    return s;
  struct num n = num(c->id);
  const char *params[] = {n.s};
  if ((s = db_exec(c->db, NULL, SQL_REOPEN, 1, params)) != ST_OK)
    return resource_db_failure(c, s);
  return transitioned(c, "reopen", state);
}

/* ---- 公示: publishing, for the public view (public.c) --------------------------------------------- */

/* Published or not ($2), with the moment; the public view shows it while it is submitted or
 * closed (migrations/0017), so a reopen hides it until it is submitted again. */
static const char *SQL_PUBLISH =
    "UPDATE inspections SET published = $2::boolean, published_at = CASE WHEN $2::boolean THEN now() END,"
    " updated_at = now(), version = version + 1 WHERE id = $1 AND published <> $2::boolean";

/* Publishes (on) a submitted or closed inspection, or withdraws (!on) a published one in any
 * state; ST_CONFLICT when it is so already. Audited as publish / unpublish. */
static status set_published(struct call *c, int on) {
  const char *action = on ? "publish" : "unpublish";
  char state[16];
  status s = on ? lock_for(c, action, "submitted", "closed", NO_FIELDS, state)
                : lock_for(c, action, NULL, NULL, NO_FIELDS, state);
  if (s != ST_OK)
    return s;
  struct num n = num(c->id);
  const char *params[] = {n.s, on ? "true" : "false"};
  PGresult *r;
  if ((s = db_exec(c->db, &r, SQL_PUBLISH, 2, params)) != ST_OK)
    return resource_db_failure(c, s);
  int changed = atoi(PQcmdTuples(r));
  PQclear(r);
  if (!changed)
    return fail(c, ST_CONFLICT, on ? "the inspection is published already" : "the inspection is not published");
  if ((s = resource_load(c, &INSPECTIONS, c->id)) != ST_OK)
    return s;
  json_t *before = json_pack("{s:b}", "published", !on);
  json_t *after = json_pack("{s:b, s:O}", "published", on, "published_at", json_object_get(c->result, "published_at"));
  s = audit_write(c, action, "inspection", c->id, before, after);
  json_decref(before);
  json_decref(after);
  return s;
}

status inspection_publish(struct call *c) { return set_published(c, 1); }
status inspection_unpublish(struct call *c) { return set_published(c, 0); }

/* ---- a batch's inspections, many units at once ----------------------------------------------- */

static const struct field MANY[] = {
  {"target_department_ids", F_IDS, FIELD_REQUIRED, 1, 200, NULL, 0},
  {"title", F_LINE, FIELD_REQUIRED, 1, 200, NULL, 0},
  {"inspected_on", F_DATE, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"inspectors", F_LINES, 0, 1, 50, NULL, 20},
  {"checklist_id", F_ID, 0, 0, 0, NULL, 0},
  {0},
};

/* The batch, locked so that two of these for one batch run one after the other. */
static const char *SQL_BATCH = "SELECT checklist_id FROM batches WHERE id = $1 FOR NO KEY UPDATE";

/* Each unit of $1 (a JSON array of ids), in its order: what keeps it from being inspected in
 * batch $2 ('' when nothing does), and its title: $3 with {department} replaced by its name. */
static const char *SQL_UNITS =
    "SELECT CASE WHEN d.id IS NULL THEN 'no such department'"
    "   WHEN d.merged_into_id IS NOT NULL THEN 'the department was merged into another'"
    "   WHEN i.id IS NOT NULL THEN 'has inspection ' || i.id || ' in this batch already'"
    "   WHEN char_length(t.title) > 200 THEN 'makes the title longer than 200 characters' ELSE '' END, t.title"
    " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY u(id, n)"
    " LEFT JOIN departments d ON d.id = u.id::bigint"
    " CROSS JOIN LATERAL (SELECT replace($3, '{department}', coalesce(d.name, '')) AS title) t"
    " LEFT JOIN LATERAL (SELECT x.id FROM inspections x WHERE x.batch_id = $2::bigint"
    "   AND x.target_department_id = d.id ORDER BY x.id LIMIT 1) i ON true"
    " ORDER BY u.n";

/* Adds an error at /target_department_ids/<i> for every unit that cannot be inspected in the
 * batch c->id; ST_INVALID when there was one. *units receives SQL_UNITS' rows (caller clears). */
static status units_check(struct call *c, const json_t *ids, PGresult **units) {
  char *list = json_dumps(ids, JSON_COMPACT);
  struct num batch = num(c->id);
  const char *params[] = {list, batch.s, json_string_value(json_object_get(c->body, "title"))};
  status s = db_exec(c->db, units, SQL_UNITS, 3, params);
  free(list);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  for (int i = 0; i < PQntuples(*units); i++) {
    char ptr[48];
    snprintf(ptr, sizeof ptr, "/target_department_ids/%d", i);
    if (*PQgetvalue(*units, i, 0))
      errors_add(c->errors, ptr, PQgetvalue(*units, i, 0));
  }
  return json_array_size(c->errors) ? ST_INVALID : ST_OK;
}

/* One inspection per unit, each made as POST /inspections makes one (resource_insert: its items,
 * its create in the audit trail), all in the request's one transaction. */
status inspection_create_many(struct call *c) {
  if (validate_body(c->body, MANY, 1, c->errors))
    return fail(c, ST_INVALID, "see errors");
  json_t *ids = json_object_get(c->body, "target_department_ids");
  status s = batch_checklist(c, SQL_BATCH, c->id);
  if (s != ST_OK)
    return s == ST_NOT_FOUND ? fail(c, s, "no such batch") : s;
  PGresult *units = NULL;
  if ((s = units_check(c, ids, &units)) != ST_OK) {
    PQclear(units);
    return s == ST_INVALID ? fail(c, s, "%zu of the units cannot be inspected in this batch; see errors",
                                  json_array_size(c->errors)) : s;
  }
  json_t *made = json_array(), *fields = json_deep_copy(c->body);
  json_object_del(fields, "target_department_ids");
  json_object_del(fields, "checklist_id");
  json_object_set_new(fields, "batch_id", json_integer(c->id));
  for (size_t i = 0; s == ST_OK && i < json_array_size(ids); i++) {
    json_object_set(fields, "target_department_id", json_array_get(ids, i));
    json_object_set_new(fields, "title", json_string(PQgetvalue(units, (int)i, 1)));
    if ((s = resource_insert(c, &INSPECTIONS, 0, fields)) == ST_OK) {
      json_array_append_new(made, c->result);
      c->result = NULL;
    }
  }
  PQclear(units);
  json_decref(fields);
  if (s != ST_OK) {
    json_decref(made);
    return s;
  }
  c->etag = 0; /* no one version for them all */
  snprintf(c->location, sizeof c->location, "/api/v1/inspections?batch_id=%lld", (long long)c->id);
  c->result = json_pack("{s:o}", "data", made);
  return ST_OK;
}

/* A measure as the form shows it: r with its responsible unit rd (the members of an object). */
#define FORM_RECTIFICATION                                                                     \
  "'id', r.id, 'ordinal', r.ordinal, 'measure', r.measure,"                                   \
  " 'responsible_department', json_build_object('id', rd.id, 'name', rd.name),"               \
  " 'deadline', r.deadline, 'status', r.status, 'overdue', ducha_overdue(r.deadline, r.status)"

/* The seed's seven columns, one row per item, in one query; beside each row's problems, the open
 * measures of the unit's earlier inspections for the same task (carried_over, 上轮问题复查):
 * earlier is an earlier date, or the same date and a lower id, of an inspection whose findings
 * were submitted (a draft's are not findings yet); the same task is the same lineage
 * across checklist versions (migrations/0015). They are the rows themselves, each with its own
 * inspection and problem, and a department user sees those it may read (rectification_readers).
 * Found for the whole form at once (carried), from the unit's inspections before this one. */
static const char *SQL_FORM =
    "WITH carried AS (SELECT it.id AS item_id, json_agg(json_build_object(" FORM_RECTIFICATION ","
    "   'inspection', json_build_object('id', e.id, 'inspected_on', e.inspected_on, 'title', e.title),"
    "   'problem', json_build_object('id', p.id, 'ordinal', p.ordinal, 'description', p.description))"
    "   ORDER BY e.inspected_on, e.id, p.ordinal, r.ordinal) AS entries"
    " FROM inspections i JOIN items it ON it.inspection_id = i.id JOIN tasks t ON t.id = it.task_id"
    " JOIN inspections e ON e.target_department_id = i.target_department_id"
    "   AND (e.inspected_on, e.id) < (i.inspected_on, i.id) AND e.submitted_at IS NOT NULL"
    " JOIN items ei ON ei.inspection_id = e.id JOIN tasks et ON et.id = ei.task_id AND et.lineage_id = t.lineage_id"
    " JOIN problems p ON p.item_id = ei.id"
    " JOIN rectifications r ON r.problem_id = p.id AND r.status <> 'closed'"
    " JOIN departments rd ON rd.id = r.responsible_department_id"
    " WHERE i.id = $1 AND EXISTS (SELECT FROM ducha_rectification_readers(r.id))"
    " GROUP BY it.id)"
    " SELECT json_build_object("
    " 'inspection', json_build_object('id', i.id, 'title', i.title,"
    "   'target_department', json_build_object('id', d.id, 'name', d.name),"
    "   'inspected_on', i.inspected_on, 'status', i.status),"
    " 'rows', coalesce((SELECT json_agg(json_build_object("
    "   'item_id', it.id, 'seq', it.seq, 'task', json_build_object('id', t.id, 'content', t.content),"
    "   'completion', it.completion,"
    "   'material_departments', coalesce((SELECT json_agg(json_build_object('id', md.id, 'name', md.name)"
    "      ORDER BY m.position) FROM item_material_departments m JOIN departments md ON md.id = m.department_id"
    "      WHERE m.item_id = it.id), '[]'),"
    "   'problems', coalesce((SELECT json_agg(json_build_object('id', p.id, 'ordinal', p.ordinal,"
    "      'description', p.description,"
    "      'rectifications', coalesce((SELECT json_agg(json_build_object(" FORM_RECTIFICATION ")"
    "         ORDER BY r.ordinal) FROM rectifications r JOIN departments rd ON rd.id = r.responsible_department_id"
    "         WHERE r.problem_id = p.id), '[]'))"
    "      ORDER BY p.ordinal) FROM problems p WHERE p.item_id = it.id), '[]'),"
    "   'carried_over', coalesce(co.entries, '[]'))"
    "   ORDER BY it.seq) FROM items it JOIN tasks t ON t.id = it.task_id LEFT JOIN carried co ON co.item_id = it.id"
    "   WHERE it.inspection_id = i.id), '[]'))"
    " FROM inspections i JOIN departments d ON d.id = i.target_department_id"
    " WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)";

/* The form's entity tag without reading the form (migrations/0010): the inspection's version,
 * the count of changes to its rows, problems and measures, the department names' version and
 * the local date, on which `overdue` turns. */
static const char *SQL_FORM_ETAG =
    "SELECT concat_ws('.', i.version, coalesce(f.version, 0), n.version, to_char(ducha_today(), 'YYYYMMDD'))"
    " FROM inspections i LEFT JOIN form_versions f ON f.inspection_id = i.id"
    " JOIN name_versions n ON n.catalogue = 'departments'"
    " WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)";

status inspection_form(struct call *c) { return resource_tagged(c, "inspection", SQL_FORM_ETAG, "f", SQL_FORM); }

status inspection_form_tag(struct call *c, int64_t id, char *tag, size_t size) {
  struct num n = num(id);
  const char *params[] = {n.s};
  return resource_value(c, "inspection", tag, size, SQL_FORM_ETAG, 1, params);
}

status inspection_form_read(struct call *c, int64_t id, json_t **form) {
  struct num n = num(id);
  const char *params[] = {n.s};
  PGresult *r;
  status s = resource_row(c, "inspection", &r, SQL_FORM, 1, params);
  if (s != ST_OK)
    return s;
  s = (*form = json_loads(PQgetvalue(r, 0, 0), 0, NULL)) ? ST_OK : fail(c, ST_INTERNAL, "the form cannot be read");
  PQclear(r);
  return s;
}
