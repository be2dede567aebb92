/* 留痕: every change writes one audit event in its own transaction (a change whose event
 * cannot be written does not happen). Events are hash-chained in the database. */
#ifndef DUCHA_AUDIT_H
#define DUCHA_AUDIT_H

#include "api.h"

/* Appends an event; actor 0 is the service itself (the command line, background jobs). before/after may be NULL. */
status audit_db(db_conn *db, int64_t actor, const char *request_id, const char *address, const char *action,
                const char *entity_type, int64_t entity_id, const json_t *before, const json_t *after)
    __attribute__((warn_unused_result));
/* The same for the call's actor, request id and client address. */
status audit_write(struct call *c, const char *action, const char *entity_type, int64_t entity_id,
                   const json_t *before, const json_t *after) __attribute__((warn_unused_result));
/* An "update" event with only the fields that changed between two representations; nothing
 * when nothing changed. */
status audit_change(struct call *c, const char *entity_type, int64_t entity_id, const json_t *before,
                    const json_t *after) __attribute__((warn_unused_result));

status audit_list(struct call *c);
status audit_verify(struct call *c);

extern const struct qparam AUDIT_FILTERS[], AUDIT_VERIFY_PARAMS[];

#endif
