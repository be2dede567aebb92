/* The 通报's tables as files: format=xlsx|csv on statistics/matrix and statistics/ranking. The
 * figures are the JSON the report built (statistics.c), laid out for print (table.c). */
#include "statistics.h"

#include <stdio.h>
#include <string.h>

#include "table.h"

static const char *completion_label(const char *completion) {
  return !completion                                ? ""
         : !strcmp(completion, "completed")       ? "已完成"
         : !strcmp(completion, "not_completed")   ? "未完成"
                                                   : "未督察";
}

static long figure(const json_t *o, const char *name) { return (long)json_integer_value(json_object_get(o, name)); }

/* A row's, a unit's or the whole table's counts in words. */
static void counts_text(char *out, size_t size, const json_t *counts) {
  snprintf(out, size, "已完成 %ld，未完成 %ld，未督察 %ld；整改中 %ld", figure(counts, "completed"),
           figure(counts, "not_completed"), figure(counts, "not_assessed"), figure(counts, "open_rectifications"));
}

static const char *name_of(const json_t *ref) { return json_string_value(json_object_get(ref, "name")); }

/* Rows 0 (the title) and 1 (the column headers), then one row per task and the totals. */
static int write_matrix(struct table *t, const json_t *m) {
  const json_t *units = json_object_get(m, "units"), *tasks = json_object_get(m, "tasks");
  int nunits = (int)json_array_size(units), last = nunits + 2, bad = 0;
  char text[256];
  snprintf(text, sizeof text, "政务公开督察通报：工作任务 × 督察对象（%s）",
           json_string_value(json_object_get(json_object_get(m, "checklist"), "title")));
  bad |= table_merge(t, 0, 0, last, text, T_TITLE);
  bad |= table_text(t, 1, 0, "序号", T_HEADER) | table_text(t, 1, 1, "工作任务", T_HEADER) |
         table_text(t, 1, last, "合计", T_HEADER);
  size_t i, j;
  json_t *x, *cell;
  json_array_foreach(units, j, x) bad |= table_text(t, 1, 2 + (int)j, name_of(json_object_get(x, "department")), T_HEADER);
  json_array_foreach(tasks, i, x) {
    long row = 2 + (long)i;
    const json_t *task = json_object_get(x, "task");
    bad |= table_number(t, row, 0, (double)figure(task, "seq"), T_CENTER) |
           table_text(t, row, 1, json_string_value(json_object_get(task, "content")), T_CELL);
    json_array_foreach(json_object_get(x, "cells"), j, cell) {
      long open = figure(cell, "open_rectifications");
      snprintf(text, sizeof text, open ? "%s（整改中 %ld）" : "%s",
               completion_label(json_string_value(json_object_get(cell, "completion"))), open);
      bad |= table_text(t, row, 2 + (int)j, json_is_object(cell) ? text : "", T_CENTER);
    }
    counts_text(text, sizeof text, x);
    bad |= table_text(t, row, last, text, T_CELL);
  }
  long totals = 2 + (long)json_array_size(tasks);
  bad |= table_text(t, totals, 1, "合计", T_HEADER);
  json_array_foreach(units, j, x) {
    counts_text(text, sizeof text, x);
    bad |= table_text(t, totals, 2 + (int)j, text, T_CELL);
  }
  counts_text(text, sizeof text, json_object_get(m, "totals"));
  bad |= table_text(t, totals, last, text, T_CELL);
  double widths[3 + 256];
  int n = last + 1 < (int)(sizeof widths / sizeof widths[0]) ? last + 1 : (int)(sizeof widths / sizeof widths[0]);
  for (int k = 0; k < n; k++)
    widths[k] = k == 0 ? 6 : k == 1 ? 40 : k == last ? 24 : 14;
  table_widths(t, widths, n);
  table_print(t, 1, last + 1, 0);
  return bad;
}

static const char *const RANKING_HEADERS[] = {"排名", "责任单位", "整改措施", "已销号", "按期销号",
                                              "销号率", "按期销号率", "平均销号用时（工作日）"};
#define RANKING_COLUMNS (int)(sizeof RANKING_HEADERS / sizeof RANKING_HEADERS[0])

static int number_or_blank(struct table *t, long row, int col, const json_t *v) {
  return json_is_number(v) ? table_number(t, row, col, json_number_value(v), T_CENTER) : table_text(t, row, col, "", T_CENTER);
}

static int write_ranking(struct table *t, const json_t *r) {
  int bad = table_merge(t, 0, 0, RANKING_COLUMNS - 1, "政务公开督察通报：责任单位整改排名", T_TITLE);
  for (int k = 0; k < RANKING_COLUMNS; k++)
    bad |= table_text(t, 1, k, RANKING_HEADERS[k], T_HEADER);
  size_t i;
  json_t *x;
  long row = 2;
  json_array_foreach(json_object_get(r, "data"), i, x) {
    bad |= table_number(t, row, 0, (double)figure(x, "rank"), T_CENTER) |
           table_text(t, row, 1, name_of(json_object_get(x, "department")), T_CELL) |
           table_number(t, row, 2, (double)figure(x, "rectifications"), T_CENTER) |
           table_number(t, row, 3, (double)figure(x, "closed"), T_CENTER) |
           table_number(t, row, 4, (double)figure(x, "closed_on_time"), T_CENTER) |
           number_or_blank(t, row, 5, json_object_get(x, "closure_rate")) |
           number_or_blank(t, row, 6, json_object_get(x, "on_time_rate")) |
           number_or_blank(t, row, 7, json_object_get(x, "mean_working_days_to_close"));
    row++;
  }
  const json_t *apart = json_object_get(r, "without_rectifications");
  if (json_array_size(apart)) {
    bad |= table_merge(t, ++row, 0, RANKING_COLUMNS - 1, "无整改任务的单位", T_FIELD);
    json_array_foreach(apart, i, x) bad |= table_text(t, ++row, 1, name_of(x), T_CELL);
  }
  static const double widths[] = {6, 36, 10, 10, 10, 10, 12, 20};
  table_widths(t, widths, RANKING_COLUMNS);
  table_print(t, 1, RANKING_COLUMNS, 0);
  return bad;
}

status statistics_sheet(struct call *c, const char *format, int matrix) {
  json_t *figures = json_loads(c->text, 0, NULL);
  char why[128], name[128];
  struct table *t = figures ? table_open(format, matrix ? "任务单位矩阵" : "整改排名", 0, why, sizeof why) : NULL;
  status s = ST_OK;
  if (!figures)
    s = fail(c, ST_INTERNAL, "the figures could not be read");
  else if (!t)
    s = fail(c, ST_INTERNAL, "%s", why);
  else if (matrix ? write_matrix(t, figures) : write_ranking(t, figures))
    s = fail(c, ST_INTERNAL, "the table could not be written");
  json_decref(figures);
  if (s != ST_OK) {
    table_abort(t);
    return s;
  }
  snprintf(name, sizeof name, "督察通报-%s.%s", matrix ? "任务单位矩阵" : "整改排名", format);
  return table_send(c, t, name);
}
