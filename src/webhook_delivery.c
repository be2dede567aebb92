/* Webhook delivery (migrations/0018 fills the outbox; webhooks.c is the API).
 *
 * One thread, one database connection, one libcurl multi handle:
 *   - it LISTENs on ducha_webhooks, which each change that wrote a delivery NOTIFYs at commit,
 *     and also looks every DUCHA_WEBHOOK_POLL_MS (a notification can be missed: a reconnect,
 *     PgBouncer);
 *   - it takes due deliveries (SQL_CLAIM: FOR UPDATE SKIP LOCKED, committed at once) and moves
 *     their next_attempt_at past the attempt's timeout — the lease: with several replicas each
 *     delivery goes out once, and again only if the replica that took it died mid-attempt;
 *   - up to DUCHA_WEBHOOK_CONCURRENCY attempts run at once; no transaction is open meanwhile;
 *   - each attempt's outcome is recorded at once (SQL_DONE): delivered on a 2xx within the
 *     timeout; otherwise the next attempt after DUCHA_WEBHOOK_RETRY_BASE_MS doubled for each
 *     attempt (at most an hour), or failed once that would be DUCHA_WEBHOOK_RETRY_FOR after the
 *     delivery was made.
 * Each connection curl opens is checked against the address policy (address_refused) after
 * the name was resolved, so a name that resolves elsewhere since registration is refused too;
 * redirects are not followed, proxies from the environment not used, at most 64 KiB of an
 * answer read. */
#include "webhook_delivery.h"

#include <curl/curl.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <yder.h>

#include "address.h"
#include "db.h"
#include "text.h"
#include "validate.h"

#define EXCERPT 512          /* bytes of an answer kept in the log */
#define READ_MAX 65536       /* bytes of an answer read at most */
#define STOP_GRACE_MS 5000   /* what attempts under way get at shutdown */

struct transfer {
  struct transfer *next; /* the attempts under way: D.live */
  CURL *easy;
  struct curl_slist *headers;
  char *body;
  char id[24];
  long long webhook;
  long attempt; /* its number: 1 for the first */
  char excerpt[EXCERPT + 1];
  size_t got;
  char refused[200];
  char curl_error[CURL_ERROR_SIZE];
  long started_ms;
};

static struct {
  const struct config *cfg;
  pthread_t thread;
  CURLM *multi;
  struct transfer *live;
  int started;
  atomic_int stopping;
  atomic_ullong delivered, retried, failed;
  atomic_llong queue, in_flight;
  long next_due_ms; /* the loop's: when a retry recorded here is due (0: none known) */
} D;

/* The oldest due deliveries, up to $1, each subscription's up to its share ($5) less its attempts
 * under way here ($3: subscriptions, $4: their attempts): one slow or dead receiver cannot take
 * every attempt's place from the others. */
static const char *SQL_CLAIM =
    "WITH due AS (SELECT x.id FROM webhooks w LEFT JOIN unnest($3::bigint[], $4::int[]) b(id, n) ON b.id = w.id"
    "   CROSS JOIN LATERAL (SELECT d.id, d.next_attempt_at FROM webhook_deliveries d"
    "     WHERE d.webhook_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= now()"
    "     ORDER BY d.next_attempt_at LIMIT greatest(0, $5::int - coalesce(b.n, 0)) FOR UPDATE OF d SKIP LOCKED) x"
    "   WHERE w.active ORDER BY x.next_attempt_at LIMIT $1)"
    " UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),"
    "   next_attempt_at = now() + make_interval(secs => $2::double precision), version = d.version + 1"
    " FROM due, webhooks w, webhook_events e"
    " WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id"
    " RETURNING d.id, w.url, w.secret, CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END,"
    "   webhook_body(e), e.id, e.type, d.attempts, w.id";

/* $1 id, $2 delivered, $3 HTTP status, $4 excerpt, $5 error, $6 retry for (s), $7 duration (ms),
 * $8 the pause before the next attempt (ms) */
static const char *SQL_DONE =
    "UPDATE webhook_deliveries d SET"
    " status = CASE WHEN $2::boolean THEN 'delivered'"
    "   WHEN n.at > d.created_at + make_interval(secs => $6::int) THEN 'failed' ELSE 'pending' END,"
    " next_attempt_at = CASE WHEN $2::boolean THEN d.next_attempt_at ELSE n.at END,"
    " delivered_at = CASE WHEN $2::boolean THEN now() END,"
    " failed_at = CASE WHEN NOT $2::boolean AND n.at > d.created_at + make_interval(secs => $6::int) THEN now() END,"
    " response_status = $3::int, response_excerpt = $4, error = $5, duration_ms = $7::int, version = d.version + 1"
    " FROM (SELECT now() + make_interval(secs => $8::double precision / 1000) AS at) n"
    " WHERE d.id = $1 AND d.status = 'pending' RETURNING d.status";

/* An attempt not finished at shutdown: due again at once, for another replica. */
static const char *SQL_RELEASE =
    "UPDATE webhook_deliveries SET next_attempt_at = now(), attempts = attempts - 1, version = version + 1"
    " WHERE id = $1 AND status = 'pending'";

static const char *SQL_QUEUE = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'";

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* ---- one attempt ------------------------------------------------------------------------------ */

/* Every connection curl makes, after its name was resolved: a refused address is not dialled. */
static curl_socket_t open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *a) {
  struct transfer *t = data;
  char why[128];
  if (purpose == CURLSOCKTYPE_IPCXN && address_refused(&a->addr, D.cfg->webhook_allow, why, sizeof why)) {
    snprintf(t->refused, sizeof t->refused, "refused: %s", why);
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype, a->protocol);
}

/* The answer: its first EXCERPT bytes kept, reading stopped past READ_MAX. */
static size_t on_answer(char *p, size_t size, size_t n, void *data) {
  struct transfer *t = data;
  size_t len = size * n;
  if (t->got < EXCERPT) {
    size_t k = len < EXCERPT - t->got ? len : EXCERPT - t->got;
    memcpy(t->excerpt + t->got, p, k);
    t->excerpt[t->got + k] = '\0';
  }
  t->got += len;
  return t->got > READ_MAX ? 0 : len;
}

/* "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" and a v1 for the previous
 * secret while it still signs. */
static int sign(const char *body, const char *secret, const char *previous, char *out, size_t size) {
  long t = (long)time(NULL);
  size_t len = strlen(body);
  char *text = malloc(len + 32);
  if (!text)
    return -1;
  int n = snprintf(text, len + 32, "%ld.%s", t, body);
  int used = snprintf(out, size, "t=%ld", t);
  for (int k = 0; k < 2; k++) {
    const char *key = k ? previous : secret;
    unsigned char mac[32];
    if (!key)
      continue;
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, strlen(key), text, (size_t)n, mac) < 0) {
      free(text);
      return -1;
    }
    used += snprintf(out + used, size - (size_t)used, ",v1=");
    for (int i = 0; i < 32; i++)
      used += snprintf(out + used, size - (size_t)used, "%02x", mac[i]);
  }
  free(text);
  return 0;
}

static void transfer_free(struct transfer *t) {
  if (!t)
    return;
  curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  free(t->body);
  free(t);
}

/* Row i of SQL_CLAIM's result as an attempt under way. */
static int attempt(PGresult *r, int i) {
  struct transfer *t = calloc(1, sizeof *t);
  char header[300], signature[200];
  if (!t || !(t->easy = curl_easy_init()) || !(t->body = strdup(PQgetvalue(r, i, 4)))) {
    transfer_free(t);
    return -1;
  }
  snprintf(t->id, sizeof t->id, "%s", PQgetvalue(r, i, 0));
  t->attempt = strtol(PQgetvalue(r, i, 7), NULL, 10);
  t->webhook = strtoll(PQgetvalue(r, i, 8), NULL, 10);
  if (sign(t->body, PQgetvalue(r, i, 2), PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3), signature,
           sizeof signature)) {
    transfer_free(t);
    return -1;
  }
  const char *lines[] = {"Content-Type: application/json", "Expect:", NULL, NULL, NULL, NULL};
  char event[80], id[64], delivery[64];
  snprintf(event, sizeof event, "X-Ducha-Event: %s", PQgetvalue(r, i, 6));
  snprintf(id, sizeof id, "X-Ducha-Event-Id: %s", PQgetvalue(r, i, 5));
  snprintf(delivery, sizeof delivery, "X-Ducha-Delivery: %s", t->id);
  snprintf(header, sizeof header, "X-Ducha-Signature: %s", signature);
  lines[2] = event, lines[3] = id, lines[4] = delivery, lines[5] = header;
  for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
    struct curl_slist *l = curl_slist_append(t->headers, lines[k]);
    if (!l) {
      transfer_free(t);
      return -1;
    }
    t->headers = l;
  }
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, PQgetvalue(r, i, 1));
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, D.cfg->webhook_timeout_ms);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "ducha-webhooks/1");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(t->body));
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  t->started_ms = now_ms();
  if (curl_multi_add_handle(D.multi, e) != CURLM_OK) {
    transfer_free(t);
    return -1;
  }
  t->next = D.live;
  D.live = t;
  atomic_fetch_add(&D.in_flight, 1);
  return 0;
}

static void unlink_live(struct transfer *t) {
  for (struct transfer **p = &D.live; *p; p = &(*p)->next)
    if (*p == t) {
      *p = t->next;
      break;
    }
  curl_multi_remove_handle(D.multi, t->easy);
  atomic_fetch_sub(&D.in_flight, 1);
}

/* Records the outcome of a finished attempt. */
static status finish(db_conn *db, struct transfer *t, CURLcode result) {
  long code = 0, took = now_ms() - t->started_ms;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  int ok = code >= 200 && code < 300 && (result == CURLE_OK || result == CURLE_WRITE_ERROR);
  char error[300] = "";
  if (ok)
    ;
  else if (t->refused[0])
    snprintf(error, sizeof error, "%s", t->refused);
  else if (result == CURLE_OPERATION_TIMEDOUT)
    snprintf(error, sizeof error, "timeout after %ld ms", D.cfg->webhook_timeout_ms);
  else if (code >= 300 && code < 400)
    snprintf(error, sizeof error, "HTTP %ld: redirects are not followed", code);
  else if (code)
    snprintf(error, sizeof error, "HTTP %ld", code);
  else
    snprintf(error, sizeof error, "%s", t->curl_error[0] ? t->curl_error : curl_easy_strerror(result));
  utf8_mend(t->excerpt);
  utf8_mend(error);
  /* the base doubled for each attempt after the first, at most an hour */
  long pause = D.cfg->webhook_retry_base_ms;
  for (long n = 1; n < t->attempt && pause < 3600000; n++)
    pause *= 2;
  pause = pause < 3600000 ? pause : 3600000;
  char status_code[16], retry_for[24], duration[24], wait[24];
  snprintf(status_code, sizeof status_code, "%ld", code);
  snprintf(retry_for, sizeof retry_for, "%ld", D.cfg->webhook_retry_for);
  snprintf(duration, sizeof duration, "%ld", took);
  snprintf(wait, sizeof wait, "%ld", pause);
  const char *params[] = {t->id, ok ? "true" : "false", code ? status_code : NULL, t->got ? t->excerpt : NULL,
                          error[0] ? error : NULL, retry_for, duration, wait};
  char outcome[16] = "";
  status s = db ? db_value(db, outcome, sizeof outcome, SQL_DONE, 8, params) : ST_UNAVAILABLE;
  long due = now_ms() + pause + 2; /* after the database's now() + pause */
  if (!strcmp(outcome, "pending") && (!D.next_due_ms || due < D.next_due_ms))
    D.next_due_ms = due; /* the loop looks again then, not only at its next poll */
  if (!strcmp(outcome, "delivered"))
    atomic_fetch_add(&D.delivered, 1);
  else if (!strcmp(outcome, "failed"))
    atomic_fetch_add(&D.failed, 1);
  else if (!strcmp(outcome, "pending"))
    atomic_fetch_add(&D.retried, 1);
  if (!ok)
    y_log_message(Y_LOG_LEVEL_WARNING, "webhook delivery %s: %s (%s)", t->id, error, outcome[0] ? outcome : "not recorded");
  return s == ST_NOT_FOUND ? ST_OK : s;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* 1 when a notification came (all are read). */
static int notified(db_conn *db) {
  int any = 0;
  PGnotify *n;
  while ((n = PQnotifies(db_pg(db)))) {
    any = 1;
    PQfreemem(n);
  }
  return any;
}

static db_conn *connect_listening(void) {
  db_conn *db = db_open(D.cfg);
  if (db && (db_exec(db, NULL, "SELECT set_config('application_name', 'ducha webhooks', false),"
                               " set_config('statement_timeout', '10s', false)", 0, NULL) != ST_OK ||
             db_exec(db, NULL, "LISTEN ducha_webhooks", 0, NULL) != ST_OK)) {
    db_close(db);
    db = NULL;
  }
  return db;
}

/* Each subscription's attempts under way here, as two array literals: ids and counts. */
static void under_way(struct text *ids, struct text *counts) {
  text_put(ids, "{");
  text_put(counts, "{");
  for (struct transfer *t = D.live; t; t = t->next) {
    struct transfer *u = D.live;
    for (; u != t && u->webhook != t->webhook; u = u->next)
      ;
    if (u != t)
      continue; /* counted at its first attempt in the list */
    long n = 0;
    for (; u; u = u->next)
      n += u->webhook == t->webhook;
    text_printf(ids, "%s%lld", ids->len > 1 ? "," : "", t->webhook);
    text_printf(counts, "%s%ld", counts->len > 1 ? "," : "", n);
  }
  text_put(ids, "}");
  text_put(counts, "}");
}

/* Takes up to room due deliveries, each subscription's up to its share (half of
 * DUCHA_WEBHOOK_CONCURRENCY, at least one), and starts them: how many, or -1 when the connection
 * failed. */
static int claim(db_conn *db, long room) {
  char limit[24], lease[24], share[24];
  struct text ids = {0}, counts = {0};
  snprintf(limit, sizeof limit, "%ld", room);
  snprintf(lease, sizeof lease, "%ld", D.cfg->webhook_timeout_ms / 1000 + 60);
  snprintf(share, sizeof share, "%ld", D.cfg->webhook_concurrency / 2 > 1 ? D.cfg->webhook_concurrency / 2 : 1);
  under_way(&ids, &counts);
  char *id_list = text_take(&ids, NULL), *count_list = text_take(&counts, NULL);
  const char *params[] = {limit, lease, id_list, count_list, share};
  PGresult *r;
  status s = id_list && count_list ? db_exec(db, &r, SQL_CLAIM, 5, params) : ST_INTERNAL;
  free(id_list);
  free(count_list);
  if (s != ST_OK)
    return s == ST_INTERNAL ? 0 : -1;
  int n = PQntuples(r);
  for (int i = 0; i < n; i++)
    if (attempt(r, i)) {
      const char *id[] = {PQgetvalue(r, i, 0)};
      y_log_message(Y_LOG_LEVEL_ERROR, "webhook delivery %s: cannot start an attempt (out of memory)", id[0]);
      if (db_exec(db, NULL, SQL_RELEASE, 1, id) != ST_OK)
        break;
    }
  PQclear(r);
  return n;
}

/* Records every finished attempt: how many, or -1 when the connection failed. */
static int reap(db_conn **db) {
  CURLMsg *m;
  int left, rc = 0, n = 0;
  while ((m = curl_multi_info_read(D.multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    struct transfer *t;
    CURL *e = m->easy_handle;
    CURLcode result = m->data.result;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
    unlink_live(t);
    if (finish(*db, t, result) == ST_UNAVAILABLE)
      rc = -1; /* not recorded: the lease runs out and the delivery is tried again */
    transfer_free(t);
    n++;
  }
  return rc < 0 ? rc : n;
}

/* Hands back the attempts still under way. */
static void release_all(db_conn *db) {
  while (D.live) {
    struct transfer *t = D.live;
    unlink_live(t);
    const char *id[] = {t->id};
    if (db && db_exec(db, NULL, SQL_RELEASE, 1, id) != ST_OK)
      y_log_message(Y_LOG_LEVEL_WARNING, "webhook delivery %s: not handed back; due after its lease", t->id);
    transfer_free(t);
  }
}

static void count_queue(db_conn *db) {
  char n[24];
  if (db_value(db, n, sizeof n, SQL_QUEUE, 0, NULL) == ST_OK)
    atomic_store(&D.queue, strtoll(n, NULL, 10));
}

static void *loop(void *arg) {
  (void)arg;
  db_conn *db = NULL;
  long next_look = 0, next_count = 0, backoff = 500, stop_by = 0, due_at = 0;
  int wanted = 1, moved = 1;
  for (;;) {
    long now = now_ms();
    int stopping = atomic_load(&D.stopping);
    if (stopping && !stop_by)
      stop_by = now + STOP_GRACE_MS;
    if (stopping && (atomic_load(&D.in_flight) == 0 || now >= stop_by))
      break;
    if (!db && !stopping && now >= next_look) {
      if ((db = connect_listening())) {
        backoff = 500;
        wanted = 1;
      } else {
        y_log_message(Y_LOG_LEVEL_WARNING, "webhooks: no database connection; trying again in %ld ms", backoff);
        next_look = now + backoff;
        backoff = backoff < 60000 ? backoff * 2 : 60000;
      }
    }
    if (due_at && now >= due_at) {
      wanted = 1; /* a retry recorded here is due */
      due_at = 0;
    }
    long room = D.cfg->webhook_concurrency - atomic_load(&D.in_flight);
    if (db && !stopping && room > 0 && (wanted || now >= next_look)) {
      int n = claim(db, room);
      wanted = n == room; /* a full batch: there may be more */
      next_look = now + D.cfg->webhook_poll_ms;
      if (n < 0) {
        db_close(db);
        db = NULL;
      }
      moved |= n > 0;
    }
    int running;
    curl_multi_perform(D.multi, &running);
    int done = reap(&db);
    if (done < 0 && db) {
      db_close(db);
      db = NULL;
    }
    moved |= done > 0;
    wanted |= done > 0; /* a place came free: what waited for its subscription's share may go */
    /* the queue's gauge: after a change here, at most once a second, and at once when idle */
    if (db && moved && (atomic_load(&D.in_flight) == 0 || now >= next_count)) {
      count_queue(db);
      next_count = now + 1000;
      moved = 0;
    }
    if (D.next_due_ms && (!due_at || D.next_due_ms < due_at))
      due_at = D.next_due_ms; /* a retry recorded just now */
    D.next_due_ms = 0;
    if (db && notified(db))
      wanted = 1;
    struct curl_waitfd fd = {db ? PQsocket(db_pg(db)) : CURL_SOCKET_BAD, CURL_WAIT_POLLIN, 0};
    long wait = (due_at && due_at < next_look ? due_at : next_look) - now_ms();
    if (wanted && room > 0 && db)
      wait = 0;
    wait = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
    curl_multi_poll(D.multi, &fd, db ? 1 : 0, (int)wait, NULL);
    if (db && fd.revents) {
      if (!PQconsumeInput(db_pg(db))) {
        db_close(db);
        db = NULL;
      } else if (notified(db)) {
        wanted = 1;
      }
    }
  }
  release_all(db);
  db_close(db);
  return NULL;
}

int webhook_delivery_start(const struct config *cfg) {
  if (!list_has(cfg->jobs, WEBHOOK_JOB))
    return 0;
  D.cfg = cfg;
  atomic_store(&D.stopping, 0);
  if (!(D.multi = curl_multi_init()))
    return -1;
  if (pthread_create(&D.thread, NULL, loop, NULL)) {
    curl_multi_cleanup(D.multi);
    D.multi = NULL;
    return -1;
  }
  D.started = 1;
  y_log_message(Y_LOG_LEVEL_INFO, "webhooks: delivering, %ld at once", cfg->webhook_concurrency);
  return 0;
}

void webhook_delivery_stop(void) {
  if (!D.started)
    return;
  atomic_store(&D.stopping, 1);
  curl_multi_wakeup(D.multi);
  pthread_join(D.thread, NULL);
  curl_multi_cleanup(D.multi);
  D.multi = NULL;
  D.started = 0;
}

void webhook_delivery_stats(struct webhook_stats *out) {
  *out = (struct webhook_stats){D.started, atomic_load(&D.delivered), atomic_load(&D.retried), atomic_load(&D.failed),
                                atomic_load(&D.queue), atomic_load(&D.in_flight)};
}
