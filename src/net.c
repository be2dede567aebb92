#include "net.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses "a.b.c.d" or "a.b.c.d/n" from s[0..len) into network and mask. */
static int parse_entry(const char *s, size_t len, uint32_t *net, uint32_t *mask) {
  char buf[32];
  while (len && *s == ' ')
    s++, len--;
  while (len && s[len - 1] == ' ')
    len--;
  if (!len || len >= sizeof buf)
    return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  long bits = 32;
  char *slash = strchr(buf, '/');
  if (slash) {
    char *end;
    *slash = '\0';
    bits = strtol(slash + 1, &end, 10);
    if (*end || slash[1] == '\0' || bits < 0 || bits > 32)
      return 0;
  }
  struct in_addr a;
  if (inet_pton(AF_INET, buf, &a) != 1)
    return 0;
  *mask = bits == 0 ? 0 : htonl(~0u << (32 - bits));
  *net = a.s_addr & *mask;
  return 1;
}

int proxies_valid(const char *list) {
  uint32_t net, mask;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (!parse_entry(p, len, &net, &mask))
      return 0;
    p += len + (p[len] == ',');
  }
  return 1;
}

int proxies_has(const char *list, const char *addr) {
  struct in_addr a;
  uint32_t net, mask;
  if (!addr || inet_pton(AF_INET, addr, &a) != 1)
    return 0;
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    if (parse_entry(p, len, &net, &mask) && (a.s_addr & mask) == net)
      return 1;
    p += len + (p[len] == ',');
  }
  return 0;
}

void client_address(const char *peer, const char *forwarded, const char *trusted, char *out, size_t size) {
  snprintf(out, size, "%s", peer);
  if (!forwarded || !proxies_has(trusted, peer))
    return;
  /* Walk X-Forwarded-For from the right: each trusted hop vouches for the one before it. */
  size_t end = strlen(forwarded);
  while (end > 0) {
    size_t start = end;
    while (start > 0 && forwarded[start - 1] != ',')
      start--;
    char hop[64];
    size_t a = start, b = end;
    while (a < b && forwarded[a] == ' ')
      a++;
    while (b > a && forwarded[b - 1] == ' ')
      b--;
    struct in_addr probe;
    if (b - a == 0 || b - a >= sizeof hop)
      return;
    memcpy(hop, forwarded + a, b - a);
    hop[b - a] = '\0';
    if (inet_pton(AF_INET, hop, &probe) != 1)
      return; /* not an address: believe nothing further */
    snprintf(out, size, "%s", hop);
    if (!proxies_has(trusted, hop))
      return;
    end = start ? start - 1 : 0;
  }
}
