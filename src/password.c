#include "password.h"

#include <argon2.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int password_hash(const char *password, char *out, size_t size) {
  unsigned char salt[16];
  if (getrandom(salt, sizeof salt, 0) != (ssize_t)sizeof salt)
    return -1;
  return argon2id_hash_encoded(PASSWORD_T_COST, PASSWORD_M_COST_KIB, PASSWORD_LANES, password,
                               strlen(password), salt, sizeof salt, 32, out, size) == ARGON2_OK ? 0 : -1;
}

int password_verify(const char *encoded, const char *password) {
  return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

static sem_t slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static unsigned slots_count = 2;

/* A hash of nothing anyone knows, checked for unknown users: the answer takes as long either way. */
static char dummy[PASSWORD_HASH_MAX];

static void slots_init(void) {
  sem_init(&slots, 0, slots_count);
  if (password_hash("no such user", dummy, sizeof dummy))
    dummy[0] = '\0';
}

/* Takes a hashing slot, waiting at most 5 s. */
static status take_slot(struct call *c) {
  slots_count = (unsigned)c->cfg->hash_concurrency;
  pthread_once(&slots_once, slots_init);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  while (sem_timedwait(&slots, &until) != 0)
    if (errno != EINTR) {
      c->retry_after = 1;
      return fail(c, ST_TOO_MANY, "too many password checks at once; try again in a second");
    }
  return ST_OK;
}

status password_hash_bounded(struct call *c, const char *password, char *out, size_t size) {
  status s = take_slot(c);
  if (s != ST_OK)
    return s;
  int rc = password_hash(password, out, size);
  sem_post(&slots);
  return rc ? fail(c, ST_INTERNAL, "the password could not be hashed") : ST_OK;
}

status password_verify_bounded(struct call *c, const char *encoded, const char *password) {
  status s = take_slot(c);
  if (s != ST_OK)
    return s;
  int ok = password_verify(encoded ? encoded : dummy, password) && encoded;
  sem_post(&slots);
  return ok ? ST_OK : ST_UNAUTHORIZED;
}
