/* PostgreSQL access: a pool of connections (one per worker thread), connecting with a deadline
 * so that a missing database answers 503 within a second, and a query helper that maps every
 * failure to a status. SQL always goes with parameters. */
#ifndef DUCHA_DB_H
#define DUCHA_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

typedef struct db_conn db_conn;

/* What the last failed statement said: SQLSTATE and constraint (empty when none). */
struct db_error {
  char sqlstate[6];
  char constraint[64];
  char message[256];
};

/* Opens a pool of size connections lazily (no connection is made here). */
int db_pool_init(const struct config *cfg, int size) __attribute__((warn_unused_result));
void db_pool_close(void);
/* For /metrics: the pool's connections, those taken, the threads waiting for one, and the
 * statements (pool's or not) that ran out of statement_timeout since the start. */
struct db_pool_stats {
  int size, in_use, waiting;
  unsigned long long timeouts;
};
void db_pool_stats(struct db_pool_stats *out);
/* Takes a connection from the pool, connected and ready; ST_UNAVAILABLE when the database is
 * away. *out is set either way and must go back with db_release. */
status db_acquire(db_conn **out) __attribute__((warn_unused_result));
void db_release(db_conn *c);

/* A single connection outside the pool (command-line tools: no statement timeout). NULL after
 * printing why. */
db_conn *db_open(const struct config *cfg);
void db_close(db_conn *c);

/* Runs sql with text parameters (NULL = SQL NULL). On ST_OK *res holds the result (caller
 * PQclears it; res may be NULL to discard). Otherwise *res is NULL and db_last_error says why:
 * 23505 -> ST_CONFLICT, 23503 -> ST_INVALID (a missing reference), 23514/22xxx -> ST_INVALID,
 * 40001/40P01/55P03 -> ST_CONFLICT, lost connection or timeout -> ST_UNAVAILABLE. */
status db_exec(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
/* The same, planned for its values each time (not prepared): for queries whose optional
 * filters ("$n IS NULL OR ...") need a plan of their own. */
status db_query(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
/* Like db_exec for a statement that returns rows: ST_NOT_FOUND when it returned none. */
status db_row(db_conn *c, PGresult **res, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
/* The first column of the one row sql returns, as text in out; ST_NOT_FOUND without a row. */
status db_value(db_conn *c, char *out, size_t size, const char *sql, int nparams, const char *const *params)
    __attribute__((warn_unused_result));
/* The first column of the one row sql returns, as bytes (bytea), at most max into out, the
 * number in *len; ST_NOT_FOUND without a row. */
status db_bytes(db_conn *c, char *out, size_t max, size_t *len, const char *sql, int nparams,
                const char *const *params) __attribute__((warn_unused_result));
const struct db_error *db_last_error(const db_conn *c);
/* data[0..len) as bytea text ("\\x" and hex) for a text parameter, into out (2 * len + 3 bytes). */
void db_bytea_text(const void *data, size_t len, char *out);

status db_begin(db_conn *c) __attribute__((warn_unused_result));
/* Lets the statements of the current transaction run for up to ms (a report's budget rather
 * than an interactive request's); back to the usual deadline when the connection is released. */
status db_budget(db_conn *c, long ms) __attribute__((warn_unused_result));
/* db_budget(DUCHA_REPORT_TIMEOUT) for a request of the pool, when fewer than DUCHA_MAX_REPORTS
 * requests run under it (else ST_TOO_MANY): reports wait on the database for seconds, and the
 * pool must keep connections for everyone else. The slot is the request's until db_release. */
status db_report(db_conn *c) __attribute__((warn_unused_result));
/* Who a transaction runs for, read by SQL through ducha_scope() and current_setting: scope is
 * 'all', a department id array ("{1,2}"), or NULL/"" for nothing at all. */
struct db_identity {
  const char *scope;
  int64_t actor; /* 0: none */
  const char *role;
};
/* Access modes of db_begin_as. */
enum { DB_READ_WRITE = 0, DB_READ_ONLY = 1, DB_ONE_READ = 2 };
/* BEGIN (REPEATABLE READ READ ONLY for DB_READ_ONLY: one snapshot) with the identity set for
 * this transaction only, sent with the transaction's first statement (who's strings must live
 * until then). DB_ONE_READ, for a read of one statement: no BEGIN and no COMMIT, the identity and
 * the statement go in one implicit transaction (one Sync); a further statement would begin a
 * read-only transaction of its own, identity included. */
status db_begin_as(db_conn *c, const struct db_identity *who, int read_only) __attribute__((warn_unused_result));
status db_commit(db_conn *c) __attribute__((warn_unused_result));
void db_rollback(db_conn *c);

PGconn *db_pg(db_conn *c);

#endif
