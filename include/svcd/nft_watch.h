/*
 * nft_watch: notices changes to svcd's nftables table made by anyone else
 * (an operator's `nft delete table inet svcd`, another tool flushing a
 * chain), so that the data plane can restore its rules.
 *
 * It listens to the kernel's nftables event group (NFNLGRP_NFTABLES) on a
 * non-blocking netlink socket on the event loop. Every transaction ends
 * with an NFT_MSG_NEWGEN event naming the committing process; when a
 * transaction touched the watched table (a table, chain, rule, set,
 * element or object event naming it) and was committed by another process,
 * the callback runs once. If events were lost (ENOBUFS: a large sync of our
 * own floods the socket), the callback runs only when the table no longer
 * exists (checked with one GETTABLE request).
 */
#ifndef SVCD_NFT_WATCH_H
#define SVCD_NFT_WATCH_H

struct event_base;
struct nft_watch;

/* Called from the loop with a short description ("table deleted",
 * "changed by pid 1234 (nft)"). */
typedef void (*nft_watch_fn)(void *ctx, const char *what);

/* Watches inet table `table` on base. Returns NULL (logged) when the event
 * group cannot be joined; svcd then runs without drift repair. */
struct nft_watch *nft_watch_new(struct event_base *base, const char *table, nft_watch_fn fn,
                                void *ctx);
/* Accepts NULL. */
void nft_watch_free(struct nft_watch *w);

#endif
