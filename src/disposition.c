#include "disposition.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "validate.h"

static int hexval(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of parameter name (its length) in a header, NULL when absent. */
static const char *param(const char *header, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (const char *p = strchr(header, ';'); p; p = strchr(p + 1, ';')) {
    const char *k = p + 1;
    while (*k == ' ' || *k == '\t')
      k++;
    if (!strncasecmp(k, name, n) && (k[n] == '=' || k[n] == ' ')) {
      const char *v = k + n;
      while (*v == ' ' || *v == '=')
        v++;
      *len = strcspn(v, ";");
      while (*len && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
        (*len)--;
      return v;
    }
  }
  return NULL;
}

void filename_clean(char *name, size_t size) {
  char *base = name;
  for (char *p = name; *p; p++)
    if (*p == '/' || *p == '\\')
      base = p + 1;
  memmove(name, base, strlen(base) + 1);
  char *o = name;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    if (*p < 0x20 || *p == 0x7F || *p == '"')
      continue;
    if (*p == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
      p++;
      continue;
    }
    *o++ = (char)*p;
  }
  *o = '\0';
  if (!utf8_valid(name, strlen(name)))
    name[0] = '\0';
  while (utf8_chars(name) > 255) { /* drop whole characters from the end */
    size_t n = strlen(name);
    do
      n--;
    while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80);
    name[n] = '\0';
  }
  if (!name[0] || !strcmp(name, ".") || !strcmp(name, ".."))
    snprintf(name, size, "upload");
}

int disposition_filename(const char *header, char *out, size_t size) {
  size_t len, n = 0;
  const char *v;
  if (!header || size < 8)
    return 0;
  if ((v = param(header, "filename*", &len)) && len > 7 && !strncasecmp(v, "UTF-8''", 7)) {
    for (size_t i = 7; i < len && n + 1 < size; i++) {
      if (v[i] == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
        out[n++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
        i += 2;
      } else if (v[i] == '%') {
        return 0;
      } else {
        out[n++] = v[i];
      }
    }
  } else if ((v = param(header, "filename", &len))) {
    int quoted = len >= 2 && v[0] == '"' && v[len - 1] == '"';
    for (size_t i = quoted; i < len - quoted && n + 1 < size; i++) {
      if (quoted && v[i] == '\\' && i + 1 < len - 1)
        i++;
      out[n++] = v[i];
    }
  } else {
    return 0;
  }
  out[n] = '\0';
  if (!utf8_valid(out, n))
    return 0;
  filename_clean(out, size);
  return 1;
}

void disposition_attachment(const char *name, char *out, size_t size) {
  size_t n = (size_t)snprintf(out, size, "attachment; filename=\"");
  for (const unsigned char *p = (const unsigned char *)name; *p && n + 4 < size; p++)
    if ((*p & 0xC0) != 0x80) /* one '_' for each character outside printable ASCII */
      out[n++] = *p < 0x80 && *p != '"' && *p != '\\' && *p >= 0x20 ? (char)*p : '_';
  n += (size_t)snprintf(out + n, n < size ? size - n : 0, "\"; filename*=UTF-8''");
  static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~";
  for (const unsigned char *p = (const unsigned char *)name; *p && n + 4 < size; p++) {
    if (strchr(keep, *p))
      out[n++] = (char)*p;
    else
      n += (size_t)snprintf(out + n, size - n, "%%%02X", *p);
  }
  if (n < size)
    out[n] = '\0';
  else
    out[size - 1] = '\0';
}
