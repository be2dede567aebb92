#include "net.h"

#include "address.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int proxies_valid(const char *list) { return cidr_list_valid(list); }

int proxies_has(const char *list, const char *addr) {
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  if (!addr)
    return 0;
  if (inet_pton(AF_INET, addr, &v4.sin_addr) == 1)
    return cidr_list_has(list, (struct sockaddr *)&v4);
  return inet_pton(AF_INET6, addr, &v6.sin6_addr) == 1 && cidr_list_has(list, (struct sockaddr *)&v6);
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
