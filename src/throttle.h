/* A limit on how often one client address may call (the public view's, DUCHA_PUBLIC_RATE_LIMIT),
 * kept in the process: each replica counts its own callers. */
#ifndef DUCHA_THROTTLE_H
#define DUCHA_THROTTLE_H

#include <stddef.h>

struct throttle;

/* per_minute requests a minute from each address, up to per_minute of them at once; at most
 * max_addresses addresses remembered (each about 100 bytes). NULL without memory. */
struct throttle *throttle_new(long per_minute, size_t max_addresses);
void throttle_free(struct throttle *t);

/* Counts one request from address at now_us (a monotonic clock in microseconds): 0 when it may
 * be served, else the whole seconds (1 or more) until it may. When max_addresses callers are
 * remembered and none of them is idle, a new address waits a second (the table is swept for idle
 * ones once a second at most). Thread-safe. */
long throttle_take(struct throttle *t, const char *address, long long now_us);

#endif
