/* Sessions: logging in for a token, logging out, the caller's own account, and an
 * administrator's view of everyone's tokens. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "password.h"
#include "resources.h"

/* ---- login -------------------------------------------------------------------------------- */

static const struct field LOGIN[] = {
  {"username", F_LINE, FIELD_REQUIRED, 1, 64, NULL, 0},
  {"password", F_LINE, FIELD_REQUIRED, 1, 200, NULL, 0},
  {0},
};

/* Failures slow guessing down, by user and by address, but never lock anyone out for good:
 * past the threshold each failure doubles the wait, up to 15 minutes, and an hour without
 * failures forgets them.
 *
 * An attempt is counted before its password is checked (Argon2id takes a while), each in a
 * statement of its own: parallel guesses each take a number, and an attempt that finds the
 * user or the address blocked is refused unchecked. The attempt that reaches the threshold
 * blocks the next ones while it is checked; a failure then sets the wait from its own end, a
 * success takes its count (and that block) back and forgets the user's failures. */
#define USER_THRESHOLD "5"
#define ADDRESS_THRESHOLD "20"

#define STALE "t.last_failure < now() - interval '1 hour'"
#define NEXT_COUNT "(CASE WHEN " STALE " THEN 1 ELSE t.failures + 1 END)"
#define WAIT_FOR(n) "now() + make_interval(secs => least(900, 2 ^ (" n " - $3::int)))"

static const char *SQL_BLOCKED =
    "SELECT ceil(extract(epoch FROM max(blocked_until) - now()))::bigint FROM login_throttle"
    " WHERE ((scope = 'user' AND key = $1) OR (scope = 'address' AND key = $2)) AND blocked_until > now()"
    " HAVING max(blocked_until) IS NOT NULL";

/* No row back: blocked. The row's block (empty when none) comes back for take_back. */
static const char *SQL_ATTEMPT =
    "INSERT INTO login_throttle AS t (scope, key, failures, last_failure, blocked_until)"
    " VALUES ($1, $2, 1, now(), CASE WHEN 1 >= $3::int THEN " WAIT_FOR("1") " END)"
    " ON CONFLICT (scope, key) DO UPDATE SET failures = " NEXT_COUNT ","
    "   last_failure = CASE WHEN " STALE " THEN now() ELSE t.last_failure END,"
    "   blocked_until = CASE WHEN " NEXT_COUNT " >= $3::int THEN " WAIT_FOR(NEXT_COUNT) " END"
    " WHERE t.blocked_until IS NULL OR t.blocked_until <= now()"
    " RETURNING coalesce(blocked_until::text, '')";

static const char *SQL_FAILED =
    "UPDATE login_throttle SET last_failure = now(),"
    "   blocked_until = CASE WHEN failures >= $3::int THEN greatest(blocked_until, " WAIT_FOR("failures") ")"
    "     ELSE blocked_until END"
    " WHERE scope = $1 AND key = $2";

static const char *SQL_TAKE_BACK =
    "UPDATE login_throttle SET failures = greatest(failures - 1, 0),"
    "   blocked_until = CASE WHEN blocked_until = nullif($3, '')::timestamptz THEN NULL ELSE blocked_until END"
    " WHERE scope = $1 AND key = $2";

static const char *SQL_USER =
    "SELECT id, password_hash, disabled FROM users WHERE username = $1";

static const char *SQL_FORGET = "DELETE FROM login_throttle WHERE scope = 'user' AND key = $1";

/* One attempt of a scope ("user" or "address") and key; block: what SQL_ATTEMPT returned. */
struct attempt {
  const char *scope, *key, *threshold;
  int counted;
  char block[64];
};

/* Counts the attempt: ST_OK, or ST_TOO_MANY when the key is blocked. */
static status count_attempt(struct call *c, struct attempt *a) {
  const char *params[] = {a->scope, a->key, a->threshold};
  if (!*a->key)
    return ST_OK;
  status s = db_value(c->db, a->block, sizeof a->block, SQL_ATTEMPT, 3, params);
  a->counted = s == ST_OK;
  return s == ST_NOT_FOUND ? ST_TOO_MANY : s;
}

/* Takes back an attempt whose password was right, or never checked. */
static status take_back(struct call *c, struct attempt *a) {
  const char *params[] = {a->scope, a->key, a->block};
  status s = a->counted ? db_exec(c->db, NULL, SQL_TAKE_BACK, 3, params) : ST_OK;
  a->counted = 0;
  return s;
}

static status too_many(struct call *c, const char *username) {
  const char *who[] = {username, c->client_address};
  char wait[24];
  status s = db_value(c->db, wait, sizeof wait, SQL_BLOCKED, 2, who);
  if (s != ST_OK && s != ST_NOT_FOUND) /* ST_NOT_FOUND: the block ended just now */
    return resource_db_failure(c, s);
  c->retry_after = s == ST_OK && strtol(wait, NULL, 10) > 0 ? strtol(wait, NULL, 10) : 1;
  return fail(c, ST_TOO_MANY, "too many failed logins; try again in %ld seconds", c->retry_after);
}

static status record_failure(struct call *c, struct attempt *tries, int64_t user_id) {
  json_t *after = json_pack("{s:s}", "username", tries[0].key);
  status s = db_begin(c->db);
  for (int i = 0; i < 2 && s == ST_OK; i++)
    if (tries[i].counted) {
      const char *params[] = {tries[i].scope, tries[i].key, tries[i].threshold};
      s = db_exec(c->db, NULL, SQL_FAILED, 3, params);
    }
  if (s == ST_OK)
    s = audit_write(c, "login_failed", "user", user_id, NULL, after);
  s = s == ST_OK ? db_commit(c->db) : s;
  if (s != ST_OK)
    db_rollback(c->db);
  json_decref(after);
  return s;
}

static status issue_token(struct call *c, int64_t user_id, const char *username, struct attempt *address) {
  struct token_made t;
  const char *forget[] = {username};
  status s = db_exec(c->db, NULL, SQL_FORGET, 1, forget);
  if (s == ST_OK)
    s = take_back(c, address);
  if (s == ST_OK)
    s = auth_token_create(c->db, user_id, c->cfg->token_ttl_hours, c->client_address, &t);
  if (s == ST_OK)
    s = resource_load(c, &USERS, user_id);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  json_t *user = c->result;
  c->result = json_pack("{s:s, s:s, s:s, s:o}", "token", t.text, "token_type", "Bearer", "expires_at",
                        t.expires_at, "user", user);
  c->etag = 0;
  snprintf(c->location, sizeof c->location, "/api/v1/tokens/%lld", (long long)t.id);
  json_t *after = json_pack("{s:I, s:s}", "token_id", (json_int_t)t.id, "expires_at", t.expires_at);
  s = audit_write(c, "login", "user", user_id, NULL, after);
  json_decref(after);
  return s;
}

status session_login(struct call *c) {
  if (validate_body(c->body, LOGIN, 1, c->errors))
    return fail(c, ST_INVALID, "send username and password");
  const char *username = json_string_value(json_object_get(c->body, "username"));
  const char *password = json_string_value(json_object_get(c->body, "password"));
  struct attempt tries[2] = {{"user", username, USER_THRESHOLD, 0, ""},
                             {"address", c->client_address, ADDRESS_THRESHOLD, 0, ""}};
  const char *name[] = {username};
  PGresult *r = NULL;
  status s = count_attempt(c, &tries[1]);
  if (s == ST_OK)
    s = count_attempt(c, &tries[0]);
  if (s == ST_OK)
    s = db_exec(c->db, &r, SQL_USER, 1, name);
  if (s != ST_OK) {
    take_back(c, &tries[1]);
    take_back(c, &tries[0]);
    return s == ST_TOO_MANY ? too_many(c, username) : resource_db_failure(c, s);
  }
  int found = PQntuples(r) == 1 && !PQgetisnull(r, 0, 1);
  int64_t user_id = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  int disabled = found && !strcmp(PQgetvalue(r, 0, 2), "t");
  s = password_verify_bounded(c, found ? PQgetvalue(r, 0, 1) : NULL, password);
  PQclear(r);
  if (s == ST_UNAUTHORIZED || (s == ST_OK && disabled)) {
    if ((s = record_failure(c, tries, user_id)) != ST_OK)
      return resource_db_failure(c, s);
    return fail(c, ST_UNAUTHORIZED, "the username or password is wrong, or the account is disabled");
  }
  if (s != ST_OK) { /* not checked (hashing busy): not an attempt */
    take_back(c, &tries[1]);
    take_back(c, &tries[0]);
    return s;
  }
  c->who.user_id = user_id; /* the actor of its own login */
  if ((s = db_begin(c->db)) != ST_OK)
    return resource_db_failure(c, s);
  s = issue_token(c, user_id, username, &tries[1]);
  if (s == ST_OK && (s = db_commit(c->db)) != ST_OK)
    return resource_db_failure(c, s);
  if (s != ST_OK)
    db_rollback(c->db);
  return s;
}

static const char *SQL_REVOKE_OWN = "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL";

status session_logout(struct call *c) {
  struct num id = num(c->who.token_id);
  const char *params[] = {id.s};
  status s = db_exec(c->db, NULL, SQL_REVOKE_OWN, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  json_t *after = json_pack("{s:I}", "token_id", (json_int_t)c->who.token_id);
  s = audit_write(c, "logout", "user", c->who.user_id, NULL, after);
  json_decref(after);
  return s;
}

/* ---- tokens (administrators) ---------------------------------------------------------------- */

const struct qparam TOKEN_FILTERS[] = {
  {"user_id", Q_ID, NULL},
  {"active", Q_BOOL, NULL},
  {0},
};

#define ACTIVE_T "(t.revoked_at IS NULL AND t.expires_at > now())"
#define FILTER_T " WHERE ($1::bigint IS NULL OR t.user_id = $1) AND ($2::boolean IS NULL OR " ACTIVE_T " = $2)"

const struct resource TOKENS = {
  .name = "token",
  .list = {
    .sql_page = "SELECT t.id, json_build_object('id', t.id, 'user_id', t.user_id,"
                " 'user', json_build_object('id', u.id, 'name', u.username), 'created_at', t.created_at,"
                " 'expires_at', t.expires_at, 'revoked_at', t.revoked_at, 'created_address', t.created_address,"
                " 'active', " ACTIVE_T ")"
                " FROM tokens t JOIN users u ON u.id = t.user_id" FILTER_T
                " AND ($3::bigint IS NULL OR t.id < $3) ORDER BY t.id DESC LIMIT $4",
    .sql_count = "SELECT count(*) FROM tokens t" FILTER_T,
  },
};

static const char *SQL_REVOKE =
    "UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING user_id";

status token_revoke(struct call *c) {
  struct num id = num(c->id);
  const char *params[] = {id.s};
  char user[24];
  status s = resource_value(c, "token", user, sizeof user, SQL_REVOKE, 1, params);
  if (s != ST_OK)
    return s;
  json_t *after = json_pack("{s:I}", "token_id", (json_int_t)c->id);
  s = audit_write(c, "token_revoke", "user", strtoll(user, NULL, 10), NULL, after);
  json_decref(after);
  return s;
}

/* ---- me ------------------------------------------------------------------------------------- */

/* {user, permissions}: who the caller is and what the role may call. */
static status me_wrap(struct call *c) {
  json_t *permissions = json_array();
  for (int i = 0; i < ROUTE_COUNT; i++)
    if (ROUTES[i].roles & c->who.role_bit) {
      char op[160];
      snprintf(op, sizeof op, "%s %s", ROUTES[i].method, ROUTES[i].path);
      json_array_append_new(permissions, json_string(op));
    }
  c->result = json_pack("{s:o, s:o}", "user", c->result, "permissions", permissions);
  return ST_OK;
}

status me_get(struct call *c) {
  status s = resource_load(c, &USERS, c->who.user_id);
  return s == ST_OK ? me_wrap(c) : s;
}

static const struct field ME_PATCH[] = {
  {"display_name", F_LINE, 0, 0, 100, NULL, 0},
  {0},
};

status me_patch(struct call *c) {
  struct resource me = USERS;
  me.patch_fields = ME_PATCH;
  c->id = c->who.user_id;
  status s = resource_patch(c, &me);
  return s == ST_OK ? me_wrap(c) : s;
}

static const struct field PASSWORD_CHANGE[] = {
  {"current_password", F_LINE, FIELD_REQUIRED, 1, 200, NULL, 0},
  {"new_password", F_LINE, FIELD_REQUIRED, 8, 200, NULL, 0},
  {0},
};

static const char *SQL_HASH = "SELECT password_hash FROM users WHERE id = $1 FOR UPDATE";
static const char *SQL_CHANGE =
    "WITH u AS (UPDATE users SET password_hash = $2, must_change_password = false, password_changed_at = now(),"
    "   updated_at = now(), version = version + 1 WHERE id = $1 RETURNING id)"
    " UPDATE tokens t SET revoked_at = now() FROM u"
    " WHERE t.user_id = u.id AND t.id <> $3 AND t.revoked_at IS NULL";

/* A new password ends the user's other sessions; the one used for the change stays. */
status me_change_password(struct call *c) {
  if (validate_body(c->body, PASSWORD_CHANGE, 1, c->errors))
    return fail(c, ST_INVALID, "send current_password and new_password");
  const char *current = json_string_value(json_object_get(c->body, "current_password"));
  const char *next = json_string_value(json_object_get(c->body, "new_password"));
  struct num id = num(c->who.user_id), token = num(c->who.token_id);
  const char *params[] = {id.s};
  char old[PASSWORD_HASH_MAX];
  status s = db_value(c->db, old, sizeof old, SQL_HASH, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  s = password_verify_bounded(c, old, current);
  if (s == ST_UNAUTHORIZED)
    return invalid(c, "/current_password", "is not your current password");
  if (s != ST_OK)
    return s;
  if (!strcmp(current, next))
    return invalid(c, "/new_password", "must differ from the current password");
  char hash[PASSWORD_HASH_MAX];
  if ((s = password_hash_bounded(c, next, hash, sizeof hash)) != ST_OK)
    return s;
  const char *change[] = {id.s, hash, token.s};
  if ((s = db_exec(c->db, NULL, SQL_CHANGE, 3, change)) != ST_OK)
    return resource_db_failure(c, s);
  return audit_write(c, "password_change", "user", c->who.user_id, NULL, NULL);
}
