#include "auth.h"

#include <gnutls/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth_cache.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

unsigned role_bit(const char *role) {
  static const char *const NAMES[] = {"admin", "inspector", "department", "viewer"};
  for (unsigned i = 0; i < 4; i++)
    if (!strcmp(role, NAMES[i]))
      return 1u << i;
  return 0;
}

int auth_token_plausible(const char *text) {
  return strlen(text) == TOKEN_LENGTH && !strncmp(text, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) &&
         strspn(text + strlen(TOKEN_PREFIX), B64URL) == TOKEN_LENGTH - strlen(TOKEN_PREFIX);
}

/* Also what the caller may see (a department user its unit's subtree, everyone else all) and
 * for how many more milliseconds the token is valid. $1 is the token's SHA-256 as bytea text. */
static const char *SQL_VERIFY =
    "SELECT u.id, u.role, coalesce(u.department_id, 0), u.must_change_password, t.id,"
    " CASE WHEN u.role = 'department' THEN coalesce(ducha_subtree(u.department_id)::text, '{}') ELSE 'all' END,"
    " (extract(epoch FROM t.expires_at - now()) * 1000)::bigint"
    " FROM tokens t JOIN users u ON u.id = t.user_id"
    " WHERE t.token_hash = $1::bytea AND t.revoked_at IS NULL AND t.expires_at > now() AND NOT u.disabled";

status auth_verify(db_conn *db, const char *token, struct principal *who) {
  unsigned char key[32];
  char hex[2 * sizeof key + 3];
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, token, strlen(token), key) < 0)
    return ST_INTERNAL;
  if (auth_cache_get(key, who))
    return ST_OK;
  unsigned long generation = auth_cache_generation();
  db_bytea_text(key, sizeof key, hex);
  PGresult *r;
  const char *params[] = {hex};
  status s = db_row(db, &r, SQL_VERIFY, 1, params);
  if (s == ST_NOT_FOUND)
    return ST_UNAUTHORIZED;
  if (s != ST_OK)
    return s;
  who->user_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  snprintf(who->role, sizeof who->role, "%s", PQgetvalue(r, 0, 1));
  who->department_id = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
  who->must_change_password = !strcmp(PQgetvalue(r, 0, 3), "t");
  who->token_id = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
  who->role_bit = role_bit(who->role);
  free(who->scope);
  who->scope = strdup(PQgetvalue(r, 0, 5));
  long valid_ms = strtol(PQgetvalue(r, 0, 6), NULL, 10);
  PQclear(r);
  if (!who->scope)
    return ST_INTERNAL;
  auth_cache_put(key, who, valid_ms, generation);
  return ST_OK;
}

static const char *SQL_CREATE =
    "INSERT INTO tokens (user_id, token_hash, expires_at, created_address)"
    " VALUES ($1, sha256(convert_to($2, 'UTF8')), now() + make_interval(hours => $3::int), $4)"
    " RETURNING id, to_json(expires_at) #>> '{}'";

status auth_token_create(db_conn *db, int64_t user_id, long ttl_hours, const char *address,
                         struct token_made *made) {
  char *out = made->text;
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return ST_INTERNAL;
  size_t n = strlen(TOKEN_PREFIX);
  memcpy(out, TOKEN_PREFIX, n);
  /* 32 bytes -> 43 base64url characters (no padding) */
  unsigned v = 0;
  int bits = 0;
  for (size_t i = 0; i < sizeof raw; i++) {
    v = (v << 8) | raw[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[n++] = B64URL[(v >> bits) & 63];
    }
  }
  if (bits)
    out[n++] = B64URL[(v << (6 - bits)) & 63];
  out[n] = '\0';
  struct num uid = num(user_id), ttl = num(ttl_hours);
  const char *params[] = {uid.s, out, ttl.s, address};
  PGresult *r;
  status s = db_row(db, &r, SQL_CREATE, 4, params);
  if (s != ST_OK)
    return s;
  made->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  snprintf(made->expires_at, sizeof made->expires_at, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  return ST_OK;
}
