#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "address.h"
#include "net.h"
#include "tap.h"

/* 1 when address text is refused for the reason want (NULL: not refused) under allow. */
static int refused(const char *text, const char *allow, const char *want) {
  struct sockaddr_in v4 = {.sin_family = AF_INET};
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
  const struct sockaddr *sa = inet_pton(AF_INET, text, &v4.sin_addr) == 1 ? (struct sockaddr *)&v4
                              : inet_pton(AF_INET6, text, &v6.sin6_addr) == 1 ? (struct sockaddr *)&v6
                                                                              : NULL;
  char why[128];
  const char *got = sa ? address_refused(sa, allow, why, sizeof why) : "not an address";
  if ((got == NULL) != (want == NULL) || (got && strcmp(got, want))) {
    printf("# %s under \"%s\": %s\n", text, allow, got ? got : "allowed");
    return 0;
  }
  return 1;
}

int main(void) {
  char out[64];
  ok(proxies_valid("") && proxies_valid("10.0.0.1, 192.168.0.0/16") && !proxies_valid("10.0.0.1/33") &&
         !proxies_valid("example.org") && !proxies_valid("10.0.0.1, ,10.0.0.2"),
     "trusted proxy lists are checked");
  ok(proxies_has("192.168.0.0/16", "192.168.4.5") && !proxies_has("192.168.0.0/16", "192.169.0.1") &&
         proxies_has("10.0.0.1", "10.0.0.1") && !proxies_has("", "10.0.0.1"),
     "addresses match networks");
  client_address("203.0.113.9", "1.2.3.4", "", out, sizeof out);
  ok(!strcmp(out, "203.0.113.9"), "X-Forwarded-For from anyone is ignored: %s", out);
  client_address("10.0.0.1", "198.51.100.7, 10.0.0.2", "10.0.0.0/8", out, sizeof out);
  ok(!strcmp(out, "198.51.100.7"), "a chain of trusted proxies is walked from the right: %s", out);
  client_address("10.0.0.1", "6.6.6.6, 198.51.100.7", "10.0.0.0/8", out, sizeof out);
  ok(!strcmp(out, "198.51.100.7"), "what the first untrusted hop claims is not believed: %s", out);
  client_address("10.0.0.1", "garbage", "10.0.0.0/8", out, sizeof out);
  ok(!strcmp(out, "10.0.0.1"), "a forwarded value that is no address is ignored: %s", out);
  ok(proxies_valid("::1, fd00::/8") && proxies_has("fd00::/8", "fd12::3") && !proxies_has("fd00::/8", "fe80::1") &&
         proxies_has("10.0.0.0/8", "::ffff:10.1.2.3"),
     "IPv6 proxies and networks, and IPv4-mapped peers");
  ok(refused("127.0.0.1", "", "127.0.0.1 is a loopback address") && refused("10.2.3.4", "", "10.2.3.4 is a private address") &&
         refused("169.254.169.254", "", "169.254.169.254 is a link-local address") &&
         refused("100.64.0.1", "", "100.64.0.1 is a shared (CGNAT) address") &&
         refused("0.0.0.0", "", "0.0.0.0 is an unspecified address") && refused("224.0.0.1", "", "224.0.0.1 is a multicast address") &&
         refused("::1", "", "::1 is a loopback address") && refused("::", "", ":: is an unspecified address") &&
         refused("fe80::1", "", "fe80::1 is a link-local address") && refused("fd00::1", "", "fd00::1 is a private address") &&
         refused("::ffff:127.0.0.1", "", "::ffff:127.0.0.1 is a loopback address") &&
         refused("64:ff9b::a00:1", "", "64:ff9b::a00:1 is a private address") &&
         refused("::192.168.0.1", "", "::192.168.0.1 is a private address"),
     "loopback, private, link-local, CGNAT, unspecified and multicast addresses are refused, embedded IPv4 too");
  ok(refused("8.8.8.8", "", NULL) && refused("2001:4860:4860::8888", "", NULL) && refused("172.32.0.1", "", NULL) &&
         refused("127.0.0.1", "127.0.0.1/32", NULL) && refused("::1", "::1", NULL) &&
         refused("127.0.0.2", "127.0.0.1/32", "127.0.0.2 is a loopback address") &&
         refused("::ffff:127.0.0.1", "127.0.0.0/8", NULL),
     "public addresses pass, and what the allow-list names");
  ok(cidr_list_valid("") && cidr_list_valid("127.0.0.1/32, ::1/128") && !cidr_list_valid("::1/129") &&
         !cidr_list_valid("localhost") && !cidr_list_valid("1.2.3.4/"),
     "allow-lists are checked");
  return done_testing();
}
