/*
 * forward: sends the questions svcd does not own to upstream resolvers.
 *
 * Why: pods use svcd as their only nameserver, so it must resolve the rest
 * of the world too (CoreDNS "forward" + "cache"). The path of a query:
 *
 *   dns_forwarder_query -> cache hit? answer at once (no allocation)
 *                       -> same question in flight? wait on it (coalescing)
 *                       -> else a pending query on the c-ares channel of the
 *                          longest matching stub domain, or the default one
 *   c-ares answer       -> store in the cache, answer every waiter with its
 *                          own ID, RD and question case
 *   deadline timer      -> waiters get SERVFAIL if c-ares is still trying
 *
 * c-ares 1.18 has no event thread: each channel reports its sockets through
 * ARES_OPT_SOCK_STATE_CB, we watch them with libevent events and call
 * ares_process_fd() when they fire, and one timer per channel follows
 * ares_timeout(). Upstream queries get a fresh random ID (c-ares matches
 * answers by ID alone per channel, and client IDs collide), restored per
 * waiter when the answer comes back.
 */
#include "svcd/dns_forward.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcd/dns_cache.h"
#include "svcd/dns_wire.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/vec.h"

#define FWD_MOD "dns-forward"
#define FWD_PENDING_BUCKETS 4096          /* power of two */
#define FWD_QUERY_MAX (DNS_HEADER_LEN + DNS_NAME_MAX + 4)

struct dns_forwarder;

/* One socket c-ares asked us to watch. */
struct fwd_sock {
    ares_socket_t fd;
    struct event *ev;
};

/* One c-ares channel: the default upstreams or one stub domain. */
struct fwd_channel {
    struct dns_forwarder *f;
    ares_channel ch;
    bool ch_ok;
    struct event *timer;
    struct fwd_sock *socks;
    size_t n_socks, cap_socks;
    uint8_t zone[DNS_NAME_MAX];    /* stub domain, wire form lower case */
    size_t zone_len;               /* 0 for the default channel */
    bool no_servers;               /* nothing to ask: SERVFAIL at once */
    char label[280];               /* for logs */
};

/* One client waiting for an answer: enough of its query to adapt the
 * answer (header + question as the client spelled it). */
struct fwd_waiter {
    dns_forward_cb cb;
    void *ctx;
    uint8_t q[FWD_QUERY_MAX];
    uint16_t qlen;
};

/* One question in flight upstream. Owned by c-ares from ares_send() until
 * its callback; `done` marks one whose waiters were already answered by
 * the deadline. */
struct fwd_pending {
    struct dns_forwarder *f;
    struct fwd_pending *hnext;      /* pending table chain (while !done) */
    struct dns_cache_key key;
    uint16_t upstream_id;
    bool done;
    struct event *deadline;
    struct timespec started;
    struct fwd_waiter *waiters;
    size_t n_waiters, cap_waiters;
};

struct dns_forwarder {
    struct event_base *base;
    struct dns_cache *cache;
    struct fwd_channel *chans;      /* [0] = default, then one per stub */
    size_t n_chans;
    struct fwd_pending *pending[FWD_PENDING_BUCKETS];
    size_t n_pending;               /* in the table (waiting for answers) */
    size_t n_inflight;              /* handed to c-ares, not yet called back */
    uint8_t id_used[65536 / 8];     /* upstream IDs in flight */
    struct svcd_cidr acl[1 + 3 * SVCD_MAX_CIDR + 1];
    struct svcd_hostport listen[SVCD_MAX_LISTEN];   /* our own addresses */
    size_t n_listen;
    size_t n_acl;
    bool ares_lib;
    struct dns_forward_stats st;
    uint64_t evictions_seen;
    struct {
        struct metric *hits, *misses, *entries, *evictions, *queries, *failures,
                      *latency, *coalesced;
    } m;
    uint8_t hit_buf[DNS_CACHE_MAX_ANSWER];     /* cache hits (query path) */
    uint8_t reply_buf[DNS_CACHE_MAX_ANSWER];   /* forwarded answers */
    uint8_t send_buf[DNS_CACHE_MAX_ANSWER];    /* the upstream copy of a query */
};

static uint64_t fwd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- c-ares <-> libevent ------------------------------------------------ */

static void fwd_channel_arm_timer(struct fwd_channel *c)
{
    struct timeval tv, *tvp;

    if (!c->ch_ok)
        return;
    tvp = ares_timeout(c->ch, NULL, &tv);
    if (tvp)
        evtimer_add(c->timer, tvp);
    else
        evtimer_del(c->timer);
}

static void fwd_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fwd_channel *c = arg;

    ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    fwd_channel_arm_timer(c);
}

static void fwd_on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct fwd_channel *c = arg;

    ares_process_fd(c->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    fwd_channel_arm_timer(c);
}

/* c-ares tells us which sockets to watch for what (0/0 = closed). */
static void fwd_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct fwd_channel *c = data;
    size_t i;

    for (i = 0; i < c->n_socks && c->socks[i].fd != fd; i++)
        ;
    if (i < c->n_socks) {
        event_free(c->socks[i].ev);
        c->socks[i] = c->socks[--c->n_socks];
    }
    if (!readable && !writable)
        return;
    if (VEC_RESERVE(c->socks, c->n_socks, c->cap_socks, 8) < 0) {
        log_err(FWD_MOD, "%s: out of memory watching a socket", c->label);
        return;
    }
    struct event *ev = event_new(c->f->base, fd,
                                 (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0) |
                                         EV_PERSIST),
                                 fwd_on_sock, c);
    if (!ev || event_add(ev, NULL) < 0) {
        log_err(FWD_MOD, "%s: cannot watch socket %d", c->label, (int)fd);
        if (ev)
            event_free(ev);
        return;
    }
    c->socks[c->n_socks].fd = fd;
    c->socks[c->n_socks].ev = ev;
    c->n_socks++;
}

/* Whether server address a:port is one of svcd's own DNS listeners (an
 * exact match, or a wildcard listener on the same port and a loopback
 * server): forwarding there would loop. */
static bool fwd_is_self(const struct svcd_hostport *listen, size_t n_listen,
                        const struct ares_addr_port_node *a)
{
    int port = a->udp_port ? a->udp_port : 53;

    for (size_t i = 0; i < n_listen; i++) {
        const struct svcd_hostport *l = &listen[i];
        static const uint8_t zero[16];
        size_t alen = l->ip.family == AF_INET ? 4 : 16;
        if (l->ip.family != a->family || l->port != port)
            continue;
        if (memcmp(l->ip.u.bytes, &a->addr, alen) == 0)
            return true;
        if (memcmp(l->ip.u.bytes, zero, alen) == 0) {
            const uint8_t *b = (const uint8_t *)&a->addr;
            if ((a->family == AF_INET && b[0] == 127) ||
                (a->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)b)))
                return true;
        }
    }
    return false;
}

/* Removes svcd's own listeners from the servers c-ares read from
 * /etc/resolv.conf (a node whose resolv.conf names svcd). 0 or -1. */
static int fwd_channel_drop_self(struct fwd_channel *c, const struct svcd_hostport *listen,
                                 size_t n_listen)
{
    struct ares_addr_port_node *list = NULL, *removed = NULL, *node, **pp;
    int rc, dropped = 0;

    if (ares_get_servers_ports(c->ch, &list) != ARES_SUCCESS)
        return 0;
    for (pp = &list; *pp;) {
        if (fwd_is_self(listen, n_listen, *pp)) {
            node = *pp;          /* each node is its own c-ares allocation */
            *pp = node->next;
            node->next = removed;
            removed = node;
            dropped++;
        } else {
            pp = &(*pp)->next;
        }
    }
    rc = ARES_SUCCESS;
    if (dropped) {
        c->no_servers = list == NULL;
        if (!list)
            log_err(FWD_MOD, "/etc/resolv.conf names only svcd itself: no upstream, "
                    "forwarded names will get SERVFAIL (use --upstream)");
        else
            log_warn(FWD_MOD, "ignoring %d resolv.conf nameserver(s) that are svcd itself",
                     dropped);
        rc = ares_set_servers_ports(c->ch, list);
    }
    if (list)
        ares_free_data(list);     /* frees the whole chain */
    if (removed)
        ares_free_data(removed);
    return rc == ARES_SUCCESS ? 0 : -1;
}

/* Sets up channel c with servers (n == 0: /etc/resolv.conf). 0 or -1. */
static int fwd_channel_init(struct dns_forwarder *f, struct fwd_channel *c,
                            const struct svcd_hostport *servers, size_t n)
{
    struct ares_options o;
    struct ares_addr_port_node nodes[SVCD_MAX_UPSTREAM];
    int rc;

    c->f = f;
    c->timer = evtimer_new(f->base, fwd_on_timer, c);
    if (!c->timer)
        return -1;
    memset(&o, 0, sizeof(o));
    /* Raw queries only: no search list, no HOSTALIASES. SERVFAIL/REFUSED
     * move on to the next server; TC answers are retried over TCP. */
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = DNS_FORWARD_TRY_MS;
    o.tries = DNS_FORWARD_TRIES;
    o.sock_state_cb = fwd_sock_state;
    o.sock_state_cb_data = c;
    rc = ares_init_options(&c->ch, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                       ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        log_err(FWD_MOD, "%s: c-ares init: %s", c->label, ares_strerror(rc));
        return -1;
    }
    c->ch_ok = true;
    if (n == 0)
        return fwd_channel_drop_self(c, f->listen, f->n_listen);
    for (size_t i = 0; i < n && i < SVCD_MAX_UPSTREAM; i++) {
        memset(&nodes[i], 0, sizeof(nodes[i]));
        nodes[i].next = (i + 1 < n) ? &nodes[i + 1] : NULL;
        nodes[i].family = servers[i].ip.family;
        if (servers[i].ip.family == AF_INET)
            memcpy(&nodes[i].addr.addr4, &servers[i].ip.u.v4, 4);
        else
            memcpy(&nodes[i].addr.addr6, &servers[i].ip.u.v6, 16);
        nodes[i].udp_port = nodes[i].tcp_port = servers[i].port ? servers[i].port : 53;
    }
    rc = ares_set_servers_ports(c->ch, nodes);
    c->no_servers = false;
    if (rc != ARES_SUCCESS) {
        log_err(FWD_MOD, "%s: c-ares servers: %s", c->label, ares_strerror(rc));
        return -1;
    }
    return 0;
}

static void fwd_channel_destroy(struct fwd_channel *c)
{
    if (c->ch_ok) {
        /* Calls every pending callback with ARES_EDESTRUCTION and reports
         * every socket closed. */
        ares_destroy(c->ch);
        c->ch_ok = false;
    }
    for (size_t i = 0; i < c->n_socks; i++)
        event_free(c->socks[i].ev);
    free(c->socks);
    c->socks = NULL;
    c->n_socks = 0;
    if (c->timer)
        event_free(c->timer);
    c->timer = NULL;
}

/* The channel for a question: the longest stub domain containing the
 * name, else the default channel. */
static struct fwd_channel *fwd_channel_for(struct dns_forwarder *f,
                                           const struct dns_cache_key *key)
{
    struct fwd_channel *best = &f->chans[0];

    for (size_t i = 1; i < f->n_chans; i++) {
        struct fwd_channel *c = &f->chans[i];
        if (c->zone_len > best->zone_len &&
            dns_name_is_subdomain(key->name, key->name_len, c->zone, c->zone_len))
            best = c;
    }
    return best;
}

/* ---- pending table ------------------------------------------------------ */

static struct fwd_pending **fwd_pending_slot(struct dns_forwarder *f,
                                             const struct dns_cache_key *key)
{
    struct fwd_pending **pp = &f->pending[key->hash & (FWD_PENDING_BUCKETS - 1)];

    while (*pp && !dns_cache_key_equal(&(*pp)->key, key))
        pp = &(*pp)->hnext;
    return pp;
}

static void fwd_pending_unlink(struct fwd_pending *p)
{
    struct fwd_pending **pp = fwd_pending_slot(p->f, &p->key);

    if (*pp == p) {
        *pp = p->hnext;
        p->f->n_pending--;
    }
    p->hnext = NULL;
}

static int fwd_pending_add_waiter(struct fwd_pending *p, const uint8_t *query,
                                  size_t question_end, dns_forward_cb cb, void *ctx)
{
    struct fwd_waiter *w;

    if (p->n_waiters == DNS_FORWARD_MAX_WAITERS || question_end > FWD_QUERY_MAX)
        return -1;
    if (VEC_RESERVE(p->waiters, p->n_waiters, p->cap_waiters, 1) < 0)
        return -1;
    w = &p->waiters[p->n_waiters++];
    w->cb = cb;
    w->ctx = ctx;
    memcpy(w->q, query, question_end);
    memset(w->q + 6, 0, 6);   /* the copy ends after the question: AN/NS/AR 0 */
    w->qlen = (uint16_t)question_end;
    return 0;
}

/* Answers every waiter of p: with the adapted answer, or SERVFAIL
 * (answer NULL). Leaves p with no waiters. */
static void fwd_pending_answer(struct fwd_pending *p, const uint8_t *answer, size_t alen)
{
    struct dns_forwarder *f = p->f;
    struct fwd_waiter *w = p->waiters;
    size_t n = p->n_waiters;

    /* Detach first: a callback may start new queries. */
    p->waiters = NULL;
    p->n_waiters = p->cap_waiters = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        if (answer)
            len = dns_cache_adapt_answer(w[i].q, w[i].qlen, answer, alen, f->reply_buf,
                                         sizeof(f->reply_buf));
        w[i].cb(w[i].ctx, len ? f->reply_buf : NULL, len);
    }
    free(w);
}

static void fwd_pending_free(struct fwd_pending *p)
{
    if (p->deadline)
        event_free(p->deadline);
    free(p->waiters);
    free(p);
}

static void fwd_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct fwd_pending *p = arg;

    if (p->done)
        return;
    p->done = true;
    fwd_pending_unlink(p);
    p->f->st.upstream_failures++;
    metric_add(p->f->m.failures, 1);
    log_debug(FWD_MOD, "upstream query id %u: deadline, answering SERVFAIL", p->upstream_id);
    fwd_pending_answer(p, NULL, 0);
}

static void fwd_update_cache_metrics(struct dns_forwarder *f)
{
    struct dns_cache_stats cs;

    dns_cache_get_stats(f->cache, &cs);
    metric_set(f->m.entries, cs.entries);
    if (cs.evictions > f->evictions_seen) {
        metric_add(f->m.evictions, (double)(cs.evictions - f->evictions_seen));
        f->evictions_seen = cs.evictions;
    }
}

/* c-ares is done with a query: an answer (status ARES_SUCCESS) or not. */
static void fwd_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct fwd_pending *p = arg;
    struct dns_forwarder *f = p->f;
    struct timespec now;
    double secs;

    f->id_used[p->upstream_id >> 3] &= (uint8_t)~(1u << (p->upstream_id & 7));
    f->n_inflight--;
    if (status == ARES_EDESTRUCTION) {     /* forwarder being freed */
        fwd_pending_unlink(p);
        fwd_pending_free(p);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    secs = (double)(now.tv_sec - p->started.tv_sec) +
           (double)(now.tv_nsec - p->started.tv_nsec) / 1e9;
    metric_observe(f->m.latency, secs);
    if (p->done) {                         /* already answered SERVFAIL */
        fwd_pending_free(p);
        return;
    }
    p->done = true;
    fwd_pending_unlink(p);
    if (status != ARES_SUCCESS || !abuf || alen < DNS_HEADER_LEN) {
        f->st.upstream_failures++;
        metric_add(f->m.failures, 1);
        log_debug(FWD_MOD, "upstream query id %u failed: %s", p->upstream_id,
                  ares_strerror(status));
        fwd_pending_answer(p, NULL, 0);
    } else {
        if (dns_cache_store(f->cache, &p->key, abuf, (size_t)alen, fwd_now_ms()) != 0)
            fwd_update_cache_metrics(f);
        fwd_pending_answer(p, abuf, (size_t)alen);
    }
    fwd_pending_free(p);
}

/* A random upstream ID not in flight. */
static uint16_t fwd_pick_id(struct dns_forwarder *f)
{
    uint16_t id = (uint16_t)arc4random();

    for (int tries = 0; tries < 65536; tries++, id++)
        if (!(f->id_used[id >> 3] & (1u << (id & 7))))
            break;
    f->id_used[id >> 3] |= (uint8_t)(1u << (id & 7));
    return id;
}

/* ---- public API --------------------------------------------------------- */

int dns_forwarder_query(struct dns_forwarder *f, const uint8_t *query, size_t len,
                        dns_forward_cb cb, void *ctx)
{
    struct dns_cache_key key;
    struct dns_query q;
    struct fwd_pending **slot, *p;
    struct fwd_channel *chan;
    size_t n;
    struct timeval tv = { DNS_FORWARD_DEADLINE_MS / 1000, (DNS_FORWARD_DEADLINE_MS % 1000) * 1000 };

    if (!f || !cb || len > sizeof(f->send_buf) || dns_query_parse(query, len, &q) != 0 ||
        !q.has_question)
        return -1;
    dns_cache_key_from_parsed(&q, &key);

    n = dns_cache_lookup(f->cache, &key, query, len, fwd_now_ms(), f->hit_buf,
                         sizeof(f->hit_buf));
    if (n > 0) {
        f->st.cache_hits++;
        metric_add(f->m.hits, 1);
        cb(ctx, f->hit_buf, n);
        return 0;
    }
    f->st.cache_misses++;
    metric_add(f->m.misses, 1);

    slot = fwd_pending_slot(f, &key);
    if (*slot) {
        if (fwd_pending_add_waiter(*slot, query, q.question_end, cb, ctx) < 0)
            return -1;
        f->st.coalesced++;
        metric_add(f->m.coalesced, 1);
        return 0;
    }
    chan = fwd_channel_for(f, &key);
    if (chan->no_servers) {
        /* c-ares 1.18 leaks the query copy when sent with no servers. */
        f->st.upstream_failures++;
        metric_add(f->m.failures, 1);
        return -1;
    }
    if (f->n_pending >= DNS_FORWARD_MAX_PENDING || f->n_inflight >= 65536 / 2)
        return -1;

    p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->f = f;
    p->key = key;
    p->deadline = evtimer_new(f->base, fwd_on_deadline, p);
    if (!p->deadline || fwd_pending_add_waiter(p, query, q.question_end, cb, ctx) < 0 ||
        evtimer_add(p->deadline, &tv) < 0) {
        fwd_pending_free(p);
        return -1;
    }
    p->upstream_id = fwd_pick_id(f);
    clock_gettime(CLOCK_MONOTONIC, &p->started);
    *slot = p;
    f->n_pending++;
    f->n_inflight++;
    f->st.upstream_queries++;
    metric_add(f->m.queries, 1);

    /* The client's query as sent (EDNS and all), under our ID, with RD set:
     * the answer is shared by every client (RD is not in the cache key),
     * and each waiter gets its own RD bit back. */
    memcpy(f->send_buf, query, len);
    f->send_buf[0] = (uint8_t)(p->upstream_id >> 8);
    f->send_buf[1] = (uint8_t)p->upstream_id;
    f->send_buf[2] |= (uint8_t)(DNS_F_RD >> 8);
    /* May call fwd_on_answer (and so cb) before returning; p is c-ares's
     * from here on. */
    ares_send(chan->ch, f->send_buf, (int)len, fwd_on_answer, p);
    fwd_channel_arm_timer(chan);
    return 0;
}

size_t dns_forwarder_cached(struct dns_forwarder *f, const uint8_t *query, size_t len,
                            uint8_t *out, size_t outcap)
{
    struct dns_query q;
    struct dns_cache_key key;
    size_t n;

    if (!f || dns_query_parse(query, len, &q) != 0 || !q.has_question)
        return 0;
    dns_cache_key_from_parsed(&q, &key);
    n = dns_cache_lookup(f->cache, &key, query, len, fwd_now_ms(), out, outcap);
    if (n > 0) {
        f->st.cache_hits++;
        metric_add(f->m.hits, 1);
    }
    return n;
}

bool dns_forwarder_allowed(const struct dns_forwarder *f, const struct svcd_ip *client)
{
    if (!f || !client)
        return false;
    for (size_t i = 0; i < f->n_acl; i++)
        if (svcd_cidr_contains(&f->acl[i], client))
            return true;
    /* ::ffff:127.0.0.0/104 (v4-mapped loopback) */
    if (client->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&client->u.v6) &&
        client->u.bytes[12] == 127)
        return true;
    return false;
}

static void fwd_acl_add(struct dns_forwarder *f, const struct svcd_cidr *c, size_t n)
{
    for (size_t i = 0; i < n && f->n_acl < sizeof(f->acl) / sizeof(f->acl[0]); i++)
        f->acl[f->n_acl++] = c[i];
}

struct dns_forwarder *dns_forwarder_new(struct event_base *base, const struct svcd_config *cfg)
{
    struct dns_forwarder *f = calloc(1, sizeof(*f));
    struct svcd_cidr lo;

    if (!f)
        return NULL;
    f->base = base;
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        log_err(FWD_MOD, "c-ares library init failed");
        goto fail;
    }
    f->ares_lib = true;
    f->cache = dns_cache_new(cfg->dns_cache_size, cfg->dns_cache_min_ttl,
                             cfg->dns_cache_max_ttl);
    if (!f->cache)
        goto fail;

    /* ACL: loopback, service and pod ranges, dns_allow. */
    if (svcd_cidr_parse("127.0.0.0/8", &lo) == 0)
        fwd_acl_add(f, &lo, 1);
    if (svcd_cidr_parse("::1/128", &lo) == 0)
        fwd_acl_add(f, &lo, 1);
    fwd_acl_add(f, cfg->service_cidr, cfg->n_service_cidr);
    fwd_acl_add(f, cfg->pod_cidr, cfg->n_pod_cidr);
    fwd_acl_add(f, cfg->dns_allow, cfg->n_dns_allow);

    f->n_listen = cfg->n_dns_listen < SVCD_MAX_LISTEN ? cfg->n_dns_listen : SVCD_MAX_LISTEN;
    memcpy(f->listen, cfg->dns_listen, f->n_listen * sizeof(f->listen[0]));
    f->chans = calloc(1 + cfg->n_stub, sizeof(*f->chans));
    if (!f->chans)
        goto fail;
    f->n_chans = 1 + cfg->n_stub;
    snprintf(f->chans[0].label, sizeof(f->chans[0].label), "default upstream");
    if (fwd_channel_init(f, &f->chans[0], cfg->upstream, cfg->n_upstream) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->n_stub; i++) {
        struct fwd_channel *c = &f->chans[1 + i];
        snprintf(c->label, sizeof(c->label), "stub %.256s", cfg->stub[i].domain);
        if (dns_name_from_text(cfg->stub[i].domain, c->zone, &c->zone_len) < 0) {
            log_err(FWD_MOD, "stub domain %s: not a domain name", cfg->stub[i].domain);
            goto fail;
        }
        dns_name_lower(c->zone, c->zone, c->zone_len);
        if (cfg->stub[i].n_servers == 0) {
            log_err(FWD_MOD, "stub domain %s: no servers", cfg->stub[i].domain);
            goto fail;
        }
        if (fwd_channel_init(f, c, cfg->stub[i].servers, cfg->stub[i].n_servers) < 0)
            goto fail;
    }

    f->m.hits = metric_counter("svcd_dns_cache_hits_total", NULL,
                               "Forwarded questions answered from the cache.");
    f->m.misses = metric_counter("svcd_dns_cache_misses_total", NULL,
                                 "Forwarded questions not in the cache.");
    f->m.entries = metric_gauge("svcd_dns_cache_entries", NULL, "Answers in the cache.");
    f->m.evictions = metric_counter("svcd_dns_cache_evictions_total", NULL,
                                    "Cache entries evicted to make room.");
    f->m.queries = metric_counter("svcd_dns_upstream_queries_total", NULL,
                                  "Queries sent upstream (after coalescing).");
    f->m.failures = metric_counter("svcd_dns_upstream_failures_total", NULL,
                                   "Upstream queries that ended without an answer.");
    f->m.coalesced = metric_counter("svcd_dns_upstream_coalesced_total", NULL,
                                    "Questions that joined an identical one in flight.");
    f->m.latency = metric_histogram("svcd_dns_upstream_duration_seconds", NULL,
                                    "Time from sending a question upstream to its answer.");
    {
        struct ares_addr_port_node *list = NULL;
        if (ares_get_servers_ports(f->chans[0].ch, &list) == ARES_SUCCESS) {
            char buf[512] = "";
            size_t used = 0;
            for (struct ares_addr_port_node *nd = list; nd && used < sizeof(buf) - 64;
                 nd = nd->next) {
                char a[INET6_ADDRSTRLEN];
                inet_ntop(nd->family, &nd->addr, a, sizeof(a));
                used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s:%d",
                                         used ? "," : "", a, nd->udp_port ? nd->udp_port : 53);
            }
            log_info(FWD_MOD, "upstream %s (%s), %zu stub domain(s), cache %u entries",
                     buf, cfg->n_upstream ? "configured" : "/etc/resolv.conf", cfg->n_stub,
                     cfg->dns_cache_size);
            ares_free_data(list);
        }
    }
    return f;

fail:
    dns_forwarder_free(f);
    return NULL;
}

void dns_forwarder_free(struct dns_forwarder *f)
{
    if (!f)
        return;
    for (size_t i = 0; f->chans && i < f->n_chans; i++)
        fwd_channel_destroy(&f->chans[i]);
    free(f->chans);
    dns_cache_free(f->cache);
    if (f->ares_lib)
        ares_library_cleanup();
    free(f);
}

void dns_forwarder_get_stats(const struct dns_forwarder *f, struct dns_forward_stats *out)
{
    *out = f->st;
    out->pending = f->n_pending;
}

void dns_forwarder_flush(struct dns_forwarder *f)
{
    dns_cache_clear(f->cache);
    fwd_update_cache_metrics(f);
}
