#include "sheet.h"

#include <iconv.h>
#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "text.h"
#include "validate.h"

/* The state of one read: its limits, its result and its first failure. */
struct reader {
  const struct sheet_limits *lim;
  struct sheet *out;
  enum sheet_status st;
};

static int failed(struct reader *rd, enum sheet_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first failure (later ones follow from it); returns -1 for the caller to pass on. */
static int failed(struct reader *rd, enum sheet_status st, const char *fmt, ...) {
  if (rd->st == SHEET_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->out->why, sizeof rd->out->why, fmt, ap);
    va_end(ap);
    rd->st = st;
  }
  return -1;
}

/* ---- rows -------------------------------------------------------------------------------------- */

struct rowbuf {
  long number;
  int ncells, cap;
  char **cells;
};

static void row_clear(struct rowbuf *r) {
  for (int i = 0; i < r->ncells; i++)
    free(r->cells[i]);
  free(r->cells);
  r->cells = NULL;
  r->ncells = r->cap = 0;
}

/* Sets cell col of the row being built to text[0..len); empty text leaves it empty, a column
 * past the limit is ignored. */
static int row_set(struct reader *rd, struct rowbuf *r, int col, const char *text, size_t len) {
  if (col < 0 || col >= rd->lim->max_cols || len == 0)
    return 0;
  if (len > rd->lim->max_cell)
    return failed(rd, SHEET_TOO_BIG, "row %ld has a cell longer than %zu bytes", r->number, rd->lim->max_cell);
  if (col >= r->cap) {
    int cap = col + 8 > rd->lim->max_cols ? rd->lim->max_cols : col + 8;
    char **cells = realloc(r->cells, (size_t)cap * sizeof *cells);
    if (!cells)
      return failed(rd, SHEET_NO_MEMORY, "out of memory");
    memset(cells + r->cap, 0, (size_t)(cap - r->cap) * sizeof *cells);
    r->cells = cells;
    r->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy)
    return failed(rd, SHEET_NO_MEMORY, "out of memory");
  memcpy(copy, text, len);
  copy[len] = '\0';
  free(r->cells[col]);
  r->cells[col] = copy;
  if (col >= r->ncells)
    r->ncells = col + 1;
  return 0;
}

/* Ends the row: kept when it has a value, dropped otherwise. */
static int row_end(struct reader *rd, struct rowbuf *r) {
  struct sheet *s = rd->out;
  if (r->ncells == 0) {
    row_clear(r);
    return 0;
  }
  if (s->nrows >= rd->lim->max_rows) {
    row_clear(r);
    return failed(rd, SHEET_TOO_BIG, "the sheet has more than %d rows", rd->lim->max_rows);
  }
  if ((s->nrows & (s->nrows - 1)) == 0) { /* 0, 1, 2, 4 ...: grow to twice */
    struct sheet_row *rows = realloc(s->rows, (size_t)(s->nrows ? 2 * s->nrows : 1) * sizeof *rows);
    if (!rows) {
      row_clear(r);
      return failed(rd, SHEET_NO_MEMORY, "out of memory");
    }
    s->rows = rows;
  }
  s->rows[s->nrows++] = (struct sheet_row){r->number, r->ncells, r->cells};
  r->cells = NULL;
  r->ncells = r->cap = 0;
  return 0;
}

void sheet_free(struct sheet *s) {
  for (int i = 0; i < s->nrows; i++) {
    for (int j = 0; j < s->rows[i].ncells; j++)
      free(s->rows[i].cells[j]);
    free(s->rows[i].cells);
  }
  free(s->rows);
  s->rows = NULL;
  s->nrows = 0;
}

const char *sheet_cell(const struct sheet *s, int i, int col) {
  if (i < 0 || i >= s->nrows || col < 0 || col >= s->rows[i].ncells || !s->rows[i].cells[col])
    return "";
  return s->rows[i].cells[col];
}

/* ---- CSV --------------------------------------------------------------------------------------- */

/* A CSV export guards a cell that a spreadsheet would take for a formula (= + - @, a tab or a CR
 * first) with an apostrophe; reading takes it off again. A cell that starts with such an
 * apostrophe itself is guarded too, so that it comes back whole. */
static int formula_lead(const char *s, size_t len) { return len > 0 && strchr("=+-@\t\r", s[0]) && s[0]; }
static int guarded(const char *s, size_t len) {
  return formula_lead(s, len) || (len > 1 && s[0] == '\'' && formula_lead(s + 1, len - 1));
}

static int csv_cell(struct reader *rd, struct rowbuf *r, int col, const char *s, size_t len) {
  if (len > 1 && s[0] == '\'' && formula_lead(s + 1, len - 1))
    s++, len--;
  return row_set(rd, r, col, s, len);
}

/* RFC 4180 records: fields separated by commas, records by CRLF, LF or CR; a quoted field may
 * hold commas, line breaks and doubled quotes. Lenient where Excel is: text after a closing quote
 * is kept, a quote inside an unquoted field is a character. */
static int read_csv(struct reader *rd, const char *p, size_t n) {
  struct rowbuf row = {.number = 1};
  struct text quoted = {0};
  int col = 0, rc = 0;
  size_t i = 0;
  while (rc == 0) {
    if (i < n && p[i] == '"') {
      quoted.len = 0;
      for (i++;;) {
        size_t seg = i;
        while (i < n && p[i] != '"')
          i++;
        text_add(&quoted, p + seg, i - seg);
        if (i >= n) {
          rc = failed(rd, SHEET_MALFORMED, "record %ld: a quoted field is not closed", row.number);
          break;
        }
        if (i + 1 < n && p[i + 1] == '"') {
          text_add(&quoted, "\"", 1);
          i += 2;
          continue;
        }
        i++;
        break;
      }
      size_t seg = i;
      while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r')
        i++;
      text_add(&quoted, p + seg, i - seg);
      if (quoted.failed)
        rc = failed(rd, SHEET_NO_MEMORY, "out of memory");
      if (rc == 0 && quoted.len > rd->lim->max_cell)
        rc = failed(rd, SHEET_TOO_BIG, "record %ld has a cell longer than %zu bytes", row.number, rd->lim->max_cell);
      if (rc == 0)
        rc = csv_cell(rd, &row, col, quoted.s ? quoted.s : "", quoted.len);
    } else {
      size_t seg = i;
      while (i < n && p[i] != ',' && p[i] != '\n' && p[i] != '\r')
        i++;
      rc = csv_cell(rd, &row, col, p + seg, i - seg);
    }
    if (rc)
      break;
    if (i < n && p[i] == ',') {
      i++;
      col++;
      continue;
    }
    rc = row_end(rd, &row);
    row.number++;
    col = 0;
    if (i < n && p[i] == '\r')
      i++;
    if (i < n && p[i] == '\n')
      i++;
    if (i >= n)
      break;
  }
  row_clear(&row);
  free(text_take(&quoted, NULL));
  return rc;
}

/* The text's encoding: UTF-8 (a BOM is dropped) or else GB18030, converted. */
static int read_text(struct reader *rd, const unsigned char *p, size_t n) {
  if (n >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) || (p[0] == 0xFE && p[1] == 0xFF)))
    return failed(rd, SHEET_NOT_A_SHEET, "the file is UTF-16 text: save it as CSV (UTF-8) or as .xlsx");
  if (n >= 8 && !memcmp(p, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8))
    return failed(rd, SHEET_NOT_A_SHEET, "the file is a legacy Office document (.xls): save it as .xlsx or CSV");
  if (memchr(p, 0, n))
    return failed(rd, SHEET_NOT_A_SHEET, "the file is binary data, neither an XLSX workbook nor CSV text");
  rd->out->format = "csv";
  rd->out->encoding = "UTF-8";
  if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) {
    if (!utf8_valid((const char *)p + 3, n - 3))
      return failed(rd, SHEET_MALFORMED, "the file starts with a UTF-8 BOM but is not UTF-8");
    return read_csv(rd, (const char *)p + 3, n - 3);
  }
  if (utf8_valid((const char *)p, n))
    return read_csv(rd, (const char *)p, n);
  iconv_t cd = iconv_open("UTF-8", "GB18030");
  if (cd == (iconv_t)-1)
    return failed(rd, SHEET_NOT_A_SHEET, "the file is not UTF-8, and GB18030 cannot be converted here");
  size_t cap = 2 * n + 4, left = cap, in_left = n;
  char *buf = malloc(cap), *in = (char *)p, *o = buf;
  int rc = 0;
  if (!buf)
    rc = failed(rd, SHEET_NO_MEMORY, "out of memory");
  else if (iconv(cd, &in, &in_left, &o, &left) == (size_t)-1 || in_left ||
           !utf8_valid(buf, (size_t)(o - buf)))
    rc = failed(rd, SHEET_NOT_A_SHEET, "the file is neither UTF-8 nor GB18030 text (byte %zu)", n - in_left);
  iconv_close(cd);
  if (rc == 0) {
    rd->out->encoding = "GB18030";
    rc = read_csv(rd, buf, (size_t)(o - buf));
  }
  free(buf);
  return rc;
}

/* ---- XLSX: SAX over the parts of the zip --------------------------------------------------------- */

/* What every part's SAX state starts with. */
struct sax {
  struct reader *rd;
  xmlParserCtxtPtr ctxt;
  const char *part;
};

static void stop(struct sax *x) { xmlStopParser(x->ctxt); }

/* No spreadsheet part has a DTD; one here is an entity bomb or an external entity in waiting,
 * refused before a single entity is declared. */
static void on_dtd(void *ctx, const xmlChar *name, const xmlChar *external, const xmlChar *system) {
  (void)name, (void)external, (void)system;
  struct sax *x = ctx;
  failed(x->rd, SHEET_MALFORMED, "%s has a DTD, which no spreadsheet has", x->part);
  stop(x);
}

static void on_entity(void *ctx, const xmlChar *name, int type, const xmlChar *public_id, const xmlChar *system_id,
                      xmlChar *content) {
  (void)name, (void)type, (void)public_id, (void)system_id, (void)content;
  on_dtd(ctx, NULL, NULL, NULL);
}

static xmlEntityPtr no_entity(void *ctx, const xmlChar *name) {
  (void)ctx, (void)name;
  return NULL; /* only the five predefined ones, which the parser knows itself */
}

static void quiet(void *ctx, xmlErrorPtr err) { (void)ctx, (void)err; }

/* The value of the attribute local (in any namespace when ns, else in none) of a SAX2 start
 * tag, copied into out; 0 when absent. */
static int attr(const xmlChar **attrs, int n, const char *local, int ns, char *out, size_t size) {
  for (int i = 0; i < n; i++) {
    const xmlChar **a = attrs + 5 * i;
    if (strcmp((const char *)a[0], local) || (ns != 0) != (a[2] != NULL))
      continue;
    size_t len = (size_t)(a[4] - a[3]);
    if (len >= size)
      len = size - 1;
    memcpy(out, a[3], len);
    out[len] = '\0';
    return 1;
  }
  return 0;
}

static int is(const xmlChar *name, const char *want) { return !strcmp((const char *)name, want); }

#define CHUNK 65536

/* Feeds zip entry name through a SAX parser with handler sax and state x. required: a missing
 * entry is a failure (else 1 is returned). The decompressed bytes are counted as they come, so
 * a zip bomb stops at the limit whatever its directory claims. */
static int parse_part(struct reader *rd, zip_t *za, const char *name, int required, xmlSAXHandler *sax,
                      struct sax *x) {
  zip_int64_t idx = zip_name_locate(za, name, ZIP_FL_NOCASE);
  if (idx < 0)
    return required ? failed(rd, SHEET_MALFORMED, "the workbook has no part %s", name) : 1;
  zip_stat_t st;
  if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) && st.size > rd->lim->max_part)
    return failed(rd, SHEET_TOO_BIG, "%s unpacks to more than %zu bytes", name, rd->lim->max_part);
  zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
  if (!zf)
    return failed(rd, SHEET_MALFORMED, "%s cannot be read: %s", name, zip_strerror(za));
  char *buf = malloc(CHUNK);
  x->rd = rd;
  x->part = name;
  x->ctxt = buf ? xmlCreatePushParserCtxt(sax, x, NULL, 0, name) : NULL;
  int rc = 0;
  if (!x->ctxt) {
    rc = failed(rd, SHEET_NO_MEMORY, "out of memory");
  } else {
    xmlCtxtUseOptions(x->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    size_t total = 0;
    for (;;) {
      zip_int64_t n = zip_fread(zf, buf, CHUNK);
      if (n < 0) {
        rc = failed(rd, SHEET_MALFORMED, "%s cannot be unpacked: %s", name, zip_file_strerror(zf));
        break;
      }
      total += (size_t)n;
      if (total > rd->lim->max_part) {
        rc = failed(rd, SHEET_TOO_BIG, "%s unpacks to more than %zu bytes", name, rd->lim->max_part);
        break;
      }
      int perr = xmlParseChunk(x->ctxt, buf, (int)n, n == 0);
      if (rd->st != SHEET_OK) {
        rc = -1;
        break;
      }
      if (perr || !x->ctxt->wellFormed) {
        rc = failed(rd, SHEET_MALFORMED, "%s is not well-formed XML (line %d)", name, xmlSAX2GetLineNumber(x->ctxt));
        break;
      }
      if (n == 0)
        break;
    }
    xmlFreeParserCtxt(x->ctxt);
  }
  free(buf);
  zip_fclose(zf);
  return rc;
}

static void sax_init(xmlSAXHandler *h, startElementNsSAX2Func start, endElementNsSAX2Func end,
                     charactersSAXFunc chars) {
  memset(h, 0, sizeof *h);
  h->initialized = XML_SAX2_MAGIC;
  h->startElementNs = start;
  h->endElementNs = end;
  h->characters = chars;
  h->cdataBlock = chars;
  h->internalSubset = on_dtd;
  h->externalSubset = on_dtd;
  h->entityDecl = on_entity;
  h->getEntity = no_entity;
  h->getParameterEntity = no_entity;
  h->serror = quiet;
}

/* xl/workbook.xml: the relationship id of the first sheet. */
struct workbook_sax {
  struct sax x;
  char rid[128];
};

static void workbook_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
                           const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs) {
  (void)prefix, (void)uri, (void)nns, (void)ns, (void)ndefaulted;
  struct workbook_sax *w = ctx;
  if (!w->rid[0] && is(local, "sheet"))
    attr(attrs, nattrs, "id", 1, w->rid, sizeof w->rid);
}

/* xl/_rels/workbook.xml.rels: where that sheet and the shared strings are. */
struct rels_sax {
  struct sax x;
  const char *rid;
  char sheet[256], strings[256];
};

static void rels_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
                       const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs) {
  (void)prefix, (void)uri, (void)nns, (void)ns, (void)ndefaulted;
  struct rels_sax *r = ctx;
  char id[128], type[256], target[256];
  if (!is(local, "Relationship") || !attr(attrs, nattrs, "Target", 0, target, sizeof target))
    return;
  if (attr(attrs, nattrs, "Id", 0, id, sizeof id) && !strcmp(id, r->rid))
    snprintf(r->sheet, sizeof r->sheet, "%s", target);
  size_t n = attr(attrs, nattrs, "Type", 0, type, sizeof type) ? strlen(type) : 0;
  if (n >= 14 && !strcmp(type + n - 14, "/sharedStrings"))
    snprintf(r->strings, sizeof r->strings, "%s", target);
}

/* A part named by a relationship of xl/workbook.xml: absolute, or relative to xl/. */
static void part_path(const char *target, const char *fallback, char *out, size_t size) {
  if (!target[0])
    snprintf(out, size, "%s", fallback);
  else if (target[0] == '/')
    snprintf(out, size, "%s", target + 1);
  else
    snprintf(out, size, "xl/%s", target);
}

/* xl/sharedStrings.xml: the strings cells refer to by number, kept in one buffer. */
struct strings_sax {
  struct sax x;
  struct text all;  /* the strings, each ending in NUL */
  size_t *at;       /* where each starts in all */
  size_t n, cap;
  int in_si, in_t, in_rph;
  size_t start;     /* where the current string starts */
};

static void strings_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
                          const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs) {
  (void)prefix, (void)uri, (void)nns, (void)ns, (void)nattrs, (void)ndefaulted, (void)attrs;
  struct strings_sax *s = ctx;
  if (is(local, "si")) {
    s->in_si = 1;
    s->start = s->all.len;
  } else if (is(local, "rPh")) {
    s->in_rph++; /* phonetic runs are not the cell's text */
  } else if (is(local, "t") && s->in_si) {
    s->in_t = 1;
  }
}

static void strings_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
  (void)prefix, (void)uri;
  struct strings_sax *s = ctx;
  if (is(local, "t")) {
    s->in_t = 0;
  } else if (is(local, "rPh")) {
    s->in_rph--;
  } else if (is(local, "si") && s->in_si) {
    s->in_si = 0;
    if (s->n == s->cap) {
      size_t cap = s->cap ? 2 * s->cap : 256;
      size_t *at = realloc(s->at, cap * sizeof *at);
      if (!at) {
        failed(s->x.rd, SHEET_NO_MEMORY, "out of memory");
        stop(&s->x);
        return;
      }
      s->at = at;
      s->cap = cap;
    }
    text_add(&s->all, "", 1);
    s->at[s->n++] = s->start;
  }
}

/* Appends a piece of a cell's text to t, where the cell's text starts at start, within the limit
 * of a cell (row: the sheet's row, 0 for a shared string). */
static void append(struct sax *x, struct text *t, size_t start, const xmlChar *ch, int len, long row) {
  if (t->len - start + (size_t)len > x->rd->lim->max_cell) {
    if (row)
      failed(x->rd, SHEET_TOO_BIG, "row %ld has a cell longer than %zu bytes", row, x->rd->lim->max_cell);
    else
      failed(x->rd, SHEET_TOO_BIG, "a shared string is longer than %zu bytes", x->rd->lim->max_cell);
    stop(x);
    return;
  }
  text_add(t, (const char *)ch, (size_t)len);
  if (t->failed) {
    failed(x->rd, SHEET_NO_MEMORY, "out of memory");
    stop(x);
  }
}

static void strings_chars(void *ctx, const xmlChar *ch, int len) {
  struct strings_sax *s = ctx;
  if (s->in_si && s->in_t && !s->in_rph)
    append(&s->x, &s->all, s->start, ch, len, 0);
}

/* The worksheet: rows of cells, each cell's value by its type. */
struct sheet_sax {
  struct sax x;
  const struct strings_sax *strings;
  struct rowbuf row;
  int in_row;
  long last_row;
  int col, last_col;
  char type[16];
  int in_v, in_is, in_t, in_rph;
  struct text value;
};

/* "AB12" -> column 27 (0-based) and row 12; -1 for what it does not give. */
static void cell_ref(const char *ref, int *col, long *row) {
  long c = 0, r = 0;
  const char *p = ref;
  for (; *p >= 'A' && *p <= 'Z' && c <= 100000; p++)
    c = c * 26 + (*p - 'A' + 1);
  for (; *p >= '0' && *p <= '9' && r <= 10000000; p++)
    r = r * 10 + (*p - '0');
  *col = c > 0 && c <= 100000 ? (int)c - 1 : -1;
  *row = r > 0 && r <= 10000000 && !*p ? r : -1;
}

static void sheet_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
                        const xmlChar **ns, int nattrs, int ndefaulted, const xmlChar **attrs) {
  (void)prefix, (void)uri, (void)nns, (void)ns, (void)ndefaulted;
  struct sheet_sax *s = ctx;
  char ref[32];
  if (is(local, "row")) {
    long r = -1;
    if (attr(attrs, nattrs, "r", 0, ref, sizeof ref)) {
      char *end;
      r = strtol(ref, &end, 10);
      r = *end || r <= 0 || r > 10000000 ? -1 : r;
    }
    s->row.number = r > 0 ? r : s->last_row + 1;
    s->last_row = s->row.number;
    s->last_col = -1;
    s->in_row = 1;
  } else if (is(local, "c") && s->in_row) {
    int col = -1;
    long r;
    if (attr(attrs, nattrs, "r", 0, ref, sizeof ref))
      cell_ref(ref, &col, &r);
    s->col = col >= 0 ? col : s->last_col + 1;
    s->last_col = s->col;
    if (!attr(attrs, nattrs, "t", 0, s->type, sizeof s->type))
      s->type[0] = '\0';
    s->value.len = 0;
  } else if (is(local, "v")) {
    s->in_v = 1;
  } else if (is(local, "is")) {
    s->in_is = 1;
  } else if (is(local, "rPh")) {
    s->in_rph++;
  } else if (is(local, "t") && s->in_is) {
    s->in_t = 1;
  }
}

/* The text of the cell just ended, by its type. */
static void cell_end(struct sheet_sax *s) {
  struct reader *rd = s->x.rd;
  const char *v = s->value.s ? s->value.s : "";
  size_t len = s->value.len;
  if (!strcmp(s->type, "s")) {
    char *end;
    long i = strtol(v, &end, 10);
    if (len == 0 || *end || i < 0 || !s->strings || (size_t)i >= s->strings->n) {
      failed(rd, SHEET_MALFORMED, "row %ld refers to shared string %.20s, which the workbook does not have",
             s->row.number, v);
      stop(&s->x);
      return;
    }
    v = s->strings->all.s + s->strings->at[i];
    len = strlen(v);
  } else if (!strcmp(s->type, "b")) {
    v = !strcmp(v, "1") ? "TRUE" : "FALSE";
    len = strlen(v);
  }
  if (row_set(rd, &s->row, s->col, v, len))
    stop(&s->x);
}

static void sheet_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
  (void)prefix, (void)uri;
  struct sheet_sax *s = ctx;
  if (is(local, "v")) {
    s->in_v = 0;
  } else if (is(local, "t")) {
    s->in_t = 0;
  } else if (is(local, "is")) {
    s->in_is = 0;
  } else if (is(local, "rPh")) {
    s->in_rph--;
  } else if (is(local, "c") && s->in_row) {
    text_add(&s->value, "", 0);
    cell_end(s);
  } else if (is(local, "row") && s->in_row) {
    s->in_row = 0;
    if (row_end(s->x.rd, &s->row))
      stop(&s->x);
  }
}

static void sheet_chars(void *ctx, const xmlChar *ch, int len) {
  struct sheet_sax *s = ctx;
  if (s->in_row && (s->in_v || (s->in_is && s->in_t && !s->in_rph)))
    append(&s->x, &s->value, 0, ch, len, s->row.number);
}

/* The end of central directory record: how many entries the zip claims, before libzip reads
 * its directory into memory. -1 when there is none (not a complete zip). */
static long zip_entries(const unsigned char *p, size_t n) {
  if (n < 22)
    return -1;
  size_t lowest = n > 22 + 65535 ? n - 22 - 65535 : 0;
  for (size_t i = n - 22;; i--) {
    if (!memcmp(p + i, "PK\x05\x06", 4))
      return (long)(p[i + 10] | p[i + 11] << 8);
    if (i == lowest)
      return -1;
  }
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

static int read_xlsx(struct reader *rd, const unsigned char *p, size_t n) {
  rd->out->format = "xlsx";
  rd->out->encoding = "UTF-8";
  long entries = zip_entries(p, n);
  if (entries < 0)
    return failed(rd, SHEET_MALFORMED, "the file starts like a zip archive (XLSX) but is not a complete one");
  if (entries >= 0xFFFF || entries > rd->lim->max_entries)
    return failed(rd, SHEET_TOO_BIG, "the zip archive has more than %ld entries", rd->lim->max_entries);
  pthread_once(&xml_once, xml_init);
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t *src = zip_source_buffer_create(p, n, 0, &err);
  zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY, &err) : NULL;
  if (!za) {
    if (src)
      zip_source_free(src);
    failed(rd, SHEET_MALFORMED, "the zip archive cannot be read: %s", zip_error_strerror(&err));
    zip_error_fini(&err);
    return -1;
  }
  zip_error_fini(&err);
  if (zip_name_locate(za, "xl/workbook.xml", ZIP_FL_NOCASE) < 0) {
    zip_discard(za);
    return failed(rd, SHEET_NOT_A_SHEET, "the file is a zip archive but not an XLSX workbook (no xl/workbook.xml)");
  }
  xmlSAXHandler h;
  struct workbook_sax wb = {0};
  struct rels_sax rels = {0};
  struct strings_sax strings = {0};
  struct sheet_sax sheet = {0};
  char sheet_part[520], strings_part[520];
  sax_init(&h, workbook_start, NULL, NULL);
  int rc = parse_part(rd, za, "xl/workbook.xml", 1, &h, &wb.x);
  rels.rid = wb.rid;
  sax_init(&h, rels_start, NULL, NULL);
  if (rc == 0)
    rc = parse_part(rd, za, "xl/_rels/workbook.xml.rels", 0, &h, &rels.x) < 0 ? -1 : 0;
  part_path(wb.rid[0] ? rels.sheet : "", "xl/worksheets/sheet1.xml", sheet_part, sizeof sheet_part);
  part_path(rels.strings, "xl/sharedStrings.xml", strings_part, sizeof strings_part);
  sax_init(&h, strings_start, strings_end, strings_chars);
  if (rc == 0)
    rc = parse_part(rd, za, strings_part, 0, &h, &strings.x) < 0 ? -1 : 0;
  sheet.strings = &strings;
  sax_init(&h, sheet_start, sheet_end, sheet_chars);
  if (rc == 0)
    rc = parse_part(rd, za, sheet_part, 1, &h, &sheet.x);
  row_clear(&sheet.row);
  free(text_take(&sheet.value, NULL));
  free(text_take(&strings.all, NULL));
  free(strings.at);
  zip_discard(za);
  return rc;
}

enum sheet_status sheet_read(const void *data, size_t len, const struct sheet_limits *lim, struct sheet *out) {
  struct reader rd = {lim, out, SHEET_OK};
  const unsigned char *p = data;
  memset(out, 0, sizeof *out);
  if (len == 0)
    failed(&rd, SHEET_MALFORMED, "the file is empty");
  else if (len >= 4 && !memcmp(p, "PK\x03\x04", 4))
    read_xlsx(&rd, p, len);
  else if (len >= 4 && !memcmp(p, "PK", 2))
    failed(&rd, SHEET_NOT_A_SHEET, "the file is an empty or split zip archive, not an XLSX workbook");
  else if (len >= 5 && !memcmp(p, "%PDF-", 5))
    failed(&rd, SHEET_NOT_A_SHEET, "the file is a PDF, neither an XLSX workbook nor CSV text");
  else
    read_text(&rd, p, len);
  if (rd.st == SHEET_OK && out->nrows == 0)
    failed(&rd, SHEET_MALFORMED, "the sheet has no rows with a value");
  return rd.st;
}

/* ---- writing CSV ------------------------------------------------------------------------------- */

void csv_record(struct text *t, const char *const *cells, int n) {
  for (int i = 0; i < n; i++) {
    const char *s = cells[i] ? cells[i] : "";
    size_t len = strlen(s);
    if (i)
      text_add(t, ",", 1);
    if (!strpbrk(s, ",\"\r\n") && !guarded(s, len)) {
      text_add(t, s, len);
      continue;
    }
    text_add(t, "\"", 1);
    if (guarded(s, len))
      text_add(t, "'", 1);
    for (const char *q; (q = strchr(s, '"')); s = q + 1) {
      text_add(t, s, (size_t)(q - s));
      text_add(t, "\"\"", 2);
    }
    text_add(t, s, strlen(s));
    text_add(t, "\"", 1);
  }
  text_add(t, "\r\n", 2);
}
