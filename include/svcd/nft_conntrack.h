/*
 * nft_conntrack: conntrack clean-up over ctnetlink (raw messages built with
 * libmnl). When a UDP endpoint leaves a Service, existing UDP "connections"
 * DNATed to it would keep going there until they time out; kube-proxy
 * deletes them, and so does svcd.
 *
 * The cleaner never blocks the event loop: one non-blocking ctnetlink socket
 * is watched by the loop; each removed endpoint is one dump that the kernel
 * filters (CTA_FILTER on the reply tuple: source address, protocol UDP and
 * source port, kernel >= 5.8), and the few entries it returns are deleted
 * in batches of DELETE messages sent with one sendmsg each. Every loop
 * callback handles a bounded slice (a few receive buffers, one batch), so
 * DNS, probes and rule updates run in between even with 100k entries.
 */
#ifndef SVCD_NFT_CONNTRACK_H
#define SVCD_NFT_CONNTRACK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct metric;
struct nft_ct_cleaner;

/* Opens the ctnetlink socket on base. deleted (may be NULL) is a counter
 * increased by the number of entries deleted. Returns NULL (logged) when
 * ctnetlink cannot be used; callers then simply skip clean-up. */
struct nft_ct_cleaner *nft_ct_cleaner_new(struct event_base *base, struct metric *deleted);

/* Queues the deletion of every UDP conntrack entry of family af (AF_INET or
 * AF_INET6) whose reply comes from addr:port (addr 4 or 16 bytes, port in
 * host order) and whose original destination was another address (entries
 * NATed to that endpoint; direct flows stay). Returns 0, or -1 (ENOMEM). */
int nft_ct_cleaner_add(struct nft_ct_cleaner *c, int af, const uint8_t *addr, uint16_t port);

/* Endpoints queued or being cleaned (0 when idle). */
size_t nft_ct_cleaner_pending(const struct nft_ct_cleaner *c);
/* Entries deleted so far. */
uint64_t nft_ct_cleaner_deleted(const struct nft_ct_cleaner *c);

/* Closes the socket and drops queued work. Accepts NULL. */
void nft_ct_cleaner_free(struct nft_ct_cleaner *c);

#endif
