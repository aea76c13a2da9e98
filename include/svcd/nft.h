/*
 * nft (nftdp): the Service VIP data plane. Turns the store's Services and
 * endpoints into svcd's own nftables table (family inet, name
 * cfg->nft_table, default "svcd"; layout in docs/NFTABLES.md) through
 * libnftnl + libmnl, never by running `nft`.
 *
 * - Subscribes to the store; changed Services are coalesced for
 *   cfg->sync_min_interval_ms (default 5 ms) and then programmed in ONE
 *   atomic transaction holding only the difference against what nftdp
 *   knows it programmed (it never lists the kernel's ruleset).
 * - The first sync replaces the whole table atomically (adopting a table
 *   left by a previous run without a gap: established flows keep their
 *   conntrack NAT). It runs on the first store commit, or 1 s after start
 *   when no commit came.
 * - A rejected transaction leaves the kernel's previous rules in force and
 *   the in-memory state unchanged; the error (mapped to the object that
 *   failed) is logged and counted, nftdp_synced() turns false, and the sync
 *   is retried with backoff (100 ms doubling to 10 s); from the second
 *   failure in a row the retry is a full replace.
 * - UDP endpoints that leave a Service lose their conntrack entries
 *   (ctnetlink) after the commit, so clients stop talking to them.
 *
 * Metrics: svcd_nft_syncs_total, svcd_nft_sync_failures_total,
 * svcd_nft_sync_duration_seconds, svcd_nft_services, svcd_nft_endpoints,
 * svcd_nft_conntrack_deleted_total.
 */
#ifndef SVCD_NFT_H
#define SVCD_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcd/model.h"

struct event_base;
struct store;
struct svcd_config;
struct nftdp;

/* Creates the data plane and subscribes it to st (cfg is copied). Opens the
 * netfilter netlink socket now: NULL with a logged reason when that fails.
 * No rules are changed before the first sync. */
struct nftdp *nftdp_new(struct event_base *base, struct store *st, const struct svcd_config *cfg);
/* Stops syncing; leaves the rules in place (a restart keeps traffic
 * flowing). Accepts NULL. Later store commits are ignored (the store has
 * no unsubscribe; the subscription stays, pointing at an emptied slot). */
void nftdp_free(struct nftdp *dp);
/* --cleanup: deletes svcd's table. 0 (also when there was none) or -1. */
int nftdp_cleanup(const char *table);
/* True when the last sync succeeded and no change is pending. */
bool nftdp_synced(const struct nftdp *dp);
/* The last sync error ("add element inet svcd be4 (... svc default/web):
 * File exists"), or NULL when the last sync succeeded. */
const char *nftdp_last_error(const struct nftdp *dp);
/* Store generation last committed to the kernel (0 before the first). */
uint64_t nftdp_generation(const struct nftdp *dp);

/* ---- introspection (admin API, tests) ---- */

/* Runs any pending sync now instead of waiting for the timer; returns 0
 * when the kernel accepted it (or nothing was pending), -1 otherwise. */
int nftdp_sync_now(struct nftdp *dp);

struct nftdp_stats {
    uint64_t syncs, failures, full_syncs;
    size_t services;        /* Services with at least one programmed frontend */
    size_t frontends;       /* (address|nodeport, proto, port) entries */
    size_t backends;        /* backend slots (elements of be4/be6/bnp4/bnp6) */
    size_t lb_chains;       /* load-balancing chains */
    double last_sync_ms;    /* wall time of the last sync, incl. kernel */
    double last_kernel_ms;  /* of which sendmsg() of the batch (kernel commit) */
    size_t last_batch_msgs, last_batch_bytes;
};
void nftdp_get_stats(const struct nftdp *dp, struct nftdp_stats *out);

/* The backends programmed, in slot order, for a frontend: a ClusterIP /
 * external address (addr != NULL) or a NodePort (addr == NULL, family
 * given by `family`). Fills up to max entries of ips/ports; returns the
 * slot count, or -1 when no such frontend is programmed (0 = programmed
 * with no endpoints: reject/drop). */
int nftdp_frontend_backends(const struct nftdp *dp, int family, const struct svcd_ip *addr,
                            enum svcd_proto proto, uint16_t port, struct svcd_ip *ips,
                            uint16_t *ports, size_t max);

/* The plan of one Service as text, without touching the kernel (a pure
 * function of the store and cfg, for tests without root): one line per
 * frontend, "<addr|*> <proto> <port>[ sc] -> <lb chain>|reject|drop
 * [<backend> ...]", e.g. "10.96.0.10 6 80 -> lb4_2_mp 10.244.0.11:8080
 * 10.244.0.12:8080". Returns the number of frontends, -1 on ENOMEM. */
int nftdp_plan_text(const struct svcd_config *cfg, struct store *st, const char *ns,
                    const char *name, char *out, size_t len);

#endif
