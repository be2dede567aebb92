#include <string.h>

#include "net.h"
#include "tap.h"

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
  return done_testing();
}
