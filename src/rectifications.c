/* 整改措施: the numbered measures decided for a problem, each with a responsible unit and a
 * deadline, tracked to closure; and the ledger (整改台账) of all of them.
 *
 * Where its rules live:
 *   - fields and their bounds: CREATE and PATCH below; a deadline not before today, and later
 *     than the current one when it moves: rectification_deadline_check;
 *   - editable only while the inspection's findings are not final: before_create, before_change
 *     (inspection_editable, inspections.c); numbering: ordinal.c with ORDINALS below;
 *   - deleted only while nothing was done on it (after an admin's reopen): rectifications_untouched;
 *   - who reads which rows: rectification_readers (migrations/0008), through
 *     RECTIFICATION_VISIBLE (resources.h) for one row and the three ledger forms below for pages;
 *   - where a row sits (problem, item, inspection): the view rectification_rows (migrations/0011);
 *   - the lifecycle: rectification_actions.c; progress and evidence: progress.c, evidence.c. */
#include "ordinal.h"
#include "resources.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct field CREATE[] = {
  {"measure", F_TEXT, FIELD_REQUIRED, 1, 2000, NULL, 0},
  {"responsible_department_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"deadline", F_DATE, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  PUBLIC_FIELDS,
  {0},
};
static const struct field PATCH[] = {
  {"measure", F_TEXT, 0, 1, 2000, NULL, 0},
  {"responsible_department_id", F_ID, 0, 0, 0, NULL, 0},
  {"deadline", F_DATE, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"ordinal", F_INT, 0, 1, 10000, NULL, 0},
  PUBLIC_FIELDS,
  {0},
};

static const struct ordinal_sql ORDINALS = {
  .lock = "SELECT 1 FROM problems WHERE id = $1 FOR UPDATE",
  .count = "SELECT count(*) FROM rectifications WHERE problem_id = $1",
  .position = "SELECT problem_id, ordinal FROM rectifications WHERE id = $1",
  .shift = "UPDATE rectifications SET ordinal = ordinal + $4::int, version = version + 1, updated_at = now()"
           " WHERE problem_id = $1 AND ordinal BETWEEN $2 AND $3 AND ($5::bigint IS NULL OR id <> $5)",
};

/* Everything a front end shows for a rectification, the ledger's rows included, in one object.
 * Names come from subqueries, so that they are looked up for the rows shown only. */
#define NAME_OF(table, column, id) "(SELECT json_build_object('id', x.id, 'name', x." column ") FROM " table " x WHERE x.id = " id ")"
#define JSON_OF_R                                                                              \
  "json_build_object('id', r.id, 'problem_id', r.problem_id, 'item_id', r.item_id,"           \
  " 'inspection_id', r.inspection_id, 'ordinal', r.ordinal, 'measure', r.measure,"            \
  " 'public', r.public, 'public_text', r.public_text,"                                         \
  " 'responsible_department_id', r.responsible_department_id,"                                 \
  " 'responsible_department', " NAME_OF("departments", "name", "r.responsible_department_id") "," \
  " 'deadline', r.deadline, 'status', r.status, 'overdue', ducha_overdue(r.deadline, r.status),"   \
  " 'working_days_left', CASE WHEN r.status IN ('pending', 'in_progress') AND r.deadline >= ducha_today()" \
  "   THEN r.working_days_left END,"                                                          \
  " 'working_days_late', CASE WHEN ducha_overdue(r.deadline, r.status) THEN -r.working_days_left END," \
  " 'calendar_complete', r.calendar_complete, 'escalation', r.escalation," \
  " 'closed_on_time', r.closed_on_time, 'submitted_at', r.submitted_at,"                       \
  " 'submitted_by', " NAME_OF("users", "username", "r.submitted_by") ","                        \
  " 'closed_at', r.closed_at, 'closed_by', " NAME_OF("users", "username", "r.closed_by") ","    \
  " 'close_opinion', r.close_opinion, 'urge_count', r.urge_count, 'last_urged_at', r.last_urged_at," \
  " 'evidence_count', (SELECT count(*) FROM evidence e WHERE e.rectification_id = r.id),"      \
  " 'problem', json_build_object('id', r.problem_id, 'ordinal', r.problem_ordinal, 'description', r.problem_description)," \
  " 'item', json_build_object('id', r.item_id, 'seq', r.item_seq),"                                    \
  " 'inspection', json_build_object('id', r.inspection_id, 'title', r.inspection_title, 'status', r.inspection_status),"        \
  " 'target_department', " NAME_OF("departments", "name", "r.target_department_id") ","         \
  " 'allowed_transitions', to_json(ducha_rectification_actions(r.status, r.responsible_department_id," \
  "   r.submitted_by, xr.id IS NOT NULL)),"                                                      \
  " 'created_at', r.created_at, 'updated_at', r.updated_at)"
/* The entity tag: the version (what If-Match compares), then what the derived fields and the
 * context shown depend on: the local date (overdue, working days, escalation), the inspection's
 * version (its status and title), the calendar's version (migrations/0013), and the versions of
 * the two units it names (a rename). */
#define TAG_R                                                                                  \
  "r.version || '.' || to_char(ducha_today(), 'YYYYMMDD')"                                    \
  " || '.' || (SELECT i.version FROM inspections i WHERE i.id = r.inspection_id)"              \
  " || '.' || (SELECT n.version FROM name_versions n WHERE n.catalogue = 'calendar')"           \
  " || '.' || (SELECT d.version FROM departments d WHERE d.id = r.responsible_department_id)"   \
  " || '.' || (SELECT d.version FROM departments d WHERE d.id = r.target_department_id)"
/* A department user sees the rectifications assigned to its units, now or before a
 * reassignment, and those of inspections of its units: rectification_readers. */
#define VISIBLE_R RECTIFICATION_VISIBLE("r.id")
/* The rectification with its problem, item and inspection (migrations/0011). */
#define FROM_R " FROM rectification_rows r"
/* The same with its pending request for more time, if any (at most one: a unique index), for
 * JSON_OF_R. A join, not an EXISTS in the call: PostgreSQL inlines a SQL function only when an
 * argument used twice holds no sub-SELECT; otherwise it plans the function's body again for
 * every row (0.4 ms each). */
#define FROM_RJ FROM_R " LEFT JOIN extension_requests xr ON xr.rectification_id = r.id AND xr.status = 'pending'"

static const char *SQL_DEADLINE =
    "SELECT CASE WHEN $1::date < ducha_today() THEN 'past'"
    " WHEN $2::date IS NOT NULL AND $1::date <= $2::date THEN 'not_later' ELSE 'ok' END, ducha_today()::text";

status rectification_deadline_check(struct call *c, const char *current) {
  json_t *deadline = json_object_get(c->body, "deadline");
  if (!json_is_string(deadline))
    return ST_OK;
  const char *params[] = {json_string_value(deadline), current};
  PGresult *r;
  status s = db_row(c->db, &r, SQL_DEADLINE, 2, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  char msg[96];
  const char *verdict = PQgetvalue(r, 0, 0);
  if (!strcmp(verdict, "past"))
    snprintf(msg, sizeof msg, "must not be before today (%s in %s)", PQgetvalue(r, 0, 1), c->cfg->timezone);
  else
    snprintf(msg, sizeof msg, "must be later than the current deadline");
  s = strcmp(verdict, "ok") ? invalid(c, "/deadline", msg) : ST_OK;
  PQclear(r);
  return s;
}

static status before_create(struct call *c) {
  status s = ordinal_for_create(c, &ORDINALS, c->id);
  if (s == ST_OK)
    s = inspection_editable(c,
                            "SELECT i.status FROM problems p JOIN items it ON it.id = p.item_id"
                            " JOIN inspections i ON i.id = it.inspection_id WHERE p.id = $1 FOR SHARE OF i",
                            c->id);
  return s == ST_OK ? rectification_deadline_check(c, NULL) : s;
}

/* What was done on the rectification x beyond writing it down and correcting it, NULL when
 * nothing: a closure, evidence, progress, or any action of its lifecycle on record (start, urge,
 * extend, reassign ...). Such a record stays: it matters once an admin reopens the inspection. */
#define WORKED_ON(x)                                                                            \
  "CASE WHEN EXISTS (SELECT 1 FROM closures k WHERE k.rectification_id = " x ".id) THEN 'a closure (销号)'" \
  " WHEN EXISTS (SELECT 1 FROM evidence e WHERE e.rectification_id = " x ".id) THEN 'evidence'"  \
  " WHEN EXISTS (SELECT 1 FROM progress_updates p WHERE p.rectification_id = " x ".id) THEN 'progress updates'" \
  " ELSE (SELECT 'been acted on (' || a.action || ')' FROM audit_events a WHERE a.entity_type = 'rectification'" \
  "   AND a.entity_id = " x ".id AND a.action NOT IN ('create', 'update') ORDER BY a.id LIMIT 1) END"
#define UNTOUCHED(where)                                                                       \
  "SELECT x.id, w.why FROM rectifications x CROSS JOIN LATERAL (SELECT " WORKED_ON("x") " AS why) w" \
  " WHERE " where " AND w.why IS NOT NULL ORDER BY x.ordinal LIMIT 1"

status rectifications_untouched(struct call *c, int of_problem, int64_t id) {
  struct num n = num(id);
  const char *params[] = {n.s};
  PGresult *r;
  status s = db_exec(c->db, &r, of_problem ? UNTOUCHED("x.problem_id = $1") : UNTOUCHED("x.id = $1"), 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (PQntuples(r) && of_problem)
    s = fail(c, ST_CONFLICT, "its rectification %s has %s, which stays on record: the problem cannot be deleted",
             PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  else if (PQntuples(r))
    s = fail(c, ST_CONFLICT, "the rectification has %s, which stays on record: it cannot be deleted",
             PQgetvalue(r, 0, 1));
  PQclear(r);
  return s;
}

/* What the public view shows of it (公示) stays editable once the findings are final. */
static status before_change(struct call *c, int deleting) {
  if (!deleting && public_fields_only(c->body))
    return ST_OK;
  status s = inspection_editable(c,
                                 "SELECT i.status FROM rectification_rows r JOIN inspections i ON i.id = r.inspection_id"
                                 " WHERE r.id = $1 FOR SHARE OF i", c->id);
  if (s != ST_OK || deleting)
    return s == ST_OK ? rectifications_untouched(c, 0, c->id) : s;
  if ((s = rectification_deadline_check(c, NULL)) != ST_OK)
    return s;
  return ordinal_for_patch(c, &ORDINALS);
}

const struct resource RECTIFICATIONS = {
  .name = "rectification",
  .collection = "/api/v1/rectifications",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT " TAG_R ", " JSON_OF_R FROM_RJ " WHERE r.id = $1 AND " VISIBLE_R,
  /* The problem first, as a create does: siblings are renumbered under its lock. */
  .sql_lock = "WITH parent AS (SELECT id FROM problems WHERE id = (SELECT problem_id FROM rectifications WHERE id = $1)"
              " FOR UPDATE) SELECT r.version FROM rectifications r, parent WHERE r.id = $1 FOR UPDATE OF r",
  .sql_insert = "INSERT INTO rectifications (problem_id, ordinal, measure, responsible_department_id, deadline,"
                "   public, public_text, created_by)"
                " SELECT $1::bigint, (b->>'ordinal')::int, b->>'measure',"
                "   (b->>'responsible_department_id')::bigint, (b->>'deadline')::date, " PUBLIC_INSERT ", $3::bigint"
                " FROM (SELECT $2::jsonb AS b) s RETURNING id",
  .sql_update = "UPDATE rectifications SET measure = coalesce(b->>'measure', measure),"
                " responsible_department_id = coalesce((b->>'responsible_department_id')::bigint, responsible_department_id),"
                " deadline = CASE WHEN b ? 'deadline' THEN (b->>'deadline')::date ELSE deadline END,"
                " ordinal = coalesce((b->>'ordinal')::int, ordinal), " PUBLIC_UPDATE ","
                " updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "WITH d AS (DELETE FROM rectifications WHERE id = $1 RETURNING problem_id, ordinal)"
                " UPDATE rectifications r SET ordinal = r.ordinal - 1, version = r.version + 1, updated_at = now()"
                " FROM d WHERE r.problem_id = d.problem_id AND r.ordinal > d.ordinal",
  .list = {
    .sql_parent = "SELECT 1 FROM problems p JOIN items it ON it.id = p.item_id"
                  " JOIN inspections i ON i.id = it.inspection_id WHERE p.id = $1 AND ducha_in_scope(i.target_department_id)",
    .sql_page = "SELECT r.ordinal, " JSON_OF_R FROM_RJ " WHERE r.problem_id = $1"
                " AND ($2::int IS NULL OR r.ordinal > $2) ORDER BY r.ordinal LIMIT $3",
    .sql_count = "SELECT count(*) FROM rectifications r WHERE r.problem_id = $1",
  },
  .before_create = before_create,
  .before_change = before_change,
};

/* ---- 整改台账: the ledger ------------------------------------------------------------------- */

static const char *const STATUSES[] = {"pending", "in_progress", "submitted", "closed", NULL};
static const char *const SORTS[] = {"deadline", "-deadline", "updated_at", "-updated_at", NULL};
static const char *const ESCALATIONS[] = {"none", "blue", "yellow", "red", NULL};

/* The order of these is the order of the SQL parameters; sort comes last and is not one. The
 * export takes the same, and its format after them. */
#define LEDGER_FILTER_LIST                                                                     \
  {"status", Q_ENUMS, STATUSES}, {"overdue", Q_BOOL, NULL}, {"responsible_department_id", Q_ID, NULL}, \
  {"include_sub_units", Q_BOOL, NULL}, {"inspection_id", Q_ID, NULL}, {"target_department_id", Q_ID, NULL}, \
  {"task_id", Q_ID, NULL}, {"batch_id", Q_ID, NULL}, {"deadline_from", Q_DATE, NULL}, {"deadline_to", Q_DATE, NULL}, \
  {"q", Q_TEXT, NULL}, {"escalation", Q_ENUMS, ESCALATIONS}, {"sort", Q_ENUM, SORTS}
const struct qparam LEDGER_FILTERS[] = {LEDGER_FILTER_LIST, {0}};
const struct qparam LEDGER_EXPORT_FILTERS[] = {LEDGER_FILTER_LIST, {"format", Q_ENUM, EXPORT_FORMATS}, {0}};
#define LEDGER_NFILTERS 12 /* before sort; the SQL takes 11: the unit and its sub-units become one list */

/* q: the rows whose character pairs (or single character) contain the query's, through the
 * GIN index, then the exact substring among them. */
#define FILTER_L                                                                               \
  " WHERE ($1::text[] IS NULL OR r.status = ANY ($1))"                                         \
  "   AND ($2::boolean IS NULL OR ducha_overdue(r.deadline, r.status) = $2)"                     \
  "   AND ($3::bigint[] IS NULL OR r.responsible_department_id = ANY ($3))"                      \
  "   AND ($4::bigint IS NULL OR r.inspection_id = $4) AND ($5::bigint IS NULL OR r.target_department_id = $5)" \
  "   AND ($6::bigint IS NULL OR r.task_id = $6) AND ($7::bigint IS NULL OR r.batch_id = $7)"  \
  "   AND ($8::date IS NULL OR r.deadline >= $8) AND ($9::date IS NULL OR r.deadline <= $9)"    \
  "   AND ($10::text IS NULL OR (r.search_grams @> ducha_query_ngrams($10)"                     \
  "        AND r.search_text ILIKE ducha_contains($10)))"                                     \
  "   AND ($11::text[] IS NULL OR r.escalation = ANY ($11))"
#define DEADLINE_KEY(t) "coalesce(" t ".deadline, 'infinity'::date)"
/* Staff see every row: their pages walk the rectifications in the page's order, or start from a
 * filter's index, whichever the planner finds cheaper. A department user's pages with a filter
 * that picks rows by what they belong to (units, inspection, target, task, batch), by their
 * text or by their escalation do the same, and keep the rows one of the caller's units reads (rectification_readers,
 * migrations/0008). The page's rows are found first, planned for the filters' values; their
 * JSON comes from SQL_LEDGER_JSON, planned once. */
#define PAGE_L(key, op, dir, type, visible)                                                    \
  "SELECT r.id, NULL, " key "::text" FROM_R FILTER_L visible                                   \
  "   AND ($12::" type " IS NULL OR (" key ", r.id) " op " ($12::" type ", $13::bigint))"       \
  " ORDER BY " key " " dir ", r.id " dir " LIMIT $14"
#define READ_BY_SCOPE                                                                          \
  " AND r.id IN (SELECT x.rectification_id FROM rectification_readers x WHERE x.department_id = ANY (ducha_scope()))"
/* Without such a filter, a department user's page starts from rectification_readers, which keeps
 * each unit's rows in the page's orders with their status and deadline: for every unit of the
 * caller's scope its first rows that pass the status, overdue and deadline filters, read from the
 * index alone; then the first of all those. Every row of the page is among them (fewer than LIMIT
 * rows come before it in its own unit's order, as they all come before it on the page), so a page
 * reads at most LIMIT index entries per unit, whatever the size of the units or of the table. The
 * other filters' parameters must be NULL here: C sends their statements to the other form. */
#define FILTER_X                                                                               \
  " WHERE ($1::text[] IS NULL OR x.status = ANY ($1))"                                         \
  "   AND ($2::boolean IS NULL OR ducha_overdue(x.deadline, x.status) = $2)"                     \
  "   AND ($8::date IS NULL OR x.deadline >= $8) AND ($9::date IS NULL OR x.deadline <= $9)"    \
  "   AND $3::bigint[] IS NULL AND $4::bigint IS NULL AND $5::bigint IS NULL AND $6::bigint IS NULL" \
  "   AND $7::bigint IS NULL AND $10::text IS NULL AND $11::text[] IS NULL"
#define PAGE_BY_UNIT_L(key, op, dir, type)                                                     \
  "SELECT DISTINCT y.id, NULL, y.key::text, y.key FROM unnest(ducha_scope()) s(unit), LATERAL (" \
  "   SELECT x.rectification_id AS id, " key " AS key FROM rectification_readers x" FILTER_X    \
  "     AND x.department_id = s.unit"                                                          \
  "     AND ($12::" type " IS NULL OR (" key ", x.rectification_id) " op " ($12::" type ", $13::bigint))" \
  "   ORDER BY " key " " dir ", x.rectification_id " dir " LIMIT $14) y"                       \
  " ORDER BY y.key " dir ", y.id " dir " LIMIT $14"
#define PAGES_L(visible)                                                                       \
  {PAGE_L(DEADLINE_KEY("r"), ">", "ASC", "date", visible), PAGE_L(DEADLINE_KEY("r"), "<", "DESC", "date", visible), \
   PAGE_L("r.updated_at", ">", "ASC", "timestamptz", visible),                                  \
   PAGE_L("r.updated_at", "<", "DESC", "timestamptz", visible)}

/* The JSON of a page's rows ($1: their ids, in the page's order), planned once. */
static const char *SQL_LEDGER_JSON =
    "SELECT " JSON_OF_R " FROM unnest($1::bigint[]) WITH ORDINALITY u(id, n)"
    " JOIN rectification_rows r ON r.id = u.id"
    " LEFT JOIN extension_requests xr ON xr.rectification_id = r.id AND xr.status = 'pending'"
    " ORDER BY u.n";

/* [staff, department user, department user with a filter of FILTERED_BY][sort] */
static const char *const LEDGER_PAGES[3][4] = {
  PAGES_L(""),
  {PAGE_BY_UNIT_L(DEADLINE_KEY("x"), ">", "ASC", "date"), PAGE_BY_UNIT_L(DEADLINE_KEY("x"), "<", "DESC", "date"),
   PAGE_BY_UNIT_L("x.updated_at", ">", "ASC", "timestamptz"), PAGE_BY_UNIT_L("x.updated_at", "<", "DESC", "timestamptz")},
  PAGES_L(READ_BY_SCOPE)};
/* An exact count of a large result joins every row; past TOTAL_CAP it says TOTAL_CAP. A
 * department user's count counts a rectification once however many of its units read it
 * (DISTINCT). Without a filter of FILTERED_BY it reads the index of rectification_readers alone,
 * unit by unit, at most TOTAL_CAP rows of each: one unit with that many is enough for the cap. */
#define TOTAL_CAP "10000"
static const char *const LEDGER_COUNTS[3] = {
  "SELECT count(*) FROM (SELECT 1" FROM_R FILTER_L " LIMIT " TOTAL_CAP ") s",
  "SELECT count(*) FROM (SELECT DISTINCT y.id FROM unnest(ducha_scope()) s(unit), LATERAL ("
  "   SELECT x.rectification_id AS id FROM rectification_readers x" FILTER_X " AND x.department_id = s.unit"
  "   LIMIT " TOTAL_CAP ") y LIMIT " TOTAL_CAP ") s",
  "SELECT count(*) FROM (SELECT 1" FROM_R FILTER_L READ_BY_SCOPE " LIMIT " TOTAL_CAP ") s"};
/* The filters (indexes of LEDGER_FILTERS) that send a department user's ledger to the third form:
 * the rows they pick are found through their own indexes, not by walking the units' rows. */
static const int FILTERED_BY[] = {2, 4, 5, 6, 7, 10, 11};

/* The responsible units, resolved before the query so that the planner sees the list and can
 * choose the unit index for a small unit and the deadline order for a large one. */
static const char *SQL_UNITS = "SELECT CASE WHEN $2::boolean THEN ducha_subtree($1::bigint) ELSE ARRAY[$1::bigint] END::text";

/* The ledger's statements for the call's filters, with their parameters: the page's (11 filters,
 * then the cursor's sort value and id and the limit) and the count's. */
struct ledger {
  const char *page, *count;
  const char *params[11 + 3];
  PGresult *units; /* the responsible units resolved (params[2] points into it) */
};

static status ledger_of(struct call *c, struct ledger *l) {
  const char *const *v = (const char *const *)c->query.values;
  *l = (struct ledger){0};
  if (v[3] && !v[2]) {
    invalid(c, "/query/include_sub_units", "goes with responsible_department_id");
    return fail(c, ST_BAD_QUERY, "see errors");
  }
  if (v[2]) {
    const char *unit[] = {v[2], v[3] ? v[3] : "false"};
    status s = db_row(c->db, &l->units, SQL_UNITS, 2, unit);
    if (s != ST_OK)
      return resource_db_failure(c, s);
  }
  const char *params[11] = {v[0], v[1], l->units ? PQgetvalue(l->units, 0, 0) : NULL, v[4], v[5], v[6], v[7], v[8],
                            v[9], v[10], v[11]};
  memcpy(l->params, params, sizeof params);
  const char *sort = v[LEDGER_NFILTERS];
  int which = 0;
  while (sort && SORTS[which] && strcmp(SORTS[which], sort))
    which++;
  int form = 0;
  if (c->who.role_bit & ROLE_DEPARTMENT) {
    form = 1;
    for (size_t i = 0; i < sizeof FILTERED_BY / sizeof FILTERED_BY[0]; i++)
      if (v[FILTERED_BY[i]])
        form = 2;
  }
  l->page = LEDGER_PAGES[form][SORTS[which] ? which : 0];
  l->count = LEDGER_COUNTS[form];
  return ST_OK;
}

status rectification_ledger(struct call *c) {
  struct ledger l;
  status s = ledger_of(c, &l);
  if (s == ST_OK)
    s = resource_page(c, l.page, l.count, SQL_LEDGER_JSON, l.params, 11, 1);
  PQclear(l.units);
  return s;
}

status rectification_ledger_walk(struct call *c, int chunk, status (*each)(struct call *c, const char *ids, void *data),
                                 void *data) {
  struct ledger l;
  struct num limit = num(chunk);
  char *key = NULL, id[24] = "";
  status s = ledger_of(c, &l);
  while (s == ST_OK) {
    PGresult *r;
    l.params[11] = key;
    l.params[12] = key ? id : NULL;
    l.params[13] = limit.s;
    if ((s = db_query(c->db, &r, l.page, 14, l.params)) != ST_OK) {
      s = resource_db_failure(c, s);
      break;
    }
    int n = PQntuples(r);
    struct text ids = {0};
    text_put(&ids, "{");
    for (int i = 0; i < n; i++) {
      text_put(&ids, i ? "," : "");
      text_put(&ids, PQgetvalue(r, i, 0));
    }
    text_put(&ids, "}");
    char *list = text_take(&ids, NULL);
    s = !list ? fail(c, ST_INTERNAL, "out of memory") : n ? each(c, list, data) : ST_OK;
    free(list);
    if (n) {
      free(key);
      key = strdup(PQgetvalue(r, n - 1, 2));
      snprintf(id, sizeof id, "%s", PQgetvalue(r, n - 1, 0));
    }
    PQclear(r);
    if (n < chunk || (s == ST_OK && !key))
      break;
  }
  free(key);
  PQclear(l.units);
  return s;
}

/* ---- GET /me/todo: what waits for the caller ------------------------------------------------- */

/* One list of the todo: how many rectifications of rectification_rows r pass where, and the first
 * $1 of them in the order of key, then id, each as item (an expression over r, xr; JSON_OF_R). */
#define TODO(name, where, key, item)                                                            \
  " '" name "', (SELECT json_build_object('count', (SELECT count(*)" FROM_R " WHERE " where "),"  \
  "   'data', coalesce(json_agg(" item " ORDER BY v.key, v.id), '[]'))" FROM_RJ                    \
  "   JOIN (SELECT r.id, " key " AS key" FROM_R " WHERE " where " ORDER BY 2, 1 LIMIT $1) v ON v.id = r.id)"
/* Work starts once the findings are submitted (and pauses while an admin reopens them). */
#define TODO_FINAL "r.inspection_status IN ('submitted', 'closed')"
/* A department user's: what is assigned to its units now, as it acts on them. Sent back (退回) is
 * in_progress after a submission: a rejection, or a revoked closure, keeps submitted_at. Close to
 * the deadline: escalated (督办, migrations/0013): within N working days of it (blue), or past it. */
#define TODO_MINE TODO_FINAL " AND " RECTIFICATION_ASSIGNED("r")
static const char *SQL_TODO_DEPARTMENT =
    "SELECT json_build_object('page_size', $1::int, 'lists', json_build_object("
    TODO("to_start", TODO_MINE " AND r.status = 'pending'", DEADLINE_KEY("r"), JSON_OF_R) ","
    TODO("to_report", TODO_MINE " AND r.status = 'in_progress' AND r.submitted_at IS NULL", DEADLINE_KEY("r"), JSON_OF_R) ","
    TODO("to_resubmit", TODO_MINE " AND r.status = 'in_progress' AND r.submitted_at IS NOT NULL", DEADLINE_KEY("r"),
         JSON_OF_R) ","
    TODO("due_soon", TODO_MINE " AND r.escalation <> 'none'", "r.deadline", JSON_OF_R) "))";
/* Staff's: submissions awaiting verification that the caller did not make (four eyes), oldest
 * first, and pending requests for more time, with the request. */
#define TODO_REQUEST                                                                           \
  "json_build_object('extension_request', json_build_object('id', xr.id, 'deadline', xr.deadline," \
  " 'reason', xr.reason, 'status', xr.status, 'requested_by', (SELECT " USER_REF("u") " FROM users u"     \
  " WHERE u.id = xr.requested_by), 'requested_at', xr.requested_at, 'decided_by', NULL, 'decided_at', NULL," \
  " 'decision_reason', NULL), 'rectification', " JSON_OF_R ")"
static const char *SQL_TODO_STAFF =
    "SELECT json_build_object('page_size', $1::int, 'lists', json_build_object("
    TODO("to_verify", TODO_FINAL " AND r.status = 'submitted' AND r.submitted_by IS DISTINCT FROM ducha_caller_id()",
         "r.submitted_at", JSON_OF_R) ","
    TODO("extension_requests", TODO_FINAL " AND EXISTS (SELECT 1 FROM extension_requests q"
         " WHERE q.rectification_id = r.id AND q.status = 'pending')",
         "(SELECT q.requested_at FROM extension_requests q WHERE q.rectification_id = r.id AND q.status = 'pending')",
         TODO_REQUEST) "))";

/* Lists are for the roles that do the work; a viewer's is empty. */
status rectification_todo(struct call *c) {
  const char *sql = (c->who.role_bit & ROLE_DEPARTMENT) ? SQL_TODO_DEPARTMENT
                    : (c->who.role_bit & ROLES_STAFF)   ? SQL_TODO_STAFF
                                                        : "SELECT json_build_object('page_size', $1::int, 'lists', '{}'::json)";
  const char *params[] = {"20"};
  PGresult *r;
  status s = resource_row(c, "list", &r, sql, 1, params);
  if (s != ST_OK)
    return s;
  s = resource_text(c, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  return s;
}
