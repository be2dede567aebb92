#include "query.h"

#include <ctype.h>
#include <errno.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..len) ('+' is a space); NULL on a bad escape or invalid UTF-8. */
static char *decode(const char *s, size_t len) {
  char *out = malloc(len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '+') {
      out[n++] = ' ';
    } else if (s[i] == '%') {
      int a = i + 1 < len ? hexval(s[i + 1]) : -1, b = i + 2 < len ? hexval(s[i + 2]) : -1;
      if (a < 0 || b < 0) {
        free(out);
        return NULL;
      }
      out[n++] = (char)(a * 16 + b);
      i += 2;
    } else {
      out[n++] = s[i];
    }
  }
  out[n] = '\0';
  if (!utf8_valid(out, n)) {
    free(out);
    return NULL;
  }
  return out;
}

static void bad(json_t *errors, const char *name, const char *message) {
  char ptr[96];
  snprintf(ptr, sizeof ptr, "/query/%.80s", name);
  errors_add(errors, ptr, message);
}

/* Checks one value; returns the stored form (owned) or NULL after reporting. */
static char *convert(const struct qparam *p, const char *v, json_t *errors) {
  int64_t id;
  switch (p->type) {
  case Q_ID:
    if (id_parse(v, &id))
      return strdup(v);
    bad(errors, p->name, "must be a positive integer id");
    return NULL;
  case Q_DATE:
    if (date_valid(v))
      return strdup(v);
    bad(errors, p->name, "must be a date YYYY-MM-DD");
    return NULL;
  case Q_BOOL:
    if (!strcmp(v, "true") || !strcmp(v, "false"))
      return strdup(v);
    bad(errors, p->name, "must be true or false");
    return NULL;
  case Q_TEXT: {
    size_t n = utf8_chars(v);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
      if (*c < 0x20 || *c == 0x7F) {
        bad(errors, p->name, "must not contain control characters");
        return NULL;
      }
    if (n >= 1 && n <= 100)
      return strdup(v);
    bad(errors, p->name, "must be 1 to 100 characters long");
    return NULL;
  }
  case Q_TIME: {
    char *copy = strdup(v);
    if (time_valid(copy))
      return copy;
    free(copy);
    bad(errors, p->name, "must be an RFC 3339 date-time such as 2026-11-26T08:00:00Z");
    return NULL;
  }
  case Q_ENUM:
    for (const char *const *e = p->values; *e; e++)
      if (!strcmp(*e, v))
        return strdup(v);
    bad(errors, p->name, "is not one of the allowed values");
    return NULL;
  case Q_CODE:
    if (*v && strlen(v) <= 50 && strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(v))
      return strdup(v);
    bad(errors, p->name, "must be 1 to 50 of a-z, 0-9, _ and -");
    return NULL;
  case Q_ENUMS: {
    /* "a,b" -> "{a,b}"; every part must be a listed value (which need no quoting). */
    char *out = malloc(strlen(v) + 3);
    size_t n = 0;
    out[n++] = '{';
    const char *s = v;
    for (;;) {
      const char *end = strchr(s, ',');
      size_t len = end ? (size_t)(end - s) : strlen(s);
      const char *const *e = p->values;
      while (*e && (strlen(*e) != len || strncmp(*e, s, len)))
        e++;
      if (!*e) {
        char msg[200] = "must be a comma-separated list of";
        for (e = p->values; *e; e++) {
          size_t used = strlen(msg);
          snprintf(msg + used, sizeof msg - used, "%s %s", e == p->values ? "" : ",", *e);
        }
        bad(errors, p->name, msg);
        free(out);
        return NULL;
      }
      if (n > 1)
        out[n++] = ',';
      memcpy(out + n, s, len);
      n += len;
      if (!end)
        break;
      s = end + 1;
    }
    out[n++] = '}';
    out[n] = '\0';
    return out;
  }
  }
  return NULL;
}

status query_parse(const char *raw, const struct qparam *spec, int is_list, struct query *q,
                   json_t *errors) {
  size_t before = json_array_size(errors);
  int seen_limit = 0, seen_cursor = 0, seen_total = 0;
  memset(q, 0, sizeof *q);
  q->limit = 50;
  const char *s = raw ? raw : "";
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t len = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    if (len == 0) {
      s += amp ? 1 : 0;
      if (!amp)
        break;
      continue;
    }
    char *name = decode(s, eq ? (size_t)(eq - s) : len);
    char *value = eq ? decode(eq + 1, len - (size_t)(eq - s) - 1) : strdup("");
    s += len + (amp ? 1 : 0);
    if (!name || !value) {
      bad(errors, name ? name : "", "is not valid percent-encoded UTF-8");
      free(name);
      free(value);
      continue;
    }
    int *seen = NULL;
    int pos = -1;
    if (is_list && !strcmp(name, "limit"))
      seen = &seen_limit;
    else if (is_list && !strcmp(name, "cursor"))
      seen = &seen_cursor;
    else if (is_list && !strcmp(name, "include_total"))
      seen = &seen_total;
    else
      for (int i = 0; spec && spec[i].name && i < QUERY_MAX; i++)
        if (!strcmp(spec[i].name, name))
          pos = i;
    if (!seen && pos < 0) {
      bad(errors, name, "is not a known query parameter");
    } else if (pos >= 0 && q->values[pos] && spec[pos].type == Q_ENUMS) {
      /* a list given as status=a&status=b as well as status=a,b: "{a}" and "{b}" make "{a,b}" */
      char *more = convert(&spec[pos], value, errors), *both = NULL;
      if (more && *q->values[pos]) {
        both = malloc(strlen(q->values[pos]) + strlen(more) + 1);
        sprintf(both, "%.*s,%s", (int)strlen(q->values[pos]) - 1, q->values[pos], more + 1);
        free(q->values[pos]);
        q->values[pos] = both;
      }
      free(more);
    } else if ((seen && *seen) || (pos >= 0 && q->values[pos])) {
      bad(errors, name, "is given more than once");
    } else if (seen == &seen_limit) {
      char *end;
      long n = strtol(value, &end, 10);
      if (!*value || *end || n < 1 || n > 200 || strspn(value, "0123456789") != strlen(value))
        bad(errors, name, "must be an integer from 1 to 200");
      else
        q->limit = n;
      seen_limit = 1;
    } else if (seen == &seen_cursor) {
      if (!cursor_decode(value, &q->cursor, &q->cursor_value))
        bad(errors, name, "is not a cursor this service gave");
      else
        q->has_cursor = 1;
      seen_cursor = 1;
    } else if (seen == &seen_total) {
      if (strcmp(value, "true") && strcmp(value, "false"))
        bad(errors, name, "must be true or false");
      q->include_total = !strcmp(value, "true");
      seen_total = 1;
    } else {
      q->values[pos] = convert(&spec[pos], value, errors);
      if (!q->values[pos])
        q->values[pos] = strdup(""); /* marks it seen */
    }
    free(name);
    free(value);
  }
  return json_array_size(errors) > before ? ST_BAD_QUERY : ST_OK;
}

void query_free(struct query *q) {
  free(q->cursor_value);
  q->cursor_value = NULL;
  for (int i = 0; i < QUERY_MAX; i++) {
    free(q->values[i]);
    q->values[i] = NULL;
  }
}

/* A cursor is base64url (no padding) of "k1:<key>" or "k2:<id>:<sort value>": opaque to
 * clients, checked when it comes back. */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *plain, size_t n) {
  char *out = malloc(n * 4 / 3 + 4);
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)plain[i] << 16;
    if (i + 1 < n)
      v |= (unsigned char)plain[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)plain[i + 2];
    out[o++] = B64[(v >> 18) & 63];
    out[o++] = B64[(v >> 12) & 63];
    if (i + 1 < n)
      out[o++] = B64[(v >> 6) & 63];
    if (i + 2 < n)
      out[o++] = B64[v & 63];
  }
  out[o] = '\0';
  return out;
}

char *cursor_encode(int64_t key) {
  char plain[40];
  int n = snprintf(plain, sizeof plain, "k1:%lld", (long long)key);
  return b64_encode(plain, (size_t)n);
}

char *cursor_encode_pair(const char *value, int64_t id) {
  char plain[160];
  int n = snprintf(plain, sizeof plain, "k2:%lld:%.100s", (long long)id, value);
  return b64_encode(plain, (size_t)n);
}

int cursor_decode(const char *text, int64_t *key, char **value) {
  char plain[160];
  size_t len = strlen(text), n = 0;
  unsigned v = 0;
  int bits = 0;
  *value = NULL;
  if (len == 0 || len > 200)
    return 0;
  for (size_t i = 0; i < len; i++) {
    const char *p = strchr(B64, text[i]);
    if (!p || !text[i])
      return 0;
    v = (v << 6) | (unsigned)(p - B64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      plain[n++] = (char)((v >> bits) & 0xFF);
      if (n >= sizeof plain - 1)
        return 0;
    }
  }
  plain[n] = '\0';
  if (strlen(plain) != n || (strncmp(plain, "k1:", 3) && strncmp(plain, "k2:", 3)))
    return 0;
  char *end;
  long long k = strtoll(plain + 3, &end, 10);
  if (end == plain + 3 || (plain[1] == '1' && *end) || (plain[1] == '2' && *end != ':'))
    return 0;
  char *again = plain[1] == '1' ? cursor_encode(k) : cursor_encode_pair(end + 1, k);
  int same = !strcmp(again, text);
  free(again);
  if (!same || (plain[1] == '2' && !utf8_valid(end + 1, strlen(end + 1))))
    return 0;
  if (plain[1] == '2')
    *value = strdup(end + 1);
  *key = k;
  return 1;
}

int etag_matches(const char *if_match, long version) {
  if (list_has(if_match, "*"))
    return 1;
  /* each entry of the list: "N" or "N.<derived>" (a tag of get_row, resource.c), by its N; weak
   * tags (W/"N") never match */
  for (const char *p = if_match; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p != '"' || !isdigit((unsigned char)p[1]))
      continue;
    char *end;
    errno = 0;
    long n = strtol(p + 1, &end, 10);
    if (!errno && n == version && (*end == '"' || (*end == '.' && strchr(end, '"'))))
      return 1;
  }
  return 0;
}
