#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yder.h>

#define CONNECT_DEADLINE_MS 800
#define RETRY_AFTER_FAILURE_MS 200

struct db_conn {
  PGconn *pg;
  int broken;
  struct db_error err;
};

static struct {
  const struct config *cfg;
  db_conn *conns;
  db_conn **free_list;
  int size, nfree;
  pthread_mutex_t lock;
  pthread_cond_t available;
  atomic_llong down_until_ms; /* after a failed connect, fail fast until then */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .available = PTHREAD_COND_INITIALIZER};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Session settings every connection gets: UTC times, the statement timeout, the local zone of
 * deadlines (read by SQL as current_setting('ducha.timezone')). */
static int session_setup(PGconn *pg, const struct config *cfg) {
  char timeout[32];
  snprintf(timeout, sizeof timeout, "%ld", cfg->statement_timeout);
  const char *params[] = {timeout, cfg->timezone};
  PGresult *r = PQexecParams(pg,
                             "SELECT set_config('statement_timeout', $1, false),"
                             " set_config('TimeZone', 'UTC', false),"
                             " set_config('DateStyle', 'ISO', false),"
                             " set_config('ducha.timezone', $2, false),"
                             " set_config('application_name', 'ducha', false),"
                             " set_config('client_min_messages', 'warning', false)",
                             2, NULL, params, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
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
  for (int i = 0; i < pool.size; i++)
    if (pool.conns[i].pg)
      PQfinish(pool.conns[i].pg);
  free(pool.conns);
  free(pool.free_list);
  pool.conns = NULL;
  pool.free_list = NULL;
  pool.size = pool.nfree = 0;
}

/* Makes c usable: reconnects when it is broken or was never connected. */
static status ensure_connected(db_conn *c) {
  if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK)
    return ST_OK;
  if (now_ms() < atomic_load(&pool.down_until_ms))
    return ST_UNAVAILABLE;
  if (c->pg)
    PQfinish(c->pg);
  char why[256];
  c->pg = connect_with_deadline(pool.cfg, CONNECT_DEADLINE_MS, why, sizeof why);
  c->broken = 0;
  if (!c->pg) {
    atomic_store(&pool.down_until_ms, now_ms() + RETRY_AFTER_FAILURE_MS);
    y_log_message(Y_LOG_LEVEL_WARNING, "database unavailable: %s", why);
    return ST_UNAVAILABLE;
  }
  return ST_OK;
}

status db_acquire(db_conn **out) {
  pthread_mutex_lock(&pool.lock);
  while (pool.nfree == 0)
    pthread_cond_wait(&pool.available, &pool.lock);
  db_conn *c = pool.free_list[--pool.nfree];
  pthread_mutex_unlock(&pool.lock);
  *out = c;
  return ensure_connected(c);
}

void db_release(db_conn *c) {
  if (!c)
    return;
  if (c->pg && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
    db_rollback(c);
  pthread_mutex_lock(&pool.lock);
  pool.free_list[pool.nfree++] = c;
  pthread_cond_signal(&pool.available);
  pthread_mutex_unlock(&pool.lock);
}

db_conn *db_open(const struct config *cfg) {
  char why[256];
  db_conn *c = calloc(1, sizeof *c);
  c->pg = connect_with_deadline(cfg, 10000, why, sizeof why);
  if (!c->pg) {
    fprintf(stderr, "ducha: cannot connect to the database: %s\n", why);
    free(c);
    return NULL;
  }
  return c;
}

void db_close(db_conn *c) {
  if (!c)
    return;
  PQfinish(c->pg);
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
  if (PQstatus(c->pg) != CONNECTION_OK || !state) {
    c->broken = 1;
    return ST_UNAVAILABLE;
  }
  if (!strcmp(state, "23505") || !strcmp(state, "40001") || !strcmp(state, "40P01") ||
      !strcmp(state, "55P03"))
    return ST_CONFLICT;
  if (!strcmp(state, "23503"))
    return ST_INVALID;
  if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2))
    return ST_INVALID;
  if (!strcmp(state, "57014") || (!strncmp(state, "08", 2) && strcmp(state, "08P01")) ||
      !strcmp(state, "57P01") || !strcmp(state, "53300")) {
    if (strcmp(state, "57014"))
      c->broken = 1;
    y_log_message(Y_LOG_LEVEL_WARNING, "database unavailable (%s): %s", state, c->err.message);
    return ST_UNAVAILABLE;
  }
  y_log_message(Y_LOG_LEVEL_ERROR, "database error %s: %s", state, c->err.message);
  return ST_INTERNAL;
}

status db_exec(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params) {
  if (res)
    *res = NULL;
  PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
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

status db_begin(db_conn *c) { return db_exec(c, NULL, "BEGIN", 0, NULL); }

status db_commit(db_conn *c) { return db_exec(c, NULL, "COMMIT", 0, NULL); }

void db_rollback(db_conn *c) {
  if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
    PQclear(PQexec(c->pg, "ROLLBACK"));
}
