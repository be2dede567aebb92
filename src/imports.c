#include "imports.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "resources.h"
#include "upload.h"
#include "validate.h"

const struct qparam IMPORT_PARAMS[] = {
  {"dry_run", Q_BOOL, NULL},
  {0},
};

int import_dry_run(const struct call *c) { return c->query.values[0] && !strcmp(c->query.values[0], "true"); }

/* An import reads a sheet, never a workbook's other parts: 64 columns, parts unpacked to 32 MiB
 * at most, cells of 256 KiB (Excel's own limit is 32,767 characters), 5,000 zip entries. */
status import_sheet(struct call *c, int max_rows, struct sheet *out) {
  memset(out, 0, sizeof *out);
  const struct upload *u;
  status s = upload_received(c, &u);
  if (s != ST_OK)
    return s;
  void *map = mmap(NULL, u->size, PROT_READ, MAP_PRIVATE, u->fd, 0);
  if (map == MAP_FAILED)
    return fail(c, ST_INTERNAL, "the upload could not be read back");
  const struct sheet_limits lim = {max_rows, 64, 32u << 20, 256u << 10, 5000};
  enum sheet_status st = sheet_read(map, u->size, &lim, out);
  munmap(map, u->size);
  switch (st) {
  case SHEET_OK:
    return ST_OK;
  case SHEET_NOT_A_SHEET:
    return fail(c, ST_UNSUPPORTED_MEDIA, "%s", out->why);
  case SHEET_TOO_BIG:
    return fail(c, ST_TOO_LARGE, "%s", out->why);
  case SHEET_MALFORMED:
    invalid(c, "/file", out->why);
    return fail(c, ST_INVALID, "the file cannot be read: %s", out->why);
  default:
    return fail(c, ST_INTERNAL, "%s", out->why);
  }
}

/* White space the end of a cell may carry: ASCII, no-break space, ideographic space. */
static size_t space_at(const char *s) {
  if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
    return 1;
  if (!strncmp(s, "\xC2\xA0", 2))
    return 2;
  return !strncmp(s, "\xE3\x80\x80", 3) ? 3 : 0;
}

char *import_trim(char *s) {
  size_t n, start = 0;
  while ((n = space_at(s + start)))
    start += n;
  memmove(s, s + start, strlen(s + start) + 1);
  size_t len = strlen(s), end = 0;
  for (size_t i = 0; i < len;) {
    if ((n = space_at(s + i))) {
      i += n;
    } else {
      i++;
      end = i;
    }
  }
  s[end] = '\0';
  return s;
}

/* A label compared without white space anywhere (the source form breaks 整改责任 主体 over two
 * lines) and without case. */
static int label_is(const char *cell, const char *label) {
  size_t n;
  while (*cell || *label) {
    while ((n = space_at(cell)))
      cell += n;
    while ((n = space_at(label)))
      label += n;
    if (!*cell || !*label)
      return !*cell && !*label;
    if (strncasecmp(cell, label, 1))
      return 0;
    cell++, label++;
  }
  return 1;
}

status import_header(struct call *c, const struct sheet *s, const struct import_column *columns, int n, int *col,
                     int *row) {
  for (int i = 0; i < s->nrows && i < 20; i++) {
    int missing = 0;
    for (int j = 0; j < n; j++) {
      col[j] = -1;
      for (int k = 0; k < s->rows[i].ncells && col[j] < 0; k++)
        for (const char *const *l = columns[j].labels; *l && col[j] < 0; l++)
          if (label_is(sheet_cell(s, i, k), *l))
            col[j] = k;
      missing += col[j] < 0 && columns[j].required;
    }
    if (!missing) {
      *row = i;
      return ST_OK;
    }
  }
  char want[200] = "";
  for (int j = 0; j < n; j++)
    if (columns[j].required)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", want[0] ? ", " : "", columns[j].labels[0]);
  invalid(c, "/file", "no header row names the columns it needs");
  return fail(c, ST_INVALID, "the file has no header row with the columns %s in its first 20 rows", want);
}

char *import_cell(const struct sheet *s, int i, int col) {
  char *copy = strdup(col >= 0 ? sheet_cell(s, i, col) : "");
  return copy ? import_trim(copy) : NULL;
}

json_t *import_row(long number) {
  return json_pack("{s:I, s:[], s:[]}", "row", (json_int_t)number, "changes", "errors");
}

void import_error(json_t *row, const char *column, const char *number, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_array_append_new(json_object_get(row, "errors"),
                        json_pack("{s:s?, s:s?, s:s}", "column", column, "number", number, "message", msg));
}

void import_change(json_t *row, const char *what, const char *number, const char *action, const char *field,
                   json_t *before, json_t *after) {
  json_array_append_new(json_object_get(row, "changes"),
                        json_pack("{s:s, s:s?, s:s, s:s?, s:o, s:o}", "what", what, "number", number, "action", action,
                                  "field", field, "before", before ? before : json_null(), "after",
                                  after ? after : json_null()));
}

status import_open(struct call *c, int max_rows, const struct import_column *columns, int n, int *col, int *header,
                   struct sheet *out, struct units **units) {
  status s = import_sheet(c, max_rows, out);
  if (s == ST_OK)
    s = import_header(c, out, columns, n, col, header);
  return s == ST_OK && units ? units_load(c, units) : s;
}

void import_answer(struct call *c, const struct sheet *s, json_t *rows) {
  json_decref(c->result);
  c->result = import_report(c, s, rows);
  c->etag = 0; /* the records the import wrote last set these */
  c->etag_text[0] = c->location[0] = '\0';
}

json_t *import_report(const struct call *c, const struct sheet *s, json_t *rows) {
  json_int_t changed = 0, unchanged = 0, errors = 0;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    int bad = json_array_size(json_object_get(row, "errors")) > 0;
    int moved = json_array_size(json_object_get(row, "changes")) > 0;
    json_object_set_new(row, "result",
                        json_string(bad && moved ? "partly" : bad ? "error" : moved ? "changed" : "unchanged"));
    errors += bad;
    changed += moved;
    unchanged += !moved && !bad;
  }
  return json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "dry_run", import_dry_run(c), "format", s->format,
                   "encoding", s->encoding, "rows_read", (json_int_t)json_array_size(rows), "changed", changed,
                   "unchanged", unchanged, "with_errors", errors, "rows", rows);
}
