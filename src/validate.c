#include "validate.h"

#include <stdio.h>
#include <string.h>

void errors_add(json_t *errors, const char *pointer, const char *message) {
  if (json_array_size(errors) >= ERRORS_MAX)
    json_array_append_new(errors, json_null());
  else
    json_array_append_new(errors, json_pack("{s:s, s:s}", "pointer", pointer, "message", message));
}

json_t *errors_kept(json_t *errors) {
  if (json_array_size(errors) <= ERRORS_MAX)
    return json_incref(errors);
  json_t *kept = json_array();
  for (size_t i = 0; i < ERRORS_MAX; i++)
    json_array_append(kept, json_array_get(errors, i));
  return kept;
}

int list_has(const char *list, const char *item) {
  size_t n = strlen(item);
  const char *p = list;
  if (!n)
    return 0;
  while (*p) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *end = p;
    while (*end && *end != ',')
      end++;
    const char *last = end;
    while (last > p && last[-1] == ' ')
      last--;
    if ((size_t)(last - p) == n && !memcmp(p, item, n))
      return 1;
    p = end;
  }
  return 0;
}

size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      n++;
  return n;
}

int utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    size_t need;
    unsigned min;
    if (c == 0)
      return 0;
    if (c < 0x80) {
      p++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      need = 1, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      need = 2, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      need = 3, min = 0x10000, c &= 0x07;
    } else {
      return 0;
    }
    if ((size_t)(end - p) <= need)
      return 0;
    for (size_t i = 1; i <= need; i++) {
      if ((p[i] & 0xC0) != 0x80)
        return 0;
      c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    p += need + 1;
  }
  return 1;
}

int date_valid(const char *s) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
      return 0;
  int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  int m = (s[5] - '0') * 10 + (s[6] - '0');
  int d = (s[8] - '0') * 10 + (s[9] - '0');
  if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1)
    return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap);
}

int time_valid(char *s) {
  size_t n = strlen(s);
  char date[11];
  if (n < 20 || (s[10] != 'T' && s[10] != 't'))
    return 0;
  memcpy(date, s, 10);
  date[10] = '\0';
  if (!date_valid(date))
    return 0;
  const char *t = s + 11;
  if (!(t[0] >= '0' && t[0] <= '2' && t[1] >= '0' && t[1] <= '9' && t[2] == ':' && t[3] >= '0' && t[3] <= '5' &&
        t[4] >= '0' && t[4] <= '9' && t[5] == ':' && t[6] >= '0' && t[6] <= '5' && t[7] >= '0' && t[7] <= '9') ||
      (t[0] - '0') * 10 + (t[1] - '0') > 23)
    return 0;
  char *z = s + 19;
  if (*z == '.') {
    z++;
    size_t digits = strspn(z, "0123456789");
    if (digits < 1 || digits > 6)
      return 0;
    z += digits;
  }
  if ((*z == 'Z' || *z == 'z') && z[1] == '\0')
    return 1;
  if (*z == ' ')
    *z = '+';
  return (*z == '+' || *z == '-') && strlen(z) == 6 && z[1] >= '0' && z[1] <= '1' && z[2] >= '0' && z[2] <= '9' &&
         z[3] == ':' && z[4] >= '0' && z[4] <= '5' && z[5] >= '0' && z[5] <= '9';
}

int id_parse(const char *s, int64_t *out) {
  int64_t v = 0;
  if (!s || !*s || *s == '0' || strlen(s) > 16)
    return 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return 0;
    v = v * 10 + (*p - '0');
  }
  if (v > ID_MAX)
    return 0;
  *out = v;
  return 1;
}

/* JSON pointer of a member name under prefix (RFC 6901 escapes ~ and /). */
static void pointer_of(char *buf, size_t size, const char *prefix, const char *name) {
  size_t n = (size_t)snprintf(buf, size, "%s", prefix);
  if (n + 4 >= size)
    n = 0;
  buf[n++] = '/';
  for (const char *p = name; *p && n + 3 < size; p++) {
    if (*p == '~' || *p == '/') {
      buf[n++] = '~';
      buf[n++] = *p == '~' ? '0' : '1';
    } else {
      buf[n++] = *p;
    }
  }
  buf[n] = '\0';
}

/* NULL when the text is acceptable, else why not. */
static const char *check_text(const char *s, int one_line, long min) {
  int blank = 1;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7F) {
      if (one_line || (*p != '\n' && *p != '\t' && *p != '\r'))
        return "must not contain control characters";
    }
    if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) /* U+0080..U+009F */
      return "must not contain control characters";
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
      blank = 0;
  }
  if (min > 0 && blank && *s)
    return "must not be blank";
  return NULL;
}

static int length_ok(const char *s, long min, long max) {
  long n = (long)utf8_chars(s);
  return n >= min && n <= max;
}

static void check_value(const json_t *v, const struct field *f, const char *ptr, json_t *errors) {
  char msg[512]; /* an F_ENUM lists its values */
  switch (f->type) {
  case F_LINE:
  case F_TEXT:
  case F_CODE: {
    if (!json_is_string(v)) {
      errors_add(errors, ptr, "must be a string");
      return;
    }
    const char *s = json_string_value(v);
    const char *why = check_text(s, f->type != F_TEXT, f->min);
    if (why) {
      errors_add(errors, ptr, why);
      return;
    }
    if (!length_ok(s, f->min, f->max)) {
      snprintf(msg, sizeof msg, "must be %ld to %ld characters long", f->min, f->max);
      errors_add(errors, ptr, msg);
      return;
    }
    if (f->type == F_CODE && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(s))
      errors_add(errors, ptr, "may contain only a-z, 0-9, _ and -");
    return;
  }
  case F_ID:
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > ID_MAX)
      errors_add(errors, ptr, "must be a positive integer id");
    return;
  case F_INT:
    if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
      snprintf(msg, sizeof msg, "must be an integer from %ld to %ld", f->min, f->max);
      errors_add(errors, ptr, msg);
    }
    return;
  case F_BOOL:
    if (!json_is_boolean(v))
      errors_add(errors, ptr, "must be true or false");
    return;
  case F_DATE:
    if (!json_is_string(v) || !date_valid(json_string_value(v)))
      errors_add(errors, ptr, "must be a date YYYY-MM-DD");
    return;
  case F_ENUM:
    if (json_is_string(v))
      for (const char *const *e = f->values; *e; e++)
        if (!strcmp(*e, json_string_value(v)))
          return;
    snprintf(msg, sizeof msg, "must be one of");
    for (const char *const *e = f->values; *e; e++) {
      size_t used = strlen(msg);
      snprintf(msg + used, sizeof msg - used, "%s %s", e == f->values ? "" : ",", *e);
    }
    errors_add(errors, ptr, msg);
    return;
  case F_IDS:
  case F_ENUMS:
  case F_LINES: {
    long most = f->type == F_LINES ? f->items_max : f->max, least = f->type == F_LINES ? 0 : f->min;
    if (!json_is_array(v) || (long)json_array_size(v) > most || (long)json_array_size(v) < least) {
      if (least)
        snprintf(msg, sizeof msg, "must be an array of %ld to %ld distinct %s", least, most,
                 f->type == F_IDS ? "ids" : "values");
      else
        snprintf(msg, sizeof msg, "must be an array of at most %ld %s", most,
                 f->type == F_IDS ? "distinct ids" : "strings");
      errors_add(errors, ptr, msg);
      return;
    }
    size_t i, j;
    const json_t *e;
    json_array_foreach(v, i, e) {
      char eptr[160];
      snprintf(eptr, sizeof eptr, "%s/%zu", ptr, i);
      if (f->type == F_LINES) {
        struct field item = {f->name, F_LINE, 0, f->min, f->max, NULL, 0};
        check_value(e, &item, eptr, errors);
        continue;
      }
      size_t had = json_array_size(errors);
      if (f->type == F_ENUMS) {
        struct field item = {f->name, F_ENUM, 0, 0, 0, f->values, 0};
        check_value(e, &item, eptr, errors);
      } else if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > ID_MAX) {
        errors_add(errors, eptr, "must be a positive integer id");
      }
      if (json_array_size(errors) > had)
        continue;
      for (j = 0; j < i; j++)
        if (json_equal(json_array_get(v, j), e)) {
          errors_add(errors, eptr, "is listed twice");
          break;
        }
    }
    return;
  }
  }
}

size_t validate_body(const json_t *body, const struct field *spec, int creating, json_t *errors) {
  return validate_body_at(body, spec, creating, "", errors);
}

size_t validate_body_at(const json_t *body, const struct field *spec, int creating, const char *prefix,
                        json_t *errors) {
  size_t before = json_array_size(errors);
  char ptr[200];
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)body, key, v) {
    const struct field *f = spec;
    while (f->name && strcmp(f->name, key))
      f++;
    pointer_of(ptr, sizeof ptr, prefix, key);
    if (!f->name) {
      errors_add(errors, ptr, "is not a known field");
      continue;
    }
    if (json_is_null(v)) {
      if (!(f->flags & FIELD_NULLABLE))
        errors_add(errors, ptr, "must not be null");
      continue;
    }
    check_value(v, f, ptr, errors);
  }
  if (creating)
    for (const struct field *f = spec; f->name; f++)
      if ((f->flags & FIELD_REQUIRED) && !json_object_get(body, f->name)) {
        pointer_of(ptr, sizeof ptr, prefix, f->name);
        errors_add(errors, ptr, "is required");
      }
  return json_array_size(errors) - before;
}

void utf8_mend(char *s) {
  for (size_t i = 0; s[i];) {
    unsigned char b = (unsigned char)s[i];
    size_t n = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    if (strnlen(s + i, n) < n || !utf8_valid(s + i, n)) {
      s[i++] = '?';
      continue;
    }
    i += n;
  }
}
