#include "problem.h"

static const struct problem_type TYPES[ST__COUNT] = {
  [ST_OK] = {200, "ok", "OK"},
#define PROBLEM(st, http, slug, title) [st] = {http, slug, title},
#include "problem_types.def"
#undef PROBLEM
};

const struct problem_type *problem_of(status s) {
  return s > ST_OK && s < ST__COUNT ? &TYPES[s] : &TYPES[ST_INTERNAL];
}
