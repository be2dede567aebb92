/* Numbered lists (problems of an item, measures of a problem): inserting or moving an entry
 * shifts its siblings so the numbers stay 1..n. */
#ifndef DUCHA_ORDINAL_H
#define DUCHA_ORDINAL_H

#include "api.h"

struct ordinal_sql {
  const char *lock;      /* $1 parent id -> a row, locking the parent against concurrent moves */
  const char *count;     /* $1 parent id -> how many entries */
  const char *position;  /* $1 entry id -> (parent id, ordinal) */
  const char *shift;     /* $1 parent, $2 from, $3 to, $4 delta, $5 id left alone */
};

/* For a new entry under parent: checks body "ordinal" (1..n+1, default n+1), makes room, and
 * sets it in the body. */
status ordinal_for_create(struct call *c, const struct ordinal_sql *o, int64_t parent)
    __attribute__((warn_unused_result));
/* For a patch of entry c->id with an "ordinal": checks it (1..n) and moves the siblings between. */
status ordinal_for_patch(struct call *c, const struct ordinal_sql *o) __attribute__((warn_unused_result));

#endif
