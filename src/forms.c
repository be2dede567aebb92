/* 督察表 in and out of Excel: an inspection's form exported in the seed's own layout (XLSX or
 * CSV) to print and send to the unit, and the filled form imported back.
 *
 * Where its rules live: the layout — the checklist's title, 督察对象 and 督察时间, the seven
 * columns, problems numbered "1." and their measures "1.1" ending in "（时限：YYYY-MM-DD）", the
 * responsible units "1.1 单位" — LABELS, row_cells and the export below; reading a filled one:
 * the numbered entries (split), the deadline (take_deadline), units by name (unit_of); what an
 * import may change and when: only a draft or in-progress inspection, locked for the import
 * (inspection_editable), within the bounds of the problems' and measures' own fields, with
 * deadlines not before today; nothing is ever deleted. The file itself: imports.c, sheet.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imports.h"
#include "resources.h"
#include "table.h"
#include "text.h"
#include "validate.h"

const char *const EXPORT_FORMATS[] = {"xlsx", "csv", NULL};
const struct qparam EXPORT_PARAMS[] = {
  {"format", Q_ENUM, EXPORT_FORMATS},
  {0},
};

/* The seven columns of the seed form, in its order, with the labels an import also accepts. */
enum { C_SEQ, C_TASK, C_COMPLETION, C_PROBLEMS, C_MEASURES, C_UNITS, C_MATERIALS, NCOLS };
static const char *const L_SEQ[] = {"序号", NULL}, *const L_TASK[] = {"工作任务", NULL},
                         *const L_COMPLETION[] = {"完成情况", NULL}, *const L_PROBLEMS[] = {"存在问题", NULL},
                         *const L_MEASURES[] = {"整改措施", NULL},
                         *const L_UNITS[] = {"整改责任主体", "责任主体", "责任单位", NULL},
                         *const L_MATERIALS[] = {"材料提供部门", NULL};
static const struct import_column COLUMNS[NCOLS] = {
  {L_SEQ, 1}, {L_TASK, 1}, {L_COMPLETION, 0}, {L_PROBLEMS, 0}, {L_MEASURES, 0}, {L_UNITS, 0}, {L_MATERIALS, 0},
};
#define LABEL(col) (COLUMNS[col].labels[0])
static const char *const COMPLETED = "已完成", *const NOT_COMPLETED = "未完成";

/* ---- export --------------------------------------------------------------------------------------- */

static const char *SQL_HEAD =
    "SELECT c.title, d.name, i.inspected_on::text FROM inspections i JOIN checklists c ON c.id = i.checklist_id"
    " JOIN departments d ON d.id = i.target_department_id WHERE i.id = $1 AND ducha_in_scope(i.target_department_id)";

static const char *str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* 存在问题, 整改措施 and 整改责任主体 of one row, numbered to match one another. */
static void row_cells(const json_t *row, struct text *problems, struct text *measures, struct text *units) {
  size_t i, j;
  json_t *p, *r;
  char num[48];
  json_array_foreach(json_object_get(row, "problems"), i, p) {
    long a = (long)json_integer_value(json_object_get(p, "ordinal"));
    snprintf(num, sizeof num, "%ld. ", a);
    text_put(problems, i ? "\n" : "");
    text_put(problems, num);
    text_put(problems, str(p, "description"));
    json_array_foreach(json_object_get(p, "rectifications"), j, r) {
      snprintf(num, sizeof num, "%ld.%ld ", a, (long)json_integer_value(json_object_get(r, "ordinal")));
      text_put(measures, measures->len ? "\n" : "");
      text_put(measures, num);
      text_put(measures, str(r, "measure"));
      if (json_is_string(json_object_get(r, "deadline"))) {
        text_put(measures, "（时限：");
        text_put(measures, str(r, "deadline"));
        text_put(measures, "）");
      }
      text_put(units, units->len ? "\n" : "");
      text_put(units, num);
      text_put(units, str(json_object_get(r, "responsible_department"), "name"));
    }
  }
}

static int write_form(struct table *t, PGresult *head, const json_t *form) {
  static const double widths[NCOLS] = {6, 46, 10, 34, 40, 22, 18};
  char field[400];
  int rc = table_merge(t, 0, 0, NCOLS - 1, PQgetvalue(head, 0, 0), T_TITLE);
  snprintf(field, sizeof field, "督察对象：%s", PQgetvalue(head, 0, 1));
  rc |= table_merge(t, 1, 0, 3, field, T_FIELD);
  snprintf(field, sizeof field, "督察时间：%s", PQgetvalue(head, 0, 2));
  rc |= table_merge(t, 1, 4, NCOLS - 1, field, T_FIELD);
  for (int col = 0; col < NCOLS; col++)
    rc |= table_text(t, 2, col, LABEL(col), T_HEADER);
  size_t i, j;
  json_t *row, *m;
  json_array_foreach(json_object_get(form, "rows"), i, row) {
    long at = 3 + (long)i;
    struct text problems = {0}, measures = {0}, units = {0}, materials = {0};
    row_cells(row, &problems, &measures, &units);
    json_array_foreach(json_object_get(row, "material_departments"), j, m) {
      if (j)
        text_put(&materials, "、");
      text_put(&materials, str(m, "name"));
    }
    const char *completion = str(row, "completion");
    rc |= table_number(t, at, C_SEQ, (double)json_integer_value(json_object_get(row, "seq")), T_CENTER);
    rc |= table_text(t, at, C_TASK, str(json_object_get(row, "task"), "content"), T_CELL);
    rc |= table_text(t, at, C_COMPLETION,
                     !strcmp(completion, "completed") ? COMPLETED : !strcmp(completion, "not_completed") ? NOT_COMPLETED : "",
                     T_CENTER);
    struct text *cells[] = {&problems, &measures, &units, &materials};
    for (int k = 0; k < 4; k++) {
      char *s = text_take(cells[k], NULL);
      rc |= table_text(t, at, C_PROBLEMS + k, s, T_CELL);
      free(s);
    }
  }
  table_widths(t, widths, NCOLS);
  table_print(t, 2, NCOLS, 0);
  return rc;
}

status inspection_export(struct call *c) {
  const char *format = c->query.values[0] ? c->query.values[0] : "xlsx";
  char tag[64], why[128], name[600];
  status s = inspection_form_tag(c, c->id, tag, sizeof tag);
  if (s != ST_OK)
    return s;
  snprintf(c->etag_text, sizeof c->etag_text, "\"%c%s\"", format[0], tag);
  if (call_not_modified(c))
    return ST_OK; /* 304: the client's file is current */
  struct num id = num(c->id);
  const char *params[] = {id.s};
  PGresult *head = NULL;
  json_t *form = NULL;
  struct table *t = NULL;
  if ((s = resource_row(c, "inspection", &head, SQL_HEAD, 1, params)) == ST_OK &&
      (s = inspection_form_read(c, c->id, &form)) == ST_OK) {
    if (!(t = table_open(format, "督察表", 0, why, sizeof why)))
      s = fail(c, ST_INTERNAL, "%s", why);
    else if (write_form(t, head, form))
      s = fail(c, ST_INTERNAL, "the form could not be written");
  }
  if (s == ST_OK) {
    snprintf(name, sizeof name, "%s-%s-%s.%s", PQgetvalue(head, 0, 1), PQgetvalue(head, 0, 0), PQgetvalue(head, 0, 2),
             format);
    s = table_send(c, t, name);
  } else {
    table_abort(t);
  }
  PQclear(head);
  json_decref(form);
  return s;
}

/* ---- import: reading the cells ----------------------------------------------------------------------- */

/* One numbered entry of a cell: 2. -> (2, 0), 1.2 -> (1, 2); a = 0 for text before any number. */
struct entry {
  int a, b;
  struct text body;
};

struct entries {
  struct entry *e;
  int n;
};

static void entries_free(struct entries *l) {
  for (int i = 0; i < l->n; i++)
    free(text_take(&l->e[i].body, NULL));
  free(l->e);
  *l = (struct entries){0};
}

/* Digits at *s (at most 4): the number, *s moved past them; -1 when there are none. */
static int digits(const char **s) {
  int v = 0, n = 0;
  while (**s >= '0' && **s <= '9' && n < 5)
    v = v * 10 + (*(*s)++ - '0'), n++;
  return n == 0 || n > 4 ? -1 : v;
}

/* A dot: '.', or the full-width '．' (and, for a problem's number, the enumeration comma '、'). */
static int dot(const char **s, int comma) {
  if (**s == '.')
    return ++*s, 1;
  if (!strncmp(*s, "．", 3) || (comma && !strncmp(*s, "、", 3)))
    return *s += 3, 1;
  return 0;
}

/* The number a line starts with at level 1 ("2." not followed by a digit) or 2 ("1.2"): *a, *b
 * and the text after it (spaces skipped); 0 when the line starts with none. */
static int number_of(const char *line, int level, int *a, int *b, const char **rest) {
  const char *s = line;
  while (*s == ' ' || *s == '\t' || !strncmp(s, "\xE3\x80\x80", 3))
    s += *s == ' ' || *s == '\t' ? 1 : 3;
  *b = 0;
  if ((*a = digits(&s)) < 1 || !dot(&s, level == 1))
    return 0;
  if (level == 2 && (*b = digits(&s)) < 1)
    return 0;
  if (level == 1 && *s >= '0' && *s <= '9')
    return 0; /* "1.2" is not a problem's number */
  while (*s == ' ' || *s == '\t' || !strncmp(s, "\xE3\x80\x80", 3))
    s += *s == ' ' || *s == '\t' ? 1 : 3;
  *rest = s;
  return 1;
}

/* Splits a cell into its numbered entries, in order; a line that starts none continues the
 * entry before it (blank lines before the first are skipped). -1 (why) when the numbers do not
 * go up. */
static int split(const char *cell, int level, struct entries *out, char *why, size_t size) {
  *out = (struct entries){0};
  int rc = 0;
  for (const char *line = cell; *line && rc == 0;) {
    size_t len = strcspn(line, "\n");
    char *copy = strndup(line, len && line[len - 1] == '\r' ? len - 1 : len);
    line += len + (line[len] == '\n');
    int a, b;
    const char *rest = NULL;
    int numbered = copy && number_of(copy, level, &a, &b, &rest);
    struct entry *last = out->n ? &out->e[out->n - 1] : NULL, *e;
    if (!copy) {
      rc = (snprintf(why, size, "out of memory"), -1);
    } else if (!numbered && last) {
      text_put(&last->body, "\n");
      text_put(&last->body, copy);
    } else if (!numbered && !*import_trim(copy)) {
      /* a blank line before the first entry */
    } else if (numbered && last && (a < last->a || (a == last->a && b <= last->b))) {
      snprintf(why, size, "the numbers must go up: %d%s%.0d comes after %d%s%.0d", a, b ? "." : "", b, last->a,
               last->b ? "." : "", last->b);
      rc = -1;
    } else if (!(e = realloc(out->e, (size_t)(out->n + 1) * sizeof *e))) {
      rc = (snprintf(why, size, "out of memory"), -1);
    } else {
      out->e = e;
      e = &out->e[out->n++];
      *e = (struct entry){.a = numbered ? a : 0, .b = numbered ? b : 0};
      text_put(&e->body, numbered ? rest : copy);
    }
    free(copy);
  }
  return rc;
}

/* a and b are the same text but for white space at their ends. */
static int same_text(const char *a, const char *b) {
  char *x = strdup(a), *y = strdup(b);
  int same = x && y && !strcmp(import_trim(x), import_trim(y));
  free(x);
  free(y);
  return same;
}

/* "2026-05-01", "2026/5/1", "2026.5.1", "2026年5月1日" as YYYY-MM-DD; 0 when it is not a date. */
static int parse_date(const char *s, char out[11]) {
  int y, m, d;
  const char *p = s;
  if ((y = digits(&p)) < 1000)
    return 0;
  const char *sep = p;
  if (*p == '-' || *p == '/' || *p == '.')
    p++;
  else if (!strncmp(p, "年", 3))
    p += 3;
  else
    return 0;
  if ((m = digits(&p)) < 1)
    return 0;
  if (*sep == '-' || *sep == '/' || *sep == '.') {
    if (*p++ != *sep)
      return 0;
  } else if (!strncmp(p, "月", 3)) {
    p += 3;
  } else {
    return 0;
  }
  if ((d = digits(&p)) < 1)
    return 0;
  if (!strncmp(p, "日", 3))
    p += 3;
  if (*p)
    return 0;
  snprintf(out, 11, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
  return date_valid(out);
}

/* Takes a trailing "（时限：YYYY-MM-DD）" (or with ASCII brackets and colon) off text, in place,
 * into deadline ("" when there is none). -1 when the brackets hold 时限 but no date. */
static int take_deadline(char *text, char deadline[11]) {
  deadline[0] = '\0';
  import_trim(text);
  char *open = NULL;
  for (char *p = strstr(text, "时限"); p; p = strstr(p + 1, "时限"))
    open = p;
  if (!open)
    return 0;
  char *q = open;
  if (q >= text + 3 && !strncmp(q - 3, "（", 3))
    q -= 3;
  else if (q > text && q[-1] == '(')
    q -= 1;
  else
    return 0;
  size_t len = strlen(text);
  size_t close = len >= 3 && !strcmp(text + len - 3, "）") ? 3 : len >= 1 && text[len - 1] == ')' ? 1 : 0;
  if (!close)
    return 0;
  char inner[64];
  const char *p = open + strlen("时限");
  while (*p == ' ' || !strncmp(p, "：", 3) || *p == ':')
    p += *p == ' ' || *p == ':' ? 1 : 3;
  size_t n = (size_t)(text + len - close - p);
  if (n >= sizeof inner)
    return -1;
  memcpy(inner, p, n);
  inner[n] = '\0';
  if (!parse_date(import_trim(inner), deadline))
    return -1;
  *q = '\0';
  import_trim(text);
  return 0;
}

/* ---- import: the plan ------------------------------------------------------------------------------- */

/* A change to make: the item's completion, a problem or a measure updated or added. */
struct op {
  const struct resource *res;
  int64_t id;     /* the record updated; for an insert, its parent (0: the problem added by op parent) */
  int parent;     /* an added measure of an added problem: that problem's op */
  int insert;
  json_t *fields;
};

struct plan {
  struct call *c;
  char today[16];
  json_t *units;  /* name -> id, or the reason it names none */
  struct op *ops;
  int nops;
};

static int add_op(struct plan *p, const struct resource *res, int64_t id, int parent, int insert, json_t *fields) {
  struct op *ops = realloc(p->ops, (size_t)(p->nops + 1) * sizeof *ops);
  if (!ops) {
    json_decref(fields);
    return -1;
  }
  p->ops = ops;
  p->ops[p->nops] = (struct op){res, id, parent, insert, fields};
  return p->nops++;
}

/* The unit a name means: one department of that name that was not merged. */
static const char *SQL_UNIT =
    "SELECT count(*) FILTER (WHERE d.merged_into_id IS NULL), min(d.id) FILTER (WHERE d.merged_into_id IS NULL),"
    " min(m.name) FROM departments d LEFT JOIN departments m ON m.id = d.merged_into_id WHERE d.name = $1";

/* The id of the unit name names, or 0 with why. */
static int64_t unit_of(struct plan *p, const char *name, char *why, size_t size) {
  json_t *known = json_object_get(p->units, name);
  if (!known) {
    const char *params[] = {name};
    PGresult *r;
    if (db_exec(p->c->db, &r, SQL_UNIT, 1, params) != ST_OK)
      return snprintf(why, size, "the units cannot be looked up now"), 0;
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    char text[300];
    if (n == 1)
      known = json_integer(strtoll(PQgetvalue(r, 0, 1), NULL, 10));
    else if (n > 1)
      snprintf(text, sizeof text, "several units are named %s", name);
    else if (!PQgetisnull(r, 0, 2))
      snprintf(text, sizeof text, "%s was merged into %s", name, PQgetvalue(r, 0, 2));
    else
      snprintf(text, sizeof text, "no unit is named %s", name);
    if (!known)
      known = json_string(text);
    PQclear(r);
    json_object_set_new(p->units, name, known);
  }
  if (json_is_integer(known))
    return json_integer_value(known);
  snprintf(why, size, "%s", json_string_value(known));
  return 0;
}

/* Checks fields against a resource's field table; each problem becomes an error of the row. */
static int fields_ok(json_t *report, const struct field *spec, int creating, json_t *fields, const char *column,
                     const char *number) {
  json_t *errs = json_array();
  size_t n = validate_body(fields, spec, creating, errs), i;
  json_t *e;
  json_array_foreach(errs, i, e) {
    const char *pointer = str(e, "pointer");
    if (e)
      import_error(report, column, number, "%s: %s", *pointer ? pointer + 1 : "", str(e, "message"));
  }
  json_decref(errs);
  return n == 0;
}

static const json_t *nth(const json_t *list, int n) { return n >= 1 ? json_array_get(list, (size_t)n - 1) : NULL; }

/* What the cells of 存在问题 say about the item's problems: updates and additions. added[n - 1]
 * receives the op that adds problem n (-1 when none). */
static void plan_problems(struct plan *p, json_t *report, const json_t *item, const char *cell, int *added, int max) {
  const json_t *have = json_object_get(item, "problems");
  int next = (int)json_array_size(have) + 1;
  char why[200], number[16];
  struct entries l;
  if (split(cell, 1, &l, why, sizeof why)) {
    import_error(report, LABEL(C_PROBLEMS), NULL, "%s", why);
    entries_free(&l);
    return;
  }
  for (int i = 0; i < l.n; i++) {
    struct entry *e = &l.e[i];
    int n = e->a ? e->a : (l.n == 1 ? 1 : 0); /* one problem written without its number is 1. */
    char *text = import_trim(e->body.s ? e->body.s : (char *)"");
    const json_t *old = nth(have, n);
    snprintf(number, sizeof number, "%d", n);
    if (n == 0) {
      import_error(report, LABEL(C_PROBLEMS), NULL, "number each problem: 1. 2. 3.");
      continue;
    }
    if (old ? !*text || same_text(text, str(old, "description")) : n >= next && !*text)
      continue;
    json_t *fields = json_pack("{s:s}", "description", text);
    if (old) {
      if (fields_ok(report, PROBLEMS.patch_fields, 0, fields, LABEL(C_PROBLEMS), number)) {
        import_change(report, "problem", number, "updated", "description", json_string(str(old, "description")),
                      json_string(text));
        add_op(p, &PROBLEMS, json_integer_value(json_object_get(old, "id")), -1, 0, json_incref(fields));
      }
    } else if (n != next || n > max) {
      import_error(report, LABEL(C_PROBLEMS), number, "the row has %d problem%s: a new one is number %d", next - 1,
                   next == 2 ? "" : "s", next);
    } else {
      json_object_set_new(fields, "ordinal", json_integer(n));
      if (fields_ok(report, PROBLEMS.create_fields, 1, fields, LABEL(C_PROBLEMS), number)) {
        import_change(report, "problem", number, "added", NULL, NULL, json_string(text));
        added[n - 1] = add_op(p, &PROBLEMS, json_integer_value(json_object_get(item, "item_id")), -1, 1,
                              json_incref(fields));
        next++;
      }
    }
    json_decref(fields);
  }
  entries_free(&l);
}

/* One measure, as the cells of 整改措施 and 整改责任主体 give it. */
struct measure_in {
  int a, b;
  char *text;        /* NULL when only its unit was given */
  char deadline[11];
  const char *unit;  /* NULL when not given */
};

static int measure_cmp(const void *x, const void *y) {
  const struct measure_in *m = x, *n = y;
  return m->a != n->a ? m->a - n->a : m->b - n->b;
}

/* The measure numbered a.b in list, added when absent. */
static struct measure_in *measure_at(struct measure_in **list, int *n, int a, int b) {
  for (int i = 0; i < *n; i++)
    if ((*list)[i].a == a && (*list)[i].b == b)
      return &(*list)[i];
  struct measure_in *l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
  if (!l)
    return NULL;
  *list = l;
  l[*n] = (struct measure_in){.a = a, .b = b};
  return &l[(*n)++];
}

/* Plans one measure: an update of the measure it matches, or an addition; *next is the number
 * a new measure of its problem takes. */
static void plan_measure(struct plan *p, json_t *report, const json_t *item, struct measure_in *m, const int *added,
                         int max, int *next) {
  char number[24], why[300];
  snprintf(number, sizeof number, "%d.%d", m->a, m->b);
  const json_t *problem = nth(json_object_get(item, "problems"), m->a);
  if (!problem && !(m->a <= max && added[m->a - 1] >= 0)) {
    import_error(report, LABEL(C_MEASURES), number, "the row has no problem %d", m->a);
    return;
  }
  const json_t *old = problem ? nth(json_object_get(problem, "rectifications"), m->b) : NULL;
  int64_t unit = 0;
  if (m->unit && !(unit = unit_of(p, m->unit, why, sizeof why))) {
    import_error(report, LABEL(C_UNITS), number, "%s", why);
    return;
  }
  if (m->deadline[0] && (!old || strcmp(m->deadline, str(old, "deadline"))) && strcmp(m->deadline, p->today) < 0) {
    import_error(report, LABEL(C_MEASURES), number, "the deadline %s is before today (%s)", m->deadline, p->today);
    return;
  }
  json_t *fields = json_object();
  if (old) {
    const json_t *dept = json_object_get(old, "responsible_department");
    if (m->text && *m->text && !same_text(m->text, str(old, "measure")))
      json_object_set_new(fields, "measure", json_string(m->text));
    if (m->deadline[0] && strcmp(m->deadline, str(old, "deadline")))
      json_object_set_new(fields, "deadline", json_string(m->deadline));
    if (m->unit && unit != json_integer_value(json_object_get(dept, "id")))
      json_object_set_new(fields, "responsible_department_id", json_integer(unit));
    if (json_object_size(fields) && fields_ok(report, RECTIFICATIONS.patch_fields, 0, fields, LABEL(C_MEASURES), number)) {
      const char *key;
      json_t *v;
      json_object_foreach(fields, key, v) {
        int is_unit = !strcmp(key, "responsible_department_id");
        import_change(report, "measure", number, "updated", is_unit ? "responsible_department" : key,
                      is_unit ? json_string(str(dept, "name")) : json_incref(json_object_get(old, key)),
                      is_unit ? json_string(m->unit) : json_incref(v));
      }
      add_op(p, &RECTIFICATIONS, json_integer_value(json_object_get(old, "id")), -1, 0, json_incref(fields));
    }
  } else if (m->b != *next) {
    import_error(report, LABEL(C_MEASURES), number, "problem %d has %d measure%s: a new one is %d.%d", m->a, *next - 1,
                 *next == 2 ? "" : "s", m->a, *next);
  } else if (!m->text || !*m->text) {
    import_error(report, LABEL(C_MEASURES), number, "the new measure has no text");
  } else if (!unit) {
    import_error(report, LABEL(C_UNITS), number, "the new measure needs its responsible unit: %s 单位名称", number);
  } else {
    json_object_set_new(fields, "measure", json_string(m->text));
    json_object_set_new(fields, "responsible_department_id", json_integer(unit));
    json_object_set_new(fields, "ordinal", json_integer(m->b));
    if (m->deadline[0])
      json_object_set_new(fields, "deadline", json_string(m->deadline));
    if (fields_ok(report, RECTIFICATIONS.create_fields, 1, fields, LABEL(C_MEASURES), number)) {
      import_change(report, "measure", number, "added", NULL, NULL,
                    json_pack("{s:s, s:s?, s:s}", "measure", m->text, "deadline", m->deadline[0] ? m->deadline : NULL,
                              "responsible_department", m->unit));
      add_op(p, &RECTIFICATIONS, problem ? json_integer_value(json_object_get(problem, "id")) : 0,
             problem ? -1 : added[m->a - 1], 1, json_incref(fields));
      ++*next;
    }
  }
  json_decref(fields);
}

/* What the cells of 整改措施 and 整改责任主体 say about the item's measures. A unit cell with one
 * name and no number names the unit of every measure the row gives. */
static void plan_measures(struct plan *p, json_t *report, const json_t *item, const char *measures,
                          const char *units, const int *added, int max) {
  struct entries lm = {0}, lu = {0};
  struct measure_in *list = NULL;
  int n = 0;
  char why[200], number[24];
  const char *every = NULL;
  if (split(measures, 2, &lm, why, sizeof why)) {
    import_error(report, LABEL(C_MEASURES), NULL, "%s", why);
  } else if (split(units, 2, &lu, why, sizeof why)) {
    import_error(report, LABEL(C_UNITS), NULL, "%s", why);
  } else {
    for (int i = 0; i < lm.n; i++) {
      char *text = import_trim(lm.e[i].body.s ? lm.e[i].body.s : (char *)"");
      struct measure_in *m = lm.e[i].a ? measure_at(&list, &n, lm.e[i].a, lm.e[i].b) : NULL;
      snprintf(number, sizeof number, "%d.%d", lm.e[i].a, lm.e[i].b);
      if (!lm.e[i].a) {
        import_error(report, LABEL(C_MEASURES), NULL, "number each measure after its problem: 1.1, 1.2, 2.1");
      } else if (m && take_deadline(text, m->deadline)) {
        import_error(report, LABEL(C_MEASURES), number, "the deadline cannot be read: write （时限：YYYY-MM-DD）");
        m->a = -1; /* left out */
      } else if (m) {
        m->text = text;
      }
    }
    for (int i = 0; i < lu.n; i++) {
      char *name = import_trim(lu.e[i].body.s ? lu.e[i].body.s : (char *)"");
      struct measure_in *m = lu.e[i].a && *name ? measure_at(&list, &n, lu.e[i].a, lu.e[i].b) : NULL;
      if (!lu.e[i].a && lu.n == 1)
        every = name;
      else if (!lu.e[i].a)
        import_error(report, LABEL(C_UNITS), NULL, "number each unit as its measure is: 1.1 单位名称");
      else if (m)
        m->unit = name;
    }
    if (n)
      qsort(list, (size_t)n, sizeof *list, measure_cmp);
    for (int i = 0, a = 0, next = 0; i < n; i++) {
      if (list[i].a <= 0)
        continue;
      if (list[i].a != a) {
        const json_t *problem = nth(json_object_get(item, "problems"), a = list[i].a);
        next = (int)json_array_size(json_object_get(problem, "rectifications")) + 1;
      }
      if (!list[i].unit)
        list[i].unit = every;
      plan_measure(p, report, item, &list[i], added, max, &next);
    }
  }
  free(list);
  entries_free(&lm);
  entries_free(&lu);
}

/* Plans one row of the file against its item. */
static void plan_row(struct plan *p, json_t *report, const struct sheet *s, int i, const int *col, const json_t *item) {
  char completion[64];
  snprintf(completion, sizeof completion, "%s", col[C_COMPLETION] >= 0 ? sheet_cell(s, i, col[C_COMPLETION]) : "");
  import_trim(completion);
  const char *now = str(item, "completion"), *want = NULL;
  if (!strcmp(completion, COMPLETED))
    want = "completed";
  else if (!strcmp(completion, NOT_COMPLETED))
    want = "not_completed";
  else if (completion[0])
    import_error(report, LABEL(C_COMPLETION), NULL, "cannot read %.40s: write %s or %s", completion, COMPLETED,
                 NOT_COMPLETED);
  if (want && strcmp(want, now)) {
    import_change(report, "completion", NULL, "updated", "completion", json_string(now), json_string(want));
    add_op(p, &ITEMS, json_integer_value(json_object_get(item, "item_id")), -1, 0, json_pack("{s:s}", "completion", want));
  }
  enum { MAX = 200 };
  int added[MAX];
  for (int k = 0; k < MAX; k++)
    added[k] = -1;
  char *problems = strdup(col[C_PROBLEMS] >= 0 ? sheet_cell(s, i, col[C_PROBLEMS]) : "");
  if (problems)
    plan_problems(p, report, item, problems, added, MAX);
  char *measures = strdup(col[C_MEASURES] >= 0 ? sheet_cell(s, i, col[C_MEASURES]) : "");
  char *units = strdup(col[C_UNITS] >= 0 ? sheet_cell(s, i, col[C_UNITS]) : "");
  if (measures && units)
    plan_measures(p, report, item, measures, units, added, MAX);
  free(problems);
  free(measures);
  free(units);
}

/* The 序号 of row i: a whole number; 0 when the cell is empty, -1 when it is not a number. */
static long seq_of(const struct sheet *s, int i, int col) {
  char text[32];
  snprintf(text, sizeof text, "%s", sheet_cell(s, i, col));
  import_trim(text);
  if (!text[0])
    return 0;
  char *end;
  double v = strtod(text, &end);
  return *end || v < 1 || v > 1000000 || v != (double)(long)v ? -1 : (long)v;
}

/* The unit the form's header names (督察对象：…), "" when it names none. */
static void header_target(const struct sheet *s, int header, char *out, size_t size) {
  out[0] = '\0';
  for (int i = 0; i < header; i++)
    for (int k = 0; k < s->rows[i].ncells; k++) {
      const char *v = sheet_cell(s, i, k);
      if (strncmp(v, "督察对象", strlen("督察对象")))
        continue;
      v += strlen("督察对象");
      if (!strncmp(v, "：", 3) || *v == ':')
        v += *v == ':' ? 1 : 3;
      snprintf(out, size, "%s", v);
      import_trim(out);
      for (int next = k + 1; !out[0] && next < s->rows[i].ncells; next++) {
        snprintf(out, size, "%s", sheet_cell(s, i, next));
        import_trim(out);
      }
      if (strspn(out, "_ ") == strlen(out))
        out[0] = '\0';
      return;
    }
}

/* Applies the plan in order: records added get the ids their measures need. */
static status apply(struct plan *p) {
  struct call *c = p->c;
  status s = ST_OK;
  for (int i = 0; i < p->nops && s == ST_OK; i++) {
    struct op *o = &p->ops[i];
    if (!o->insert) {
      s = resource_update(c, o->res, o->id, o->fields);
      continue;
    }
    int64_t parent = o->id ? o->id : p->ops[o->parent].id;
    if ((s = resource_insert(c, o->res, parent, o->fields)) == ST_OK)
      o->id = json_integer_value(json_object_get(c->result, "id"));
  }
  return s;
}

static const char *SQL_LOCK =
    "SELECT status FROM inspections WHERE id = $1 AND ducha_in_scope(target_department_id) FOR UPDATE";

status inspection_import(struct call *c) {
  struct sheet s;
  struct plan p = {.c = c, .units = json_object()};
  json_t *form = NULL, *rows = json_array();
  int col[NCOLS], header;
  char target[256];
  PGresult *today = NULL;
  status st = inspection_editable(c, SQL_LOCK, c->id);
  if (st == ST_OK)
    st = import_open(c, 2000, COLUMNS, NCOLS, col, &header, &s, NULL);
  else
    memset(&s, 0, sizeof s);
  if (st == ST_OK)
    st = inspection_form_read(c, c->id, &form);
  if (st == ST_OK) {
    const char *name = str(json_object_get(json_object_get(form, "inspection"), "target_department"), "name");
    header_target(&s, header, target, sizeof target);
    if (target[0] && strcmp(target, name)) {
      invalid(c, "/file", "the form is of another unit");
      st = fail(c, ST_INVALID, "the form's 督察对象 is %s, but this inspection inspects %s", target, name);
    }
  }
  if (st == ST_OK && (st = db_row(c->db, &today, "SELECT ducha_today()::text", 0, NULL)) != ST_OK)
    st = resource_db_failure(c, st);
  if (st == ST_OK) {
    snprintf(p.today, sizeof p.today, "%s", PQgetvalue(today, 0, 0));
    const json_t *items = json_object_get(form, "rows");
    json_t *seen = json_object();
    for (int i = header + 1; i < s.nrows; i++) {
      long seq = seq_of(&s, i, col[C_SEQ]);
      int empty = 1;
      for (int k = C_COMPLETION; k <= C_UNITS && seq == 0; k++)
        empty &= col[k] < 0 || !*sheet_cell(&s, i, col[k]);
      if (seq == 0 && empty)
        continue; /* a note under the table */
      json_t *report = import_row(s.rows[i].number);
      json_array_append_new(rows, report);
      char key[24];
      snprintf(key, sizeof key, "%ld", seq);
      const json_t *item = NULL;
      for (size_t k = 0; seq > 0 && k < json_array_size(items) && !item; k++)
        if (json_integer_value(json_object_get(json_array_get(items, k), "seq")) == seq)
          item = json_array_get(items, k);
      json_object_set_new(report, "seq", seq > 0 ? json_integer(seq) : json_null());
      if (seq <= 0)
        import_error(report, LABEL(C_SEQ), NULL, seq ? "cannot read %s as a row number" : "%s is empty",
                     seq ? sheet_cell(&s, i, col[C_SEQ]) : LABEL(C_SEQ));
      else if (!item)
        import_error(report, LABEL(C_SEQ), NULL, "the checklist has no row %ld", seq);
      else if (json_object_get(seen, key))
        import_error(report, LABEL(C_SEQ), NULL, "row %ld appears twice (also in row %lld)", seq,
                     (long long)json_integer_value(json_object_get(seen, key)));
      else {
        json_object_set_new(seen, key, json_integer(s.rows[i].number));
        plan_row(&p, report, &s, i, col, item);
      }
    }
    json_decref(seen);
    if (!import_dry_run(c))
      st = apply(&p);
  }
  if (st == ST_OK) {
    import_answer(c, &s, rows);
    rows = NULL;
  }
  for (int i = 0; i < p.nops; i++)
    json_decref(p.ops[i].fields);
  free(p.ops);
  json_decref(p.units);
  json_decref(rows);
  json_decref(form);
  PQclear(today);
  sheet_free(&s);
  return st;
}
