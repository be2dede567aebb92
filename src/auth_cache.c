#include "auth_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A fixed table indexed by the key's first bytes (the key is a SHA-256, so they are uniform);
 * a newer token takes the slot of an older one. 4,096 callers at once fit. */
#define SLOTS 4096

struct slot {
  unsigned char key[32];
  long long until_ms; /* 0: empty */
  unsigned long generation;
  struct principal who; /* who.scope owned by the slot */
};

static struct {
  pthread_mutex_t lock;
  struct slot *slots;
  long ttl_ms;
  unsigned long generation;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct slot *slot_of(const unsigned char key[32]) {
  uint32_t i;
  memcpy(&i, key, sizeof i);
  return &cache.slots[i % SLOTS];
}

void auth_cache_init(long ttl_ms) {
  cache.ttl_ms = ttl_ms;
  if (ttl_ms > 0 && !cache.slots)
    cache.slots = calloc(SLOTS, sizeof *cache.slots);
}

unsigned long auth_cache_generation(void) {
  pthread_mutex_lock(&cache.lock);
  unsigned long g = cache.generation;
  pthread_mutex_unlock(&cache.lock);
  return g;
}

int auth_cache_get(const unsigned char key[32], struct principal *who) {
  if (!cache.slots)
    return 0;
  int hit = 0;
  pthread_mutex_lock(&cache.lock);
  struct slot *s = slot_of(key);
  if (s->until_ms > now_ms() && s->generation == cache.generation && !memcmp(s->key, key, 32)) {
    char *scope = strdup(s->who.scope);
    if (scope) {
      free(who->scope);
      *who = s->who;
      who->scope = scope;
      hit = 1;
    }
  }
  pthread_mutex_unlock(&cache.lock);
  return hit;
}

void auth_cache_put(const unsigned char key[32], const struct principal *who, long valid_ms,
                    unsigned long generation) {
  if (!cache.slots || valid_ms <= 0)
    return;
  char *scope = strdup(who->scope);
  if (!scope)
    return;
  long ttl = valid_ms < cache.ttl_ms ? valid_ms : cache.ttl_ms;
  pthread_mutex_lock(&cache.lock);
  if (generation == cache.generation) {
    struct slot *s = slot_of(key);
    char *old = s->who.scope;
    memcpy(s->key, key, 32);
    s->who = *who;
    s->who.scope = scope;
    s->generation = generation;
    s->until_ms = now_ms() + ttl;
    scope = old;
  }
  pthread_mutex_unlock(&cache.lock);
  free(scope);
}

void auth_cache_flush(void) {
  pthread_mutex_lock(&cache.lock);
  cache.generation++;
  pthread_mutex_unlock(&cache.lock);
}

void auth_cache_free(void) {
  if (!cache.slots)
    return;
  for (int i = 0; i < SLOTS; i++)
    free(cache.slots[i].who.scope);
  free(cache.slots);
  cache.slots = NULL;
}
