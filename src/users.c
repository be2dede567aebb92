/* Users: admins manage them; passwords are kept only as Argon2id hashes. */
#include <string.h>

#include "audit.h"
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

/* The username's shape, then the password replaced by its hash before the insert. */
static status before_create(struct call *c) {
  const char *username = json_string_value(json_object_get(c->body, "username"));
  if (strspn(username, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(username))
    return invalid(c, "/username", "may contain only A-Z, a-z, 0-9, '.', '_' and '-'");
  char hash[PASSWORD_HASH_MAX];
  status s = password_hash_bounded(c, json_string_value(json_object_get(c->body, "password")), hash, sizeof hash);
  if (s != ST_OK)
    return s;
  json_object_del(c->body, "password");
  json_object_set_new(c->body, "password_hash", json_string(hash));
  return ST_OK;
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
