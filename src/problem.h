/* The stable set of problem types (RFC 9457) and their HTTP statuses. */
#ifndef DUCHA_PROBLEM_H
#define DUCHA_PROBLEM_H

#include "status.h"

struct problem_type {
  int http;
  const char *slug;   /* type is "urn:ducha:problem:" slug */
  const char *title;
};

const struct problem_type *problem_of(status s);

#define PROBLEM_URN "urn:ducha:problem:"

#endif
