/* Verified tokens, kept in the process for a few seconds, so that a request needs no database
 * round trip to know its caller and the caller's scope. A change to users, tokens or the unit
 * tree empties the cache at once on this replica (auth_cache_flush); other replicas see it
 * within the cache's lifetime (DUCHA_TOKEN_CACHE_SECONDS). */
#ifndef DUCHA_AUTH_CACHE_H
#define DUCHA_AUTH_CACHE_H

#include <stdint.h>

#include "api.h"

/* Keeps entries for at most ttl_ms (0: the cache is off). */
void auth_cache_init(long ttl_ms);
/* The generation to give auth_cache_put for what is read from the database after this call. */
unsigned long auth_cache_generation(void);
/* 1 and who filled (who->scope newly allocated) when key is cached and fresh. */
int auth_cache_get(const unsigned char key[32], struct principal *who);
/* Keeps who under key until at most valid_ms from now, unless a flush came after generation. */
void auth_cache_put(const unsigned char key[32], const struct principal *who, long valid_ms,
                    unsigned long generation);
/* Forgets everything: a user, token or unit changed. */
void auth_cache_flush(void);
void auth_cache_free(void);

#endif
