#include "db.h"

#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yder.h>

#define CONNECT_DEADLINE_MS 600
#define PING_DEADLINE_MS 300
#define PING_WHEN_IDLE_MS 1000
#define RETRY_AFTER_FAILURE_MS 200

struct prepared {
  uint64_t hash;
  char *text; /* owned; NULL: an empty slot */
  size_t number; /* named "s<number>" on the server */
};

struct db_conn {
  PGconn *pg;
  int broken;
  long long last_ok_ms;                  /* when the server last answered */
  int deadline_ms;                       /* how long a statement's answer is awaited */
  struct prepared *prepared;             /* statements prepared on pg, a hash table by their text */
  size_t nprepared, cap;
  struct db_error err;
  /* A transaction begun by db_begin_as goes to the server with its first statement, in one
   * round trip; a read-only one's COMMIT is sent without waiting, its answer read before the
   * connection's next statement. */
  int begin_pending, read_only;
  const char *identity[3];               /* scope, actor, role: the caller's, until the first statement */
  char actor[24];
  int commit_unread;
  int report;                            /* holds one of the DUCHA_MAX_REPORTS slots (db_report) */
};

static struct {
  const struct config *cfg;
  db_conn *conns;
  db_conn **free_list;
  int size, nfree;
  int waiting;                  /* threads waiting for a free connection */
  pthread_mutex_t lock;
  pthread_cond_t available;
  atomic_llong down_until_ms;   /* after a failure, fail fast until then */
  atomic_llong suspect_since_ms; /* connections not heard from since then are pinged first */
  atomic_ullong timeouts;       /* statements that ran out of statement_timeout (57014) */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .available = PTHREAD_COND_INITIALIZER};

/* A new connection has none of the old one's statements. */
static void forget_prepared(db_conn *c) {
  for (size_t i = 0; i < c->cap; i++)
    free(c->prepared[i].text);
  free(c->prepared);
  c->prepared = NULL;
  c->nprepared = c->cap = 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The transaction's identity (see db_begin_as), sent with the first statement of
 * every transaction: prepared once per connection as "identity" (run_first). */
static const char *SQL_IDENTITY = "SELECT set_config('ducha.scope', $1, true), set_config('ducha.actor', $2, true),"
                                  " set_config('ducha.role', $3, true)";

/* Session settings every connection gets: UTC times, the statement timeout, the local zone of
 * deadlines (read by SQL as current_setting('ducha.timezone')), the 督办 thresholds (read by
 * ducha_escalation, migrations/0013), how long a webhook's old secret still signs (webhooks.c),
 * and the cost of a page read
 * out of order for data that is cached or on SSD: with the default 4 the planner reads a
 * 200-row catalogue (departments, users) from end to end for every name it looks up (10 µs)
 * rather than through its primary key (1 µs); on a ledger page that was half the time. */
static int session_setup(PGconn *pg, const struct config *cfg) {
  char timeout[32], blue[24], red[24], urges[24], overlap[24];
  snprintf(timeout, sizeof timeout, "%ld", cfg->statement_timeout);
  snprintf(blue, sizeof blue, "%ld", cfg->escalation_blue_days);
  snprintf(red, sizeof red, "%ld", cfg->escalation_red_days);
  snprintf(urges, sizeof urges, "%ld", cfg->escalation_red_urges);
  snprintf(overlap, sizeof overlap, "%ld", cfg->webhook_secret_overlap);
  const char *params[] = {timeout, cfg->timezone, blue, red, urges, overlap};
  PGresult *r = PQexecParams(pg,
                             "SELECT set_config('statement_timeout', $1, false),"
                             " set_config('TimeZone', 'UTC', false),"
                             " set_config('DateStyle', 'ISO', false),"
                             " set_config('ducha.timezone', $2, false),"
                             " set_config('ducha.escalation_blue_days', $3, false),"
                             " set_config('ducha.escalation_red_days', $4, false),"
                             " set_config('ducha.escalation_red_urges', $5, false),"
                             " set_config('ducha.webhook_secret_overlap', $6, false),"
                             " set_config('application_name', 'ducha', false),"
                             " set_config('client_min_messages', 'warning', false),"
                             " set_config('random_page_cost', '1.1', false),"
                             " set_config('jit', 'off', false)", /* compiling costs more than short queries take */
                             6, NULL, params, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
  if (ok && cfg->prepare) {
    PQclear(r);
    r = PQprepare(pg, "identity", SQL_IDENTITY, 3, NULL);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  }
  if (!ok)
    y_log_message(Y_LOG_LEVEL_ERROR, "database session set-up failed: %s", PQresultErrorMessage(r));
  PQclear(r);
  return ok ? 0 : -1;
}

/* Connects without blocking past the deadline. NULL and a reason on failure. */
static PGconn *connect_with_deadline(const struct config *cfg, int deadline_ms, char *why, size_t whylen) {
  /* The URL may override these; keepalives notice a peer that vanished mid-query. */
  const char *keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "dbname", NULL};
  const char *vals[] = {"2", "10", "3", "3", "15000", cfg->database_url, NULL};
  PGconn *pg = PQconnectStartParams(keys, vals, 1);
  long long end = now_ms() + deadline_ms;
  if (!pg) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  if (PQstatus(pg) == CONNECTION_BAD)
    goto fail;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK) {
    if (st == PGRES_POLLING_FAILED)
      goto fail;
    long long left = end - now_ms();
    if (left <= 0) {
      snprintf(why, whylen, "no answer within %d ms", deadline_ms);
      PQfinish(pg);
      return NULL;
    }
    struct pollfd p = {.fd = PQsocket(pg), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno != EINTR)
      goto fail;
    if (n > 0)
      st = PQconnectPoll(pg);
  }
  if (session_setup(pg, cfg))
    goto fail;
  return pg;
fail:
  snprintf(why, whylen, "%s", PQerrorMessage(pg));
  why[strcspn(why, "\n")] = '\0';
  PQfinish(pg);
  return NULL;
}

int db_pool_init(const struct config *cfg, int size) {
  pool.cfg = cfg;
  pool.size = size;
  pool.conns = calloc((size_t)size, sizeof *pool.conns);
  pool.free_list = calloc((size_t)size, sizeof *pool.free_list);
  if (!pool.conns || !pool.free_list)
    return -1;
  for (int i = 0; i < size; i++)
    pool.free_list[i] = &pool.conns[i];
  pool.nfree = size;
  return 0;
}

void db_pool_close(void) {
  for (int i = 0; i < pool.size; i++) {
    if (pool.conns[i].pg)
      PQfinish(pool.conns[i].pg);
    forget_prepared(&pool.conns[i]);
  }
  free(pool.conns);
  free(pool.free_list);
  pool.conns = NULL;
  pool.free_list = NULL;
  pool.size = pool.nfree = 0;
}

/* The database did not answer a connection or a ping: fail fast for a moment. */
static void mark_down(void) {
  long long now = now_ms();
  atomic_store(&pool.down_until_ms, now + RETRY_AFTER_FAILURE_MS);
  atomic_store(&pool.suspect_since_ms, now);
}

/* A statement went unanswered: the other connections ping before their next use. */
static void mark_suspect(void) { atomic_store(&pool.suspect_since_ms, now_ms()); }

static PGresult *run(db_conn *c, const char *sql, int nparams, const char *const *params, int deadline_ms,
                     int prepare, int binary);

/* Makes c usable: pings it when it has been quiet (a database that hangs must not hang the
 * request), and reconnects when it is broken or was never connected. */
static status ensure_connected(db_conn *c) {
  long long now = now_ms();
  if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK) {
    if (now - c->last_ok_ms < PING_WHEN_IDLE_MS && c->last_ok_ms > atomic_load(&pool.suspect_since_ms))
      return ST_OK;
    PGresult *r = run(c, "SELECT 1", 0, NULL, PING_DEADLINE_MS, 0, 0);
    int alive = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (alive)
      return ST_OK;
    c->broken = 1;
    mark_down();
    y_log_message(Y_LOG_LEVEL_WARNING, "database did not answer a ping within %d ms", PING_DEADLINE_MS);
    return ST_UNAVAILABLE;
  }
  if (now < atomic_load(&pool.down_until_ms))
    return ST_UNAVAILABLE;
  if (c->pg)
    PQfinish(c->pg);
  char why[256];
  c->pg = connect_with_deadline(pool.cfg, CONNECT_DEADLINE_MS, why, sizeof why);
  c->broken = 0;
  c->commit_unread = 0;
  c->begin_pending = 0;
  forget_prepared(c);
  if (!c->pg) {
    mark_down();
    y_log_message(Y_LOG_LEVEL_WARNING, "database unavailable: %s", why);
    return ST_UNAVAILABLE;
  }
  c->last_ok_ms = now_ms();
  /* A statement is awaited a little longer than the server lets it run: a database that
   * hangs answers 503 as fast as a slow statement does. */
  c->deadline_ms = (int)pool.cfg->statement_timeout + 100;
  return ST_OK;
}

status db_acquire(db_conn **out) {
  pthread_mutex_lock(&pool.lock);
  pool.waiting++;
  while (pool.nfree == 0)
    pthread_cond_wait(&pool.available, &pool.lock);
  pool.waiting--;
  db_conn *c = pool.free_list[--pool.nfree];
  pthread_mutex_unlock(&pool.lock);
  *out = c;
  return ensure_connected(c);
}

status db_budget(db_conn *c, long ms) {
  char text[24];
  snprintf(text, sizeof text, "%ld", ms);
  const char *params[] = {text};
  status s = db_exec(c, NULL, "SELECT set_config('statement_timeout', $1, true)", 1, params);
  if (s == ST_OK)
    c->deadline_ms = (int)ms + 100;
  return s;
}

/* Requests of the pool's connections running under the report budget now (db_report). */
static atomic_long reports_running;

status db_report(db_conn *c) {
  if (!c->report) {
    if (atomic_fetch_add(&reports_running, 1) >= pool.cfg->max_reports) {
      atomic_fetch_sub(&reports_running, 1);
      return ST_TOO_MANY;
    }
    c->report = 1;
  }
  return db_budget(c, pool.cfg->report_timeout);
}

void db_release(db_conn *c) {
  if (!c)
    return;
  if (c->report) {
    c->report = 0;
    atomic_fetch_sub(&reports_running, 1);
  }
  if (pool.cfg)
    c->deadline_ms = (int)pool.cfg->statement_timeout + 100;
  c->begin_pending = 0;
  if (c->pg && !c->broken && !c->commit_unread && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
    db_rollback(c);
  pthread_mutex_lock(&pool.lock);
  pool.free_list[pool.nfree++] = c;
  pthread_cond_signal(&pool.available);
  pthread_mutex_unlock(&pool.lock);
}

void db_pool_stats(struct db_pool_stats *out) {
  pthread_mutex_lock(&pool.lock);
  out->size = pool.size;
  out->in_use = pool.size - pool.nfree;
  out->waiting = pool.waiting;
  pthread_mutex_unlock(&pool.lock);
  out->timeouts = atomic_load_explicit(&pool.timeouts, memory_order_relaxed);
}

db_conn *db_open(const struct config *cfg) {
  char why[256];
  db_conn *c = calloc(1, sizeof *c);
  pool.cfg = pool.cfg ? pool.cfg : cfg;
  c->pg = connect_with_deadline(cfg, 10000, why, sizeof why);
  if (!c->pg) {
    fprintf(stderr, "ducha: cannot connect to the database: %s\n", why);
    free(c);
    return NULL;
  }
  /* Command-line work (migrations, the seed) may take long: no statement timeout. */
  c->deadline_ms = 24 * 3600 * 1000;
  /* The command line acts for the operator: it sees everything. */
  if (db_exec(c, NULL, "SELECT set_config('statement_timeout', '0', false), set_config('ducha.scope', 'all', false)",
              0, NULL) != ST_OK) {
    db_close(c);
    return NULL;
  }
  return c;
}

void db_close(db_conn *c) {
  if (!c)
    return;
  PQfinish(c->pg);
  forget_prepared(c);
  free(c);
}

PGconn *db_pg(db_conn *c) { return c->pg; }

const struct db_error *db_last_error(const db_conn *c) { return &c->err; }

static status classify(db_conn *c, PGresult *r) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
  const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
  snprintf(c->err.sqlstate, sizeof c->err.sqlstate, "%s", state ? state : "");
  snprintf(c->err.constraint, sizeof c->err.constraint, "%s", constraint ? constraint : "");
  snprintf(c->err.message, sizeof c->err.message, "%s", msg ? msg : "");
  c->err.message[strcspn(c->err.message, "\n")] = '\0';
  if (c->broken || PQstatus(c->pg) != CONNECTION_OK || !state) {
    c->broken = 1;
    mark_suspect();
    snprintf(c->err.message, sizeof c->err.message, "the database did not answer in time or went away");
    return ST_UNAVAILABLE;
  }
  if (!strcmp(state, "23505") || !strcmp(state, "40001") || !strcmp(state, "40P01") ||
      !strcmp(state, "55P03"))
    return ST_CONFLICT;
  if (!strcmp(state, "23503"))
    return ST_INVALID;
  if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2))
    return ST_INVALID;
  if (!strcmp(state, "57014")) { /* statement_timeout: the database is there, the work too big */
    atomic_fetch_add_explicit(&pool.timeouts, 1, memory_order_relaxed);
    return ST_QUERY_TIMEOUT;
  }
  if ((!strncmp(state, "08", 2) && strcmp(state, "08P01")) || !strcmp(state, "57P01") || !strcmp(state, "53300")) {
    c->broken = 1;
    y_log_message(Y_LOG_LEVEL_WARNING, "database unavailable (%s): %s", state, c->err.message);
    return ST_UNAVAILABLE;
  }
  y_log_message(Y_LOG_LEVEL_ERROR, "database error %s: %s", state, c->err.message);
  return ST_INTERNAL;
}

/* Waits for the results of what was sent, at most until deadline; NULL when it passed (the
 * connection is then marked broken: a server that hangs is treated as gone). */
/* Waits until a result can be read without blocking, at most until deadline; -1 when it
 * passed (the connection is then marked broken: a server that hangs is treated as gone). */
static int await_input(db_conn *c, long long deadline) {
  while (PQflush(c->pg) > 0 || PQisBusy(c->pg)) {
    long long left = deadline - now_ms();
    struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN | (PQflush(c->pg) > 0 ? POLLOUT : 0)};
    if (left <= 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR)) {
      c->broken = 1;
      return -1;
    }
    if ((p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c->pg))
      break;
  }
  return 0;
}

static PGresult *wait_result(db_conn *c, long long deadline) {
  PGresult *last = NULL, *r;
  if (await_input(c, deadline))
    return NULL;
  while ((r = PQgetResult(c->pg))) {
    /* keep the first error, else the last result */
    if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
      PQclear(r);
      continue;
    }
    PQclear(last);
    last = r;
  }
  c->last_ok_ms = now_ms();
  return last;
}

/* The statement named by its text in c's table, or the empty slot where it goes. */
static struct prepared *prepared_slot(db_conn *c, const char *sql, uint64_t hash) {
  size_t i = (size_t)hash & (c->cap - 1);
  while (c->prepared[i].text && (c->prepared[i].hash != hash || strcmp(c->prepared[i].text, sql)))
    i = (i + 1) & (c->cap - 1);
  return &c->prepared[i];
}

/* Room for one more, keeping the table at most half full; 0 when memory ran out. */
static int prepared_room(db_conn *c) {
  if (2 * (c->nprepared + 1) <= c->cap)
    return 1;
  size_t cap = c->cap ? 2 * c->cap : 64;
  struct prepared *old = c->prepared;
  size_t old_cap = c->cap;
  if (!(c->prepared = calloc(cap, sizeof *c->prepared))) {
    c->prepared = old;
    return 0;
  }
  c->cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].text)
      *prepared_slot(c, old[i].text, old[i].hash) = old[i];
  free(old);
  return 1;
}

static uint64_t text_hash(const char *s) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}


/* Sends the pending BEGIN and identity, then sql (prepared first as name when prepare), in one
 * pipeline, and reads their answers: sql's result, or the first error. */
static PGresult *run_first(db_conn *c, const char *sql, int nparams, const char *const *params, long long deadline,
                           const char *name, int *prepare, int binary) {
  const char *begin = c->read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
  int implicit = c->read_only == DB_ONE_READ; /* the Sync ends the statement's own transaction */
  PGresult *answer = NULL, *r;
  int sent = PQenterPipelineMode(c->pg) &&
             (implicit || PQsendQueryParams(c->pg, begin, 0, NULL, NULL, NULL, NULL, 0)) &&
             (pool.cfg->prepare ? PQsendQueryPrepared(c->pg, "identity", 3, c->identity, NULL, NULL, 0)
                                : PQsendQueryParams(c->pg, SQL_IDENTITY, 3, NULL, c->identity, NULL, NULL, 0)) &&
             (!*prepare || PQsendPrepare(c->pg, name, sql, nparams, NULL)) &&
             (name ? PQsendQueryPrepared(c->pg, name, nparams, params, NULL, NULL, binary)
                   : PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, binary)) &&
             PQpipelineSync(c->pg);
  c->begin_pending = 0;
  if (!sent) {
    c->broken = 1;
    return NULL;
  }
  /* each query's results end with NULL; the sync point ends the pipeline. The statement is
   * prepared when its Parse (the third query) succeeded, whatever came after. */
  int query = 0, parse = *prepare ? 2 - implicit : -1, queries = (*prepare ? 4 : 3) - implicit;
  if (implicit) { /* done at the Sync: anything after it begins anew, identity included */
    c->read_only = DB_READ_ONLY;
    c->begin_pending = 1;
  }
  *prepare = 0;
  for (int done = 0; !done;) {
    if (await_input(c, deadline))
      return answer; /* broken */
    if (!(r = PQgetResult(c->pg))) {
      if (PQstatus(c->pg) != CONNECTION_OK || ++query > queries) { /* gone mid-pipeline */
        c->broken = 1;
        return answer;
      }
      continue;
    }
    ExecStatusType st = PQresultStatus(r);
    done = st == PGRES_PIPELINE_SYNC;
    if (query == parse && st == PGRES_COMMAND_OK)
      *prepare = 1;
    if (!done && st != PGRES_PIPELINE_ABORTED && (!answer || PQresultStatus(answer) != PGRES_FATAL_ERROR)) {
      PQclear(answer);
      answer = r;
    } else {
      PQclear(r);
    }
  }
  PQexitPipelineMode(c->pg);
  c->last_ok_ms = now_ms();
  return answer;
}

/* Reads the answer to a COMMIT sent without waiting. */
static int read_commit(db_conn *c, long long deadline) {
  c->commit_unread = 0;
  PGresult *r = wait_result(c, deadline);
  if (!r)
    return -1;
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    y_log_message(Y_LOG_LEVEL_WARNING, "a read-only transaction did not commit: %s", PQresultErrorMessage(r));
  PQclear(r);
  return 0;
}

/* Keeps slot p for sql, just prepared on the server under the next number; -1 without memory. */
static int remember(db_conn *c, struct prepared *p, const char *sql, uint64_t hash) {
  if (!(p->text = strdup(sql)))
    return -1;
  p->hash = hash;
  p->number = ++c->nprepared;
  return 0;
}

/* Runs sql, with prepare as a statement prepared once per connection and found again by its
 * text: parsing and planning the big read queries is half their cost. Without, it is planned
 * for its values each time: what lists with optional filters need, as one generic plan cannot
 * serve them all. */
static PGresult *run(db_conn *c, const char *sql, int nparams, const char *const *params, int deadline_ms,
                     int prepare, int binary) {
  long long deadline = now_ms() + deadline_ms;
  struct prepared *p = NULL;
  uint64_t hash = 0;
  char name[24];
  if (c->commit_unread && read_commit(c, deadline))
    return NULL;
  if (prepare && pool.cfg->prepare && nparams > 0 && prepared_room(c)) {
    p = prepared_slot(c, sql, hash = text_hash(sql));
    snprintf(name, sizeof name, "s%zu", p->text ? p->number : c->nprepared + 1);
  }
  int fresh = p && !p->text; /* to be prepared now, as name */
  PGresult *r;
  if (c->begin_pending) { /* BEGIN, the identity, the Parse when fresh, and sql: one round trip */
    r = run_first(c, sql, nparams, params, deadline, p ? name : NULL, &fresh, binary);
    if (fresh && remember(c, p, sql, hash))
      c->broken = 1; /* the server has a statement this side cannot name again */
    return r;
  }
  if (fresh) {
    if (!PQsendPrepare(c->pg, name, sql, nparams, NULL))
      return NULL;
    r = wait_result(c, deadline);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      return r;
    PQclear(r);
    if (remember(c, p, sql, hash))
      return NULL;
  }
  int sent = p ? PQsendQueryPrepared(c->pg, name, nparams, params, NULL, NULL, binary)
               : PQsendQueryParams(c->pg, sql, nparams, NULL, params, NULL, NULL, binary);
  return sent ? wait_result(c, deadline) : NULL;
}

static status exec_as(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params,
                      int prepare, int binary) {
  if (res)
    *res = NULL;
  PGresult *r = run(c, sql, nparams, params, c->deadline_ms, prepare, binary);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
    if (res)
      *res = r;
    else
      PQclear(r);
    return ST_OK;
  }
  status s = classify(c, r);
  PQclear(r);
  return s;
}

status db_exec(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params) {
  return exec_as(c, res, sql, nparams, params, 1, 0);
}

status db_query(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params) {
  return exec_as(c, res, sql, nparams, params, 0, 0);
}

status db_row(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params) {
  status s = db_exec(c, res, sql, nparams, params);
  if (s == ST_OK && PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return ST_NOT_FOUND;
  }
  return s;
}

status db_value(db_conn *c, char *out, size_t size, const char *sql, int nparams, const char *const *params) {
  PGresult *r;
  status s = db_row(c, &r, sql, nparams, params);
  if (s == ST_OK) {
    snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  return s;
}

status db_bytes(db_conn *c, char *out, size_t max, size_t *len, const char *sql, int nparams,
                const char *const *params) {
  PGresult *r;
  status s = exec_as(c, &r, sql, nparams, params, 1, 1);
  *len = 0;
  if (s != ST_OK)
    return s;
  if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
    PQclear(r);
    return ST_NOT_FOUND;
  }
  size_t n = (size_t)PQgetlength(r, 0, 0);
  *len = n < max ? n : max;
  memcpy(out, PQgetvalue(r, 0, 0), *len);
  PQclear(r);
  return ST_OK;
}

void db_bytea_text(const void *data, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = data;
  out[0] = '\\', out[1] = 'x';
  for (size_t i = 0; i < len; i++) {
    out[2 + 2 * i] = digits[p[i] >> 4];
    out[3 + 2 * i] = digits[p[i] & 15];
  }
  out[2 + 2 * len] = '\0';
}

status db_begin(db_conn *c) { return db_exec(c, NULL, "BEGIN", 0, NULL); }

/* Nothing is sent yet: the identity goes to the server, as parameters, with the first statement. */
status db_begin_as(db_conn *c, const struct db_identity *who, int read_only) {
  c->actor[0] = '\0';
  if (who->actor > 0)
    snprintf(c->actor, sizeof c->actor, "%lld", (long long)who->actor);
  c->identity[0] = who->scope ? who->scope : "";
  c->identity[1] = c->actor;
  c->identity[2] = who->role ? who->role : "";
  c->read_only = read_only;
  c->begin_pending = 1;
  return ST_OK;
}

/* A read-only transaction's COMMIT cannot fail for its writes: it is sent without waiting. */
status db_commit(db_conn *c) {
  if (c->begin_pending) { /* nothing was sent: nothing to commit */
    c->begin_pending = 0;
    return ST_OK;
  }
  if (c->read_only && PQtransactionStatus(c->pg) == PQTRANS_INTRANS) {
    c->read_only = 0;
    if (!PQsendQueryParams(c->pg, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
      c->broken = 1;
      return ST_UNAVAILABLE;
    }
    c->commit_unread = 1;
    return ST_OK;
  }
  return db_exec(c, NULL, "COMMIT", 0, NULL);
}

void db_rollback(db_conn *c) {
  int sent = !c->begin_pending; /* nothing was sent: nothing to roll back (and no WARNING on stderr) */
  c->begin_pending = 0;
  c->read_only = 0;
  if (sent && c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK)
    PQclear(run(c, "ROLLBACK", 0, NULL, PING_DEADLINE_MS * 3, 0, 0));
}
