#include <string.h>

#include "config.h"
#include "tap.h"

static const char *env_ok(const char *name) {
  if (!strcmp(name, "DATABASE_URL"))
    return "postgresql://x@127.0.0.1/db";
  if (!strcmp(name, "DUCHA_CORS_ORIGINS"))
    return "https://a.example, https://b.example";
  return NULL;
}

static const char *env_bad(const char *name) {
  if (!strcmp(name, "DUCHA_THREADS"))
    return "abc";
  if (!strcmp(name, "DUCHA_BODY_LIMIT"))
    return "-1";
  if (!strcmp(name, "DUCHA_LISTEN"))
    return "nowhere";
  if (!strcmp(name, "DUCHA_LOG_LEVEL"))
    return "loud";
  return NULL;
}

int main(void) {
  struct config cfg;
  char err[2048];
  ok(config_load(&cfg, env_ok, err, sizeof err) == 0 && cfg.threads == 8 && cfg.listen_port == 8080 &&
         !strcmp(cfg.listen_host, "127.0.0.1") && cfg.body_limit == 1048576 && !strcmp(cfg.timezone, "Asia/Shanghai"),
     "defaults: %s", err);
  ok(config_cors_allows(&cfg, "https://b.example") && !config_cors_allows(&cfg, "https://c.example") &&
         !config_cors_allows(&cfg, "https://a.exampl"),
     "CORS origins matched whole");
  ok(config_load(&cfg, env_bad, err, sizeof err) == -1 && strstr(err, "DUCHA_THREADS") &&
         strstr(err, "DUCHA_BODY_LIMIT") && strstr(err, "DUCHA_LISTEN") && strstr(err, "DUCHA_LOG_LEVEL") &&
         strstr(err, "DATABASE_URL"),
     "one message names every bad value: %s", err);
  return done_testing();
}
