#include <stdio.h>

#include "tap.h"
#include "throttle.h"

#define S 1000000LL /* a second in microseconds */

int main(void) {
  long long t0 = 1000 * S;
  struct throttle *t = throttle_new(3, 2);
  int served = 0;
  while (served < 10 && throttle_take(t, "10.0.0.1", t0) == 0)
    served++;
  ok(served == 3, "3 a minute: 3 at once, then no more (%d)", served);
  long wait = throttle_take(t, "10.0.0.1", t0);
  ok(wait == 20, "the next in 20 s, one interval of 3 a minute (%ld)", wait);
  ok(throttle_take(t, "10.0.0.1", t0 + 19 * S) > 0 && throttle_take(t, "10.0.0.1", t0 + 20 * S) == 0,
     "served once the wait is over, not before");
  ok(throttle_take(t, "10.0.0.1", t0 + 21 * S) > 0, "and then at the steady rate only");
  ok(throttle_take(t, "10.0.0.2", t0 + 21 * S) == 0, "another address has its own allowance");
  ok(throttle_take(t, "10.0.0.3", t0 + 21 * S) == 1, "a full table keeps a new address out for a second");
  ok(throttle_take(t, "10.0.0.3", t0 + 200 * S) == 0, "until its callers are idle and forgotten");
  served = 0;
  while (served < 10 && throttle_take(t, "10.0.0.1", t0 + 400 * S) == 0)
    served++;
  ok(served == 3, "an idle address has its whole allowance back (%d)", served);
  throttle_free(t);
  ok(throttle_new(0, 10) == NULL && throttle_new(5, 0) == NULL, "no limit of 0");
  t = throttle_new(1000000, 16);
  served = 0;
  while (served < 2000000 && throttle_take(t, "10.0.0.9", t0) == 0)
    served++;
  ok(served == 1000000, "a million a minute: a million at once (%d)", served);
  throttle_free(t);
  return done_testing();
}
