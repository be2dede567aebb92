#include "table.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xlsxwriter.h>
#include <yder.h>

#include "disposition.h"
#include "sheet.h"
#include "text.h"

#define CSV_MAX_COLS 32
#define TYPE_XLSX "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#define TYPE_CSV "text/csv; charset=utf-8"

struct table {
  int xlsx;
  char path[512];  /* the file being written (XLSX: libxlsxwriter opens it itself at the end) */
  /* XLSX */
  lxw_workbook *wb;
  lxw_worksheet *ws;
  lxw_format *fmt[T__COUNT];
  /* CSV: the row being assembled, written when the next one starts */
  FILE *f;
  long row;
  int ncols;
  char *cells[CSV_MAX_COLS];
};

static const char *tmpdir(void) {
  const char *d = getenv("TMPDIR");
  return d && *d ? d : "/tmp";
}

static void formats(struct table *t) {
  for (int i = 0; i < T__COUNT; i++) {
    lxw_format *f = t->fmt[i] = workbook_add_format(t->wb);
    format_set_font_name(f, "宋体");
    format_set_font_size(f, 11);
    format_set_align(f, LXW_ALIGN_VERTICAL_TOP);
    if (i != T_TITLE && i != T_FIELD) {
      format_set_text_wrap(f);
      format_set_border(f, LXW_BORDER_THIN);
    }
  }
  format_set_align(t->fmt[T_CENTER], LXW_ALIGN_CENTER);
  format_set_font_size(t->fmt[T_TITLE], 18);
  format_set_bold(t->fmt[T_TITLE]);
  format_set_align(t->fmt[T_TITLE], LXW_ALIGN_CENTER);
  format_set_align(t->fmt[T_TITLE], LXW_ALIGN_VERTICAL_CENTER);
  format_set_align(t->fmt[T_FIELD], LXW_ALIGN_VERTICAL_CENTER);
  format_set_bold(t->fmt[T_HEADER]);
  format_set_align(t->fmt[T_HEADER], LXW_ALIGN_CENTER);
  format_set_align(t->fmt[T_HEADER], LXW_ALIGN_VERTICAL_CENTER);
  format_set_bg_color(t->fmt[T_HEADER], 0xD9D9D9);
  format_set_num_format(t->fmt[T_DATE], "yyyy-mm-dd");
  format_set_num_format(t->fmt[T_TIME], "yyyy-mm-dd hh:mm");
}

struct table *table_open(const char *format, const char *sheet, int large, char *why, size_t size) {
  struct table *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(why, size, "out of memory");
    return NULL;
  }
  t->xlsx = !strcmp(format, "xlsx");
  t->row = -1;
  snprintf(t->path, sizeof t->path, "%s/ducha-export-XXXXXX", tmpdir());
  int fd = mkstemp(t->path);
  if (fd < 0) {
    snprintf(why, size, "no temporary file in %s", tmpdir());
    free(t);
    return NULL;
  }
  if (t->xlsx) {
    close(fd);
    lxw_workbook_options opt = {.constant_memory = large ? LXW_TRUE : LXW_FALSE, .tmpdir = (char *)tmpdir()};
    t->wb = workbook_new_opt(t->path, &opt);
    t->ws = t->wb ? workbook_add_worksheet(t->wb, sheet) : NULL;
    if (t->ws)
      formats(t);
  } else {
    unlink(t->path); /* the descriptor is all that is needed */
    t->path[0] = '\0';
    if ((t->f = fdopen(fd, "w+b")) && fwrite("\xEF\xBB\xBF", 1, 3, t->f) != 3) {
      fclose(t->f);
      t->f = NULL;
    }
    if (!t->f)
      close(fd);
  }
  if (t->xlsx ? !t->ws : !t->f) {
    snprintf(why, size, "the %s file cannot be started", format);
    table_abort(t);
    return NULL;
  }
  return t;
}

void table_abort(struct table *t) {
  if (!t)
    return;
  if (t->wb)
    lxw_workbook_free(t->wb); /* nothing is written */
  if (t->path[0])
    unlink(t->path);
  if (t->f)
    fclose(t->f);
  for (int i = 0; i < CSV_MAX_COLS; i++)
    free(t->cells[i]);
  free(t);
}

long table_max_rows(const struct table *t) { return t->xlsx ? LXW_ROW_MAX : 1L << 40; }

/* CSV: writes the row assembled so far (and empty records for rows skipped) before row. */
static int csv_flush(struct table *t, long row) {
  if (row == t->row)
    return 0;
  if (row < t->row)
    return -1; /* rows come in order */
  int rc = 0;
  if (t->row >= 0) {
    struct text line = {0};
    csv_record(&line, (const char *const *)t->cells, t->ncols);
    size_t len;
    char *s = text_take(&line, &len);
    rc = s && fwrite(s, 1, len, t->f) == len ? 0 : -1;
    free(s);
    for (int i = 0; i < t->ncols; i++) {
      free(t->cells[i]);
      t->cells[i] = NULL;
    }
  }
  for (long r = t->row + 1; rc == 0 && r < row && t->row >= 0; r++)
    rc = fputs("\r\n", t->f) < 0 ? -1 : 0;
  t->row = row;
  return rc;
}

static int csv_cell(struct table *t, long row, int col, const char *text) {
  if (col < 0 || col >= CSV_MAX_COLS || csv_flush(t, row))
    return -1;
  free(t->cells[col]);
  t->cells[col] = strdup(text ? text : "");
  if (col >= t->ncols)
    t->ncols = col + 1;
  return t->cells[col] ? 0 : -1;
}

int table_text(struct table *t, long row, int col, const char *text, enum table_style style) {
  if (!t->xlsx)
    return csv_cell(t, row, col, text);
  if (row >= LXW_ROW_MAX)
    return -1;
  lxw_format *f = t->fmt[style];
  if (!text || !*text)
    return worksheet_write_blank(t->ws, (lxw_row_t)row, (lxw_col_t)col, f) == LXW_NO_ERROR ? 0 : -1;
  if (style == T_DATE || style == T_TIME) {
    lxw_datetime d = {0};
    int n = sscanf(text, "%4d-%2d-%2d %2d:%2d", &d.year, &d.month, &d.day, &d.hour, &d.min);
    if (n == 3 || n == 5)
      return worksheet_write_datetime(t->ws, (lxw_row_t)row, (lxw_col_t)col, &d, f) == LXW_NO_ERROR ? 0 : -1;
  }
  return worksheet_write_string(t->ws, (lxw_row_t)row, (lxw_col_t)col, text, f) == LXW_NO_ERROR ? 0 : -1;
}

int table_number(struct table *t, long row, int col, double value, enum table_style style) {
  if (!t->xlsx) {
    char text[32];
    snprintf(text, sizeof text, "%.15g", value);
    return csv_cell(t, row, col, text);
  }
  if (row >= LXW_ROW_MAX)
    return -1;
  return worksheet_write_number(t->ws, (lxw_row_t)row, (lxw_col_t)col, value, t->fmt[style]) == LXW_NO_ERROR ? 0 : -1;
}

int table_merge(struct table *t, long row, int first, int last, const char *text, enum table_style style) {
  if (!t->xlsx)
    return csv_cell(t, row, first, text);
  return worksheet_merge_range(t->ws, (lxw_row_t)row, (lxw_col_t)first, (lxw_row_t)row, (lxw_col_t)last,
                               text ? text : "", t->fmt[style]) == LXW_NO_ERROR ? 0 : -1;
}

void table_widths(struct table *t, const double *widths, int n) {
  for (int i = 0; t->xlsx && i < n; i++)
    worksheet_set_column(t->ws, (lxw_col_t)i, (lxw_col_t)i, widths[i], NULL);
}

void table_print(struct table *t, long header_row, int ncols, int filter) {
  if (!t->xlsx)
    return;
  worksheet_set_landscape(t->ws);
  worksheet_set_paper(t->ws, 9); /* A4 */
  worksheet_set_margins(t->ws, 0.4, 0.4, 0.6, 0.6);
  worksheet_fit_to_pages(t->ws, 1, 0);
  worksheet_repeat_rows(t->ws, (lxw_row_t)header_row, (lxw_row_t)header_row);
  worksheet_freeze_panes(t->ws, (lxw_row_t)header_row + 1, 0);
  worksheet_set_footer(t->ws, "&C第 &P 页，共 &N 页");
  if (filter)
    worksheet_autofilter(t->ws, (lxw_row_t)header_row, 0, (lxw_row_t)header_row, (lxw_col_t)(ncols - 1));
}

/* ---- the download ------------------------------------------------------------------------------ */

struct file_stream {
  int fd;
};

static long file_read(void *data, uint64_t offset, char *out, size_t max) {
  struct file_stream *f = data;
  ssize_t n = pread(f->fd, out, max, (off_t)offset);
  if (n == 0)
    return -1; /* MHD_CONTENT_READER_END_OF_STREAM */
  return n < 0 ? -2 : (long)n;
}

static void file_free(void *data) {
  struct file_stream *f = data;
  close(f->fd);
  free(f);
}

void file_send(struct call *c, int fd, uint64_t size, const char *type, const char *filename) {
  struct file_stream *f = malloc(sizeof *f);
  if (!f) {
    close(fd);
    return;
  }
  f->fd = fd;
  c->stream_read = file_read;
  c->stream_free = file_free;
  c->stream_data = f;
  c->stream_size = size;
  c->stream_type = type;
  disposition_attachment(filename, c->disposition, sizeof c->disposition);
}

status table_send(struct call *c, struct table *t, const char *filename) {
  int fd = -1, ok;
  if (t->xlsx) {
    ok = workbook_close(t->wb) == LXW_NO_ERROR;
    t->wb = NULL;
    if (ok && (fd = open(t->path, O_RDONLY)) < 0)
      ok = 0;
  } else {
    ok = csv_flush(t, t->row + 1) == 0 && fflush(t->f) == 0 && (fd = dup(fileno(t->f))) >= 0;
  }
  const char *type = t->xlsx ? TYPE_XLSX : TYPE_CSV;
  table_abort(t); /* unlinks the file: the descriptor keeps it until the download ends */
  struct stat st;
  if (!ok || fstat(fd, &st)) {
    if (fd >= 0)
      close(fd);
    y_log_message(Y_LOG_LEVEL_ERROR, "an export could not be written (request_id=%s)", c->request_id);
    return fail(c, ST_INTERNAL, "the file could not be written");
  }
  file_send(c, fd, (uint64_t)st.st_size, type, filename);
  return c->stream_read ? ST_OK : fail(c, ST_INTERNAL, "out of memory");
}
