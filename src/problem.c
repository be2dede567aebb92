#include "problem.h"

static const struct problem_type TYPES[ST__COUNT] = {
  [ST_OK] = {200, "ok", "OK"},
  [ST_INVALID] = {400, "validation-failed", "The request has invalid fields"},
  [ST_MALFORMED] = {400, "malformed-json", "The body is not well-formed JSON"},
  [ST_BAD_QUERY] = {400, "invalid-query", "The query string is not valid"},
  [ST_BAD_REQUEST] = {400, "malformed-request", "The request is not well-formed HTTP"},
  [ST_UNAUTHORIZED] = {401, "unauthorized", "A valid bearer token is required"},
  [ST_FORBIDDEN] = {403, "forbidden", "Your role may not do this"},
  [ST_PASSWORD_CHANGE] = {403, "password-change-required", "Change your password first"},
  [ST_NOT_FOUND] = {404, "not-found", "Not found"},
  [ST_METHOD_NOT_ALLOWED] = {405, "method-not-allowed", "Method not allowed"},
  [ST_BAD_TRANSITION] = {409, "invalid-transition", "Not allowed in the current state"},
  [ST_CONFLICT] = {409, "conflict", "Conflict with the current state"},
  [ST_REFERENCED] = {409, "still-referenced", "Still referenced by other records"},
  [ST_FROZEN] = {409, "frozen", "The inspection's findings are final"},
  [ST_IDEM_RUNNING] = {409, "idempotency-in-progress", "A request with this Idempotency-Key is still running"},
  [ST_PRECONDITION_FAILED] = {412, "precondition-failed", "The resource has changed"},
  [ST_TOO_LARGE] = {413, "body-too-large", "The body is too large"},
  [ST_UNSUPPORTED_MEDIA] = {415, "unsupported-media-type", "Unsupported Content-Type"},
  [ST_IDEM_REUSED] = {422, "idempotency-key-reused", "The Idempotency-Key was used for another request"},
  [ST_PRECONDITION_REQUIRED] = {428, "precondition-required", "If-Match is required"},
  [ST_TOO_MANY] = {429, "too-many-requests", "Too many requests; try again later"},
  [ST_INTERNAL] = {500, "internal", "Internal error"},
  [ST_UNAVAILABLE] = {503, "unavailable", "The database is unavailable"},
  [ST_QUERY_TIMEOUT] = {504, "query-timeout", "The request ran out of its time budget"},
};

const struct problem_type *problem_of(status s) {
  return s > ST_OK && s < ST__COUNT ? &TYPES[s] : &TYPES[ST_INTERNAL];
}
