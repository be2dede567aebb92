/* 督办: the moments rectifications turn overdue (yellow) or escalated (red), recorded once each. */
#ifndef DUCHA_ESCALATION_H
#define DUCHA_ESCALATION_H

#include "api.h"

/* The periodic job (worker.c): records, with an audit event each (`overdue`, `escalated`), the
 * rectifications that turned yellow or red since the last run, and forgets the records of those
 * that are no longer (a deadline extended, a submission), so that a later turn counts again;
 * *result says how many. */
status escalation_job(struct call *c, json_t **result);

#endif
