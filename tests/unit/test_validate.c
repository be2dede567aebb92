#include <string.h>

#include "tap.h"
#include "validate.h"

static const char *const KINDS[] = {"department", "group", NULL};
static const struct field SPEC[] = {
  {"name", F_LINE, FIELD_REQUIRED, 1, 5, NULL, 0},
  {"kind", F_ENUM, 0, 0, 0, KINDS, 0},
  {"parent_id", F_ID, FIELD_NULLABLE, 0, 0, NULL, 0},
  {"on", F_DATE, 0, 0, 0, NULL, 0},
  {"ids", F_IDS, 0, 0, 3, NULL, 0},
  {"names", F_LINES, 0, 1, 3, NULL, 2},
  {"kinds", F_ENUMS, 0, 1, 2, KINDS, 0},
  {"note", F_TEXT, FIELD_NULLABLE, 0, 10, NULL, 0},
  {0},
};

/* Errors of body against SPEC as "pointer message; ..." */
static size_t check(const char *body_text, int creating, char *out, size_t size) {
  json_t *body = json_loads(body_text, 0, NULL), *errors = json_array();
  size_t n = validate_body(body, SPEC, creating, errors), i;
  json_t *e;
  out[0] = '\0';
  json_array_foreach(errors, i, e) {
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s %s; ", json_string_value(json_object_get(e, "pointer")),
             json_string_value(json_object_get(e, "message")));
  }
  json_decref(body);
  json_decref(errors);
  return n;
}

int main(void) {
  char why[1024];
  ok(check("{\"name\":\"市政务公开办\"}", 1, why, sizeof why) == 1 && strstr(why, "/name must be 1 to 5"),
     "five Chinese characters are five, six are too many: %s", why);
  ok(check("{\"name\":\"市政务公开\"}", 1, why, sizeof why) == 0, "exactly five characters pass");
  ok(check("{}", 1, why, sizeof why) == 1 && strstr(why, "/name is required"), "required on create");
  ok(check("{}", 0, why, sizeof why) == 0, "nothing required in a patch");
  ok(check("{\"kinds\":[\"group\",\"department\"]}", 0, why, sizeof why) == 0, "an array of distinct values");
  ok(check("{\"kinds\":[\"group\",\"x\",\"group\"]}", 0, why, sizeof why) == 1 &&
         strstr(why, "/kinds must be an array of 1 to 2 distinct values"),
     "too many values: %s", why);
  ok(check("{\"kinds\":[\"group\",\"group\"]}", 0, why, sizeof why) == 1 && strstr(why, "/kinds/1 is listed twice") &&
         check("{\"kinds\":[\"x\"]}", 0, why, sizeof why) == 1 &&
         strstr(why, "/kinds/0 must be one of department, group") && check("{\"kinds\":[]}", 0, why, sizeof why) == 1,
     "each value known and once, at least one: %s", why);
  ok(check("{\"name\":\"a\",\"extra\":1,\"a/b~\":2}", 1, why, sizeof why) == 2 &&
         strstr(why, "/extra is not a known field") && strstr(why, "/a~1b~0 is not"),
     "unknown fields, pointers escaped: %s", why);
  ok(check("{\"name\":\"a\\tb\"}", 1, why, sizeof why) == 1 && strstr(why, "control"), "tab in a line");
  ok(check("{\"name\":\"   \"}", 1, why, sizeof why) == 1 && strstr(why, "blank"), "blank name");
  ok(check("{\"name\":\"a\",\"note\":\"x\\ny\"}", 1, why, sizeof why) == 0, "newline in text is fine");
  ok(check("{\"name\":\"a\",\"note\":null,\"parent_id\":null}", 1, why, sizeof why) == 0, "nullable nulls");
  ok(check("{\"name\":null}", 0, why, sizeof why) == 1 && strstr(why, "must not be null"), "null name");
  ok(check("{\"name\":5,\"kind\":\"x\",\"parent_id\":0,\"on\":\"2026-02-30\"}", 1, why, sizeof why) == 4,
     "all errors gathered at once: %s", why);
  ok(check("{\"name\":\"a\",\"parent_id\":9007199254740992}", 1, why, sizeof why) == 1, "id above 2^53-1");
  ok(check("{\"name\":\"a\",\"parent_id\":1.5}", 1, why, sizeof why) == 1, "fractional id");
  ok(check("{\"name\":\"a\",\"ids\":[1,2,1]}", 1, why, sizeof why) == 1 && strstr(why, "/ids/2 is listed twice"),
     "duplicate ids: %s", why);
  ok(check("{\"name\":\"a\",\"ids\":[1,2,3,4]}", 1, why, sizeof why) == 1, "too many ids");
  ok(check("{\"name\":\"a\",\"names\":[\"ab\",\"\"]}", 1, why, sizeof why) == 1 && strstr(why, "/names/1"),
     "empty string in a list: %s", why);
  ok(check("{\"name\":\"a\",\"on\":\"2024-02-29\"}", 1, why, sizeof why) == 0, "leap day");
  ok(!date_valid("2023-02-29") && !date_valid("2026-1-01") && !date_valid("2026-13-01") && date_valid("2026-12-31"),
     "dates");
  ok(utf8_valid("督察", strlen("督察")) && !utf8_valid("\xC0\xAF", 2) && !utf8_valid("\xED\xA0\x80", 3) &&
         !utf8_valid("a\0b", 3),
     "utf-8: overlong, surrogate and NUL refused");
  {
    char mended[] = "ok \xC0\xAF \xE7\x9D \xE7\x9D\xA3";
    utf8_mend(mended);
    ok(!strcmp(mended, "ok ?? ?? \xE7\x9D\xA3"), "bytes that start no UTF-8 character become ?: %s", mended);
  }
  /* a body of 120 unknown members: all counted, the first ERRORS_MAX kept */
  json_t *many = json_object(), *errors = json_array();
  for (int i = 0; i < 120; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%d", i);
    json_object_set_new(many, key, json_true());
  }
  size_t n = validate_body(many, SPEC, 1, errors);
  json_t *kept = errors_kept(errors);
  int objects = 0;
  for (size_t i = 0; i < json_array_size(kept); i++)
    objects += json_is_string(json_object_get(json_array_get(kept, i), "pointer"));
  ok(n == 121 && json_array_size(errors) == 121 && json_array_size(kept) == 50 && objects == 50 &&
         !strcmp(json_string_value(json_object_get(json_array_get(kept, 0), "pointer")), "/k0") &&
         !strcmp(json_string_value(json_object_get(json_array_get(kept, 49), "pointer")), "/k49"),
     "121 errors counted, the first 50 kept: %zu counted, %zu kept", n, json_array_size(kept));
  json_decref(kept);
  json_decref(errors);
  json_decref(many);
  errors = json_array();
  errors_add(errors, "/a", "is wrong");
  kept = errors_kept(errors);
  ok(json_array_size(kept) == 1 && json_equal(kept, errors), "a few errors are all kept");
  json_decref(kept);
  json_decref(errors);
  int64_t id = 0;
  ok(id_parse("42", &id) && id == 42 && !id_parse("042", &id) && !id_parse("0", &id) && !id_parse("-1", &id) &&
         !id_parse("1e3", &id) && !id_parse("9007199254740992", &id) && id_parse("9007199254740991", &id),
     "ids parse strictly");
  return done_testing();
}
