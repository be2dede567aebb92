#include "address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every address as 16 bytes: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
static int as16(const struct sockaddr *sa, uint8_t out[16]) {
  if (sa->sa_family == AF_INET6) {
    memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 1;
  }
  if (sa->sa_family == AF_INET) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 1;
  }
  return 0;
}

static int prefix_is(const uint8_t *a, const uint8_t *net, int bits) {
  int whole = bits / 8, rest = bits % 8;
  if (memcmp(a, net, (size_t)whole))
    return 0;
  return !rest || ((a[whole] ^ net[whole]) & (0xff << (8 - rest))) == 0;
}

struct range {
  uint8_t net[16];
  int bits;
  const char *kind;
};

#define V4(a, b, c, d, n, kind) {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}, 96 + (n), kind}

static const struct range RANGES[] = {
  V4(0, 0, 0, 0, 8, "unspecified"),
  V4(10, 0, 0, 0, 8, "private"),
  V4(100, 64, 0, 0, 10, "shared (CGNAT)"),
  V4(127, 0, 0, 0, 8, "loopback"),
  V4(169, 254, 0, 0, 16, "link-local"),
  V4(172, 16, 0, 0, 12, "private"),
  V4(192, 0, 0, 0, 24, "reserved"),
  V4(192, 0, 2, 0, 24, "documentation"),
  V4(192, 168, 0, 0, 16, "private"),
  V4(198, 18, 0, 0, 15, "benchmarking"),
  V4(198, 51, 100, 0, 24, "documentation"),
  V4(203, 0, 113, 0, 24, "documentation"),
  V4(224, 0, 0, 0, 4, "multicast"),
  V4(240, 0, 0, 0, 4, "reserved"),
  {{0}, 128, "unspecified"},
  {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
  {{0xfc}, 7, "private"},
  {{0xfe, 0x80}, 10, "link-local"},
  {{0xfe, 0xc0}, 10, "site-local"},
  {{0xff}, 8, "multicast"},
  {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
  {{0x01, 0x00}, 64, "discard"},
};

/* An IPv4 address inside an IPv6 one, written into v4 (16 bytes, mapped): IPv4-compatible
 * (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) ones. */
static int embedded_v4(const uint8_t a[16], uint8_t v4[16]) {
  static const uint8_t compat[12] = {0}, nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (memcmp(a, compat, 12) && memcmp(a, nat64, 12))
    return 0;
  if (!memcmp(a, compat, 12) && a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)
    return 0; /* :: and ::1 are themselves */
  memset(v4, 0, 10);
  v4[10] = v4[11] = 0xff;
  memcpy(v4 + 12, a + 12, 4);
  return 1;
}

const char *address_kind(const struct sockaddr *sa) {
  uint8_t a[16], v4[16];
  if (!as16(sa, a))
    return "unknown";
  const uint8_t *judged = embedded_v4(a, v4) ? v4 : a;
  for (size_t i = 0; i < sizeof RANGES / sizeof RANGES[0]; i++)
    if (prefix_is(judged, RANGES[i].net, RANGES[i].bits))
      return RANGES[i].kind;
  return NULL;
}

/* Parses "address" or "address/bits" of s[0..len) into 16 bytes and prefix bits. */
static int parse_cidr(const char *s, size_t len, uint8_t net[16], int *bits) {
  char buf[64];
  while (len && *s == ' ')
    s++, len--;
  while (len && s[len - 1] == ' ')
    len--;
  if (!len || len >= sizeof buf)
    return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *slash = strchr(buf, '/');
  long n = -1;
  if (slash) {
    char *end;
    *slash = '\0';
    n = strtol(slash + 1, &end, 10);
    if (*end || !slash[1] || n < 0)
      return 0;
  }
  struct in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    if (n > 32)
      return 0;
    *bits = 96 + (n < 0 ? 32 : (int)n);
    memset(net, 0, 10);
    net[10] = net[11] = 0xff;
    memcpy(net + 12, &v4, 4);
    return 1;
  }
  if (inet_pton(AF_INET6, buf, net) == 1) {
    if (n > 128)
      return 0;
    *bits = n < 0 ? 128 : (int)n;
    return 1;
  }
  return 0;
}

int cidr_list_valid(const char *list) {
  uint8_t net[16];
  int bits;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (!parse_cidr(p, len, net, &bits))
      return 0;
    p += len + (p[len] == ',');
  }
  return 1;
}

int cidr_list_has(const char *list, const struct sockaddr *sa) {
  uint8_t a[16], net[16];
  int bits;
  if (!list || !as16(sa, a))
    return 0;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (parse_cidr(p, len, net, &bits) && prefix_is(a, net, bits))
      return 1;
    p += len + (p[len] == ',');
  }
  return 0;
}

const char *address_refused(const struct sockaddr *sa, const char *allow, char *why, size_t size) {
  const char *kind = address_kind(sa);
  if (!kind || cidr_list_has(allow, sa))
    return NULL;
  char text[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
  snprintf(why, size, "%s is a%s %s address", text, strchr("aeiou", kind[0]) ? "n" : "", kind);
  return why;
}
