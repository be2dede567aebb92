/* 统计: the figures of the 通报 — per inspection, per responsible unit, the tasks x units matrix,
 * the ranking of units, and the trend — each one statement in the request's snapshot (a GET runs
 * REPEATABLE READ READ ONLY) under the reporting budget (DUCHA_REPORT_TIMEOUT), its JSON built by
 * PostgreSQL and passed through.
 *
 * Where its rules live:
 *   - what counts: the rectification in its own inspection only (a carried-over one is linked to
 *     later inspections, never counted there); open = not closed; overdue and escalation as the
 *     ledger derives them (ducha_overdue, ducha_escalation: migrations/0001, 0013); working days
 *     to close = ordinal(local date of closed_at) - ordinal(local date of the inspection's
 *     submission) in working_days (0013);
 *   - who counts what: staff and viewers everything; a department user the rectifications it
 *     reads (rectification_readers, migrations/0008): those of its units (the cells, unit in its
 *     scope) and, counted row by row, those of other units on inspections of its units or once
 *     assigned to them (LIVE_FOREIGN); the ranking is for staff and viewers (routes.c);
 *   - the counts kept ahead: migrations/0016 (statistics_facts, the cells statistics_months and
 *     statistics_days, each unit's working days in order in statistics_units, statistics_trend;
 *     the job `statistics` below moves statistics_state.as_of and counts working days again after
 *     a calendar change, statistics_catch_up);
 *   - parameters: the route's qparam lists below (unknown ones are 400, query.c). */
#include "statistics.h"

#include <stdio.h>
#include <string.h>

#include "resources.h"

const struct qparam STATISTICS_DEPARTMENT_PARAMS[] = {
  {"batch_id", Q_ID, NULL},
  {"inspected_from", Q_DATE, NULL},
  {"inspected_to", Q_DATE, NULL},
  {"checklist_id", Q_ID, NULL},
  {"include_sub_units", Q_BOOL, NULL},
  {0},
};

/* The ranking's: the departments' and format, after them (not an SQL parameter). */
const struct qparam STATISTICS_RANKING_PARAMS[] = {
  {"batch_id", Q_ID, NULL},
  {"inspected_from", Q_DATE, NULL},
  {"inspected_to", Q_DATE, NULL},
  {"checklist_id", Q_ID, NULL},
  {"include_sub_units", Q_BOOL, NULL},
  {"format", Q_ENUM, EXPORT_FORMATS},
  {0},
};

const struct qparam STATISTICS_MATRIX_PARAMS[] = {
  {"batch_id", Q_ID, NULL},
  {"checklist_id", Q_ID, NULL},
  {"inspected_from", Q_DATE, NULL},
  {"inspected_to", Q_DATE, NULL},
  {"format", Q_ENUM, EXPORT_FORMATS}, /* the table as a file (statistics_sheets.c); not an SQL parameter */
  {0},
};

static const char *const INTERVALS[] = {"week", "month", NULL};
const struct qparam STATISTICS_TREND_PARAMS[] = {
  {"interval", Q_ENUM, INTERVALS},
  {"from", Q_DATE, NULL},
  {"to", Q_DATE, NULL},
  {"responsible_department_id", Q_ID, NULL},
  {"include_sub_units", Q_BOOL, NULL},
  {0},
};

/* A figure as a share of another, to 4 places; null when there is nothing to share. */
#define RATE(part, whole) "CASE WHEN " whole " > 0 THEN round(" part "::numeric / " whole ", 4) END"
#define UNIT_REF(alias) "json_build_object('id', " alias ".id, 'name', " alias ".name)"

/* ---- one inspection ------------------------------------------------------------------------ */

static const char *SQL_INSPECTION =
    "SELECT json_build_object('inspection', json_build_object('id', i.id, 'title', i.title,"
    "   'target_department', " UNIT_REF("d") ", 'inspected_on', i.inspected_on, 'status', i.status),"
    " 'rows', (SELECT json_build_object('total', count(*),"
    "     'completed', count(*) FILTER (WHERE it.completion = 'completed'),"
    "     'not_completed', count(*) FILTER (WHERE it.completion = 'not_completed'),"
    "     'not_assessed', count(*) FILTER (WHERE it.completion = 'not_assessed'))"
    "   FROM items it WHERE it.inspection_id = i.id),"
    " 'problems', (SELECT count(*) FROM problems p JOIN items it ON it.id = p.item_id WHERE it.inspection_id = i.id),"
    " 'rectifications', (SELECT json_build_object('total', count(*),"
    "     'pending', count(*) FILTER (WHERE r.status = 'pending'),"
    "     'in_progress', count(*) FILTER (WHERE r.status = 'in_progress'),"
    "     'submitted', count(*) FILTER (WHERE r.status = 'submitted'),"
    "     'closed', count(*) FILTER (WHERE r.status = 'closed'),"
    "     'open', count(*) FILTER (WHERE r.status <> 'closed'),"
    "     'overdue', count(*) FILTER (WHERE ducha_overdue(r.deadline, r.status)),"
    "     'escalation', json_build_object('none', count(*) FILTER (WHERE r.escalation = 'none'),"
    "       'blue', count(*) FILTER (WHERE r.escalation = 'blue'),"
    "       'yellow', count(*) FILTER (WHERE r.escalation = 'yellow'),"
    "       'red', count(*) FILTER (WHERE r.escalation = 'red')),"
    "     'closed_on_time', count(*) FILTER (WHERE r.status = 'closed' AND r.closed_on_time),"
    "     'closed_late', count(*) FILTER (WHERE r.status = 'closed' AND NOT r.closed_on_time),"
    "     'closure_rate', " RATE("count(*) FILTER (WHERE r.status = 'closed')", "count(*)") ","
    "     'on_time_rate', " RATE("count(*) FILTER (WHERE r.status = 'closed' AND r.closed_on_time)",
                                 "count(*) FILTER (WHERE r.status = 'closed')") ")"
    "   FROM rectification_rows r WHERE r.inspection_id = i.id AND " RECTIFICATION_VISIBLE("r.id") "))"
    " FROM inspections i JOIN departments d ON d.id = i.target_department_id"
    " WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)";

/* ---- per responsible unit: the departments and the ranking ---------------------------------- *
 * Parameters: $1 batch_id, $2 inspected_from, $3 inspected_to, $4 checklist_id, $5
 * include_sub_units. Without a batch the figures are sums of cells: the months of the range held
 * whole, the days at its ends; the cells' `overdue` counts deadlines before as_of, and the open
 * rectifications whose deadline lies between as_of (or the red threshold, if earlier) and today
 * correct it and red from the facts' index (BAND). A batch is counted row by row from the facts
 * (LIVE), and so are the rows a department user reads of other units. */

/* The request's constants, once: today and its working day, as_of, whether the calendar moved
 * since the cells' working days were counted (then they are counted from the facts), the red
 * threshold d_red (a deadline before it is more than M working days late, as ducha_escalation
 * says: ordinal(today) - ordinal(deadline) > M), and the whole months [m_lo, m_hi) of [$2, $3]. */
#define K_CTE                                                                                  \
  "k AS (SELECT t.today, st.as_of AS a, st.calendar_version <> nv.version AS stale,"           \
  "   coalesce(nullif(current_setting('ducha.escalation_red_urges', true), ''), '2')::integer AS red_urges," \
  "   coalesce((SELECT w.day + 1 FROM working_days w WHERE w.day <= t.today AND w.ordinal < wt.ordinal"      \
  "     - coalesce(nullif(current_setting('ducha.escalation_red_days', true), ''), '5')::integer"             \
  "     ORDER BY w.day DESC LIMIT 1), '-infinity') AS d_red,"                                  \
  "   CASE WHEN $2::date IS NULL THEN '-infinity' ELSE (date_trunc('month', $2::date - 1) + interval '1 month')::date END AS m_lo," \
  "   CASE WHEN $3::date IS NULL THEN 'infinity' ELSE date_trunc('month', $3::date + 1)::date END AS m_hi" \
  " FROM (SELECT ducha_today() AS today) t JOIN working_days wt ON wt.day = t.today,"          \
  "   statistics_state st, name_versions nv WHERE nv.catalogue = 'calendar')"
#define K(x) "(SELECT " x " FROM k)"

/* The selection, on facts f and on cells c. */
#define SEL_F                                                                                  \
  " AND ($1::bigint IS NULL OR f.batch_id = $1) AND ($4::bigint IS NULL OR f.checklist_id = $4)" \
  " AND ($2::date IS NULL OR f.inspected_on >= $2) AND ($3::date IS NULL OR f.inspected_on <= $3)"
#define SEL_C " AND ($4::bigint IS NULL OR c.checklist_id = $4)"

/* The cells of the range: cols of cell c, for staff (own "") or a department user's units. */
#define CELLS(cols, own, guard)                                                                \
  "SELECT " cols " FROM statistics_months c WHERE $1::bigint IS NULL" guard                    \
  "   AND c.period >= " K("m_lo") " AND c.period < " K("m_hi") SEL_C own                          \
  " UNION ALL SELECT " cols " FROM statistics_days c WHERE $1::bigint IS NULL" guard           \
  "   AND $2::date IS NOT NULL AND c.period >= $2 AND c.period < least(" K("m_lo") ", $3::date + 1)" SEL_C own \
  " UNION ALL SELECT " cols " FROM statistics_days c WHERE $1::bigint IS NULL" guard           \
  "   AND $3::date IS NOT NULL AND c.period >= greatest(" K("m_hi") ", " K("m_lo") ", $2::date) AND c.period <= $3" SEL_C own

/* The facts counted row by row (columns of the target index, so that it alone is read): a
 * batch's of the caller's units, and for a department user what it reads of other units. */
#define FACT_COLS                                                                              \
  "f.unit, f.status, f.deadline, f.urge_count, f.closed_on_time, f.days, f.closed_on, f.submitted_on," \
  " f.created_on"
#define LIVE_BATCH(own) "SELECT " FACT_COLS " FROM statistics_facts f WHERE $1::bigint IS NOT NULL" SEL_F own
#define NOT_OWN(x) " AND NOT " x " = ANY (ducha_scope())"
#define LIVE_FOREIGN(sel)                                                                      \
  "SELECT " FACT_COLS " FROM statistics_facts f WHERE f.unit <> f.target"                      \
  "   AND f.target = ANY (ducha_scope())" NOT_OWN("f.unit") sel                                \
  " UNION ALL SELECT " FACT_COLS " FROM statistics_facts f WHERE f.prior_units <> '{}'"        \
  "   AND f.prior_units && ducha_scope()" NOT_OWN("f.unit") NOT_OWN("f.target") sel
/* A closed fact's working days to close with the calendar of now (while the cells wait for the
 * job to count them again, statistics_state.calendar_version): DAYS_NOW with the joins of
 * NOW_JOINS on fact f. Otherwise each fact's own, as kept. */
#define NOW_JOINS " LEFT JOIN working_days wc ON wc.day = f.closed_on LEFT JOIN working_days ws ON ws.day = f.submitted_on"
#define DAYS_NOW "CASE WHEN f.status = 'closed' THEN wc.ordinal - ws.ordinal END"
/* The facts of live with their working days to close, d: kept, or counted now (two branches, one
 * of them runs: a sub-select in an aggregate's argument would keep PostgreSQL from hashing). */
#define WITH_DAYS(live)                                                                        \
  "SELECT f.*, f.days AS d FROM (" live ") f WHERE NOT " K("stale")                          \
  " UNION ALL SELECT f.*, " DAYS_NOW " FROM (" live ") f" NOW_JOINS " WHERE " K("stale")
#define LIVE_CTE(live)                                                                         \
  "live AS MATERIALIZED (SELECT x.unit, count(*) AS n, sum(x.open) AS open, sum(x.on_time) AS on_time," \
  "   sum(x.late) AS late, sum(x.overdue) AS overdue, sum(x.red) AS red, coalesce(sum(x.days), 0) AS days_sum," \
  "   count(x.days) AS n_days, coalesce(array_agg(x.days) FILTER (WHERE x.days IS NOT NULL), '{}') AS days" \
  " FROM (SELECT f.unit, (f.status <> 'closed')::int AS open,"                                \
  "   (f.status = 'closed' AND f.closed_on_time IS TRUE)::int AS on_time,"                    \
  "   (f.status = 'closed' AND f.closed_on_time IS FALSE)::int AS late,"                        \
  "   (f.status IN ('pending', 'in_progress') AND f.deadline < " K("today") " IS TRUE)::int AS overdue," \
  "   (f.status IN ('pending', 'in_progress') AND (f.deadline < " K("today")                    \
  "    AND (f.deadline < " K("d_red") " OR f.urge_count >= " K("red_urges") ")) IS TRUE)::int AS red, f.d AS days" \
  " FROM (" WITH_DAYS(live) ") f) x GROUP BY x.unit)"

/* Per unit: rectifications, open, closed on time and late, overdue, red, and the working days to
 * close summed and counted. The cells count every rectification with a deadline before as_of as
 * red; BAND takes away those that are not (yet), adds those past the deadline since as_of. */
#define COUNTS_CTE(own_c, own_f)                                                               \
  "counts AS (" CELLS("c.unit, c.n, c.open, c.on_time, c.late, c.overdue, c.overdue AS red,"  \
                      " CASE WHEN " K("stale") " THEN 0 ELSE c.days_sum END AS days_sum,"       \
                      " CASE WHEN " K("stale") " THEN 0 ELSE cardinality(c.days) END AS n_days", own_c, "") \
  " UNION ALL SELECT f.unit, 0, 0, 0, 0, (f.deadline < " K("today") ")::int - (f.deadline < " K("a") ")::int," \
  "   (f.deadline < " K("today") " AND (f.deadline < " K("d_red") " OR f.urge_count >= " K("red_urges") "))::int" \
  "   - (f.deadline < " K("a") ")::int, 0, 0 FROM statistics_facts f WHERE $1::bigint IS NULL AND f.status IN ('pending', 'in_progress')" \
  "   AND f.deadline IS NOT NULL AND f.deadline >= " K("least(a, d_red)") " AND f.deadline < " K("greatest(a, today)") \
  SEL_F own_f                                                                                  \
  " UNION ALL SELECT f.unit, 0, 0, 0, 0, 0, 0, " DAYS_NOW ", 1 FROM statistics_facts f" NOW_JOINS \
  "   WHERE $1::bigint IS NULL AND " K("stale") " AND f.status = 'closed'" SEL_F own_f         \
  " UNION ALL SELECT unit, n, open, on_time, late, overdue, red, days_sum, n_days FROM live)"

/* The units of the list and what each holds: itself, or with include_sub_units its subtree
 * (sub-units, and units merged into any of them, as ducha_subtree). */
#define TREE_CTE                                                                               \
  "tree(root, id) AS (SELECT d.id, d.id FROM departments d UNION SELECT t.root, d.id FROM tree t" \
  "   JOIN departments d ON d.parent_id = t.id OR d.merged_into_id = t.id WHERE $5::boolean)," \
  " u AS (SELECT t.root AS unit, sum(c.n) AS n, sum(c.open) AS open, sum(c.on_time) AS on_time, sum(c.late) AS late," \
  "   sum(c.overdue) AS overdue, sum(c.red) AS red, sum(c.days_sum) AS days_sum, sum(c.n_days) AS n_days" \
  "   FROM counts c JOIN tree t ON t.id = c.unit GROUP BY t.root HAVING sum(c.n) > 0)"

#define FILTERS_JSON                                                                           \
  "'include_sub_units', coalesce($5::boolean, false), 'batch_id', $1::bigint, 'checklist_id', $4::bigint," \
  " 'inspected_from', $2::date, 'inspected_to', $3::date"
#define MEAN "CASE WHEN u.n_days > 0 THEN round(u.days_sum::numeric / u.n_days, 1) END"

/* The working days to close of each unit's closed rectifications, for the median: without a
 * range of dates each unit's own, kept in order (statistics_units); else the cells'; and those
 * counted row by row. `sorted`: a unit's (or a root's) came in order, from one row of
 * statistics_units, so that its median is its middle. */
#define DAYS_CTE(own_c, own_f)                                                                 \
  "days AS MATERIALIZED (SELECT c.unit, ducha_array_cat(c.days) AS days, count(*) = 1 AND bool_and(c.sorted) AS sorted" \
  " FROM (SELECT c.unit, c.days, true AS sorted FROM statistics_units c"                       \
  "   WHERE $1::bigint IS NULL AND $2::date IS NULL AND $3::date IS NULL AND NOT " K("stale") SEL_C own_c \
  " UNION ALL " CELLS("c.unit, c.days, false", own_c, " AND ($2::date IS NOT NULL OR $3::date IS NOT NULL) AND NOT " K("stale")) \
  " UNION ALL SELECT f.unit, ARRAY[" DAYS_NOW "], false FROM statistics_facts f" NOW_JOINS    \
  "   WHERE $1::bigint IS NULL AND " K("stale") " AND f.status = 'closed'" SEL_F own_f         \
  " UNION ALL SELECT unit, days, false FROM live) c GROUP BY c.unit),"                         \
  " r AS (SELECT t.root, ducha_array_cat(y.days) AS days, count(*) = 1 AND bool_and(y.sorted) AS sorted" \
  "   FROM tree t JOIN days y ON y.unit = t.id GROUP BY t.root)"
/* The median of r.days: its middle when in order, else sorted by percentile_cont. */
#define MEDIAN                                                                                 \
  "CASE WHEN r.sorted THEN (r.days[(cardinality(r.days) + 1) / 2] + r.days[cardinality(r.days) / 2 + 1])::float8 / 2" \
  " ELSE (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(r.days) x) END"

#define DEPARTMENTS_SQL(own_c, own_f, live)                                                    \
  "WITH RECURSIVE " K_CTE ", " LIVE_CTE(live) ", " COUNTS_CTE(own_c, own_f) ", " TREE_CTE ", " DAYS_CTE(own_c, own_f) \
  " SELECT json_build_object(" FILTERS_JSON ","                                                 \
  " 'data', coalesce(json_agg(json_build_object('department', " UNIT_REF("d") ", 'rectifications', u.n," \
  "   'open', u.open, 'overdue', u.overdue, 'red', u.red, 'closed', u.n - u.open,"        \
  "   'closed_on_time', u.on_time, 'closed_late', u.late,"                                     \
  "   'working_days_to_close', json_build_object('median', " MEDIAN ", 'mean', " MEAN "))"     \
  "   ORDER BY d.id), '[]'))"                                                                  \
  " FROM u JOIN departments d ON d.id = u.unit LEFT JOIN r ON r.root = u.unit"

#define OWN_C " AND c.unit = ANY (ducha_scope())"
#define OWN_F " AND f.unit = ANY (ducha_scope())"
/* [staff and viewers, department users] */
static const char *const SQL_DEPARTMENTS[2] = {
  DEPARTMENTS_SQL("", "", LIVE_BATCH("")),
  DEPARTMENTS_SQL(OWN_C, OWN_F, LIVE_BATCH(OWN_F) " UNION ALL " LIVE_FOREIGN(SEL_F)),
};

/* Ordered by closure rate, then on-time rate, then mean working days to close (the values shown,
 * so that units that show the same values share a rank: 1, 1, 3); the units with nothing to
 * rectify in the selection apart. Staff and viewers only (routes.c). */
static const char *SQL_RANKING =
    "WITH RECURSIVE " K_CTE ", " LIVE_CTE(LIVE_BATCH("")) ", " COUNTS_CTE("", "") ", " TREE_CTE ","
    " v AS (SELECT u.*, " RATE("(u.n - u.open)", "u.n") " AS closure_rate,"
    "   " RATE("u.on_time", "(u.n - u.open)") " AS on_time_rate, " MEAN " AS mean FROM u),"
    " ranked AS (SELECT v.*, rank() OVER (ORDER BY v.closure_rate DESC, v.on_time_rate DESC NULLS LAST,"
    "   v.mean NULLS LAST) AS rank FROM v)"
    " SELECT json_build_object(" FILTERS_JSON ","
    " 'data', coalesce((SELECT json_agg(json_build_object('rank', x.rank, 'department', " UNIT_REF("d") ","
    "     'rectifications', x.n, 'closed', x.n - x.open, 'closed_on_time', x.on_time,"
    "     'closure_rate', x.closure_rate, 'on_time_rate', x.on_time_rate, 'mean_working_days_to_close', x.mean)"
    "     ORDER BY x.rank, d.id) FROM ranked x JOIN departments d ON d.id = x.unit), '[]'),"
    " 'without_rectifications', coalesce((SELECT json_agg(" UNIT_REF("d") " ORDER BY d.id) FROM departments d"
    "     WHERE d.kind = 'department' AND d.merged_into_id IS NULL AND d.id NOT IN (SELECT unit FROM u)), '[]'))";

/* ---- the matrix: tasks x target units -------------------------------------------------------- *
 * $1 batch_id, $2 checklist_id, $3 inspected_from, $4 inspected_to. The latest inspection of each
 * target unit in the selection (by date, then id) that the caller reads; each cell is its row
 * for the task: the completion found, and its open rectifications (its own, not carried over). */
static const char *SQL_MATRIX =
    "WITH cl AS (SELECT c.id, c.title, c.version FROM checklists c"
    "   WHERE c.id = coalesce($2::bigint, (SELECT b.checklist_id FROM batches b WHERE b.id = $1))),"
    " sel AS (SELECT DISTINCT ON (i.target_department_id) i.id, i.target_department_id AS unit, i.inspected_on, i.status"
    "   FROM inspections i WHERE ($1::bigint IS NULL OR i.batch_id = $1) AND i.checklist_id = (SELECT id FROM cl)"
    "   AND ($3::date IS NULL OR i.inspected_on >= $3) AND ($4::date IS NULL OR i.inspected_on <= $4)"
    "   AND ducha_in_scope(i.target_department_id)"
    "   ORDER BY i.target_department_id, i.inspected_on DESC, i.id DESC),"
    " cell AS (SELECT s.unit, it.task_id, it.completion, coalesce(o.open, 0) AS open"
    "   FROM sel s JOIN items it ON it.inspection_id = s.id LEFT JOIN (SELECT p.item_id, count(*) AS open"
    "     FROM sel s JOIN items it ON it.inspection_id = s.id JOIN problems p ON p.item_id = it.id"
    "     JOIN rectifications r ON r.problem_id = p.id WHERE r.status <> 'closed' GROUP BY p.item_id) o"
    "   ON o.item_id = it.id),"
    " grid AS (SELECT t.id AS task_id, s.unit, c.completion, c.open FROM tasks t CROSS JOIN sel s"
    "   LEFT JOIN cell c ON c.unit = s.unit AND c.task_id = t.id WHERE t.checklist_id = (SELECT id FROM cl)),"
    " totals AS (SELECT count(*) FILTER (WHERE completion = 'completed') AS completed,"
    "   count(*) FILTER (WHERE completion = 'not_completed') AS not_completed,"
    "   count(*) FILTER (WHERE completion = 'not_assessed') AS not_assessed, coalesce(sum(open), 0) AS open FROM grid)"
    " SELECT json_build_object('batch_id', $1::bigint,"
    " 'checklist', (SELECT json_build_object('id', cl.id, 'title', cl.title, 'version', cl.version) FROM cl),"
    " 'inspected_from', $3::date, 'inspected_to', $4::date,"
    " 'units', coalesce((SELECT json_agg(json_build_object('department', " UNIT_REF("d") ","
    "     'inspection', json_build_object('id', s.id, 'inspected_on', s.inspected_on, 'status', s.status),"
    "     'completed', g.completed, 'not_completed', g.not_completed, 'not_assessed', g.not_assessed,"
    "     'open_rectifications', g.open) ORDER BY s.unit)"
    "   FROM sel s JOIN departments d ON d.id = s.unit JOIN (SELECT unit,"
    "     count(*) FILTER (WHERE completion = 'completed') AS completed,"
    "     count(*) FILTER (WHERE completion = 'not_completed') AS not_completed,"
    "     count(*) FILTER (WHERE completion = 'not_assessed') AS not_assessed, coalesce(sum(open), 0) AS open"
    "     FROM grid GROUP BY unit) g ON g.unit = s.unit), '[]'),"
    " 'tasks', coalesce((SELECT json_agg(json_build_object('task', json_build_object('id', t.id, 'seq', t.seq,"
    "     'content', t.content), 'completed', g.completed, 'not_completed', g.not_completed,"
    "     'not_assessed', g.not_assessed, 'open_rectifications', g.open, 'cells', g.cells) ORDER BY t.seq)"
    "   FROM tasks t JOIN (SELECT task_id, count(*) FILTER (WHERE completion = 'completed') AS completed,"
    "     count(*) FILTER (WHERE completion = 'not_completed') AS not_completed,"
    "     count(*) FILTER (WHERE completion = 'not_assessed') AS not_assessed, coalesce(sum(open), 0) AS open,"
    "     json_agg(CASE WHEN completion IS NULL THEN NULL"
    "       ELSE json_build_object('completion', completion, 'open_rectifications', open) END ORDER BY unit) AS cells"
    "     FROM grid GROUP BY task_id) g ON g.task_id = t.id), '[]'),"
    " 'totals', (SELECT json_build_object('completed', completed, 'not_completed', not_completed,"
    "   'not_assessed', not_assessed, 'open_rectifications', open) FROM totals))"
    " FROM cl";

/* ---- the trend --------------------------------------------------------------------------------- *
 * $1 interval, $2 from, $3 to, $4 responsible_department_id, $5 include_sub_units. Per week
 * (from Monday) or month of [from, to] (default: the 12 periods up to today), the rectifications
 * created, closed, and closed late on local dates in it, from the units' rows of statistics_trend
 * (all of them, the unit's, or its sub-units'; there is no all-units row to wait on: migrations/0019);
 * a department user also the rows it reads of other units, from the facts. */
#define TREND_RANGE                                                                            \
  "k AS (SELECT d_from, d_to, date_trunc($1, d_from::timestamp)::date AS p_from FROM (SELECT d_to," \
  "   coalesce($2::date, (date_trunc($1, d_to::timestamp) - ('11 ' || $1)::interval)::date) AS d_from" \
  "   FROM (SELECT coalesce($3::date, ducha_today()) AS d_to) t) t),"                         \
  " units AS (SELECT CASE WHEN $4::bigint IS NULL THEN NULL WHEN $5::boolean THEN ducha_subtree($4)" \
  "   ELSE ARRAY[$4::bigint] END AS a)"
#define TREND_ROWS(own)                                                                        \
  "SELECT t.day, t.created, t.closed, t.closed_late FROM statistics_trend t"                  \
  " WHERE ($4::bigint IS NULL OR t.unit = ANY ((SELECT a FROM units)::bigint[]))" own           \
  "   AND t.day >= " K("d_from") " AND t.day <= " K("d_to")
/* What a department user reads of other units, in one pass: per day created, and per day closed
 * (two grouping sets). */
#define TREND_FOREIGN                                                                          \
  " UNION ALL SELECT g.day, g.created, g.closed, g.late FROM (SELECT"                          \
  "   CASE WHEN grouping(f.created_on) = 0 THEN f.created_on ELSE f.closed_on END AS day,"    \
  "   CASE WHEN grouping(f.created_on) = 0 THEN count(*) ELSE 0 END AS created,"              \
  "   CASE WHEN grouping(f.created_on) = 1 THEN count(*) FILTER (WHERE f.status = 'closed') ELSE 0 END AS closed," \
  "   CASE WHEN grouping(f.created_on) = 1 THEN count(*) FILTER (WHERE f.status = 'closed'"    \
  "     AND f.closed_on_time IS FALSE) ELSE 0 END AS late"                                     \
  "   FROM (" LIVE_FOREIGN_ROWS ") f GROUP BY GROUPING SETS ((f.created_on), (f.closed_on))) g" \
  "   WHERE g.day >= " K("d_from") " AND g.day <= " K("d_to")
#define UNIT_IN " AND ($4::bigint IS NULL OR f.unit = ANY ((SELECT a FROM units)::bigint[]))"
#define LIVE_FOREIGN_ROWS LIVE_FOREIGN(UNIT_IN)
#define TREND_SQL(own, foreign)                                                                \
  "WITH " TREND_RANGE ", rows AS (" TREND_ROWS(own) foreign "),"                               \
  " periods AS (SELECT p::date AS period, greatest(p::date, k.d_from) AS p_from,"              \
  "   least((p + ('1 ' || $1)::interval)::date - 1, k.d_to) AS p_to"                           \
  "   FROM k, generate_series(k.p_from::timestamp, k.d_to::timestamp, ('1 ' || $1)::interval) p)"                    \
  " SELECT CASE WHEN (SELECT d_from > d_to FROM k) THEN 'order'"                               \
  "   WHEN (SELECT count(*) FROM periods) > 520 THEN 'long' END,"                              \
  " json_build_object('interval', $1::text, 'from', " K("d_from") ", 'to', " K("d_to") ","     \
  "   'responsible_department_id', $4::bigint, 'include_sub_units', coalesce($5::boolean, false)," \
  "   'data', coalesce((SELECT json_agg(json_build_object('period', p.period, 'from', p.p_from, 'to', p.p_to," \
  "     'created', coalesce(x.created, 0), 'closed', coalesce(x.closed, 0), 'closed_late', coalesce(x.late, 0))" \
  "     ORDER BY p.period) FROM periods p LEFT JOIN (SELECT date_trunc($1, r.day::timestamp)::date AS period,"          \
  "     sum(r.created) AS created, sum(r.closed) AS closed, sum(r.closed_late) AS late FROM rows r GROUP BY 1) x" \
  "     ON x.period = p.period), '[]'))"

/* [staff and viewers, department users] */
static const char *const SQL_TREND[2] = {
  TREND_SQL("", ""),
  TREND_SQL(" AND t.unit = ANY (ducha_scope())", TREND_FOREIGN),
};

/* ---- handlers -------------------------------------------------------------------------------- */

/* Runs a report's statement under the reporting budget (DUCHA_REPORT_TIMEOUT, as audit
 * verification), planned for its values so that its optional filters fold away; its one value is
 * the JSON. ST_NOT_FOUND without it. */
static status report(struct call *c, const char *sql, int n, const char *const *params) {
  PGresult *r = NULL;
  status s = resource_report(c);
  if (s != ST_OK)
    return s;
  if ((s = db_query(c->db, &r, sql, n, params)) != ST_OK)
    return resource_db_failure(c, s);
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
    PQclear(r);
    return fail(c, ST_NOT_FOUND, "no such record");
  }
  s = resource_text(c, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
  PQclear(r);
  return s;
}

static status bad_query(struct call *c, const char *name, const char *message) {
  char pointer[64];
  snprintf(pointer, sizeof pointer, "/query/%s", name);
  invalid(c, pointer, message);
  return fail(c, ST_BAD_QUERY, "see errors");
}

/* ST_BAD_QUERY when both dates are there and from comes after to. */
static status range_ok(struct call *c, const char *from, const char *to, const char *to_name) {
  if (from && to && strcmp(from, to) > 0) /* YYYY-MM-DD compares as text */
    return bad_query(c, to_name, "must not be before the start of the range");
  return ST_OK;
}

static int department_user(const struct call *c) { return (c->who.role_bit & ROLE_DEPARTMENT) != 0; }

status statistics_inspection(struct call *c) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  status s = report(c, SQL_INSPECTION, 1, params);
  return s == ST_NOT_FOUND ? fail(c, s, "no such inspection") : s;
}

status statistics_departments(struct call *c) {
  char *const *v = c->query.values;
  status s = range_ok(c, v[1], v[2], "inspected_to");
  return s == ST_OK ? report(c, SQL_DEPARTMENTS[department_user(c)], 5, (const char *const *)v) : s;
}

status statistics_ranking(struct call *c) {
  char *const *v = c->query.values;
  status s = range_ok(c, v[1], v[2], "inspected_to");
  if (s == ST_OK && (s = report(c, SQL_RANKING, 5, (const char *const *)v)) == ST_OK && v[5])
    s = statistics_sheet(c, v[5], 0);
  return s;
}

status statistics_matrix(struct call *c) {
  char *const *v = c->query.values;
  if (!v[0] == !v[1])
    return bad_query(c, v[0] ? "checklist_id" : "batch_id", v[0] ? "give batch_id or checklist_id, not both"
                                                                 : "give batch_id or checklist_id");
  status s = range_ok(c, v[2], v[3], "inspected_to");
  if (s == ST_OK && (s = report(c, SQL_MATRIX, 4, (const char *const *)v)) == ST_NOT_FOUND)
    return fail(c, s, v[0] ? "no such batch" : "no such checklist");
  return s == ST_OK && v[4] ? statistics_sheet(c, v[4], 1) : s;
}

status statistics_trend(struct call *c) {
  char *const *v = c->query.values;
  if (v[4] && !v[3])
    return bad_query(c, "include_sub_units", "goes with responsible_department_id");
  const char *params[] = {v[0] ? v[0] : "month", v[1], v[2], v[3], v[4]};
  PGresult *r = NULL;
  status s = resource_report(c);
  if (s != ST_OK)
    return s;
  if ((s = db_query(c->db, &r, SQL_TREND[department_user(c)], 5, params)) != ST_OK)
    return resource_db_failure(c, s);
  const char *refused = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
  if (refused && !strcmp(refused, "order"))
    s = bad_query(c, v[2] ? "to" : "from", "must not be before the start of the range");
  else if (refused)
    s = bad_query(c, "from", "the range holds more than 520 periods; narrow it or take a longer interval");
  else
    s = resource_text(c, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1));
  PQclear(r);
  return s;
}

/* ---- the job ---------------------------------------------------------------------------------- */

status statistics_job(struct call *c, json_t **result) {
  char out[256];
  status s = db_value(c->db, out, sizeof out, "SELECT statistics_catch_up()::text", 0, NULL);
  if (s == ST_OK)
    *result = json_loads(out, 0, NULL);
  return s;
}
