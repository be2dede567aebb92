/* Bearer tokens: made from 32 random bytes, kept in the database only as SHA-256. */
#ifndef DUCHA_AUTH_H
#define DUCHA_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define TOKEN_PREFIX "dch_"
#define TOKEN_LENGTH 47 /* "dch_" + 43 base64url characters */

/* 1 when text has the shape of a token (no database needed to refuse garbage). */
int auth_token_plausible(const char *text);
/* Looks the token up; fills who. ST_UNAUTHORIZED when unknown, expired, revoked or disabled. */
status auth_verify(db_conn *db, const char *token, struct principal *who);
struct token_made {
  int64_t id;
  char text[TOKEN_LENGTH + 1]; /* shown once, never stored */
  char expires_at[40];         /* RFC 3339 */
};

/* Makes a new token for user_id valid for ttl_hours, noting the client address (may be NULL). */
status auth_token_create(db_conn *db, int64_t user_id, long ttl_hours, const char *address,
                         struct token_made *out) __attribute__((warn_unused_result));

#endif
