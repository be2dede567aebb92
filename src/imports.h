/* What the imports (an inspection's form, units, users) share: the uploaded file read as a
 * spreadsheet within limits, its header row found by the columns' labels, and the per-row
 * report they answer with. Each import plans every change first, reporting what it cannot read
 * and why, then writes the rest in the request's one transaction, one audit event per record
 * changed; with ?dry_run=true it writes nothing and answers the same report. */
#ifndef DUCHA_IMPORTS_H
#define DUCHA_IMPORTS_H

#include "api.h"
#include "sheet.h"

/* The upload of the call as a spreadsheet of at most max_rows rows: 415 when it is neither XLSX
 * nor CSV, 413 past a limit, 400 (pointer /file) when it cannot be read. The caller frees *out
 * with sheet_free whatever the status. */
status import_sheet(struct call *c, int max_rows, struct sheet *out) __attribute__((warn_unused_result));

/* A column of an import: the labels its header may carry (the first is the one exports write). */
struct import_column {
  const char *const *labels;
  int required;
};
/* import_sheet, then import_header, then (units not NULL) the units by name (units_load). */
struct units;
status import_open(struct call *c, int max_rows, const struct import_column *columns, int n, int *col, int *header,
                   struct sheet *out, struct units **units) __attribute__((warn_unused_result));
/* Finds the header row: the first that names every required column. col[i] receives the column
 * of columns[i] (-1 when absent) and *row the header's index in s. ST_INVALID when none does. */
status import_header(struct call *c, const struct sheet *s, const struct import_column *columns, int n, int *col,
                     int *row) __attribute__((warn_unused_result));

/* Text without the white space (ASCII and U+3000 ideographic) at its ends, in place; returns it. */
char *import_trim(char *s);

/* Row i's cell col (-1: a column the file lacks, ""), trimmed, as a copy the caller frees; NULL
 * without memory. */
char *import_cell(const struct sheet *s, int i, int col);

/* The report of one row: {row, changes: [], errors: []} (the caller adds the row's own members). */
json_t *import_row(long number);
/* Adds {column, number, message} to the row's errors; number (1, 1.2) may be NULL. */
void import_error(json_t *row, const char *column, const char *number, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds a change: {what, number, action, field, before, after} (field, before, after may be NULL;
 * before and after are stolen). */
void import_change(json_t *row, const char *what, const char *number, const char *action, const char *field,
                   json_t *before, json_t *after);
/* The answer: {dry_run, format, encoding, rows_read, changed, unchanged, with_errors, rows}, with
 * each row's result: changed, unchanged, error (nothing of it written) or partly (what could be
 * read was written, the rest is in its errors); rows is stolen. */
json_t *import_report(const struct call *c, const struct sheet *s, json_t *rows);
/* The report as the call's answer (rows is stolen). */
void import_answer(struct call *c, const struct sheet *s, json_t *rows);
/* 1 when the call asks for a dry run (?dry_run=true, the route's first query parameter). */
int import_dry_run(const struct call *c);

extern const struct qparam IMPORT_PARAMS[];

#endif
