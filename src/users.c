/* Users: admins manage them; passwords are kept only as Argon2id hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "imports.h"
#include "password.h"
#include "resources.h"

static const char *const ROLES[] = {"admin", "inspector", "department", "viewer", NULL};

static const struct field CREATE[] = {
  {"username", F_LINE, FIELD_REQUIRED, 1, 64, NULL, 0},
  {"display_name", F_LINE, 0, 0, 100, NULL, 0},
  {"role", F_ENUM, FIELD_REQUIRED, 0, 0, ROLES, 0},
  {"department_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"password", F_LINE, FIELD_REQUIRED, 8, 200, NULL, 0},
  {0},
};
static const struct field PATCH[] = {
  {"display_name", F_LINE, 0, 0, 100, NULL, 0},
  {"role", F_ENUM, 0, 0, 0, ROLES, 0},
  {"department_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"disabled", F_BOOL, 0, 0, 0, NULL, 0},
  {0},
};

const struct qparam USER_FILTERS[] = {
  {"role", Q_ENUMS, ROLES},
  {"department_id", Q_ID, NULL},
  {"disabled", Q_BOOL, NULL},
  {"q", Q_TEXT, NULL},
  {0},
};

#define JSON_OF_U                                                                              \
  "json_build_object('id', u.id, 'username', u.username, 'display_name', u.display_name,"     \
  " 'role', u.role, 'department_id', u.department_id,"                                         \
  " 'department', CASE WHEN d.id IS NULL THEN NULL ELSE json_build_object('id', d.id, 'name', d.name) END," \
  " 'disabled', u.disabled, 'must_change_password', u.must_change_password,"                   \
  " 'created_at', u.created_at, 'updated_at', u.updated_at)"
#define FROM_U " FROM users u LEFT JOIN departments d ON d.id = u.department_id"
#define FILTER_U                                                                               \
  " WHERE ($1::text[] IS NULL OR u.role = ANY ($1)) AND ($2::bigint IS NULL OR u.department_id = $2)" \
  "   AND ($3::boolean IS NULL OR u.disabled = $3)"                                             \
  "   AND ($4::text IS NULL OR u.username ILIKE ducha_contains($4) OR u.display_name ILIKE ducha_contains($4))"

const char *const USER_SQL_GET = "SELECT u.version, " JSON_OF_U FROM_U " WHERE u.id = $1";

#define USERNAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
#define USERNAME_RULE "may contain only A-Z, a-z, 0-9, '.', '_' and '-'"

/* The body's password replaced by its hash. */
static status hash_password(struct call *c, json_t *body) {
  char hash[PASSWORD_HASH_MAX];
  status s = password_hash_bounded(c, json_string_value(json_object_get(body, "password")), hash, sizeof hash);
  if (s != ST_OK)
    return s;
  json_object_del(body, "password");
  json_object_set_new(body, "password_hash", json_string(hash));
  return ST_OK;
}

/* The username's shape, then the password replaced by its hash before the insert. */
static status before_create(struct call *c) {
  const char *username = json_string_value(json_object_get(c->body, "username"));
  if (strspn(username, USERNAME_CHARS) != strlen(username))
    return invalid(c, "/username", USERNAME_RULE);
  return hash_password(c, c->body);
}

const struct resource USERS = {
  .name = "user",
  .collection = "/api/v1/users",
  .create_fields = CREATE,
  .patch_fields = PATCH,
  .sql_get = USER_SQL_GET,
  .sql_lock = "SELECT version FROM users WHERE id = $1 FOR UPDATE",
  .sql_insert = "INSERT INTO users (username, display_name, role, department_id, password_hash, password_changed_at)"
                " SELECT b->>'username', coalesce(b->>'display_name', ''), b->>'role',"
                "   (b->>'department_id')::bigint, b->>'password_hash', now()"
                " FROM (SELECT $1::jsonb AS b, $2::bigint AS actor) s RETURNING id",
  /* Disabling a user ends its sessions. */
  .sql_update = "WITH u AS (UPDATE users SET"
                "   display_name = coalesce(b->>'display_name', display_name), role = coalesce(b->>'role', role),"
                "   department_id = CASE WHEN b ? 'department_id' THEN (b->>'department_id')::bigint ELSE department_id END,"
                "   disabled = coalesce((b->>'disabled')::boolean, disabled), updated_at = now(), version = version + 1"
                "   FROM (SELECT $2::jsonb AS b) s WHERE id = $1 RETURNING id, disabled)"
                " UPDATE tokens t SET revoked_at = now() FROM u"
                " WHERE u.disabled AND t.user_id = u.id AND t.revoked_at IS NULL",
  .list = {
    .sql_page = "SELECT u.id, " JSON_OF_U FROM_U FILTER_U
                " AND ($5::bigint IS NULL OR u.id > $5) ORDER BY u.id LIMIT $6",
    .sql_count = "SELECT count(*) FROM users u" FILTER_U,
  },
  .before_create = before_create,
};

static const struct field RESET[] = {
  {"new_password", F_LINE, FIELD_REQUIRED, 8, 200, NULL, 0},
  {0},
};

static const char *SQL_RESET =
    "WITH u AS (UPDATE users SET password_hash = $2, must_change_password = true, password_changed_at = now(),"
    "   updated_at = now(), version = version + 1 WHERE id = $1 RETURNING id)"
    " UPDATE tokens t SET revoked_at = now() FROM u WHERE t.user_id = u.id AND t.revoked_at IS NULL";

/* An administrator's reset: the user must choose a new password at the next login. */
status user_reset_password(struct call *c) {
  status s;
  if (validate_body(c->body, RESET, 1, c->errors))
    return fail(c, ST_INVALID, "see errors");
  if ((s = resource_lock(c, &USERS)) != ST_OK)
    return s;
  char hash[PASSWORD_HASH_MAX];
  if ((s = password_hash_bounded(c, json_string_value(json_object_get(c->body, "new_password")), hash,
                                 sizeof hash)) != ST_OK)
    return s;
  struct num id = num(c->id);
  const char *params[] = {id.s, hash};
  if ((s = db_exec(c->db, NULL, SQL_RESET, 2, params)) != ST_OK)
    return resource_db_failure(c, s);
  if ((s = resource_load(c, &USERS, c->id)) != ST_OK)
    return s;
  return audit_write(c, "password_reset", "user", c->id, NULL, NULL);
}

/* ---- POST /users/import: the users of many units at once ------------------------------------------ */

static const char *const L_USERNAME[] = {"用户名", "账号", "username", NULL},
                         *const L_DISPLAY[] = {"姓名", "显示名", "display_name", NULL},
                         *const L_ROLE[] = {"角色", "role", NULL},
                         *const L_UNIT[] = {"所属单位", "单位", "部门", "department", NULL},
                         *const L_PASSWORD[] = {"初始密码", "密码", "password", NULL};
static const struct import_column USER_COLUMNS[] = {
  {L_USERNAME, 1}, {L_DISPLAY, 0}, {L_ROLE, 0}, {L_UNIT, 0}, {L_PASSWORD, 0},
};

/* A role by its name or its Chinese one; "" for none, NULL when it is none of them. */
static const char *role_of(const char *text) {
  static const char *const names[][5] = {
    {"admin", "管理员", NULL}, {"inspector", "督察员", "督查员", "督察人员", NULL},
    {"department", "部门用户", "单位用户", "部门", "单位"}, {"viewer", "查看者", "只读", "查看", NULL},
  };
  if (!*text)
    return "";
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    for (int j = 0; j < 5 && names[i][j]; j++)
      if (!strcmp(text, names[i][j]))
        return names[i][0];
  return NULL;
}

static const char *SQL_USER =
    "SELECT u.id, u.display_name, u.role, coalesce(u.department_id, 0), coalesce(d.name, '')"
    " FROM users u LEFT JOIN departments d ON d.id = u.department_id WHERE u.username = $1";

/* A user to add (id 0) or update, as planned. */
struct user_op {
  int64_t id;
  json_t *fields;
};

/* The fields that change on the existing user r, with a change each in the report. */
static json_t *user_changes(json_t *report, PGresult *r, const char *display, const char *role, int64_t unit,
                            const char *unit_name) {
  json_t *fields = json_object();
  const char *was_role = PQgetvalue(r, 0, 2);
  int64_t was_unit = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
  const char *now = *role ? role : was_role;
  if (*display && strcmp(display, PQgetvalue(r, 0, 1))) {
    json_object_set_new(fields, "display_name", json_string(display));
    import_change(report, "user", NULL, "updated", "display_name", json_string(PQgetvalue(r, 0, 1)), json_string(display));
  }
  if (*role && strcmp(role, was_role)) {
    json_object_set_new(fields, "role", json_string(role));
    import_change(report, "user", NULL, "updated", "role", json_string(was_role), json_string(role));
  }
  int64_t want = !strcmp(now, "department") ? (unit ? unit : was_unit) : 0;
  if (want != was_unit) {
    json_object_set_new(fields, "department_id", want ? json_integer(want) : json_null());
    import_change(report, "user", NULL, "updated", "department", was_unit ? json_string(PQgetvalue(r, 0, 4)) : NULL,
                  want ? json_string(unit_name) : NULL);
  }
  return fields;
}

/* Plans one row: an update of the user its username names, or a new user. */
static void plan_user(struct call *c, struct units *t, json_t *report, char **cell, struct user_op *op) {
  char why[300];
  const char *username = cell[0], *display = cell[1], *role = role_of(cell[2]), *unit_name = cell[3],
             *password = cell[4];
  int at = *unit_name ? units_find(t, unit_name, why, sizeof why) : -1;
  int64_t unit = units_id(t, at);
  const char *params[] = {username};
  PGresult *r = NULL;
  if (!role) {
    import_error(report, L_ROLE[0], NULL, "cannot read %.40s: write admin, inspector, department or viewer", cell[2]);
    return;
  }
  if (*unit_name && at < 0) {
    import_error(report, L_UNIT[0], NULL, "%s", why);
    return;
  }
  if (db_exec(c->db, &r, SQL_USER, 1, params) != ST_OK) {
    import_error(report, L_USERNAME[0], NULL, "cannot be looked up now");
    return;
  }
  const char *now = *role ? role : PQntuples(r) ? PQgetvalue(r, 0, 2) : "";
  json_t *errs = json_array();
  if (unit && strcmp(now, "department")) {
    import_error(report, L_UNIT[0], NULL, "only department users belong to a unit");
  } else if (PQntuples(r)) {
    if (*password)
      import_error(report, L_PASSWORD[0], NULL, "an import does not change an existing user's password: reset it "
                                                "with POST /api/v1/users/%s/password", PQgetvalue(r, 0, 0));
    else if (!strcmp(now, "department") && !unit && !strtoll(PQgetvalue(r, 0, 3), NULL, 10))
      import_error(report, L_UNIT[0], NULL, "a department user needs its unit");
    else if ((op->fields = user_changes(report, r, display, role, unit, unit_name)) &&
             validate_body(op->fields, USERS.patch_fields, 0, errs) == 0)
      op->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  } else if (!*role || !*password) {
    import_error(report, *role ? L_PASSWORD[0] : L_ROLE[0], NULL, "a new user needs a role and an initial password");
  } else if (!strcmp(role, "department") && !unit) {
    import_error(report, L_UNIT[0], NULL, "a department user needs its unit");
  } else if (strspn(username, USERNAME_CHARS) != strlen(username)) {
    import_error(report, L_USERNAME[0], NULL, "%s", USERNAME_RULE);
  } else {
    op->fields = json_pack("{s:s, s:s, s:s, s:s}", "username", username, "display_name", display, "role", role,
                           "password", password);
    if (unit)
      json_object_set_new(op->fields, "department_id", json_integer(unit));
    if (validate_body(op->fields, CREATE, 1, errs) == 0)
      import_change(report, "user", NULL, "added", NULL, NULL,
                    json_pack("{s:s, s:s, s:s, s:s?}", "username", username, "display_name", display, "role", role,
                              "department", unit ? unit_name : NULL));
  }
  size_t i;
  json_t *e;
  json_array_foreach(errs, i, e) {
    const char *pointer = json_string_value(json_object_get(e, "pointer"));
    if (e)
      import_error(report, NULL, NULL, "%s: %s", pointer && *pointer ? pointer + 1 : "",
                   json_string_value(json_object_get(e, "message")));
  }
  if (json_array_size(errs) || json_array_size(json_object_get(report, "errors"))) {
    json_decref(op->fields);
    *op = (struct user_op){0};
  }
  json_decref(errs);
  PQclear(r);
}

status users_import(struct call *c) {
  struct sheet s;
  struct units *t = NULL;
  int col[5], header = 0, n = 0;
  json_t *rows = json_array(), *seen = json_object();
  struct user_op *ops = NULL;
  status st = import_open(c, 1000, USER_COLUMNS, 5, col, &header, &s, &t);
  if (st == ST_OK && !(ops = calloc((size_t)s.nrows, sizeof *ops)))
    st = fail(c, ST_INTERNAL, "out of memory");
  for (int i = header + 1; st == ST_OK && i < s.nrows; i++, n++) {
    char *cell[5];
    json_t *report = import_row(s.rows[i].number);
    json_array_append_new(rows, report);
    int ok = 1;
    for (int k = 0; k < 5; k++)
      ok &= (cell[k] = import_cell(&s, i, col[k])) != NULL;
    json_object_set_new(report, "username", json_string(ok ? cell[0] : ""));
    if (!ok)
      st = fail(c, ST_INTERNAL, "out of memory");
    else if (!*cell[0])
      import_error(report, L_USERNAME[0], NULL, "%s is empty", L_USERNAME[0]);
    else if (json_object_get(seen, cell[0]))
      import_error(report, L_USERNAME[0], NULL, "row %lld names this user already",
                   (long long)json_integer_value(json_object_get(seen, cell[0])));
    else {
      json_object_set_new(seen, cell[0], json_integer(s.rows[i].number));
      plan_user(c, t, report, cell, &ops[n]);
    }
    for (int k = 0; k < 5; k++)
      free(cell[k]);
  }
  for (int i = 0; st == ST_OK && !import_dry_run(c) && i < n; i++) {
    if (!ops[i].fields || !json_object_size(ops[i].fields))
      continue;
    if (ops[i].id)
      st = resource_update(c, &USERS, ops[i].id, ops[i].fields);
    else if ((st = hash_password(c, ops[i].fields)) == ST_OK)
      st = resource_insert(c, &USERS, 0, ops[i].fields);
  }
  if (st == ST_OK) {
    import_answer(c, &s, rows);
    rows = NULL;
  }
  for (int i = 0; ops && i < n; i++)
    json_decref(ops[i].fields);
  free(ops);
  json_decref(rows);
  json_decref(seen);
  units_free(t);
  sheet_free(&s);
  return st;
}
