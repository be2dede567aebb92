/* The delivery of webhook events: a thread of `ducha serve` (DUCHA_JOBS names "webhooks") with a
 * database connection of its own, which posts due deliveries (libcurl, several at once) and
 * records each attempt. It never holds a transaction while a receiver answers. */
#ifndef DUCHA_WEBHOOK_DELIVERY_H
#define DUCHA_WEBHOOK_DELIVERY_H

#include "config.h"

/* Its name in DUCHA_JOBS (worker.c takes it as a job's). */
#define WEBHOOK_JOB "webhooks"

/* Starts the thread when cfg->jobs names webhooks; cfg must outlive webhook_delivery_stop. */
int webhook_delivery_start(const struct config *cfg);
/* No delivery starts after this; those under way get a few seconds to finish, the rest are
 * handed back (due at once, for another replica); returns once the thread is gone. */
void webhook_delivery_stop(void);

/* For /metrics: attempts by outcome in this process, the pending deliveries at the loop's last
 * look, the attempts under way; running is 0 without the thread. */
struct webhook_stats {
  int running;
  unsigned long long delivered, retried, failed;
  long long queue, in_flight;
};
void webhook_delivery_stats(struct webhook_stats *out);

#endif
