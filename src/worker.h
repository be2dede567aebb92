/* Background work: the jobs of `ducha serve` that no request waits for (purging expired
 * Idempotency-Keys, periodic audit checkpoints; escalation and webhook delivery next). One
 * thread runs them on a database connection of its own, never the request pool's. */
#ifndef DUCHA_WORKER_H
#define DUCHA_WORKER_H

#include <stddef.h>

#include "config.h"

/* 0 when every name in cfg->jobs is a job; otherwise -1 and the unknown one in err. */
int worker_check(const struct config *cfg, char *err, size_t size);
/* Starts the thread (none when cfg->jobs is empty). cfg must outlive worker_stop. */
int worker_start(const struct config *cfg);
/* No job starts after this; a job under way finishes (within DUCHA_REPORT_TIMEOUT); returns once
 * the thread is gone. */
void worker_stop(void);

/* For /metrics: each job's runs and failures in this process since the start (a failure is a run
 * too); the number of jobs written into out. */
struct worker_job_stats {
  const char *name;
  unsigned long long runs, failures;
};
size_t worker_job_stats(struct worker_job_stats *out, size_t max);

#endif
