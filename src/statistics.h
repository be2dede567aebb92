/* 统计: the figures of the 通报 (GET /api/v1/statistics/...) and the job that keeps their counts
 * current (migrations/0016). */
#ifndef DUCHA_STATISTICS_H
#define DUCHA_STATISTICS_H

#include "api.h"

extern const struct qparam STATISTICS_DEPARTMENT_PARAMS[], STATISTICS_RANKING_PARAMS[], STATISTICS_MATRIX_PARAMS[],
    STATISTICS_TREND_PARAMS[];

status statistics_inspection(struct call *c);
status statistics_departments(struct call *c);
status statistics_matrix(struct call *c);
status statistics_ranking(struct call *c);
status statistics_trend(struct call *c);

/* statistics_sheets.c: the matrix (matrix) or the ranking in c->text (the report's JSON) as a
 * file of format (xlsx or csv), the call's streamed response. */
status statistics_sheet(struct call *c, const char *format, int matrix) __attribute__((warn_unused_result));

/* The periodic job (worker.c): moves the cells' overdue counts on to today and, after a calendar
 * was replaced, counts working days again (statistics_catch_up); *result says what it did. */
status statistics_job(struct call *c, json_t **result);

#endif
