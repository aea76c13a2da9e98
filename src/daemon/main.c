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
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>

#include "svcd/admin.h"
#include "svcd/alloc.h"
#include "svcd/cluster.h"
#include "svcd/config.h"
#include "svcd/dns_server.h"
#include "svcd/health.h"
#include "svcd/log.h"
#include "svcd/manifest_dir.h"
#include "svcd/metrics.h"
#include "svcd/nft.h"
#include "svcd/podman.h"
#include "svcd/privs.h"
#include "svcd/probe.h"
#include "svcd/sdnotify.h"
#include "svcd/store.h"


struct svcd {
    struct svcd_config cfg;
    int argc;
    char **argv;
    struct event_base *base;
    struct store *st;
    struct alloc *al;
    struct manifest_dir *md;
    struct podman_src *podman;
    struct cluster *cluster;
    struct nftdp *nft;
    struct dns_server *dns;
    struct probe_mgr *probes;
    struct admin *admin;
    struct health *health;
    struct sdnotify *notify;
    struct event *ev_term, *ev_int, *ev_hup;
};

/* ---- readiness checks (/readyz, systemd READY=1) ---- */

static enum health_state svcd_check_manifests(void *ctx, char *reason, size_t len)
{
    struct svcd *d = ctx;
    const char *err = manifest_dir_error(d->md);
    if (err) {
        snprintf(reason, len, "%s", err);
        return HEALTH_FAILED;
    }
    if (!manifest_dir_loaded(d->md)) {
        snprintf(reason, len, "initial load of %s pending", d->cfg.manifests);
        return HEALTH_PENDING;
    }
    return HEALTH_OK;
}

static enum health_state svcd_check_podman(void *ctx, char *reason, size_t len)
{
    struct svcd *d = ctx;
    struct podman_stats s;
    podman_src_get_stats(d->podman, &s);
    if (s.connected && podman_src_synced(d->podman))
        return HEALTH_OK;
    if (!podman_src_synced(d->podman) && s.errors == 0) {
        snprintf(reason, len, "initial list from %s pending", d->cfg.podman_socket);
        return HEALTH_PENDING;
    }
    snprintf(reason, len, "podman API at %s unreachable (%llu failed requests; retrying%s)",
             d->cfg.podman_socket, (unsigned long long)s.errors,
             podman_src_synced(d->podman) ? ", last known pods kept" : "");
    return HEALTH_FAILED;
}

static enum health_state svcd_check_cluster(void *ctx, char *reason, size_t len)
{
    struct svcd *d = ctx;
    int st = cluster_health(d->cluster, reason, len);
    return st == 0 ? HEALTH_OK : st == 1 ? HEALTH_PENDING : HEALTH_FAILED;
}

static enum health_state svcd_check_nft(void *ctx, char *reason, size_t len)
{
    struct svcd *d = ctx;
    const char *err = nftdp_last_error(d->nft);
    if (err) {
        snprintf(reason, len, "sync failed: %s", err);
        return HEALTH_FAILED;
    }
    /* Not ready while a change waits for its transaction either: tests and
     * operators read /readyz 200 as "the rules match the store". */
    if (!nftdp_synced(d->nft)) {
        snprintf(reason, len, "%s", nftdp_generation(d->nft) == 0 ? "first sync pending"
                                                                  : "sync pending");
        return HEALTH_PENDING;
    }
    return HEALTH_OK;
}

/* systemd: start-up has settled when no check is still on its first try. */
static bool svcd_settled(void *ctx, char *status, size_t len)
{
    struct svcd *d = ctx;
    char reason[300];
    enum health_state s = health_eval(d->health, reason, sizeof(reason));
    if (s == HEALTH_OK)
        snprintf(status, len, "ready");
    else
        snprintf(status, len, "not ready: %s", reason);
    return s != HEALTH_PENDING;
}

static int svcd_health_setup(struct svcd *d)
{
    d->health = health_new();
    if (!d->health)
        return -1;
    if (d->md && health_add(d->health, "manifests", svcd_check_manifests, d) < 0)
        return -1;
    if (d->podman && health_add(d->health, "podman", svcd_check_podman, d) < 0)
        return -1;
    if (d->cluster && health_add(d->health, "etcd", svcd_check_cluster, d) < 0)
        return -1;
    if (d->nft && health_add(d->health, "nftables", svcd_check_nft, d) < 0)
        return -1;
    return 0;
}

static void svcd_on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct svcd *d = arg;
    (void)what;
    log_info("svcd", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sdnotify_stopping(d->notify);
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

static double svcd_log_dropped(void *ctx)
{
    (void)ctx;
    return (double)log_dropped_lines();
}

/* libevent's own warnings (accept failures, ...) go through our logger, at
 * most 10 a second: a failing accept() on a busy listener repeats on every
 * loop iteration. */
static void svcd_libevent_log(int severity, const char *msg)
{
    static time_t window;
    static unsigned in_window;
    time_t now = time(NULL);
    if (now != window) {
        window = now;
        in_window = 0;
    }
    if (++in_window > 10)
        return;
    if (severity >= EVENT_LOG_WARN)
        log_warn("libevent", "%s", msg);
    else
        log_debug("libevent", "%s", msg);
}

/* Raises the open-file soft limit to the hard limit: connections from
 * clients must never starve probes, nftables and conntrack of descriptors
 * (the admin and DNS TCP caps are checked against this limit at start). */
static void svcd_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("svcd", "cannot raise the open-file limit from %llu to %llu: %s",
                     (unsigned long long)old, (unsigned long long)rl.rlim_max, strerror(errno));
    }
}

/* Descriptors kept for everything but client connections: probes (a
 * socket or a pipe and a pidfd each), netlink, inotify, listeners, files. */
#define SVCD_FD_RESERVE 256

/* Client connections (admin + DNS TCP) must fit in the open-file limit
 * with SVCD_FD_RESERVE to spare; the caps are lowered to fit if needed. */
static void svcd_fit_conn_caps(struct svcd_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    uint64_t budget = rl.rlim_cur > 2 * SVCD_FD_RESERVE ? rl.rlim_cur - SVCD_FD_RESERVE
                                                        : rl.rlim_cur / 2;
    uint64_t want = (uint64_t)(cfg->admin_enabled ? cfg->admin_max_conns : 0) +
                    (cfg->n_dns_listen ? cfg->dns_tcp_max_conns : 0);
    if (want <= budget)
        return;
    uint32_t a = (uint32_t)((uint64_t)cfg->admin_max_conns * budget / want);
    uint32_t t = (uint32_t)((uint64_t)cfg->dns_tcp_max_conns * budget / want);
    log_warn("svcd", "open-file limit %llu: connection caps lowered to admin %u, DNS TCP %u "
             "(%d descriptors kept for probes, netlink and files)",
             (unsigned long long)rl.rlim_cur, a ? a : 1, t ? t : 1, SVCD_FD_RESERVE);
    cfg->admin_max_conns = a ? a : 1;
    cfg->dns_tcp_max_conns = t ? t : 1;
}

/* mkdir -p DIR (mode 0755). 0, or -1 with errno. */
static int svcd_mkdir_p(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The allocator over the configured ranges, with the state of state-dir. */
static int svcd_alloc_open(struct svcd *d)
{
    char err[1024];
    struct stat sb;
    if (svcd_mkdir_p(d->cfg.state_dir) < 0 || stat(d->cfg.state_dir, &sb) < 0 ||
        !S_ISDIR(sb.st_mode)) {
        log_err("svcd", "--state-dir %s: cannot create: %s", d->cfg.state_dir,
                strerror(errno ? errno : ENOTDIR));
        return -1;
    }
    d->al = alloc_new(d->cfg.service_cidr, d->cfg.n_service_cidr, d->cfg.node_port_min,
                      d->cfg.node_port_max);
    if (!d->al) {
        log_err("svcd", "out of memory at start-up");
        return -1;
    }
    int rc = alloc_load(d->al, d->cfg.state_dir, err, sizeof(err));
    if (rc < 0) {
        log_err("svcd", "--state-dir: %s", err);
        return -1;
    }
    if (rc > 0)
        log_err("svcd", "--state-dir: %s", err);
    struct alloc_stats as;
    alloc_get_stats(d->al, &as);
    log_info("svcd", "state %s/%s: %zu Services hold %zu clusterIPs and %zu nodePorts",
             d->cfg.state_dir, ALLOC_STATE_FILE, as.services, as.cluster_ips, as.node_ports);
    return 0;
}

static void svcd_teardown(struct svcd *d)
{
    /* Reverse order of creation. */
    if (d->ev_hup) event_free(d->ev_hup);
    if (d->ev_int) event_free(d->ev_int);
    if (d->ev_term) event_free(d->ev_term);
    sdnotify_free(d->notify);
    admin_free(d->admin);
    health_free(d->health);
    /* Sources first: nothing commits to the store while its subscribers go. */
    cluster_free(d->cluster);
    podman_src_free(d->podman);
    manifest_dir_free(d->md);
    alloc_free(d->al);
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
    if (log_writer_start() != 0)
        log_warn("svcd", "no log writer thread: logging may block on a full stderr");
    event_set_log_callback(svcd_libevent_log);
    svcd_raise_nofile();
    svcd_fit_conn_caps(&d.cfg);

    if (cleanup) {
        rc = nftdp_cleanup(d.cfg.nft_table) < 0 ? 1 : 0;
        if (rc == 0)
            log_info("svcd", "removed nftables table %s", d.cfg.nft_table);
        log_writer_stop(1000);
        return rc;
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
    metric_counter_fn("svcd_log_dropped_lines_total", NULL,
                      "Log lines dropped because stderr was not draining", svcd_log_dropped, NULL);
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
        if (svcd_alloc_open(&d) < 0)
            goto out;
        d.md = manifest_dir_new(d.base, d.st, d.cfg.manifests);
        if (!d.md || manifest_dir_set_alloc(d.md, d.al, d.cfg.state_dir) < 0)
            goto out;
    }
    if (d.cfg.podman) {
        d.podman = podman_src_new(d.base, d.st, d.cfg.podman_socket);
        if (!d.podman)
            goto out;
        podman_src_set_node_name(d.podman, d.cfg.node_name);
    }
    if (d.cfg.etcd_endpoints[0]) {
        char node_ip[64] = "";
        if (d.cfg.n_node_ip)
            svcd_ip_format(&d.cfg.node_ip[0], node_ip, sizeof(node_ip));
        struct cluster_config cc = {
            .endpoints = d.cfg.etcd_endpoints, .node_name = d.cfg.node_name,
            .node_ip = node_ip, .lease_ttl_s = d.cfg.etcd_lease_ttl,
            .cafile = d.cfg.etcd_cafile[0] ? d.cfg.etcd_cafile : NULL,
            .certfile = d.cfg.etcd_certfile[0] ? d.cfg.etcd_certfile : NULL,
            .keyfile = d.cfg.etcd_keyfile[0] ? d.cfg.etcd_keyfile : NULL,
        };
        d.cluster = cluster_new(d.base, d.st, &cc);
        if (!d.cluster)
            goto out;
    }
    if (!d.md && !d.podman && !d.cluster)
        log_warn("svcd", "no --manifests directory and no podman source: no Services or "
                 "Pods will be known");
    if (svcd_health_setup(&d) < 0) {
        log_err("svcd", "out of memory at start-up");
        goto out;
    }
    if (d.cfg.admin_enabled) {
        d.admin = admin_new(d.base, d.st, &d.cfg.admin_listen, NULL, NULL);
        if (!d.admin)
            goto out;
        admin_set_health(d.admin, d.health);
        admin_set_probes(d.admin, d.probes);
        admin_set_limits(d.admin, d.cfg.admin_max_conns, d.cfg.admin_idle_ms,
                         d.cfg.admin_header_ms);
        admin_set_manifests(d.admin, d.md);
    }
    d.notify = sdnotify_new(d.base, svcd_settled, &d);
    if (!d.notify)
        goto out;
    d.ev_term = evsignal_new(d.base, SIGTERM, svcd_on_stop, &d);
    d.ev_int = evsignal_new(d.base, SIGINT, svcd_on_stop, &d);
    d.ev_hup = evsignal_new(d.base, SIGHUP, svcd_on_hup, &d);
    if (!d.ev_term || !d.ev_int || !d.ev_hup || evsignal_add(d.ev_term, NULL) < 0 ||
        evsignal_add(d.ev_int, NULL) < 0 || evsignal_add(d.ev_hup, NULL) < 0) {
        log_err("svcd", "cannot install signal handlers");
        goto out;
    }
    svcd_privs_drop();
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
    log_writer_stop(1000);
    return status;
}
