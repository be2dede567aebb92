/* A growing text buffer, for JSON documents assembled from the pieces PostgreSQL built. */
#ifndef DUCHA_TEXT_H
#define DUCHA_TEXT_H

#include <stddef.h>

struct text {
  char *s;      /* NUL-terminated; owned; NULL until the first append */
  size_t len, cap;
  int failed;   /* an allocation failed: s holds what fitted before */
};

/* Appends n bytes of p. */
void text_add(struct text *t, const char *p, size_t n);
/* Appends a NUL-terminated string. */
void text_put(struct text *t, const char *p);
/* Appends printf-style. */
void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer over (caller frees it) and empties t; NULL when an allocation failed. */
char *text_take(struct text *t, size_t *len);

#endif
