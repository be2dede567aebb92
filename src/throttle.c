/* The generic cell rate algorithm: each address keeps the time its next request is due at the
 * steady rate (one every 60 s / per_minute), which may run ahead of now by at most a minute's
 * worth; a request that would push it further waits. An address whose time is past is idle: its
 * whole allowance is back, so forgetting it changes nothing — that is how the table is kept
 * small. */
#include "throttle.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
  struct entry *next;
  long long due_us; /* when the next request is due at the steady rate */
  char address[64];
};

struct throttle {
  pthread_mutex_t lock;
  long long interval_us, burst_us;
  size_t max, count, nbuckets;
  long long swept_us;
  struct entry **buckets;
};

struct throttle *throttle_new(long per_minute, size_t max_addresses) {
  if (per_minute < 1 || max_addresses < 1)
    return NULL;
  struct throttle *t = calloc(1, sizeof *t);
  if (t)
    t->buckets = calloc(max_addresses / 4 + 1, sizeof *t->buckets);
  if (!t || !t->buckets) {
    free(t);
    return NULL;
  }
  t->interval_us = 60000000LL / per_minute;
  t->interval_us += !t->interval_us;
  t->burst_us = t->interval_us * per_minute;
  t->max = max_addresses;
  t->nbuckets = max_addresses / 4 + 1;
  pthread_mutex_init(&t->lock, NULL);
  return t;
}

void throttle_free(struct throttle *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->nbuckets; i++)
    for (struct entry *e = t->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  pthread_mutex_destroy(&t->lock);
  free(t->buckets);
  free(t);
}

/* Forgets the idle addresses. */
static void sweep(struct throttle *t, long long now_us) {
  t->swept_us = now_us;
  for (size_t i = 0; i < t->nbuckets; i++)
    for (struct entry **e = &t->buckets[i]; *e;) {
      if ((*e)->due_us > now_us) {
        e = &(*e)->next;
        continue;
      }
      struct entry *gone = *e;
      *e = gone->next;
      free(gone);
      t->count--;
    }
}

static struct entry **slot(struct throttle *t, const char *address) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const char *p = address; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  struct entry **e = &t->buckets[h % t->nbuckets];
  while (*e && strcmp((*e)->address, address))
    e = &(*e)->next;
  return e;
}

long throttle_take(struct throttle *t, const char *address, long long now_us) {
  long wait = 0;
  pthread_mutex_lock(&t->lock);
  if (now_us - t->swept_us > 60000000LL)
    sweep(t, now_us); /* at most once a minute, so that memory goes back after a burst of callers */
  struct entry **e = slot(t, address);
  if (!*e && t->count >= t->max && now_us - t->swept_us >= 1000000) { /* full: once a second at most */
    sweep(t, now_us);
    e = slot(t, address);
  }
  if (!*e && (t->count >= t->max || !(*e = calloc(1, sizeof **e)))) {
    wait = 1;
  } else {
    if (!(*e)->address[0]) {
      snprintf((*e)->address, sizeof (*e)->address, "%s", address);
      t->count++;
    }
    long long due = (*e)->due_us > now_us ? (*e)->due_us : now_us;
    long long ahead = due + t->interval_us - now_us;
    if (ahead > t->burst_us)
      wait = (long)((ahead - t->burst_us + 999999) / 1000000);
    else
      (*e)->due_us = due + t->interval_us;
  }
  pthread_mutex_unlock(&t->lock);
  return wait;
}
