/*
 * svcd: the daemon. Wires the modules together on one libevent loop:
 *
 *   manifest_dir, podman (sources) --> store --> nftdp (VIP rules in nftables)
 *                                  \--> dns_server (cluster zone + forwarding)
 *   probe_mgr --(readiness)--> store
 *   admin (HTTP: health, metrics, API) reads the store
 *
 * Signals: SIGTERM/SIGINT stop the loop (the nftables rules stay, so
 * traffic keeps flowing while svcd restarts); SIGHUP reloads the config
 * file (log settings), rescans the manifests and flushes the DNS cache.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "svcd/admin.h"
#include "svcd/config.h"
#include "svcd/dns_server.h"
#include "svcd/log.h"
#include "svcd/manifest_dir.h"
#include "svcd/metrics.h"
#include "svcd/nft.h"
#include "svcd/podman.h"
#include "svcd/probe.h"
#include "svcd/store.h"


struct svcd {
    struct svcd_config cfg;
    int argc;
    char **argv;
    struct event_base *base;
    struct store *st;
    struct manifest_dir *md;
    struct podman_src *podman;
    struct nftdp *nft;
    struct dns_server *dns;
    struct probe_mgr *probes;
    struct admin *admin;
    struct event *ev_term, *ev_int, *ev_hup;
    char ready_reason[512];
};

/* /readyz: ready after the first full load and (with nftables) sync. */
static const char *svcd_ready(void *ctx)
{
    struct svcd *d = ctx;
    if (d->md && !manifest_dir_loaded(d->md))
        return "initial manifest load pending";
    if (d->podman && !podman_src_synced(d->podman))
        return "initial podman list pending";
    if (d->nft && !nftdp_synced(d->nft)) {
        const char *err = nftdp_last_error(d->nft);
        snprintf(d->ready_reason, sizeof(d->ready_reason), "nftables %s%s",
                 err ? "sync failed: " : "sync pending", err ? err : "");
        return d->ready_reason;
    }
    return NULL;
}

static void svcd_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct svcd *d = arg;
    (void)what;
    log_info("svcd", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    event_base_loopexit(d->base, NULL);
}

static void svcd_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct svcd *d = arg;
    (void)sig; (void)what;
    struct svcd_config *n = malloc(sizeof(*n));
    if (n) {
        *n = d->cfg;
        if (config_reload(n, d->argc, d->argv) == 0) {
            log_set_level(n->log_level);
            log_set_format(n->log_format);
            if (strcmp(n->manifests, d->cfg.manifests) != 0 ||
                n->n_dns_listen != d->cfg.n_dns_listen || n->no_nft != d->cfg.no_nft ||
                strcmp(n->nft_table, d->cfg.nft_table) != 0)
                log_warn("svcd", "SIGHUP: manifests, listeners and nftables settings take "
                         "effect at the next start; log settings applied now");
            d->cfg.log_level = n->log_level;
            d->cfg.log_format = n->log_format;
            log_info("svcd", "SIGHUP: configuration reloaded");
        } else {
            log_err("svcd", "SIGHUP: configuration not reloaded; the running one stays");
        }
        free(n);
    }
    if (d->md)
        manifest_dir_rescan(d->md);
    dns_server_flush_cache(d->dns);
}

static void svcd_teardown(struct svcd *d)
{
    /* Reverse order of creation. */
    if (d->ev_hup) event_free(d->ev_hup);
    if (d->ev_int) event_free(d->ev_int);
    if (d->ev_term) event_free(d->ev_term);
    admin_free(d->admin);
    /* Sources first: nothing commits to the store while its subscribers go. */
    podman_src_free(d->podman);
    manifest_dir_free(d->md);
    probe_mgr_free(d->probes);
    dns_server_free(d->dns);
    nftdp_free(d->nft);
    store_free(d->st);
    metrics_reset();
    if (d->base)
        event_base_free(d->base);
}

int main(int argc, char **argv)
{
    static struct svcd d;
    bool cleanup = false;
    int rc = config_load(&d.cfg, argc, argv, &cleanup);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    d.argc = argc;
    d.argv = argv;
    log_set_level(d.cfg.log_level);
    log_set_format(d.cfg.log_format);
    signal(SIGPIPE, SIG_IGN);

    if (cleanup) {
        if (nftdp_cleanup(d.cfg.nft_table) < 0)
            return 1;
        log_info("svcd", "removed nftables table %s", d.cfg.nft_table);
        return 0;
    }

    int status = 1;
    /* Precise timers: the nftables coalescing window is a few ms, and
     * libevent's default coarse clock rounds it up by as much again. */
    struct event_config *ecfg = event_config_new();
    if (ecfg) {
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        d.base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    d.st = store_new();
    if (!d.base || !d.st) {
        log_err("svcd", "out of memory at start-up");
        goto out;
    }
    if (!d.cfg.no_nft) {
        d.nft = nftdp_new(d.base, d.st, &d.cfg);
        if (!d.nft)
            goto out;
    }
    if (d.cfg.n_dns_listen) {
        d.dns = dns_server_new(d.base, d.st, &d.cfg);
        if (!d.dns)
            goto out;
    }
    d.probes = probe_mgr_new(d.base, d.st);
    if (!d.probes)
        goto out;
    if (d.cfg.manifests[0]) {
        d.md = manifest_dir_new(d.base, d.st, d.cfg.manifests);
        if (!d.md)
            goto out;
    }
    if (d.cfg.podman) {
        d.podman = podman_src_new(d.base, d.st, d.cfg.podman_socket);
        if (!d.podman)
            goto out;
        podman_src_set_node_name(d.podman, d.cfg.node_name);
    }
    if (!d.md && !d.podman)
        log_warn("svcd", "no --manifests directory and no podman source: no Services or "
                 "Pods will be known");
    if (d.cfg.admin_enabled) {
        d.admin = admin_new(d.base, d.st, &d.cfg.admin_listen, svcd_ready, &d);
        if (!d.admin)
            goto out;
        admin_set_probes(d.admin, d.probes);
    }
    d.ev_term = evsignal_new(d.base, SIGTERM, svcd_on_stop, &d);
    d.ev_int = evsignal_new(d.base, SIGINT, svcd_on_stop, &d);
    d.ev_hup = evsignal_new(d.base, SIGHUP, svcd_on_hup, &d);
    if (!d.ev_term || !d.ev_int || !d.ev_hup || evsignal_add(d.ev_term, NULL) < 0 ||
        evsignal_add(d.ev_int, NULL) < 0 || evsignal_add(d.ev_hup, NULL) < 0) {
        log_err("svcd", "cannot install signal handlers");
        goto out;
    }
    log_info("svcd", "svcd %s started: node %s, manifests %s, dns %zu listeners, nftables %s, "
             "admin %s", SVCD_VERSION, d.cfg.node_name,
             d.cfg.manifests[0] ? d.cfg.manifests : "(none)", d.cfg.n_dns_listen,
             d.cfg.no_nft ? "off" : d.cfg.nft_table,
             d.cfg.admin_enabled ? d.cfg.admin_listen.text : "off");
    if (event_base_dispatch(d.base) < 0) {
        log_err("svcd", "event loop failed");
        goto out;
    }
    status = 0;
    log_info("svcd", "stopped");
out:
    svcd_teardown(&d);
    return status;
}
