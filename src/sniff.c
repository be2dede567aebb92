#include "sniff.h"

#include <string.h>
#include <strings.h>

static int starts(const unsigned char *h, size_t len, const char *magic, size_t n) {
  return len >= n && !memcmp(h, magic, n);
}

static int contains(const unsigned char *h, size_t len, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= len; i++)
    if (!memcmp(h + i, s, n))
      return 1;
  return 0;
}

static int ends_with(const char *name, const char *ext) {
  size_t n = name ? strlen(name) : 0, e = strlen(ext);
  return n >= e && !strcasecmp(name + n - e, ext);
}

/* UTF-8 text: no NUL and no control characters but tab, newlines and form feed; a character
 * cut by the end of the head is fine. Scripts ("#!") are refused. */
static int text(const unsigned char *h, size_t len) {
  size_t i = 0;
  if (starts(h, len, "\xEF\xBB\xBF", 3))
    i = 3;
  if (len - i >= 2 && h[i] == '#' && h[i + 1] == '!')
    return 0;
  while (i < len) {
    unsigned c = h[i];
    size_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
    if (need == 9 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F)
      return 0;
    if (need == 1 && c < 0xC2) /* an overlong two-byte form */
      return 0;
    for (size_t k = 1; k <= need; k++) {
      if (i + k >= len)
        return 1; /* cut at the end of the head */
      if ((h[i + k] & 0xC0) != 0x80)
        return 0;
    }
    i += need + 1;
  }
  return len > 0;
}

const char *sniff_type(const unsigned char *h, size_t len, const char *filename) {
  if (starts(h, len, "%PDF-", 5))
    return "application/pdf";
  if (starts(h, len, "\x89PNG\r\n\x1a\n", 8))
    return "image/png";
  if (starts(h, len, "\xFF\xD8\xFF", 3))
    return "image/jpeg";
  if (starts(h, len, "GIF87a", 6) || starts(h, len, "GIF89a", 6))
    return "image/gif";
  if (starts(h, len, "RIFF", 4) && len >= 12 && !memcmp(h + 8, "WEBP", 4))
    return "image/webp";
  if (starts(h, len, "II*\0", 4) || starts(h, len, "MM\0*", 4))
    return "image/tiff";
  if (starts(h, len, "BM", 2) && len >= 18 && h[15] == 0 && h[16] == 0 && h[17] == 0 &&
      (h[14] == 12 || h[14] == 40 || h[14] == 56 || h[14] == 108 || h[14] == 124))
    return "image/bmp";
  if (starts(h, len, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8)) {
    if (ends_with(filename, ".xls") || ends_with(filename, ".et"))
      return "application/vnd.ms-excel";
    if (ends_with(filename, ".ppt") || ends_with(filename, ".dps"))
      return "application/vnd.ms-powerpoint";
    return "application/msword";
  }
  if (starts(h, len, "PK\x03\x04", 4)) {
    if (contains(h, len, "[Content_Types].xml")) {
      if (contains(h, len, "word/"))
        return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
      if (contains(h, len, "xl/"))
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
      if (contains(h, len, "ppt/"))
        return "application/vnd.openxmlformats-officedocument.presentationml.presentation";
    }
    if (contains(h, len, "mimetypeapplication/vnd.oasis.opendocument.text"))
      return "application/vnd.oasis.opendocument.text";
    if (contains(h, len, "mimetypeapplication/vnd.oasis.opendocument.spreadsheet"))
      return "application/vnd.oasis.opendocument.spreadsheet";
    if (contains(h, len, "mimetypeapplication/vnd.oasis.opendocument.presentation"))
      return "application/vnd.oasis.opendocument.presentation";
    return NULL; /* another zip: not evidence */
  }
  return text(h, len) ? "text/plain; charset=utf-8" : NULL;
}
