/* Client addresses: the socket's, or the one a trusted proxy forwarded — never a header from
 * anyone else. */
#ifndef DUCHA_NET_H
#define DUCHA_NET_H

#include <stddef.h>

/* 1 when every entry of the comma-separated list is an address or a network (IPv4 or IPv6). */
int proxies_valid(const char *list);
/* 1 when addr (IPv4 or IPv6 text) is one of the list's addresses or networks. */
int proxies_has(const char *list, const char *addr);
/* The client's address: peer (the socket's) unless peer is a trusted proxy, in which case the
 * right-most address of X-Forwarded-For (forwarded, may be NULL) that is not itself a trusted
 * proxy. Writes it into out. */
void client_address(const char *peer, const char *forwarded, const char *trusted, char *out, size_t size);

#endif
