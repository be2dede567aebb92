/* Passwords: Argon2id (RFC 9106) with a random salt, kept in PHC string form. */
#ifndef DUCHA_PASSWORD_H
#define DUCHA_PASSWORD_H

#include <stddef.h>

/* OWASP's recommended minimum for Argon2id: 19 MiB, 2 passes, 1 lane. */
#define PASSWORD_T_COST 2
#define PASSWORD_M_COST_KIB 19456
#define PASSWORD_LANES 1
#define PASSWORD_HASH_MAX 128

/* Writes the encoded hash of password into out. 0 on success. */
int password_hash(const char *password, char *out, size_t size) __attribute__((warn_unused_result));
/* 1 when password matches encoded. */
int password_verify(const char *encoded, const char *password);

#include "api.h"

/* The same, at most DUCHA_HASH_CONCURRENCY at once (each needs 19 MiB): a burst of logins
 * waits its turn, and past 5 s answers ST_TOO_MANY. */
status password_hash_bounded(struct call *c, const char *password, char *out, size_t size)
    __attribute__((warn_unused_result));
/* ST_OK when password matches encoded (NULL: compares against a dummy, to take the same time),
 * ST_UNAUTHORIZED when not. */
status password_verify_bounded(struct call *c, const char *encoded, const char *password)
    __attribute__((warn_unused_result));

#endif
