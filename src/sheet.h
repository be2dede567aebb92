/* Spreadsheets read: the first sheet of an XLSX workbook (libzip, and libxml2's SAX parser fed
 * piece by piece, so that no part is ever held whole) or CSV text (UTF-8 with or without a BOM,
 * else GB18030, what Excel on Chinese Windows saves), as rows of text cells. What a file is comes
 * from its bytes, never its name. Everything is bounded by struct sheet_limits: a zip bomb, an
 * entity bomb (a DTD is refused outright), a million rows or a huge cell end in a status, not in
 * memory or time. Pure: no database and no server; tests/fuzz drives it directly. */
#ifndef DUCHA_SHEET_H
#define DUCHA_SHEET_H

#include <stddef.h>

struct sheet_limits {
  int max_rows;      /* rows with at least one value */
  int max_cols;      /* columns read; cells further right are ignored */
  size_t max_part;   /* bytes of one decompressed part of the zip (sheet, shared strings) */
  size_t max_cell;   /* bytes of one cell's text */
  long max_entries;  /* entries of the zip's directory */
};

enum sheet_status {
  SHEET_OK = 0,
  SHEET_NOT_A_SHEET, /* neither an XLSX workbook nor CSV text */
  SHEET_TOO_BIG,     /* past a limit */
  SHEET_MALFORMED,   /* an XLSX or CSV that cannot be read */
  SHEET_NO_MEMORY,
};

struct sheet_row {
  long number;  /* as a spreadsheet program shows it: 1-based; CSV: the record's number */
  int ncells;
  char **cells; /* ncells entries, NULL for an empty cell; valid UTF-8 */
};

struct sheet {
  const char *format;   /* "xlsx" or "csv" */
  const char *encoding; /* "UTF-8" or "GB18030" */
  int nrows;            /* rows with a value, in the file's order */
  struct sheet_row *rows;
  char why[240];        /* what was wrong, in plain words, when the status is not SHEET_OK */
};

/* Reads data[0..len) into *out (zeroed first). The caller frees it with sheet_free whatever the
 * status. */
enum sheet_status sheet_read(const void *data, size_t len, const struct sheet_limits *lim, struct sheet *out)
    __attribute__((warn_unused_result));
void sheet_free(struct sheet *s);
/* The text of row i's cell col, "" when it is empty or beyond the row. */
const char *sheet_cell(const struct sheet *s, int i, int col);

/* ---- writing CSV ---------------------------------------------------------------------------- */

struct text;
/* Appends one CSV record of n cells (NULL: empty) to t, quoted where RFC 4180 needs it, ending
 * in CRLF. */
void csv_record(struct text *t, const char *const *cells, int n);

#endif
