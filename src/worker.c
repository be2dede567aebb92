/* The worker: looks for a due job every DUCHA_JOB_POLL_MS and runs it (migrations/0012).
 *
 * Where its rules live:
 *   - which jobs exist, how often each runs: JOBS below, with their DUCHA_* settings (config.c);
 *   - once across replicas: the job's row is taken FOR UPDATE SKIP LOCKED and the job runs in
 *     that transaction; next_run_at moves on in it too (SQL_CLAIM, SQL_DONE), by the job's period,
 *     or by a second when it says there is more to do ({"more": true});
 *   - failures: rolled back to a savepoint, logged, kept in the row (last_error, failures) and
 *     retried after 1, 2, 4 ... seconds, never later than the job's period (SQL_FAILED);
 *   - identity: every transaction runs as the system (scope all, no actor, role "system"), so
 *     its audit events have no actor and request id "job:<name>";
 *   - the job "webhooks" is not a row here: it is the delivery loop of webhook_delivery.c, a thread
 *     of its own that delivers at once when a change is committed;
 *   - what a job does: its own module (idem_purge_job in idempotency.c, checkpoint_job in
 *     checkpoint.c, escalation_job in escalation.c, statistics_job in statistics.c). */
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yder.h>

#include "checkpoint.h"
#include "escalation.h"
#include "idempotency.h"
#include "log.h"
#include "statistics.h"
#include "webhook_delivery.h"

struct job {
  const char *name;
  size_t every;                                      /* offset of its period (seconds) in struct config */
  status (*run)(struct call *c, json_t **result);   /* in the claiming transaction; *result: what it did */
  int needs_audit_key;                               /* skipped without DUCHA_AUDIT_KEY_FILE */
};

static const struct job JOBS[] = {
  {"purge-idempotency-keys", offsetof(struct config, idempotency_purge_every), idem_purge_job, 0},
  {"audit-checkpoint", offsetof(struct config, checkpoint_every), checkpoint_job, 1},
  {"escalation", offsetof(struct config, escalation_every), escalation_job, 0},
  {"statistics", offsetof(struct config, statistics_every), statistics_job, 0},
};
#define NJOBS (sizeof JOBS / sizeof JOBS[0])

/* Runs and failures of each job in this process, for /metrics. */
static atomic_ullong job_runs[NJOBS], job_failures[NJOBS];

static const char *SQL_CLAIM =
    "SELECT name FROM jobs WHERE name = ANY ($1::text[]) AND next_run_at <= now()"
    " ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED";
static const char *SQL_DONE =
    "UPDATE jobs SET next_run_at = now() + make_interval(secs => $2::bigint), runs = runs + 1, failures = 0,"
    " last_success_at = now(), last_error = NULL, last_worker = $3, last_result = $4::jsonb WHERE name = $1";
static const char *SQL_FAILED =
    "UPDATE jobs SET next_run_at = now() + make_interval(secs => least($2::bigint, 2 ^ least(failures, 20))),"
    " failures = failures + 1, last_failure_at = now(), last_error = $4, last_worker = $3 WHERE name = $1";

static struct {
  const struct config *cfg;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int started, stopping;
  char names[256];   /* the array literal of the jobs this process runs: {a,b} */
  char id[96];       /* host:pid */
} W = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const struct job *job_named(const char *name, size_t len) {
  for (size_t i = 0; i < NJOBS; i++)
    if (strlen(JOBS[i].name) == len && !strncmp(JOBS[i].name, name, len))
      return &JOBS[i];
  return NULL;
}

/* The next name of the comma-separated list at *p, spaces trimmed, its length in *len; NULL at
 * the end. */
static const char *next_name(const char **p, size_t *len) {
  while (**p) {
    const char *s = *p;
    size_t n = strcspn(s, ",");
    *p = s + n + (s[n] == ',');
    for (; n && *s == ' '; s++, n--)
      ;
    for (; n && s[n - 1] == ' '; n--)
      ;
    if (n) {
      *len = n;
      return s;
    }
  }
  return NULL;
}

/* DUCHA_JOBS=none: no job here (an empty setting means the default, as every setting's does). */
static int no_jobs(const struct config *cfg) { return !strcmp(cfg->jobs, "none"); }

int worker_check(const struct config *cfg, char *err, size_t size) {
  const char *p = cfg->jobs, *name;
  size_t len;
  if (no_jobs(cfg))
    return 0;
  while ((name = next_name(&p, &len)))
    if (!job_named(name, len) && !(len == strlen(WEBHOOK_JOB) && !strncmp(name, WEBHOOK_JOB, len))) {
      int n = snprintf(err, size, "DUCHA_JOBS names \"%.*s\", which is not a job (jobs:", (int)len, name);
      for (size_t i = 0; i < NJOBS && n > 0 && (size_t)n < size; i++)
        n += snprintf(err + n, size - (size_t)n, " %s", JOBS[i].name);
      if (n > 0 && (size_t)n < size)
        snprintf(err + n, size - (size_t)n, " " WEBHOOK_JOB ")");
      return -1;
    }
  return 0;
}

static int stopping(void) {
  pthread_mutex_lock(&W.lock);
  int s = W.stopping;
  pthread_mutex_unlock(&W.lock);
  return s;
}

/* Sleeps ms or until worker_stop. */
static void pause_ms(long ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&W.lock);
  while (!W.stopping && pthread_cond_timedwait(&W.wake, &W.lock, &until) == 0)
    ;
  pthread_mutex_unlock(&W.lock);
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* Runs job j inside the claiming transaction; its outcome goes into the job's row. */
static status run_claimed(db_conn *db, const struct job *j) {
  const struct config *cfg = W.cfg;
  char request_id[64];
  snprintf(request_id, sizeof request_id, "job:%s", j->name);
  struct call c = {.cfg = cfg, .request_id = request_id, .db = db, .errors = json_array()};
  log_set_request(request_id); /* its messages name the job */
  json_t *result = NULL;
  long started = now_ms();
  status s = db_exec(db, NULL, "SAVEPOINT job", 0, NULL);
  if (s == ST_OK)
    s = j->run(&c, &result);
  /* a job that left work for later ({"more": true}) runs again after a second */
  struct num every = num(s == ST_OK && json_is_true(json_object_get(result, "more"))
                             ? 1
                             : *(const long *)((const char *)cfg + j->every));
  if (s == ST_OK) {
    char *text = json_dumps(result, JSON_COMPACT);
    const char *params[] = {j->name, every.s, W.id, text};
    if ((s = db_exec(db, NULL, SQL_DONE, 4, params)) == ST_OK && (s = db_commit(db)) == ST_OK) {
      atomic_fetch_add(&job_runs[j - JOBS], 1);
      y_log_message(Y_LOG_LEVEL_INFO, "job %s done in %ld ms: %s", j->name, now_ms() - started, text);
    }
    free(text);
  }
  if (s != ST_OK) {
    char why[600];
    const struct db_error *e = db_last_error(db);
    snprintf(why, sizeof why, "%s%s%s", c.detail, c.detail[0] && e->message[0] ? ": " : "", e->message);
    atomic_fetch_add(&job_runs[j - JOBS], 1);
    atomic_fetch_add(&job_failures[j - JOBS], 1);
    y_log_message(Y_LOG_LEVEL_ERROR, "job %s failed after %ld ms: %s", j->name, now_ms() - started, why);
    const char *params[] = {j->name, every.s, W.id, why};
    PGTransactionStatusType open = PQtransactionStatus(db_pg(db));
    /* ST_INTERNAL: the failure is recorded, the connection is fine; else it is not */
    s = (open == PQTRANS_INTRANS || open == PQTRANS_INERROR) &&
                db_exec(db, NULL, "ROLLBACK TO SAVEPOINT job", 0, NULL) == ST_OK &&
                db_exec(db, NULL, SQL_FAILED, 4, params) == ST_OK && db_commit(db) == ST_OK
            ? ST_INTERNAL
            : ST_UNAVAILABLE;
  }
  log_set_request(NULL);
  json_decref(result);
  json_decref(c.result);
  json_decref(c.errors);
  json_decref(c.allowed);
  return s;
}

/* 1 when a job ran (or failed and that was recorded), 0 when none was due, -1 when the
 * connection is no good. */
static int run_one(db_conn *db) {
  static const struct db_identity SYSTEM = {"all", 0, "system"};
  PGresult *r = NULL;
  const char *params[] = {W.names};
  if (db_begin_as(db, &SYSTEM, 0) != ST_OK || db_budget(db, W.cfg->report_timeout) != ST_OK ||
      db_exec(db, &r, SQL_CLAIM, 1, params) != ST_OK) {
    db_rollback(db);
    return -1;
  }
  const struct job *j = PQntuples(r) ? job_named(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) : NULL;
  PQclear(r);
  if (!j)
    return db_commit(db) == ST_OK ? 0 : -1;
  status s = run_claimed(db, j);
  return s == ST_OK || s == ST_INTERNAL ? 1 : -1;
}

static void *loop(void *arg) {
  (void)arg;
  db_conn *db = NULL;
  long backoff = W.cfg->job_poll_ms;
  while (!stopping()) {
    if (!db && !(db = db_open(W.cfg))) {
      y_log_message(Y_LOG_LEVEL_WARNING, "worker: no database connection; trying again in %ld ms", backoff);
      pause_ms(backoff);
      backoff = backoff < 60000 ? backoff * 2 : 60000;
      continue;
    }
    backoff = W.cfg->job_poll_ms;
    /* pg_stat_activity tells the worker's connection from the request pool's */
    if (db_exec(db, NULL, "SELECT set_config('application_name', 'ducha worker', false)", 0, NULL) != ST_OK) {
      db_close(db);
      db = NULL;
      pause_ms(backoff);
      continue;
    }
    int ran;
    while ((ran = run_one(db)) > 0 && !stopping())
      ;
    if (ran < 0) {
      db_close(db);
      db = NULL;
    }
    pause_ms(W.cfg->job_poll_ms);
  }
  db_close(db);
  return NULL;
}

size_t worker_job_stats(struct worker_job_stats *out, size_t max) {
  size_t n = 0;
  for (; n < NJOBS && n < max; n++)
    out[n] = (struct worker_job_stats){JOBS[n].name, atomic_load(&job_runs[n]), atomic_load(&job_failures[n])};
  return n;
}

int worker_start(const struct config *cfg) {
  const char *p = cfg->jobs, *name;
  size_t len, n = 1;
  W.cfg = cfg;
  snprintf(W.names, sizeof W.names, "{");
  while (!no_jobs(cfg) && (name = next_name(&p, &len))) {
    const struct job *j = job_named(name, len);
    if (j && !(j->needs_audit_key && !cfg->audit_key_file[0]) && n + len + 2 < sizeof W.names)
      n += (size_t)snprintf(W.names + n, sizeof W.names - n, "%s%s", n > 1 ? "," : "", j->name);
  }
  snprintf(W.names + n, sizeof W.names - n, "}");
  if (n == 1)
    return 0; /* no job to run here */
  char host[64] = "";
  gethostname(host, sizeof host - 1);
  snprintf(W.id, sizeof W.id, "%s:%ld", host, (long)getpid());
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&W.wake, &attr);
  pthread_condattr_destroy(&attr);
  W.stopping = 0;
  if (pthread_create(&W.thread, NULL, loop, NULL)) {
    pthread_cond_destroy(&W.wake);
    return -1;
  }
  W.started = 1;
  y_log_message(Y_LOG_LEVEL_INFO, "worker: jobs %s as %s", W.names, W.id);
  return 0;
}

void worker_stop(void) {
  if (!W.started)
    return;
  pthread_mutex_lock(&W.lock);
  W.stopping = 1;
  pthread_cond_broadcast(&W.wake);
  pthread_mutex_unlock(&W.lock);
  pthread_join(W.thread, NULL);
  pthread_cond_destroy(&W.wake);
  W.started = 0;
}
