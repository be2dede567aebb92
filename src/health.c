/* Liveness, readiness and the contract itself. */
#include <stdio.h>
#include <stdlib.h>

#include "resources.h"

status health_live(struct call *c) {
  c->result = json_pack("{s:s}", "status", "ok");
  return ST_OK;
}

status health_ready(struct call *c) {
  if (service_stopping())
    return fail(c, ST_UNAVAILABLE, "the server is shutting down");
  status s = db_exec(c->db, NULL, "SELECT 1", 0, NULL);
  if (s != ST_OK)
    return fail(c, ST_UNAVAILABLE, "the database does not answer");
  c->result = json_pack("{s:s}", "status", "ready");
  return ST_OK;
}

static char *openapi_text;
static size_t openapi_len;

int openapi_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  openapi_text = malloc(n > 0 ? (size_t)n : 1);
  openapi_len = n > 0 ? fread(openapi_text, 1, (size_t)n, f) : 0;
  fclose(f);
  return 0;
}

void openapi_unload(void) {
  free(openapi_text);
  openapi_text = NULL;
}

status openapi_document(struct call *c) {
  if (!openapi_text)
    return fail(c, ST_NOT_FOUND, "the contract file was not found at start-up");
  c->raw = openapi_text;
  c->raw_len = openapi_len;
  c->raw_type = "application/yaml";
  return ST_OK;
}
