#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "tap.h"

static const char *const STATUSES[] = {"draft", "in_progress", NULL};
static const struct qparam SPEC[] = {
  {"status", Q_ENUMS, STATUSES},
  {"batch_id", Q_ID, NULL},
  {"q", Q_TEXT, NULL},
  {"from", Q_DATE, NULL},
  {0},
};

static status parse(const char *raw, struct query *q, size_t *nerrors) {
  json_t *errors = json_array();
  status s = query_parse(raw, SPEC, 1, q, errors);
  *nerrors = json_array_size(errors);
  json_decref(errors);
  return s;
}

int main(void) {
  struct query q;
  size_t n;
  ok(parse(NULL, &q, &n) == ST_OK && q.limit == 50 && !q.has_cursor, "defaults");
  query_free(&q);
  ok(parse("status=draft,in_progress&batch_id=7&q=%E7%9D%A3%E5%AF%9F&limit=200&include_total=true", &q, &n) == ST_OK &&
         !strcmp(q.values[0], "{draft,in_progress}") && !strcmp(q.values[1], "7") && !strcmp(q.values[2], "督察") &&
         q.limit == 200 && q.include_total,
     "filters decoded");
  query_free(&q);
  ok(parse("limit=0", &q, &n) == ST_BAD_QUERY, "limit 0");
  query_free(&q);
  ok(parse("limit=201", &q, &n) == ST_BAD_QUERY, "limit 201");
  query_free(&q);
  ok(parse("limit=+5", &q, &n) == ST_BAD_QUERY, "limit +5");
  query_free(&q);
  ok(parse("nope=1&batch_id=x&status=closed", &q, &n) == ST_BAD_QUERY && n == 3, "every problem reported");
  query_free(&q);
  ok(parse("batch_id=1&batch_id=2", &q, &n) == ST_BAD_QUERY && n == 1, "repeated parameter");
  query_free(&q);
  ok(parse("status=draft&status=in_progress", &q, &n) == ST_OK && !strcmp(q.values[0], "{draft,in_progress}"),
     "a list as its name repeated (status=a&status=b)");
  query_free(&q);
  ok(parse("status=draft,in_progress&status=draft", &q, &n) == ST_OK && !strcmp(q.values[0], "{draft,in_progress,draft}"),
     "both forms at once");
  query_free(&q);
  ok(parse("status=draft&status=closed", &q, &n) == ST_BAD_QUERY && n == 1, "a bad value in a repeat is refused");
  query_free(&q);
  ok(parse("status=closed&status=draft", &q, &n) == ST_BAD_QUERY && n == 1, "and in the first");
  query_free(&q);
  ok(parse("q=%FF", &q, &n) == ST_BAD_QUERY, "invalid UTF-8 refused");
  query_free(&q);
  ok(parse("q=%2", &q, &n) == ST_BAD_QUERY, "broken escape refused");
  query_free(&q);
  ok(parse("from=2026-02-30", &q, &n) == ST_BAD_QUERY, "impossible date");
  query_free(&q);
  char *c = cursor_encode(12345);
  int64_t key = 0;
  char *cv = NULL;
  ok(cursor_decode(c, &key, &cv) && key == 12345 && !cv, "cursor round trip (%s)", c);
  char *tampered = strdup(c);
  tampered[strlen(tampered) - 1] = '!';
  ok(!cursor_decode(tampered, &key, &cv) && !cursor_decode("", &key, &cv) && !cursor_decode("!!", &key, &cv),
     "foreign cursors refused");
  free(c);
  free(tampered);
  c = cursor_encode_pair("2026-12-31", 77);
  ok(cursor_decode(c, &key, &cv) && key == 77 && cv && !strcmp(cv, "2026-12-31"), "two-part cursor round trip");
  free(cv);
  free(c);
  ok(etag_matches("\"3\"", 3) && etag_matches("*", 9) && etag_matches("\"1\", \"3\"", 3) &&
         !etag_matches("\"4\"", 3) && !etag_matches("W/\"3\"", 3),
     "If-Match matching");
  ok(etag_matches("\"3.20261202.1.4\"", 3) && etag_matches("\"9\", \"3.20261202.1\"", 3) &&
         !etag_matches("\"33.1\"", 3) && !etag_matches("\"3x\"", 3) && !etag_matches("W/\"3.1\"", 3) &&
         !etag_matches("\"3.1", 3),
     "If-Match matching a tag with derived parts by its version");
  return done_testing();
}
