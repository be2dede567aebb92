/* Idempotency-Key on POST: the first successful response of a (user, key) is kept 24 h and
 * replayed for the same method, path and body. */
#ifndef DUCHA_IDEMPOTENCY_H
#define DUCHA_IDEMPOTENCY_H

#include <stddef.h>
#include <ulfius.h>

#include "api.h"

struct idem {
  int active;      /* this request owns the key and must store or abandon it */
  int replay;      /* a stored response is to be sent instead */
  char key[201];
  PGresult *stored;
};

/* Claims the key: ST_OK (active or replay set), ST_IDEM_RUNNING, ST_IDEM_REUSED, ST_INVALID. */
status idem_begin(struct call *c, struct idem *idem, const char *key, const char *method,
                  const char *path, const void *body, size_t len) __attribute__((warn_unused_result));
/* Keeps the response of the call (inside its transaction). */
status idem_store(struct call *c, struct idem *idem, int http_status) __attribute__((warn_unused_result));
/* Frees the key after a failure so that the client may retry. */
void idem_abandon(struct call *c, struct idem *idem);
/* Writes the stored response. */
void idem_replay(const struct idem *idem, struct _u_response *resp);
void idem_free(struct idem *idem);
/* The periodic job (worker.c): deletes the keys past their 24 h (and claims a crashed request
 * left running); *result says how many. */
status idem_purge_job(struct call *c, json_t **result);

#endif
