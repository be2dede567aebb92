/* 整改台账 for download: GET /rectifications/export?format=xlsx|csv with the ledger's filters, one
 * row per rectification. The rows are found by the ledger's own statements
 * (rectification_ledger_walk, rectifications.c), so a department user exports what it may read and
 * nothing more, CHUNK rows at a time, each chunk written to the file before the next is read:
 * memory stays flat however many rows there are. All chunks come from the request's one snapshot
 * (REPEATABLE READ), under the report's budget (DUCHA_REPORT_TIMEOUT) for each statement; the
 * file then goes to the client at its own pace with no database connection held (table.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"
#include "table.h"

#define CHUNK 2000

/* The columns, as the sheet heads them, with their widths. */
static const struct {
  const char *label;
  double width;
  enum table_style style;
} COLUMNS[] = {
  {"编号", 8, T_CENTER},           {"督察", 24, T_CELL},          {"督察对象", 16, T_CELL},
  {"督察时间", 11, T_DATE},        {"任务序号", 6, T_CENTER},     {"工作任务", 40, T_CELL},
  {"问题序号", 6, T_CENTER},       {"存在问题", 36, T_CELL},      {"措施序号", 7, T_CENTER},
  {"整改措施", 40, T_CELL},        {"整改责任主体", 18, T_CELL},  {"整改时限", 11, T_DATE},
  {"状态", 8, T_CENTER},           {"逾期", 6, T_CENTER},         {"督办", 8, T_CENTER},
  {"提交时间", 16, T_TIME},        {"销号时间", 16, T_TIME},      {"创建时间", 16, T_TIME},
  {"更新时间", 16, T_TIME},
};
#define NCOLS ((int)(sizeof COLUMNS / sizeof COLUMNS[0]))

/* One chunk's rows ($1: their ids in the ledger's order), column for column; times in the local
 * zone of deadlines. */
#define LOCAL(t) "to_char(" t " AT TIME ZONE current_setting('ducha.timezone'), 'YYYY-MM-DD HH24:MI')"
static const char *SQL_ROWS =
    "SELECT r.id, r.inspection_title, td.name, i.inspected_on::text, r.item_seq, t.content, r.problem_ordinal,"
    " r.problem_description, r.problem_ordinal || '.' || r.ordinal, r.measure, rd.name, r.deadline::text,"
    " CASE r.status WHEN 'pending' THEN '待整改' WHEN 'in_progress' THEN '整改中' WHEN 'submitted' THEN '已提交'"
    "   ELSE '已销号' END,"
    " CASE WHEN ducha_overdue(r.deadline, r.status) THEN '是' ELSE '否' END,"
    " CASE r.escalation WHEN 'blue' THEN '蓝色' WHEN 'yellow' THEN '黄色' WHEN 'red' THEN '红色' ELSE '无' END,"
    " " LOCAL("r.submitted_at") ", " LOCAL("r.closed_at") ", " LOCAL("r.created_at") ", " LOCAL("r.updated_at")
    " FROM unnest($1::bigint[]) WITH ORDINALITY u(id, n) JOIN rectification_rows r ON r.id = u.id"
    " JOIN inspections i ON i.id = r.inspection_id JOIN tasks t ON t.id = r.task_id"
    " JOIN departments td ON td.id = r.target_department_id JOIN departments rd ON rd.id = r.responsible_department_id"
    " ORDER BY u.n";

struct sink {
  struct table *t;
  long row;
};

static status write_chunk(struct call *c, const char *ids, void *data) {
  struct sink *k = data;
  const char *params[] = {ids};
  PGresult *r;
  status s = db_exec(c->db, &r, SQL_ROWS, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int bad = 0;
  for (int i = 0; i < PQntuples(r) && !bad; i++, k->row++) {
    if (k->row >= table_max_rows(k->t)) {
      bad = 2;
      break;
    }
    for (int col = 0; col < NCOLS && !bad; col++) {
      const char *v = PQgetvalue(r, i, col);
      if (col == 0 || col == 4 || col == 6)
        bad = table_number(k->t, k->row, col, strtod(v, NULL), COLUMNS[col].style);
      else
        bad = table_text(k->t, k->row, col, v, COLUMNS[col].style);
    }
  }
  PQclear(r);
  if (bad == 2)
    return fail(c, ST_CONFLICT, "more than %ld rows: more than an XLSX sheet holds; narrow the filters or ask for csv",
                table_max_rows(k->t) - 1);
  return bad ? fail(c, ST_INTERNAL, "the file could not be written") : ST_OK;
}

status ledger_export(struct call *c) {
  const char *format = c->query.values[13] ? c->query.values[13] : "xlsx";
  char why[128], name[64];
  status s = resource_report(c);
  if (s != ST_OK)
    return s;
  struct sink k = {table_open(format, "整改台账", 1, why, sizeof why), 1};
  if (!k.t)
    return fail(c, ST_INTERNAL, "%s", why);
  int bad = 0;
  for (int col = 0; col < NCOLS; col++)
    bad |= table_text(k.t, 0, col, COLUMNS[col].label, T_HEADER);
  double widths[NCOLS];
  for (int col = 0; col < NCOLS; col++)
    widths[col] = COLUMNS[col].width;
  table_widths(k.t, widths, NCOLS);
  table_print(k.t, 0, NCOLS, 1);
  s = bad ? fail(c, ST_INTERNAL, "the file could not be written") : rectification_ledger_walk(c, CHUNK, write_chunk, &k);
  if (s != ST_OK) {
    table_abort(k.t);
    return s;
  }
  PGresult *today;
  if ((s = db_row(c->db, &today, "SELECT to_char(ducha_today(), 'YYYY-MM-DD')", 0, NULL)) != ST_OK) {
    table_abort(k.t);
    return resource_db_failure(c, s);
  }
  snprintf(name, sizeof name, "整改台账-%s.%s", PQgetvalue(today, 0, 0), format);
  PQclear(today);
  return table_send(c, k.t, name);
}
