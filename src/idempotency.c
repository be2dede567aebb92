#include "idempotency.h"

#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key older than 24 h, or left running by a crashed request for 5 minutes, is taken over
 * (and purged: SQL_PURGE). */
#define EXPIRED "(k.created_at < now() - interval '24 hours'" \
  " OR (k.state = 'running' AND k.created_at < now() - interval '5 minutes'))"
static const char *SQL_CLAIM =
    "INSERT INTO idempotency_keys AS k (user_id, key, method, path, body_hash)"
    " VALUES ($1, $2, $3, $4, sha256($5::bytea))"
    " ON CONFLICT (user_id, key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path,"
    "   body_hash = EXCLUDED.body_hash, state = 'running', status = NULL, location = NULL,"
    "   etag = NULL, body = NULL, created_at = now()"
    " WHERE " EXPIRED " RETURNING 1";

static const char *SQL_PURGE =
    "WITH d AS (DELETE FROM idempotency_keys k WHERE " EXPIRED " RETURNING 1) SELECT count(*) FROM d";

static const char *SQL_LOOK =
    "SELECT method = $3 AND path = $4 AND body_hash = sha256($5::bytea), state, status,"
    "       location, etag, body"
    " FROM idempotency_keys WHERE user_id = $1 AND key = $2";

static const char *SQL_STORE =
    "UPDATE idempotency_keys SET state = 'done', status = $3, location = nullif($4, ''),"
    "       etag = nullif($5, ''), body = $6"
    " WHERE user_id = $1 AND key = $2";

static const char *SQL_ABANDON =
    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'running'";

static int key_ok(const char *key) {
  size_t n = strlen(key);
  if (n < 1 || n > 200)
    return 0;
  for (const char *p = key; *p; p++)
    if (*p < 0x20 || *p > 0x7E)
      return 0;
  return 1;
}

status idem_begin(struct call *c, struct idem *idem, const char *key, const char *method,
                  const char *path, const void *body, size_t len) {
  if (!key_ok(key))
    return invalid(c, "/headers/Idempotency-Key", "must be 1 to 200 printable ASCII characters");
  snprintf(idem->key, sizeof idem->key, "%s", key);
  struct num uid = num(c->who.user_id);
  /* The body goes as bytes: bytea text keeps any content intact. */
  char *hex = malloc(2 * len + 3);
  db_bytea_text(body, len, hex);
  const char *params[] = {uid.s, key, method, path, hex};
  PGresult *r;
  status s = db_exec(c->db, &r, SQL_CLAIM, 5, params);
  if (s == ST_OK && PQntuples(r) == 1) {
    idem->active = 1;
  } else if (s == ST_OK) {
    PQclear(r);
    s = db_row(c->db, &r, SQL_LOOK, 5, params);
    if (s == ST_NOT_FOUND) {
      s = fail(c, ST_IDEM_RUNNING, "the key was just released; send the request again");
    } else if (s == ST_OK && strcmp(PQgetvalue(r, 0, 0), "t")) {
      s = fail(c, ST_IDEM_REUSED, "this Idempotency-Key was used for a different request");
    } else if (s == ST_OK && !strcmp(PQgetvalue(r, 0, 1), "running")) {
      s = fail(c, ST_IDEM_RUNNING, "the first request with this Idempotency-Key is still running");
    } else if (s == ST_OK) {
      idem->replay = 1;
      idem->stored = r;
      r = NULL;
    }
  }
  PQclear(r);
  free(hex);
  return s;
}

status idem_store(struct call *c, struct idem *idem, int http_status) {
  struct num uid = num(c->who.user_id), code = num(http_status);
  char etag[32] = "";
  if (c->etag)
    snprintf(etag, sizeof etag, "\"%ld\"", c->etag);
  char *body = c->result ? json_dumps(c->result, JSON_COMPACT) : NULL;
  const char *params[] = {uid.s, idem->key, code.s, c->location, etag, body};
  status s = db_exec(c->db, NULL, SQL_STORE, 6, params);
  free(body);
  return s;
}

void idem_abandon(struct call *c, struct idem *idem) {
  struct num uid = num(c->who.user_id);
  const char *params[] = {uid.s, idem->key};
  if (db_exec(c->db, NULL, SQL_ABANDON, 2, params) != ST_OK)
    y_log_message(Y_LOG_LEVEL_WARNING, "idempotency key could not be released");
}

void idem_replay(const struct idem *idem, struct _u_response *resp) {
  PGresult *r = idem->stored;
  long code = strtol(PQgetvalue(r, 0, 2), NULL, 10);
  if (!PQgetisnull(r, 0, 3))
    u_map_put(resp->map_header, "Location", PQgetvalue(r, 0, 3));
  if (!PQgetisnull(r, 0, 4))
    u_map_put(resp->map_header, "ETag", PQgetvalue(r, 0, 4));
  u_map_put(resp->map_header, "Idempotent-Replayed", "true");
  if (PQgetisnull(r, 0, 5)) {
    ulfius_set_empty_body_response(resp, (unsigned)code);
  } else {
    ulfius_set_binary_body_response(resp, (unsigned)code, PQgetvalue(r, 0, 5),
                                    (size_t)PQgetlength(r, 0, 5));
    u_map_put(resp->map_header, "Content-Type", "application/json");
  }
}

void idem_free(struct idem *idem) {
  PQclear(idem->stored);
  idem->stored = NULL;
}

status idem_purge_job(struct call *c, json_t **result) {
  char n[24];
  status s = db_value(c->db, n, sizeof n, SQL_PURGE, 0, NULL);
  if (s != ST_OK)
    return s;
  json_int_t deleted = strtoll(n, NULL, 10);
  *result = json_pack("{s:I}", "deleted", deleted);
  return deleted ? audit_write(c, "purge", "idempotency_key", 0, NULL, *result) : ST_OK;
}
