#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yder.h>

#include "audit.h"

#define CHAINS 16
#define KEY_MIN 32
#define KEY_MAX 4096
#define SIG_LEN 64   /* HMAC-SHA256 in hex */
#define TEXT_MAX 4096

/* Numbers the checkpoints one at a time (an advisory lock next to migrate's 8324501). */
#define CHECKPOINT_LOCK "8324502"

/* Times as the signature covers them: UTC with microseconds, the precision PostgreSQL keeps. */
#define UTC_TEXT(t) "to_char(" t " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define JSON_OF_K                                                                              \
  "json_build_object('seq', k.seq, 'created_at', k.created_at, 'prev_signature', k.prev_signature," \
  " 'key_id', k.key_id, 'signature', k.signature, 'heads', k.heads)"

struct audit_key {
  unsigned char bytes[KEY_MAX];
  size_t len;
  char id[SIG_LEN + 1]; /* the first 16 hex digits of HMAC(key, "ducha audit key id") */
};

static void to_hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int is_hex(const char *s, size_t len) {
  return strlen(s) == len && strspn(s, "0123456789abcdef") == len;
}

/* HMAC-SHA256 of text under the key, as 64 lowercase hex digits into out. */
static int sign(const struct audit_key *k, const char *text, size_t len, char out[SIG_LEN + 1]) {
  unsigned char mac[32];
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, k->bytes, k->len, text, len, mac) < 0)
    return -1;
  to_hex(mac, sizeof mac, out);
  return 0;
}

/* Why a key file is not used, for the log: NULL when it is fine. A file that group or others
 * may read or write is refused: a key anyone on the machine can copy or replace anchors nothing. */
static const char *key_file_fault(const struct stat *st, size_t len) {
  if (!S_ISREG(st->st_mode))
    return "is not a regular file";
  if (st->st_mode & (S_IRWXG | S_IRWXO))
    return "may be read or written by group or others (chmod 600 it)";
  if (st->st_size > KEY_MAX)
    return "holds more than 4096 bytes; it is not a key file";
  if (len < KEY_MIN)
    return "holds fewer than 32 bytes";
  return NULL;
}

static ssize_t read_all(int fd, unsigned char *buf, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -1 : (ssize_t)got;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

/* Reads the key, whose bytes are the file's bytes as they are. 0 with the key; -1 without one,
 * with *why for the client (the details go to the log, each time: the calls are rare). The
 * caller wipes the key after use. */
static int key_load(const char *path, struct audit_key *k, const char **why) {
  static const char ID[] = "ducha audit key id";
  struct stat st;
  char err[128];
  k->len = 0;
  *why = "no audit key is configured (DUCHA_AUDIT_KEY_FILE)";
  if (!path || !*path)
    return -1;
  *why = "the audit key file cannot be used; the server log says why (DUCHA_AUDIT_KEY_FILE)";
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 || fstat(fd, &st)) {
    y_log_message(Y_LOG_LEVEL_ERROR, "cannot read the audit key file %s: %s", path, strerror_r(errno, err, sizeof err));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  ssize_t n = S_ISREG(st.st_mode) && st.st_size <= KEY_MAX ? read_all(fd, k->bytes, sizeof k->bytes) : 0;
  close(fd);
  k->len = n > 0 ? (size_t)n : 0;
  const char *fault = n < 0 ? "could not be read" : key_file_fault(&st, k->len);
  if (fault || sign(k, ID, sizeof ID - 1, k->id)) {
    y_log_message(Y_LOG_LEVEL_ERROR, "audit key file %s %s; checkpoints are unavailable", path,
                  fault ? fault : "could not be used");
    explicit_bzero(k, sizeof *k);
    return -1;
  }
  k->id[16] = '\0';
  return 0;
}

/* The text a checkpoint's signature covers (version 1): ASCII lines, each ending in "\n",
 *
 *   ducha audit checkpoint v1
 *   seq <n>                       the checkpoint's number: 1, 2, 3, ... with no gaps
 *   created_at <time>             UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ (microseconds, as stored)
 *   prev <signature>              checkpoint n-1's signature (64 lowercase hex); "-" for n = 1
 *   head <chain> <seq> <hash>     16 lines, chains 0 to 15 in order: the chain's last seq and
 *                                 that event's hash in lowercase hex ("-" while seq is 0)
 *
 * numbers in decimal without sign or leading zeros. The signature is HMAC-SHA256 of this text,
 * in lowercase hex. Because each text names the signature before it, the checkpoints form a
 * chain of their own: without the key none can be changed or put in between, and one removed
 * leaves a gap before the next (only the newest can go unseen; the log keeps a copy of each).
 * Returns the text's length in out, or -1 when heads is not 16 heads of chains 0..15 in order
 * (which only an altered checkpoint has). */
static int canonical_text(char *out, size_t size, json_int_t seq, const char *created_at, const char *prev,
                          const json_t *heads) {
  if (json_array_size(heads) != CHAINS || strlen(created_at) > 40 || strchr(created_at, '\n') ||
      (*prev && !is_hex(prev, SIG_LEN)))
    return -1;
  size_t n = (size_t)snprintf(out, size, "ducha audit checkpoint v1\nseq %lld\ncreated_at %s\nprev %s\n",
                              (long long)seq, created_at, *prev ? prev : "-");
  for (size_t chain = 0; chain < CHAINS && n < size; chain++) {
    const json_t *h = json_array_get(heads, chain);
    const json_t *number = json_object_get(h, "chain"), *at = json_object_get(h, "seq");
    const char *hash = json_string_value(json_object_get(h, "hash"));
    json_int_t last = json_integer_value(at);
    int empty = last == 0 && hash && !*hash;
    if (!json_is_integer(number) || json_integer_value(number) != (json_int_t)chain || !json_is_integer(at) ||
        last < 0 || !hash || !(empty || (last > 0 && is_hex(hash, SIG_LEN))))
      return -1;
    n += (size_t)snprintf(out + n, size - n, "head %zu %lld %s\n", chain, (long long)last, empty ? "-" : hash);
  }
  return n < size ? (int)n : -1;
}

/* ---- making one ------------------------------------------------------------------------------- */

static const char *SQL_LOCK = "SELECT pg_advisory_xact_lock(" CHECKPOINT_LOCK ")";
static const char *SQL_NEWEST = "SELECT seq, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1";

/* Takes the numbering lock for the transaction; *seq is the next number and prev the newest
 * checkpoint's signature ("" before the first). */
static status next_number(struct call *c, json_int_t *seq, char prev[SIG_LEN + 1]) {
  PGresult *r = NULL;
  status s = db_exec(c->db, NULL, SQL_LOCK, 0, NULL);
  if (s == ST_OK)
    s = db_exec(c->db, &r, SQL_NEWEST, 0, NULL);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  *seq = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) + 1 : 1;
  snprintf(prev, SIG_LEN + 1, "%s", PQntuples(r) ? PQgetvalue(r, 0, 1) : "");
  PQclear(r);
  return ST_OK;
}

/* Every chain's head as the JSON array a checkpoint signs. */
#define HEADS_JSON                                                                             \
  "(SELECT jsonb_agg(jsonb_build_object('chain', chain, 'seq', seq, 'hash', encode(hash, 'hex')) ORDER BY chain)" \
  " FROM audit_chain_heads)"
/* Every head in one statement, so that they are the heads of one moment, and that moment. */
static const char *SQL_HEADS = "SELECT " UTC_TEXT("clock_timestamp()") ", " HEADS_JSON;
static const char *SQL_INSERT =
    "INSERT INTO audit_checkpoints AS k (seq, created_at, heads, prev_signature, key_id, signature)"
    " VALUES ($1, $2, $3, nullif($4, ''), $5, $6) RETURNING " JSON_OF_K;

/* Reads the heads, signs them as checkpoint seq and stores the checkpoint into c->result. */
static status sign_and_store(struct call *c, const struct audit_key *k, json_int_t seq, const char *prev) {
  PGresult *r = NULL, *row = NULL;
  json_t *heads = NULL;
  char text[TEXT_MAX], sig[SIG_LEN + 1], created_at[48];
  status s = db_row(c->db, &r, SQL_HEADS, 0, NULL);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  snprintf(created_at, sizeof created_at, "%s", PQgetvalue(r, 0, 0));
  heads = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
  int len = canonical_text(text, sizeof text, seq, created_at, prev, heads);
  if (len < 0 || sign(k, text, (size_t)len, sig)) {
    s = fail(c, ST_INTERNAL, "could not sign the checkpoint");
    goto out;
  }
  struct num n = num(seq);
  const char *params[] = {n.s, created_at, PQgetvalue(r, 0, 1), prev, k->id, sig};
  if ((s = db_row(c->db, &row, SQL_INSERT, 6, params)) != ST_OK) {
    s = resource_db_failure(c, s);
    goto out;
  }
  c->result = json_loads(PQgetvalue(row, 0, 0), 0, NULL);
  c->etag = 1; /* a checkpoint never changes */
  snprintf(c->location, sizeof c->location, "%s/%lld", AUDIT_CHECKPOINTS.collection, (long long)seq);
  /* The operator's copy outside the database: what catches the newest checkpoints removed. */
  y_log_message(Y_LOG_LEVEL_INFO, "audit checkpoint %lld at %s signature %s key %s request_id=%s", (long long)seq,
                created_at, sig, k->id, c->request_id);
  s = c->result ? ST_OK : fail(c, ST_INTERNAL, "could not read the checkpoint");
out:
  json_decref(heads);
  PQclear(row);
  PQclear(r);
  return s;
}

/* Signs the heads of now as the next checkpoint, into c->result. */
static status checkpoint_make(struct call *c) {
  struct audit_key key;
  const char *why;
  char prev[SIG_LEN + 1] = "";
  json_int_t seq = 0;
  if (key_load(c->cfg->audit_key_file, &key, &why))
    return fail(c, ST_CONFLICT, "%s", why);
  status s = next_number(c, &seq, prev);
  /* Its own event first, so that the heads it signs include it. */
  if (s == ST_OK) {
    json_t *after = json_pack("{s:I}", "seq", seq);
    s = audit_write(c, "checkpoint", "audit_checkpoint", seq, NULL, after);
    json_decref(after);
  }
  if (s == ST_OK)
    s = sign_and_store(c, &key, seq, prev);
  explicit_bzero(&key, sizeof key);
  return s;
}

status checkpoint_create(struct call *c) {
  static const struct field NONE[] = {{0}};
  if (validate_body(c->body, NONE, 0, c->errors))
    return fail(c, ST_INVALID, "a checkpoint takes no fields");
  return checkpoint_make(c);
}

/* Whether every chain's head is what the newest checkpoint signed (none: no). */
static const char *SQL_UNCHANGED =
    "SELECT coalesce((SELECT heads FROM audit_checkpoints ORDER BY seq DESC LIMIT 1) = " HEADS_JSON ", false)";

status checkpoint_job(struct call *c, json_t **result) {
  char unchanged[8];
  status s = db_value(c->db, unchanged, sizeof unchanged, SQL_UNCHANGED, 0, NULL);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  if (!strcmp(unchanged, "t")) {
    *result = json_pack("{s:s}", "skipped", "no audit event since the newest checkpoint");
    return ST_OK;
  }
  if ((s = checkpoint_make(c)) == ST_OK)
    *result = json_pack("{s:O}", "seq", json_object_get(c->result, "seq"));
  return s;
}

const struct resource AUDIT_CHECKPOINTS = {
  .name = "audit checkpoint",
  .collection = "/api/v1/audit-events/checkpoints",
  .sql_get = "SELECT 1, " JSON_OF_K " FROM audit_checkpoints k WHERE k.seq = $1",
  .list = {
    .sql_page = "SELECT k.seq, " JSON_OF_K " FROM audit_checkpoints k"
                " WHERE ($1::bigint IS NULL OR k.seq < $1) ORDER BY k.seq DESC LIMIT $2",
    .sql_count = "SELECT count(*) FROM audit_checkpoints",
  },
};

/* ---- checking a range against them ------------------------------------------------------------- */

/* The checkpoints that bear on [$1, $2): those made in it, the first made after it (whose heads
 * cover the events of the range), and the one before each of them (so that none of these can be
 * altered, or moved out of the range by its time, unnoticed); each with whether the one numbered
 * before it exists, and that one's signature. */
static const char *SQL_RELEVANT =
    "WITH r AS (SELECT seq FROM audit_checkpoints WHERE created_at >= $1 AND created_at < $2"
    "           UNION ALL (SELECT seq FROM audit_checkpoints WHERE created_at >= $2 ORDER BY created_at LIMIT 1))"
    " SELECT k.seq, " UTC_TEXT("k.created_at") ", k.heads, coalesce(k.prev_signature, ''), k.key_id, k.signature,"
    " k.seq = 1 OR p.seq IS NOT NULL, coalesce(p.signature, '')"
    " FROM audit_checkpoints k LEFT JOIN audit_checkpoints p ON p.seq = k.seq - 1"
    " WHERE k.seq IN (SELECT seq FROM r UNION SELECT seq - 1 FROM r) ORDER BY k.seq";

enum { K_SEQ, K_AT, K_HEADS, K_PREV, K_KEY, K_SIG, K_HAS_PREV, K_PREV_FOUND };

static void checkpoint_problem(json_t *problems, json_int_t seq, const char *text) {
  json_array_append_new(problems, json_pack("{s:n, s:n, s:n, s:I, s:s}", "event_id", "chain", "chain_seq",
                                            "checkpoint", seq, "problem", text));
}

/* Checks row i of SQL_RELEVANT: its place after the one before it and its signature. Adds
 * problems; 1 when its signature holds (its heads can be believed). */
static int checkpoint_holds(const struct audit_key *k, PGresult *r, int i, json_t *problems) {
  long long seq = strtoll(PQgetvalue(r, i, K_SEQ), NULL, 10);
  char text[TEXT_MAX], sig[SIG_LEN + 1], say[160];
  if (strcmp(PQgetvalue(r, i, K_HAS_PREV), "t")) {
    snprintf(say, sizeof say, "checkpoint %lld is missing", seq - 1);
    checkpoint_problem(problems, seq - 1, say);
  } else if (strcmp(PQgetvalue(r, i, K_PREV), PQgetvalue(r, i, K_PREV_FOUND))) {
    snprintf(say, sizeof say, "checkpoint %lld does not follow checkpoint %lld: it names another signature", seq,
             seq - 1);
    checkpoint_problem(problems, seq, say);
  }
  json_t *heads = json_loads(PQgetvalue(r, i, K_HEADS), 0, NULL);
  int len = canonical_text(text, sizeof text, seq, PQgetvalue(r, i, K_AT), PQgetvalue(r, i, K_PREV), heads);
  json_decref(heads);
  if (len >= 0 && !sign(k, text, (size_t)len, sig) && !strcmp(sig, PQgetvalue(r, i, K_SIG)))
    return 1;
  if (strcmp(PQgetvalue(r, i, K_KEY), k->id))
    snprintf(say, sizeof say, "checkpoint %lld's signature does not match: it was altered, or signed with another"
             " key (key id %.16s)", seq, PQgetvalue(r, i, K_KEY));
  else
    snprintf(say, sizeof say, "checkpoint %lld's signature does not match", seq);
  checkpoint_problem(problems, seq, say);
  return 0;
}

/* For the checkpoints whose signatures hold ($1), every head against the event it names: the
 * event must be there with the hash that was signed. An event that is gone is named at the next
 * event of its chain when there is one (as audit_verify names a gap). */
static const char *SQL_HEADS_MATCH =
    "SELECT coalesce(json_agg(json_build_object('event_id', coalesce(e.id, n.id), 'chain', h.chain,"
    "  'chain_seq', coalesce(e.chain_seq, n.chain_seq, h.seq), 'checkpoint', k.seq, 'problem', CASE"
    "  WHEN e.id IS NOT NULL THEN format('the chain differs from signed checkpoint %s', k.seq)"
    "  WHEN n.id IS NOT NULL THEN format('the event before this one, signed by checkpoint %s, is missing', k.seq)"
    "  ELSE format('the event that checkpoint %s signed at this position is missing', k.seq) END)"
    "  ORDER BY k.seq, h.chain), '[]')"
    " FROM audit_checkpoints k CROSS JOIN LATERAL jsonb_to_recordset(k.heads) AS h(chain smallint, seq bigint, hash text)"
    " LEFT JOIN audit_events e ON e.chain = h.chain AND e.chain_seq = h.seq"
    " LEFT JOIN audit_events n ON e.id IS NULL AND n.chain = h.chain AND n.chain_seq = h.seq + 1"
    " WHERE k.seq = ANY ($1::bigint[]) AND h.seq > 0 AND (e.id IS NULL OR e.hash <> decode(h.hash, 'hex'))";

/* Events of [$1, $2) past the heads that checkpoint $3 signed for their chains: the ones no
 * checkpoint covers (all of them without one). */
static const char *SQL_UNANCHORED =
    "SELECT count(*) FROM audit_events e LEFT JOIN (SELECT h.chain, h.seq FROM audit_checkpoints k"
    "   CROSS JOIN LATERAL jsonb_to_recordset(k.heads) AS h(chain smallint, seq bigint) WHERE k.seq = $3::bigint) a"
    "   ON a.chain = e.chain"
    " WHERE e.occurred_at >= $1 AND e.occurred_at < $2 AND e.chain_seq > coalesce(a.seq, 0)";

/* Matches the heads of the checkpoints listed in held ("{1,2}") to the events. */
static status heads_match(struct call *c, const char *held, json_t *problems) {
  const char *params[] = {held};
  PGresult *r;
  status s = db_row(c->db, &r, SQL_HEADS_MATCH, 1, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  json_t *found = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
  PQclear(r);
  if (!found)
    return fail(c, ST_INTERNAL, "could not read the checkpoint check");
  json_array_extend(problems, found);
  json_decref(found);
  return ST_OK;
}

/* The coverage fields: the newest checkpoint that holds (anchor, row of r, or -1) anchors the
 * events up to its heads. */
static status coverage(struct call *c, const char *from, const char *to, PGresult *r, int anchor, json_t *out) {
  const char *params[] = {from, to, anchor >= 0 ? PQgetvalue(r, anchor, K_SEQ) : NULL};
  char count[24];
  status s = db_value(c->db, count, sizeof count, SQL_UNANCHORED, 3, params);
  if (s != ST_OK)
    return resource_db_failure(c, s);
  json_object_set_new(out, "anchored_until", anchor >= 0 ? json_string(PQgetvalue(r, anchor, K_AT)) : json_null());
  json_object_set_new(out, "unanchored_events", json_integer(strtoll(count, NULL, 10)));
  return ST_OK;
}

static void not_anchored(json_t *out, json_int_t events) {
  json_object_set_new(out, "anchored", json_false());
  json_object_set_new(out, "checkpoints_checked", json_integer(0));
  json_object_set_new(out, "anchored_until", json_null());
  json_object_set_new(out, "unanchored_events", json_integer(events));
}

status checkpoint_verify(struct call *c, const char *from, const char *to, json_int_t events, json_t *problems,
                         json_t *out) {
  struct audit_key key;
  const char *why, *params[] = {from, to};
  PGresult *r = NULL;
  char *held = NULL;
  int anchor = -1;
  if (key_load(c->cfg->audit_key_file, &key, &why)) {
    not_anchored(out, events);
    return ST_OK;
  }
  status s = db_exec(c->db, &r, SQL_RELEVANT, 2, params);
  if (s != ST_OK) {
    s = resource_db_failure(c, s);
    goto out;
  }
  int rows = PQntuples(r);
  size_t used = 0, size = (size_t)rows * 21 + 3;
  held = malloc(size);
  held[used++] = '{';
  for (int i = 0; i < rows; i++)
    if (checkpoint_holds(&key, r, i, problems)) {
      used += (size_t)snprintf(held + used, size - used, "%s%s", anchor >= 0 ? "," : "", PQgetvalue(r, i, K_SEQ));
      anchor = i;
    }
  snprintf(held + used, size - used, "}");
  json_object_set_new(out, "anchored", json_true());
  json_object_set_new(out, "checkpoints_checked", json_integer(rows));
  if ((s = heads_match(c, held, problems)) == ST_OK)
    s = coverage(c, from, to, r, anchor, out);
out:
  free(held);
  PQclear(r);
  explicit_bzero(&key, sizeof key);
  return s;
}
