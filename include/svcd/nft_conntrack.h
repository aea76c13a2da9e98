/*
 * nft_conntrack: conntrack clean-up over ctnetlink (libmnl, no
 * libnetfilter_conntrack). When a UDP endpoint leaves a Service, existing
 * UDP "connections" DNATed to it would keep going there until they time
 * out; kube-proxy deletes them, and so does svcd.
 */
#ifndef SVCD_NFT_CONNTRACK_H
#define SVCD_NFT_CONNTRACK_H

#include <stdint.h>

/* Deletes every UDP conntrack entry of family af (AF_INET/AF_INET6) whose
 * reply direction comes from addr:port and whose original destination was
 * another address (entries NATed to that endpoint; direct flows stay). addr is 4 or 16 bytes, port in host order. Returns the number
 * deleted, or -1 (errno set) when ctnetlink cannot be used. */
int nft_conntrack_delete_udp(int af, const uint8_t *addr, uint16_t port);

#endif
