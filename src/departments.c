/* 部门 / 单位: organisations, in a tree through parent_id.
 *
 * Where its rules live: no cycle in the tree, trigger departments_no_cycle (migrations/0001);
 * a merged unit is kept as it was, unmerged below, and nothing new may point at it, triggers
 * *_merged (migrations/0004); what a merge moves and who reads what afterwards, department_merge
 * below and rectification_readers (migrations/0008); a change to the tree or a merge forgets
 * the verified tokens (R_CALLERS on its routes), because scopes are computed from the tree. */
#include "resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "imports.h"

static const char *const KINDS[] = {"department", "group", NULL};

static const struct field CREATE[] = {
  {"name", F_LINE, FIELD_REQUIRED, 1, 100, NULL, 0},
  {"kind", F_ENUM, 0, 0, 0, KINDS, 0},
  {"parent_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"name", F_LINE, 0, 1, 100, NULL, 0},
  {"kind", F_ENUM, 0, 0, 0, KINDS, 0},
  {"parent_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {0},
};

const struct qparam DEPARTMENT_FILTERS[] = {
  {"parent_id", Q_ID, NULL},
  {"kind", Q_ENUMS, KINDS},
  {"q", Q_TEXT, NULL},
  {0},
};

#define JSON_OF_D                                                                              \
  "json_build_object('id', d.id, 'name', d.name, 'kind', d.kind, 'parent_id', d.parent_id,"    \
  " 'parent', CASE WHEN p.id IS NULL THEN NULL ELSE json_build_object('id', p.id, 'name', p.name) END," \
  " 'merged_into_id', d.merged_into_id,"                                                       \
  " 'merged_into', CASE WHEN m.id IS NULL THEN NULL ELSE json_build_object('id', m.id, 'name', m.name) END," \
  " 'merged_at', d.merged_at, 'created_at', d.created_at, 'updated_at', d.updated_at)"
#define FROM_D                                                                                 \
  " FROM departments d LEFT JOIN departments p ON p.id = d.parent_id"                          \
  " LEFT JOIN departments m ON m.id = d.merged_into_id"
/* A department user sees its own unit and what lies under it. */
#define FILTER_D                                                                               \
  " WHERE ducha_in_scope(d.id) AND ($1::bigint IS NULL OR d.parent_id = $1)"                   \
  "   AND ($2::text[] IS NULL OR d.kind = ANY ($2))"                                             \
  "   AND ($3::text IS NULL OR d.name ILIKE ducha_contains($3))"

/* A merged department stays as it was, for the records that still point at it. */
static status unmerged(struct call *c, int deleting) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char merged[8];
  status s = db_value(c->db, merged, sizeof merged, "SELECT merged_into_id IS NOT NULL FROM departments WHERE id = $1",
                      1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(merged, "t"))
    return fail(c, ST_CONFLICT, "the department was merged into another and is kept as it was%s",
                deleting ? "" : "; change its successor instead");
  return ST_OK;
}

const struct resource DEPARTMENTS = {
  .name = "department",
  .collection = "/api/v1/departments",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = "SELECT d.version, " JSON_OF_D FROM_D " WHERE d.id = $1 AND ducha_in_scope(d.id)",
  .sql_lock = "SELECT version FROM departments WHERE id = $1 FOR UPDATE",
  .sql_insert = "INSERT INTO departments (name, kind, parent_id, created_by)"
                " SELECT b->>'name', coalesce(b->>'kind', 'department'), (b->>'parent_id')::bigint, $2::bigint"
                " FROM (SELECT $1::jsonb AS b) s RETURNING id",
  .sql_update = "UPDATE departments SET"
                " name = CASE WHEN b ? 'name' THEN b->>'name' ELSE name END,"
                " kind = CASE WHEN b ? 'kind' THEN b->>'kind' ELSE kind END,"
                " parent_id = CASE WHEN b ? 'parent_id' THEN (b->>'parent_id')::bigint ELSE parent_id END,"
                " updated_at = now(), version = version + 1"
                " FROM (SELECT $2::jsonb AS b) s WHERE id = $1",
  .sql_delete = "DELETE FROM departments WHERE id = $1",
  .before_change = unmerged,
  .list = {
    .sql_page = "SELECT d.id, " JSON_OF_D FROM_D FILTER_D
                " AND ($4::bigint IS NULL OR d.id > $4) ORDER BY d.id LIMIT $5",
    .sql_count = "SELECT count(*) FROM departments d" FILTER_D,
  },
};

static const char *SQL_MISSING =
    "SELECT e.ord - 1 FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY e(v, ord)"
    " WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.id = e.v::bigint) ORDER BY e.ord";

status departments_exist(struct call *c, const json_t *ids, const char *pointer) {
  if (!json_array_size(ids))
    return ST_OK;
  char *text = json_dumps(ids, JSON_COMPACT);
  const char *params[] = {text};
  PGresult *r;
  status s = db_exec(c->db, &r, SQL_MISSING, 1, params);
  free(text);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  for (int i = 0; i < PQntuples(r); i++) {
    char ptr[96];
    snprintf(ptr, sizeof ptr, "%s/%s", pointer, PQgetvalue(r, i, 0));
    errors_add(c->errors, ptr, "no such department");
  }
  s = PQntuples(r) ? ST_INVALID : ST_OK;
  PQclear(r);
  return s;
}

/* ---- 机构改革: merging a department into its successor ------------------------------------- */

static const struct field MERGE[] = {
  {"successor_id", F_ID, FIELD_REQUIRED, 0, 0, NULL, 0},
  {"reason", F_TEXT, FIELD_REQUIRED, 1, 500, NULL, 0},
  {0},
};

/* What the successor may be: not the unit itself, not under it, not merged itself. */
static const char *SQL_SUCCESSOR =
    "SELECT CASE WHEN s.id = o.id OR s.id = ANY (ducha_subtree(o.id)) THEN 'inside'"
    "            WHEN s.merged_into_id IS NOT NULL THEN 'merged'"
    "            WHEN o.merged_into_id IS NOT NULL THEN 'already' ELSE 'ok' END"
    " FROM departments o, departments s WHERE o.id = $1 AND s.id = $2";

/* The successor takes over open rectifications, department users and sub-units; closed
 * rectifications keep pointing at the old unit, which keeps its name. */
static const char *SQL_MERGE =
    "WITH r AS (UPDATE rectifications SET responsible_department_id = $2, updated_at = now(), version = version + 1"
    "           WHERE responsible_department_id = $1 AND status <> 'closed' RETURNING id),"
    " u AS (UPDATE users SET department_id = $2, updated_at = now(), version = version + 1"
    "       WHERE department_id = $1 RETURNING id),"
    " d AS (UPDATE departments SET parent_id = $2, updated_at = now(), version = version + 1"
    "       WHERE parent_id = $1 RETURNING id),"
    " m AS (UPDATE departments SET merged_into_id = $2, merged_at = now(), updated_at = now(), version = version + 1"
    "       WHERE id = $1 RETURNING id)"
    " SELECT json_build_object("
    "   'rectification_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM r), '[]'),"
    "   'user_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM u), '[]'),"
    "   'sub_unit_ids', coalesce((SELECT json_agg(id ORDER BY id) FROM d), '[]'))"
    " FROM m";

status department_merge(struct call *c) {
  status s;
  if (validate_body(c->body, MERGE, 1, c->errors))
    return fail(c, ST_INVALID, "send successor_id and reason");
  if ((s = resource_lock(c, &DEPARTMENTS)) != ST_OK)
    return s;
  json_int_t successor = json_integer_value(json_object_get(c->body, "successor_id"));
  struct num id = num(c->id), to = num(successor);
  const char *params[] = {id.s, to.s};
  char verdict[16];
  s = db_value(c->db, verdict, sizeof verdict, SQL_SUCCESSOR, 2, params);
  if (s == ST_NOT_FOUND)
    return invalid(c, "/successor_id", "no such department");
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(verdict, "inside"))
    return invalid(c, "/successor_id", "is the department itself or one of its sub-units");
  if (!strcmp(verdict, "merged"))
    return fail(c, ST_CONFLICT, "the successor was itself merged into another department");
  if (!strcmp(verdict, "already"))
    return fail(c, ST_CONFLICT, "the department was merged already");
  if ((s = resource_load(c, &DEPARTMENTS, c->id)) != ST_OK)
    return s;
  json_t *before = c->result;
  c->result = NULL;
  PGresult *r = NULL;
  s = db_row(c->db, &r, SQL_MERGE, 2, params);
  if (s == ST_OK)
    s = resource_load(c, &DEPARTMENTS, c->id);
  if (s == ST_OK) {
    json_t *after = json_pack("{s:I, s:O, s:o*}", "merged_into_id", successor, "reason",
                              json_object_get(c->body, "reason"), "moved", json_loads(PQgetvalue(r, 0, 0), 0, NULL));
    json_t *was = json_pack("{s:O, s:O}", "name", json_object_get(before, "name"), "merged_into_id",
                            json_object_get(before, "merged_into_id"));
    s = audit_write(c, "merge", "department", c->id, was, after);
    json_decref(after);
    json_decref(was);
  } else {
    s = resource_db_failure(c, s);
  }
  PQclear(r);
  json_decref(before);
  return s;
}

/* ---- units by name, for imports ------------------------------------------------------------------ */

struct unit {
  int64_t id;    /* 0: added by an import, not yet written */
  char *name;
  int parent;    /* index of the parent, -1 at the top */
  char kind[12];
  long row;      /* the import's row that adds it; 0 for a unit that exists */
};

struct units {
  struct unit *u;
  int n, cap;
  json_t *by_name; /* name -> [index ...] */
};

static const char *SQL_UNITS_ALL =
    "SELECT id, name, coalesce(parent_id, 0), kind FROM departments WHERE merged_into_id IS NULL ORDER BY id";

static int units_add(struct units *t, int64_t id, const char *name, int parent, const char *kind, long row) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 256;
    struct unit *u = realloc(t->u, (size_t)cap * sizeof *u);
    if (!u)
      return -1;
    t->u = u;
    t->cap = cap;
  }
  struct unit *u = &t->u[t->n];
  *u = (struct unit){id, strdup(name), parent, "", row};
  snprintf(u->kind, sizeof u->kind, "%s", kind);
  json_t *same = json_object_get(t->by_name, name);
  if (!same)
    json_object_set_new(t->by_name, name, same = json_array());
  if (!u->name || json_array_append_new(same, json_integer(t->n)))
    return -1;
  return t->n++;
}

void units_free(struct units *t) {
  if (!t)
    return;
  for (int i = 0; i < t->n; i++)
    free(t->u[i].name);
  free(t->u);
  json_decref(t->by_name);
  free(t);
}

static int by_id(const void *key, const void *elem) {
  int64_t id = *(const int64_t *)key, other = ((const struct unit *)elem)->id;
  return id < other ? -1 : id > other;
}

status units_load(struct call *c, struct units **out) {
  struct units *t = *out = calloc(1, sizeof *t);
  PGresult *r;
  if (!t || !(t->by_name = json_object()))
    return fail(c, ST_INTERNAL, "out of memory");
  status s = db_exec(c->db, &r, SQL_UNITS_ALL, 0, NULL);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  int64_t *parents = malloc(((size_t)PQntuples(r) + 1) * sizeof *parents);
  for (int i = 0; i < PQntuples(r) && s == ST_OK && parents; i++) {
    parents[i] = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    if (units_add(t, strtoll(PQgetvalue(r, i, 0), NULL, 10), PQgetvalue(r, i, 1), -1, PQgetvalue(r, i, 3), 0) < 0)
      s = fail(c, ST_INTERNAL, "out of memory");
  }
  for (int i = 0; i < t->n && parents; i++) { /* ids come in order: found by bisection */
    const struct unit *p = parents[i] ? bsearch(&parents[i], t->u, (size_t)t->n, sizeof *t->u, by_id) : NULL;
    t->u[i].parent = p ? (int)(p - t->u) : -1;
  }
  if (!parents)
    s = fail(c, ST_INTERNAL, "out of memory");
  free(parents);
  PQclear(r);
  return s;
}

/* The child of parent (-1: any unit; -2: a unit at the top) named name: its index, -1 when
 * none, -2 when several. */
static int child(const struct units *t, int parent, const char *name) {
  size_t i;
  json_t *v;
  int found = -1;
  json_array_foreach(json_object_get(t->by_name, name), i, v) {
    int k = (int)json_integer_value(v);
    if (parent == -1 || t->u[k].parent == (parent == -2 ? -1 : parent))
      found = found == -1 ? k : -2;
  }
  return found;
}

/* The next segment of a path ("市财政局/办公室", also with the full-width ／), trimmed, cut out of
 * *p in place and *p moved past it; NULL at the end. */
static char *segment(char **p) {
  if (!*p || !**p)
    return NULL;
  char *seg = *p, *slash = *p;
  while (*slash && *slash != '/' && strncmp(slash, "／", 3))
    slash++;
  *p = !*slash ? slash : slash + (*slash == '/' ? 1 : 3);
  *slash = '\0';
  return import_trim(seg);
}

int units_find(const struct units *t, const char *path, char *why, size_t size) {
  char *copy = strdup(path), *rest = copy, *seg;
  int at = -1;
  if (!copy)
    return snprintf(why, size, "out of memory"), -1;
  while ((seg = segment(&rest))) {
    int found = child(t, at, seg), top;
    if (found == -2 && at == -1 && (top = child(t, -2, seg)) >= 0)
      found = top; /* a name used at the top and below: the one at the top */
    if (found < 0) {
      if (found == -1)
        snprintf(why, size, "no unit is named %s%s%s", at >= 0 ? t->u[at].name : "", at >= 0 ? "/" : "", seg);
      else
        snprintf(why, size, "several units are named %s: give its path from the top, e.g. 上级单位/%s", seg, seg);
      free(copy);
      return found;
    }
    at = found;
  }
  free(copy);
  if (at < 0)
    snprintf(why, size, "no unit is named");
  return at;
}

int64_t units_id(const struct units *t, int i) { return i >= 0 && i < t->n ? t->u[i].id : 0; }

/* ---- POST /departments/import: 20-200 units at once -------------------------------------------------- */

static const char *const L_NAME[] = {"名称", "单位名称", "部门名称", "单位", "name", NULL},
                         *const L_PARENT[] = {"上级单位", "上级", "上级部门", "parent", NULL},
                         *const L_KIND[] = {"类型", "kind", NULL};
static const struct import_column UNIT_COLUMNS[] = {{L_NAME, 1}, {L_PARENT, 0}, {L_KIND, 0}};

/* 部门 / department, 分组 / group; NULL when it is neither. */
static const char *kind_of(const char *text) {
  if (!*text)
    return "";
  if (!strcmp(text, "department") || !strcmp(text, "部门") || !strcmp(text, "单位"))
    return "department";
  if (!strcmp(text, "group") || !strcmp(text, "分组") || !strcmp(text, "组"))
    return "group";
  return NULL;
}

struct unit_row {
  json_t *report;
  char *name, *parent;
  const char *kind;
  int done;
};

/* 1 when a name in r's parent path is the name of a unit that a row still to be placed adds
 * (pending: name -> rows): r waits for them, so that what a name means does not depend on the
 * order of the rows. */
static int waits(const struct unit_row *r, const json_t *pending) {
  char *copy = strdup(r->parent), *rest = copy, *seg;
  int wait = 0;
  while (copy && !wait && (seg = segment(&rest)))
    wait = json_integer_value(json_object_get(pending, seg)) > !strcmp(seg, r->name);
  free(copy);
  return wait;
}

/* Places a row whose parent is known (or it has none): the unit it names exists (its kind may
 * change) or is added. 0 when its parent is not known yet: a later row may add it, or a row still
 * to be placed may add a second unit of a name in its path (unless last: the rows left are
 * placed with what there is). */
static int place(struct units *t, struct unit_row *r, long row, json_t *kinds, const json_t *pending, int last) {
  char why[300];
  int parent = -1;
  if (*r->parent && !last && waits(r, pending))
    return 0;
  if (*r->parent && (parent = units_find(t, r->parent, why, sizeof why)) < 0) {
    if (parent == -1)
      return 0;
    import_error(r->report, L_PARENT[0], NULL, "%s", why);
    return 1;
  }
  int at = child(t, parent == -1 ? -2 : parent, r->name);
  const char *kind = *r->kind ? r->kind : "department";
  if (at >= 0 && t->u[at].row) {
    import_error(r->report, L_NAME[0], NULL, "row %ld names this unit already", t->u[at].row);
  } else if (at >= 0 && *r->kind && strcmp(t->u[at].kind, kind)) {
    char key[16];
    snprintf(key, sizeof key, "%d", at);
    import_change(r->report, "department", NULL, "updated", "kind", json_string(t->u[at].kind), json_string(kind));
    json_object_set_new(kinds, key, json_string(kind)); /* applied after the additions */
  } else if (at < 0) {
    json_t *fields = json_pack("{s:s, s:s}", "name", r->name, "kind", kind);
    json_t *errs = json_array();
    if (validate_body(fields, DEPARTMENTS.create_fields, 1, errs)) {
      import_error(r->report, L_NAME[0], NULL, "%s", json_string_value(json_object_get(json_array_get(errs, 0), "message")));
    } else if (units_add(t, 0, r->name, parent, kind, row) >= 0) {
      import_change(r->report, "department", NULL, "added", NULL, NULL,
                    json_pack("{s:s, s:s?, s:s}", "name", r->name, "parent", parent >= 0 ? t->u[parent].name : NULL,
                              "kind", kind));
    }
    json_decref(errs);
    json_decref(fields);
  }
  return 1;
}

/* The units added, parents first, then the kinds changed; each its own audit event. */
static status write_units(struct call *c, struct units *t, int first_new, json_t *kinds) {
  status s = ST_OK;
  for (int i = first_new; i < t->n && s == ST_OK; i++) {
    struct unit *u = &t->u[i];
    json_t *fields = json_pack("{s:s, s:s}", "name", u->name, "kind", u->kind);
    if (u->parent >= 0)
      json_object_set_new(fields, "parent_id", json_integer(t->u[u->parent].id));
    if ((s = resource_insert(c, &DEPARTMENTS, 0, fields)) == ST_OK)
      u->id = json_integer_value(json_object_get(c->result, "id"));
    json_decref(fields);
  }
  const char *at;
  json_t *kind;
  json_object_foreach(kinds, at, kind) {
    json_t *fields = json_pack("{s:O}", "kind", kind);
    if (s == ST_OK)
      s = resource_update(c, &DEPARTMENTS, t->u[atoi(at)].id, fields);
    json_decref(fields);
  }
  return s;
}

status departments_import(struct call *c) {
  struct sheet s;
  struct units *t = NULL;
  int col[3], header = 0, n = 0;
  json_t *rows = json_array(), *kinds = json_object();
  struct unit_row *list = NULL;
  status st = import_open(c, 1000, UNIT_COLUMNS, 3, col, &header, &s, &t);
  if (st == ST_OK && !(list = calloc((size_t)s.nrows, sizeof *list)))
    st = fail(c, ST_INTERNAL, "out of memory");
  int first_new = t ? t->n : 0;
  for (int i = header + 1; st == ST_OK && i < s.nrows; i++, n++) {
    struct unit_row *r = &list[n];
    r->report = import_row(s.rows[i].number);
    json_array_append_new(rows, r->report);
    r->name = import_cell(&s, i, col[0]);
    r->parent = import_cell(&s, i, col[1]);
    char *kind = import_cell(&s, i, col[2]);
    if (!r->name || !r->parent || !kind) {
      free(kind);
      st = fail(c, ST_INTERNAL, "out of memory");
      break;
    }
    r->kind = kind_of(kind);
    json_object_set_new(r->report, "name", json_string(r->name));
    if (!*r->name)
      import_error(r->report, L_NAME[0], NULL, "%s is empty", L_NAME[0]);
    else if (!r->kind)
      import_error(r->report, L_KIND[0], NULL, "cannot read %.40s: write 部门 or 分组", kind);
    r->done = !*r->name || !r->kind;
    free(kind);
  }
  json_t *pending = json_object(); /* name -> rows not placed yet that add a unit of that name */
  for (int i = 0; i < n; i++)
    if (!list[i].done)
      json_object_set_new(pending, list[i].name, json_integer(json_integer_value(json_object_get(pending, list[i].name)) + 1));
  for (int last = 0; st == ST_OK;) { /* parents first, wherever their rows are */
    int progress = 0;
    for (int i = 0; i < n; i++) {
      if (list[i].done || !(list[i].done = place(t, &list[i], json_integer_value(json_object_get(list[i].report, "row")),
                                                 kinds, pending, last)))
        continue;
      progress = 1;
      json_object_set_new(pending, list[i].name, json_integer(json_integer_value(json_object_get(pending, list[i].name)) - 1));
    }
    if (!progress && last)
      break;
    last = !progress; /* stuck waiting: one pass with what there is */
  }
  json_decref(pending);
  for (int i = 0; st == ST_OK && i < n; i++)
    if (!list[i].done)
      import_error(list[i].report, L_PARENT[0], NULL, "no unit is named %s, in the database or in this file",
                   list[i].parent);
  if (st == ST_OK && !import_dry_run(c))
    st = write_units(c, t, first_new, kinds);
  if (st == ST_OK) {
    import_answer(c, &s, rows);
    rows = NULL;
  }
  for (int i = 0; i < n; i++) {
    free(list[i].name);
    free(list[i].parent);
  }
  free(list);
  json_decref(rows);
  json_decref(kinds);
  units_free(t);
  sheet_free(&s);
  return st;
}
