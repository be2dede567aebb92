/* The helpers every layer uses on a call (declared in api.h): kept below the HTTP side, so that
 * handlers and the modules under them depend on nothing above them. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "api.h"
#include "validate.h"

static atomic_int stopping; /* SIGTERM came: /readyz says so, responses close their connections */

int service_stopping(void) { return atomic_load(&stopping); }
void service_stop(void) { atomic_store(&stopping, 1); }

int call_not_modified(const struct call *c) {
  return c->if_none_match && c->etag_text[0] &&
         (list_has(c->if_none_match, c->etag_text) || list_has(c->if_none_match, "*"));
}

status fail(struct call *c, status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->detail, sizeof c->detail, fmt, ap);
  va_end(ap);
  return s;
}

status invalid(struct call *c, const char *pointer, const char *message) {
  errors_add(c->errors, pointer, message);
  return ST_INVALID;
}

struct num num(int64_t v) {
  struct num n;
  snprintf(n.s, sizeof n.s, "%lld", (long long)v);
  return n;
}
