/* A few lines of TAP for the unit tests. */
#ifndef DUCHA_TAP_H
#define DUCHA_TAP_H

#include <stdio.h>

static int tap_n, tap_failed;

#define ok(cond, ...)                                                                          \
  do {                                                                                         \
    int ok_ = (cond);                                                                          \
    printf("%s %d - ", ok_ ? "ok" : "not ok", ++tap_n);                                        \
    printf(__VA_ARGS__);                                                                       \
    printf("\n");                                                                              \
    if (!ok_) {                                                                                \
      tap_failed++;                                                                            \
      printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                           \
    }                                                                                          \
  } while (0)

#define done_testing() (printf("1..%d\n", tap_n), 0)

#endif
