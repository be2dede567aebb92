/* Where ducha may send a request of its own (webhook deliveries): not to itself, its network or
 * the cloud's metadata service, unless the operator allows it (DUCHA_WEBHOOK_ALLOW). Pure code. */
#ifndef DUCHA_ADDRESS_H
#define DUCHA_ADDRESS_H

#include <stddef.h>
#include <sys/socket.h>

/* What kind of non-public address sa is ("loopback", "private", "link-local", ...), or NULL for
 * a public one. IPv4-mapped and -compatible IPv6 addresses are judged by their IPv4 address. */
const char *address_kind(const struct sockaddr *sa);

/* 1 when list (comma-separated "address" or "address/bits", IPv4 or IPv6; empty: none) is well
 * formed. */
int cidr_list_valid(const char *list);
/* 1 when sa falls in one of list's networks. */
int cidr_list_has(const char *list, const struct sockaddr *sa);

/* NULL when a request may go to sa, else why not ("127.0.0.1 is a loopback address"), written
 * into why. */
const char *address_refused(const struct sockaddr *sa, const char *allow, char *why, size_t size);

#endif
