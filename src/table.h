/* Tables written for download as XLSX (libxlsxwriter) or CSV (UTF-8 with a BOM, so that Excel
 * shows Chinese), into an unlinked temporary file that is then sent at the client's pace: memory
 * stays flat however many rows there are (XLSX rows go to disk as they are written), and no
 * database connection waits on a slow reader. Rows are written in order, top to bottom. */
#ifndef DUCHA_TABLE_H
#define DUCHA_TABLE_H

#include <stdint.h>

#include "api.h"

enum table_style {
  T_CELL,     /* wrapped text, top-aligned, thin borders */
  T_CENTER,   /* the same, centred */
  T_TITLE,    /* the form's title: large, bold, centred */
  T_FIELD,    /* a header field (督察对象：…) */
  T_HEADER,   /* a column header: bold, centred, shaded, bordered */
  T_DATE,     /* a date given as YYYY-MM-DD; shown as a date in XLSX */
  T_TIME,     /* a local time given as YYYY-MM-DD HH:MM; shown as one in XLSX */
  T__COUNT
};

struct table;

/* A new table in format "xlsx" or "csv" on one sheet named sheet; NULL (and why) on failure.
 * large: XLSX rows go to disk as they are written (libxlsxwriter's constant memory mode). */
struct table *table_open(const char *format, const char *sheet, int large, char *why, size_t size);
/* Writes text (NULL or "": nothing) into row, col. -1 when the row is past what the format holds. */
int table_text(struct table *t, long row, int col, const char *text, enum table_style style)
    __attribute__((warn_unused_result));
int table_number(struct table *t, long row, int col, double value, enum table_style style)
    __attribute__((warn_unused_result));
/* Text across columns first..last of row, merged into one cell in XLSX. */
int table_merge(struct table *t, long row, int first, int last, const char *text, enum table_style style)
    __attribute__((warn_unused_result));
/* Column widths in characters (XLSX only). */
void table_widths(struct table *t, const double *widths, int n);
/* Print set-up (XLSX only): A4 landscape, fitted to the page's width, row header_row (0-based)
 * repeated at the top of every printed page and frozen on screen, page numbers in the footer;
 * with filter, an AutoFilter on the header row over ncols columns. */
void table_print(struct table *t, long header_row, int ncols, int filter);
/* The rows the format can hold (XLSX: 1,048,576). */
long table_max_rows(const struct table *t);

/* Closes the table and makes it the call's streamed response, downloaded as filename (caller's
 * t is gone either way). */
status table_send(struct call *c, struct table *t, const char *filename) __attribute__((warn_unused_result));
void table_abort(struct table *t);

/* Makes the open file fd (size bytes, read from offset 0; owned from now on) the call's
 * streamed response of type, downloaded as filename. */
void file_send(struct call *c, int fd, uint64_t size, const char *type, const char *filename);

#endif
