/*
 * dns_forward: answers every name svcd is not authoritative for by asking
 * upstream resolvers (CoreDNS "forward" + "cache"), driven from libevent.
 *
 * Each query is first looked up in a dns_cache (include/svcd/dns_cache.h);
 * a miss joins an identical in-flight question if there is one (one upstream
 * query serves all its waiters) or starts a new one on the c-ares channel of
 * the longest matching stub domain (cfg->stub[]), else the default channel
 * (cfg->upstream[], or /etc/resolv.conf when cfg->n_upstream == 0, minus
 * svcd's own cfg->dns_listen addresses so a node that lists svcd in its
 * resolv.conf does not loop).
 *
 * The upstream query carries a fresh random ID (never the client's); every
 * waiter gets the answer with its own ID, RD bit and question-name case.
 * EDNS (OPT, DO, CD) is sent as the client sent it and is part of the cache
 * key. Truncated UDP answers are retried over TCP by c-ares, so an answer
 * may be larger than the client's UDP limit: the caller (the UDP server)
 * must truncate/set TC when it does not fit. SERVFAIL/REFUSED from one
 * upstream moves on to the next; when every upstream failed, or after
 * DNS_FORWARD_DEADLINE_MS, waiters get answer==NULL (reply SERVFAIL).
 *
 * Single-threaded: every function runs on the event_base's thread.
 */
#ifndef SVCD_DNS_FORWARD_H
#define SVCD_DNS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/config.h"
#include "svcd/model.h"

struct event_base;
struct dns_forwarder;

/* Per-try timeout, tries per server, and the hard cap after which waiters
 * are answered SERVFAIL whatever c-ares is still doing. */
#define DNS_FORWARD_TRY_MS 2000
#define DNS_FORWARD_TRIES 2
#define DNS_FORWARD_DEADLINE_MS 4000

/* answer==NULL/len==0 means every upstream failed: reply SERVFAIL. answer has the client's ID
   and is only valid during the callback. May be called before dns_forwarder_query returns
   (cache hit). */
typedef void (*dns_forward_cb)(void *ctx, const uint8_t *answer, size_t len);

/* Creates the forwarder: cache sized from cfg->dns_cache_*, one c-ares
 * channel for cfg->upstream (or resolv.conf) and one per cfg->stub[],
 * metrics registered. cfg is copied where needed (not kept). Returns NULL on
 * failure (logged). Free with dns_forwarder_free(). */
struct dns_forwarder *dns_forwarder_new(struct event_base *base, const struct svcd_config *cfg);

/* Cancels everything in flight (their callbacks are NOT called) and frees.
 * Accepts NULL. Must not be called from inside a dns_forward_cb. */
void dns_forwarder_free(struct dns_forwarder *f);

/* Is this client allowed to use forwarding (ACL: loopback + cfg service/pod CIDRs + dns_allow)? */
bool dns_forwarder_allowed(const struct dns_forwarder *f, const struct svcd_ip *client);

/* Forward a full wire query (with the client's ID). Returns 0 (cb will be called exactly once) or
   -1 (cb never called: reply SERVFAIL yourself). -1 also for a query that
   does not parse (header + one question) and when too many queries are in
   flight (DNS_FORWARD_MAX_PENDING), and when the question's channel has no
   upstream at all (resolv.conf named only svcd itself). */
int dns_forwarder_query(struct dns_forwarder *f, const uint8_t *query, size_t len,
                        dns_forward_cb cb, void *ctx);

/* Cache-only fast path: if the answer to query is cached, writes it
 * (client's ID, case, aged TTLs) into out and returns its length; 0 on a
 * miss (nothing else happens: call dns_forwarder_query()). Lets a server
 * answer hits without allocating a callback context. */
size_t dns_forwarder_cached(struct dns_forwarder *f, const uint8_t *query, size_t len,
                            uint8_t *out, size_t outcap);

#define DNS_FORWARD_MAX_PENDING 4096   /* distinct questions in flight */
#define DNS_FORWARD_MAX_WAITERS 256    /* clients waiting on one question */

/* Counters, for tests and the admin API (also exported as metrics). */
struct dns_forward_stats {
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t coalesced;          /* misses that joined an in-flight query */
    uint64_t upstream_queries;   /* queries handed to c-ares */
    uint64_t upstream_failures;  /* of those, ended without an answer */
    uint64_t pending;            /* distinct questions in flight now */
};
void dns_forwarder_get_stats(const struct dns_forwarder *f, struct dns_forward_stats *out);

/* Drops every cached answer (e.g. on SIGHUP or `svcctl dns flush`). */
void dns_forwarder_flush(struct dns_forwarder *f);

#endif
