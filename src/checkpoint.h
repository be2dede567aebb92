/* Checkpoints of the audit chains: numbered, signed copies of every chain's head, so that a
 * chain rewritten consistently inside the database (by its owner) no longer matches what the
 * service signed. The key lives in a file (DUCHA_AUDIT_KEY_FILE), never in the database. */
#ifndef DUCHA_CHECKPOINT_H
#define DUCHA_CHECKPOINT_H

#include "resource.h"

/* POST /audit-events/checkpoints: signs the heads of now (409 without a usable key). */
status checkpoint_create(struct call *c);

/* The periodic job (worker.c): a checkpoint when an audit event came since the newest one;
 * *result says what it did. */
status checkpoint_job(struct call *c, json_t **result);

/* Checks [from, to) against the checkpoints that bear on it, adds what it finds to problems
 * and the coverage fields (anchored, checkpoints_checked, anchored_until, unanchored_events)
 * to out; events is the number of events in the range. */
status checkpoint_verify(struct call *c, const char *from, const char *to, json_int_t events, json_t *problems,
                         json_t *out) __attribute__((warn_unused_result));

extern const struct resource AUDIT_CHECKPOINTS;

#endif
