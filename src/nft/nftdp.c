/*
 * nftdp: the Service VIP data plane (see nft.h and docs/NFTABLES.md).
 *
 * Data flow: store commit -> pending Service keys -> (timer) sync:
 *   1. plan: for each pending Service, compute its frontends (ClusterIP,
 *      external and LB addresses, NodePorts; per family, protocol, port)
 *      with their backends in slot order, keeping every surviving backend
 *      in the slot it had (slots stay dense: a freed slot takes a new
 *      backend or the last one);
 *   2. diff: turn (programmed, planned) into element deletions and
 *      additions per set, plus lb chains / hairpin / ClusterIP set entries
 *      that appear or disappear (reference counted);
 *   3. send everything as ONE batch (nft_batch); only when the kernel
 *      commits it does the planned state replace the programmed one.
 * The programmed state therefore always equals what the kernel has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>

#include "svcd/config.h"
#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/nft.h"
#include "svcd/nft_addrcount.h"
#include "svcd/nft_affinity.h"
#include "svcd/nft_batch.h"
#include "svcd/nft_conntrack.h"
#include "svcd/nft_watch.h"
#include "svcd/nft_msg.h"
#include "svcd/store.h"
#include "svcd/vec.h"

#define MOD "nft"

/* ---- state ------------------------------------------------------------------ */

struct be {
    uint8_t addr[16];
    uint16_t port;          /* host order */
};

enum { FE_ADDR = 0, FE_NODEPORT = 1 };

/* Binary key of a frontend; zero-filled so it can be hashed as bytes. */
struct fe_key {
    uint8_t fam;            /* 4 or 6 */
    uint8_t kind;           /* FE_ADDR / FE_NODEPORT */
    uint8_t proto;          /* IPPROTO_* */
    uint8_t view;           /* 0; 1 = the all-endpoints view of an externalTrafficPolicy
                               Local frontend (pods and the node short-circuit to it) */
    uint16_t port;          /* host order */
    uint16_t pad2;
    uint8_t addr[16];       /* FE_ADDR only */
};

struct fe {
    struct fe_key k;
    struct be *be;          /* slot order */
    uint32_t n;
    uint32_t timeout;       /* ClientIP affinity seconds, 0 = none */
    bool empty_drop;        /* when n == 0: drop (policy Local) instead of reject */
    bool cluster;           /* a ClusterIP frontend (ports set) */
    uint8_t masq;           /* enum nft_masq */
    bool elocal;            /* externalTrafficPolicy Local (view 0 of an external frontend) */
};

/* A Service's programmed (or planned) state. Packed: one allocation holds
 * the struct, its frontends, every frontend's backends and the key
 * (svcst_pack()), so free() of the struct frees it all. */
struct svcst {
    char *key;              /* "ns/name" */
    struct fe *fes;
    size_t n;
    struct svcd_ip cips[2]; /* ClusterIPs (cips sets) */
    size_t n_cips;
};

/* A pending element change. */
struct rec {
    struct nft_elem e;
    uint32_t owner;         /* index into the sync's staged array */
};

struct recvec {
    struct rec *v;
    size_t n, cap;
};

struct staged {
    char *key;
    struct svcst *old;      /* programmed (NULL when new) */
    struct svcst *nw;       /* planned (NULL when gone) */
};

/* A UDP backend that left a frontend (for conntrack cleanup). */
struct gone_udp {
    uint8_t fam;
    uint8_t addr[16];
    uint16_t port;
};

struct nftdp {
    struct event_base *base;
    struct store *st;
    struct svcd_config cfg;
    struct mnl_socket *nl;
    struct event *timer;
    /* programmed */
    struct hmap *svcs;      /* "ns/name" -> struct svcst */
    struct hmap *owner;     /* fe_key -> struct svcst */
    struct hmap *rc_chain;  /* struct nft_lbchain -> count */
    struct nft_addrcount rc_hairpin;  /* backend address -> frontends using it */
    struct nft_addrcount rc_cips;     /* ClusterIP -> Services using it */
    struct hmap *aff_objs;  /* affinity sets / slot chains created ("s4:3", "c4:3:60") */
    struct svcd_cidr npa[SVCD_MAX_CIDR * 2];  /* resolved --nodeport-addresses */
    size_t n_npa;
    size_t n_backends, n_frontends;
    /* sync control */
    struct hmap *pending;   /* "ns/name" -> (void *)1 */
    bool subscribed;        /* to the store (unsubscribed when freed) */
    bool need_full;
    bool initial_done;
    bool saw_commit;
    int fail_row;
    uint64_t generation;
    char last_error[512];
    bool has_error;
    struct nftdp_stats stats;
    /* metrics */
    struct metric *m_last_ok;
    struct metric *m_syncs, *m_fail, *m_dur, *m_svcs, *m_eps, *m_ct;
    struct nft_ct_cleaner *ct;  /* or NULL: no ctnetlink */
    struct nft_watch *watch;    /* drift: our table changed by others */
    struct metric *m_drift;
};

/* ---- small helpers ---------------------------------------------------------- */

static double nftdp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Frees a packed state (one block). Accepts NULL. */
static void svcst_free(struct svcst *s)
{
    free(s);
}

/* Frees a state under construction (separate arrays). Accepts NULL. */
static void svcst_free_loose(struct svcst *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->fes[i].be);
    free(s->fes);
    free(s->key);
    free(s);
}

/* Copies a state under construction into one block: struct, frontends,
 * backends, key. NULL on ENOMEM. */
static struct svcst *svcst_pack(const struct svcst *l)
{
    size_t nbe = 0;
    for (size_t i = 0; i < l->n; i++)
        nbe += l->fes[i].n;
    size_t klen = strlen(l->key) + 1;
    struct svcst *s = malloc(sizeof(*s) + l->n * sizeof(struct fe) + nbe * sizeof(struct be) +
                             klen);
    if (!s)
        return NULL;
    *s = *l;
    s->fes = (struct fe *)(s + 1);
    struct be *bp = (struct be *)(s->fes + l->n);
    for (size_t i = 0; i < l->n; i++) {
        s->fes[i] = l->fes[i];
        s->fes[i].be = l->fes[i].n ? bp : NULL;
        if (l->fes[i].n)
            memcpy(bp, l->fes[i].be, l->fes[i].n * sizeof(*bp));
        bp += l->fes[i].n;
    }
    s->key = (char *)bp;
    memcpy(s->key, l->key, klen);
    return s;
}

static int recvec_push(struct recvec *rv, const struct nft_elem *e, uint32_t owner)
{
    if (VEC_RESERVE(rv->v, rv->n, rv->cap, 64) < 0)
        return -1;
    rv->v[rv->n].e = *e;
    rv->v[rv->n].owner = owner;
    rv->n++;
    return 0;
}

static uintptr_t rc_get(const struct hmap *m, const void *k, size_t kl)
{
    return (uintptr_t)hmap_get_bin(m, k, kl);
}

/* Adds delta to a counter map entry (entries at 0 are removed). */
static int rc_add(struct hmap *m, const void *k, size_t kl, intptr_t delta)
{
    intptr_t v = (intptr_t)(uintptr_t)hmap_get_bin(m, k, kl) + delta;
    if (v == 0) {
        hmap_del_bin(m, k, kl);
        return 0;
    }
    return hmap_set_bin(m, k, kl, (void *)(uintptr_t)v);
}

static size_t ipbytes(uint8_t fam)
{
    return fam == 6 ? 16 : 4;
}

/* Key/data encoding: one 4-byte register per component, IPv6 takes 16
 * bytes; protocol as one byte, ports big-endian, slot host-endian (numgen). */
static size_t enc_ip(uint8_t *p, uint8_t fam, const uint8_t *addr)
{
    memcpy(p, addr, ipbytes(fam));
    return ipbytes(fam);
}
static size_t enc_proto(uint8_t *p, uint8_t proto)
{
    memset(p, 0, 4);
    p[0] = proto;
    return 4;
}
static size_t enc_port(uint8_t *p, uint16_t port)
{
    memset(p, 0, 4);
    uint16_t n = htons(port);
    memcpy(p, &n, 2);
    return 4;
}
static size_t enc_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
    return 4;
}

static void fe_lbchain(const struct fe *f, struct nft_lbchain *c)
{
    memset(c, 0, sizeof(*c));
    if (f->k.kind == FE_ADDR)
        c->kind = f->k.fam == 6 ? NFT_LB_VIP6 : NFT_LB_VIP4;
    else
        c->kind = f->k.fam == 6 ? NFT_LB_NP6 : NFT_LB_NP4;
    c->n = f->n;
    c->timeout = f->timeout;
    c->masq = f->masq;
    c->elocal = f->elocal;
    c->sc = f->k.view;
}

/* Does the frontend dispatch to a chain (fe/fen/fesc/fensc element)? With
 * endpoints, yes; an externalTrafficPolicy Local frontend without local
 * endpoints (but with others) also does, for the pod / node short-circuit. */
static bool fe_has_chain(const struct fe *f)
{
    return f->n > 0 || (f->elocal && f->empty_drop);
}

/* ---- element generation ------------------------------------------------------ */

/* Element lists per set for one frontend (adds or deletes). */
struct elemsink {
    struct recvec *per_set;  /* [NFT_SET__COUNT] */
    uint32_t owner;
    bool add;
};


static int sink(struct elemsink *s, enum nft_set_id set, const struct nft_elem *e)
{
    return recvec_push(&s->per_set[set], e, s->owner);
}

/* The frontend's "head" elements: its dispatch entry (fe4/fen4/fesc4/fensc4
 * -> group id of its lb chain) and/or its no-endpoint reject/drop entry. */
static int fe_head(const struct fe *f, struct elemsink *s)
{
    struct nft_elem e;
    memset(&e, 0, sizeof(e));
    size_t o = 0;
    bool v6 = f->k.fam == 6;
    bool addr = f->k.kind == FE_ADDR;
    if (addr)
        o += enc_ip(e.key + o, f->k.fam, f->k.addr);
    o += enc_proto(e.key + o, f->k.proto);
    o += enc_port(e.key + o, f->k.port);
    if (fe_has_chain(f)) {
        enum nft_set_id set;
        if (f->k.view)
            set = addr ? (v6 ? NFT_SET_FESC6 : NFT_SET_FESC4) : (v6 ? NFT_SET_FENSC6 : NFT_SET_FENSC4);
        else
            set = addr ? (v6 ? NFT_SET_FE6 : NFT_SET_FE4) : (v6 ? NFT_SET_FEN6 : NFT_SET_FEN4);
        struct nft_elem d = e;
        if (s->add) {
            struct nft_lbchain c;
            fe_lbchain(f, &c);
            nft_msg_lbchain_name(&c, d.chain, sizeof(d.chain));
        }
        if (sink(s, set, &d) < 0)
            return -1;
    }
    if (f->n > 0)
        return 0;
    /* no (local) endpoint: noep4 { 10.96.0.30 . tcp . 443 : goto do_reject }, or : drop
     * for policy Local with endpoints elsewhere */
    enum nft_set_id set = addr ? (v6 ? NFT_SET_NOEP6 : NFT_SET_NOEP4)
                               : (v6 ? NFT_SET_NPNOEP6 : NFT_SET_NPNOEP4);
    if (s->add && !f->empty_drop)
        snprintf(e.chain, sizeof(e.chain), "do_reject");
    return sink(s, set, &e);
}

static int fe_ports(const struct fe *f, struct elemsink *s)
{
    struct nft_elem e;
    memset(&e, 0, sizeof(e));
    size_t o = enc_ip(e.key, f->k.fam, f->k.addr);
    o += enc_proto(e.key + o, f->k.proto);
    enc_port(e.key + o, f->k.port);
    return sink(s, f->k.fam == 6 ? NFT_SET_PORTS6 : NFT_SET_PORTS4, &e);
}

static int fe_slot(const struct fe *f, uint32_t slot, const struct be *b, struct elemsink *s)
{
    struct nft_elem e;
    memset(&e, 0, sizeof(e));
    size_t o = 0;
    bool v6 = f->k.fam == 6;
    if (f->k.kind == FE_ADDR)
        o += enc_ip(e.key + o, f->k.fam, f->k.addr);
    o += enc_proto(e.key + o, f->k.proto);
    o += enc_port(e.key + o, f->k.port);
    enc_u32(e.key + o, slot + (f->k.view ? NFT_SC_SLOT_BASE : 0));
    o = enc_ip(e.data, f->k.fam, b->addr);
    enc_port(e.data + o, b->port);
    enum nft_set_id set = f->k.kind == FE_ADDR ? (v6 ? NFT_SET_BE6 : NFT_SET_BE4)
                                               : (v6 ? NFT_SET_BNP6 : NFT_SET_BNP4);
    return sink(s, set, &e);
}

/* Every element of a frontend. */
static int fe_all(const struct fe *f, struct elemsink *s)
{
    if (fe_head(f, s) < 0)
        return -1;
    if (f->cluster && fe_ports(f, s) < 0)
        return -1;
    for (uint32_t i = 0; i < f->n; i++) {
        if (fe_slot(f, i, &f->be[i], s) < 0)
            return -1;
    }
    return 0;
}

static bool be_eq(const struct be *a, const struct be *b)
{
    return a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

static bool be_in(const struct be *b, const struct be *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (be_eq(b, &v[i]))
            return true;
    return false;
}

/* The difference between two versions of the same frontend. */
static int fe_diff(const struct fe *o, const struct fe *n, struct elemsink *del,
                   struct elemsink *add)
{
    bool head_same = o->n == n->n && o->empty_drop == n->empty_drop &&
                     o->timeout == n->timeout && o->masq == n->masq && o->elocal == n->elocal;
    if (!head_same) {
        if (fe_head(o, del) < 0 || fe_head(n, add) < 0)
            return -1;
    }
    if (o->cluster != n->cluster) {
        if (o->cluster && fe_ports(o, del) < 0)
            return -1;
        if (n->cluster && fe_ports(n, add) < 0)
            return -1;
    }
    uint32_t common = o->n < n->n ? o->n : n->n;
    for (uint32_t i = 0; i < common; i++) {
        if (!be_eq(&o->be[i], &n->be[i])) {
            if (fe_slot(o, i, &o->be[i], del) < 0 || fe_slot(n, i, &n->be[i], add) < 0)
                return -1;
        }
    }
    for (uint32_t i = common; i < o->n; i++)
        if (fe_slot(o, i, &o->be[i], del) < 0)
            return -1;
    for (uint32_t i = common; i < n->n; i++)
        if (fe_slot(n, i, &n->be[i], add) < 0)
            return -1;
    return 0;
}

/* ---- planning: Service -> frontends ---------------------------------------- */

static const struct fe *svcst_find(const struct svcst *s, const struct fe_key *k)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(&s->fes[i].k, k, sizeof(*k)) == 0)
            return &s->fes[i];
    return NULL;
}

/* Places want[] into slots, keeping survivors of old in place. out has
 * room for nw entries. */
static void slots_assign(const struct fe *old, const struct be *want, uint32_t nw, struct be *out)
{
    if (!old || old->n == 0) {
        memcpy(out, want, nw * sizeof(*want));
        return;
    }
    uint32_t on = old->n;
    struct be *tmp = calloc(on > nw ? on : nw, sizeof(*tmp));
    bool *used = calloc(on > nw ? on : nw, sizeof(*used));
    bool *placed = calloc(nw ? nw : 1, sizeof(*placed));
    if (!tmp || !used || !placed) {
        memcpy(out, want, nw * sizeof(*want));
        goto out;
    }
    /* survivors stay in their slot */
    for (uint32_t i = 0; i < on; i++) {
        for (uint32_t j = 0; j < nw; j++) {
            if (!placed[j] && be_eq(&old->be[i], &want[j])) {
                tmp[i] = want[j];
                used[i] = true;
                placed[j] = true;
                break;
            }
        }
    }
    /* newcomers fill holes, then go at the end */
    uint32_t len = on;
    uint32_t hole = 0;
    for (uint32_t j = 0; j < nw; j++) {
        if (placed[j])
            continue;
        while (hole < on && used[hole])
            hole++;
        if (hole < on) {
            tmp[hole] = want[j];
            used[hole] = true;
        } else {
            tmp[len] = want[j];
            used[len] = true;
            len++;
        }
    }
    /* remaining holes: move the last slots in */
    uint32_t w = 0;
    uint32_t last = len;
    for (w = 0; w < last; w++) {
        if (used[w])
            continue;
        while (last > w + 1 && !used[last - 1])
            last--;
        if (last <= w + 1)
            break;
        tmp[w] = tmp[last - 1];
        used[w] = true;
        used[last - 1] = false;
        last--;
    }
    memcpy(out, tmp, nw * sizeof(*out));
out:
    free(tmp);
    free(used);
    free(placed);
}

static bool ep_usable(const struct svcd_endpoint *ep, size_t port_idx, int af)
{
    if (ep->target_ports[port_idx] == 0)
        return false;
    for (size_t i = 0; i < ep->n_ips; i++)
        if (ep->ips[i].family == af)
            return true;
    return false;
}

static const struct svcd_ip *ep_ip(const struct svcd_endpoint *ep, int af)
{
    for (size_t i = 0; i < ep->n_ips; i++)
        if (ep->ips[i].family == af)
            return &ep->ips[i];
    return NULL;
}

/* Picks the backends of one (port, family, policy): ready endpoints, or
 * when none is ready the serving+terminating ones (as kube-proxy). With
 * policy Local, only endpoints on this node. Returns the count; *any set
 * when some endpoint exists regardless of locality. */
static uint32_t pick_backends(const struct nftdp *dp, const struct svcd_endpoint *eps, size_t neps,
                              size_t port_idx, int af, bool local, struct be *out, bool *any)
{
    uint32_t n = 0;
    *any = false;
    for (int pass = 0; pass < 2 && n == 0; pass++) {
        for (size_t i = 0; i < neps; i++) {
            const struct svcd_endpoint *ep = &eps[i];
            if (!ep_usable(ep, port_idx, af))
                continue;
            bool ok = pass == 0 ? (ep->ready && !ep->terminating)
                                : (ep->serving && ep->terminating);
            if (!ok)
                continue;
            *any = true;
            if (local && (!ep->node_name || strcmp(ep->node_name, dp->cfg.node_name) != 0))
                continue;
            const struct svcd_ip *ip = ep_ip(ep, af);
            memset(&out[n], 0, sizeof(out[n]));
            memcpy(out[n].addr, ip->u.bytes, af == AF_INET6 ? 16 : 4);
            out[n].port = ep->target_ports[port_idx];
            n++;
        }
    }
    return n;
}

/* Adds one frontend to s (takes a copy of the backends in slot order). */
static int plan_add_fe(struct svcst *s, size_t *cap, const struct fe_key *k, const struct be *want,
                       uint32_t nw, const struct svcst *old, uint32_t timeout, bool empty_drop,
                       bool cluster, uint8_t masq, bool elocal)
{
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(&s->fes[i].k, k, sizeof(*k)) == 0)
            return 0;  /* duplicate (e.g. externalIP == ClusterIP): first wins */
    if (VEC_RESERVE(s->fes, s->n, *cap, 4) < 0)
        return -1;
    struct fe *f = &s->fes[s->n];
    memset(f, 0, sizeof(*f));
    f->k = *k;
    f->n = nw;
    f->timeout = nw ? timeout : 0;
    f->empty_drop = empty_drop;
    f->cluster = cluster;
    f->masq = masq;
    f->elocal = elocal;
    if (nw) {
        f->be = malloc(nw * sizeof(*f->be));
        if (!f->be)
            return -1;
        slots_assign(svcst_find(old, k), want, nw, f->be);
    }
    s->n++;
    return 0;
}

/* The planned state of one Service, or NULL when it has no frontends
 * (deleted, headless, ExternalName). *err set on ENOMEM. */
static struct svcst *plan_service(const struct nftdp *dp, const char *key, const struct svcst *old,
                                  int *err)
{
    *err = 0;
    char ns[256];
    const char *slash = strchr(key, '/');
    if (!slash || (size_t)(slash - key) >= sizeof(ns))
        return NULL;
    memcpy(ns, key, (size_t)(slash - key));
    ns[slash - key] = '\0';
    const char *name = slash + 1;
    const struct svcd_service *svc = store_service_get(dp->st, ns, name);
    if (!svc || svc->type == SVCD_SVC_EXTERNAL_NAME || svc->headless || svc->n_cluster_ips == 0)
        return NULL;
    size_t neps = 0;
    const struct svcd_endpoint *eps = store_endpoints_get(dp->st, ns, name, &neps);
    struct svcst *s = calloc(1, sizeof(*s));
    struct be *want = calloc(neps ? neps : 1, sizeof(*want));
    struct be *want_all = calloc(neps ? neps : 1, sizeof(*want_all));
    size_t cap = 0;
    if (!s || !want || !want_all || !(s->key = strdup(key)))
        goto fail;
    for (size_t i = 0; i < svc->n_cluster_ips && i < 2; i++)
        s->cips[s->n_cips++] = svc->cluster_ips[i];
    uint32_t timeout = svc->affinity_client_ip ? (svc->affinity_timeout ? svc->affinity_timeout
                                                                        : 10800) : 0;
    bool ext_type = svc->type == SVCD_SVC_NODE_PORT || svc->type == SVCD_SVC_LOAD_BALANCER;
    for (size_t pi = 0; pi < svc->n_ports; pi++) {
        const struct svcd_service_port *sp = &svc->ports[pi];
        uint8_t proto = (uint8_t)svcd_proto_ipproto(sp->protocol);
        for (int fam = 4; fam <= 6; fam += 2) {
            int af = fam == 6 ? AF_INET6 : AF_INET;
            bool has_family = false;
            for (size_t c = 0; c < svc->n_cluster_ips; c++)
                if (svc->cluster_ips[c].family == af)
                    has_family = true;
            if (!has_family)
                continue;
            bool any;
            struct fe_key k;
            /* ClusterIPs: internalTrafficPolicy */
            bool ilocal = svc->internal_policy == SVCD_POLICY_LOCAL;
            uint32_t nw = pick_backends(dp, eps, neps, pi, af, ilocal, want, &any);
            /* traffic to a ClusterIP from outside the pod network is
             * masqueraded (kube-proxy), all of it with --masquerade-all */
            uint8_t cmasq = dp->cfg.masquerade_all ? NFT_MASQ_ALL
                          : dp->cfg.n_pod_cidr ? NFT_MASQ_NONPOD : NFT_MASQ_NONE;
            for (size_t c = 0; c < svc->n_cluster_ips; c++) {
                if (svc->cluster_ips[c].family != af)
                    continue;
                memset(&k, 0, sizeof(k));
                k.fam = (uint8_t)fam;
                k.kind = FE_ADDR;
                k.proto = proto;
                k.port = sp->port;
                memcpy(k.addr, svc->cluster_ips[c].u.bytes, ipbytes(k.fam));
                if (plan_add_fe(s, &cap, &k, want, nw, old, timeout, ilocal && any, true, cmasq,
                                false) < 0)
                    goto fail;
            }
            /* external addresses and NodePorts: externalTrafficPolicy.
             * Cluster: masqueraded, every endpoint. Local: only local
             * endpoints, client address kept; pods and the node itself
             * short-circuit to the all-endpoints view (view 1). */
            bool elocal = svc->external_policy == SVCD_POLICY_LOCAL;
            uint8_t emasq = elocal ? NFT_MASQ_NONE : NFT_MASQ_ALL;
            uint32_t nall = 0;
            if (elocal) {
                nall = pick_backends(dp, eps, neps, pi, af, false, want_all, &any);
            }
            nw = pick_backends(dp, eps, neps, pi, af, elocal, want, &any);
            for (int list = 0; list < 2; list++) {
                const struct svcd_ip *ips = list ? svc->lb_ingress_ips : svc->external_ips;
                size_t nips = list ? svc->n_lb_ingress_ips : svc->n_external_ips;
                if (list && svc->type != SVCD_SVC_LOAD_BALANCER)
                    nips = 0;
                for (size_t e = 0; e < nips; e++) {
                    if (ips[e].family != af)
                        continue;
                    memset(&k, 0, sizeof(k));
                    k.fam = (uint8_t)fam;
                    k.kind = FE_ADDR;
                    k.proto = proto;
                    k.port = sp->port;
                    memcpy(k.addr, ips[e].u.bytes, ipbytes(k.fam));
                    if (plan_add_fe(s, &cap, &k, want, nw, old, timeout, elocal && any, false,
                                    emasq, elocal) < 0)
                        goto fail;
                    k.view = 1;
                    if (nall && plan_add_fe(s, &cap, &k, want_all, nall, old, 0, false, false,
                                            NFT_MASQ_NONE, false) < 0)
                        goto fail;
                }
            }
            if (ext_type && sp->node_port) {
                memset(&k, 0, sizeof(k));
                k.fam = (uint8_t)fam;
                k.kind = FE_NODEPORT;
                k.proto = proto;
                k.port = sp->node_port;
                if (plan_add_fe(s, &cap, &k, want, nw, old, timeout, elocal && any, false, emasq,
                                elocal) < 0)
                    goto fail;
                k.view = 1;
                if (nall && plan_add_fe(s, &cap, &k, want_all, nall, old, 0, false, false,
                                        NFT_MASQ_NONE, false) < 0)
                    goto fail;
            }
        }
    }
    free(want);
    free(want_all);
    if (s->n == 0 && s->n_cips == 0) {
        svcst_free_loose(s);
        return NULL;
    }
    struct svcst *packed = svcst_pack(s);
    svcst_free_loose(s);
    if (!packed)
        *err = -1;
    return packed;
fail:
    free(want);
    free(want_all);
    svcst_free_loose(s);
    *err = -1;
    return NULL;
}

/* ---- sync -------------------------------------------------------------------- */

/* Affinity entries to remove after the commit: slot `slot` of a frontend. */
struct aff_purge {
    enum nft_lb_kind kind;
    uint32_t slot;
    struct nft_aff_match m;
};

struct sync_ctx {
    struct nftdp *dp;
    bool full;
    struct staged *stg;
    size_t n_stg, cap_stg;
    struct hmap *staged_owner;         /* fe_key -> staged index + 1 */
    struct recvec dels[NFT_SET__COUNT], adds[NFT_SET__COUNT];
    struct nft_lbchain *gone_chains;   /* lb chains deleted by this sync (unused now) */
    struct aff_purge *purge;           /* affinity state of changed frontends/slots */
    size_t n_purge, cap_purge;
    size_t n_gone_chains, cap_gone_chains;
    struct hmap *d_chain;              /* deltas: lb chain -> count */
    struct nft_addrcount d_hairpin, d_cips;
    struct gone_udp *gone;
    size_t n_gone, cap_gone;
    size_t conflicts;
    struct hmap *new_objs;             /* affinity objects created by this batch */
};

static int stage_key(void *ctx, const char *key, void *val)
{
    (void)val;
    struct sync_ctx *sc = ctx;
    if (VEC_RESERVE(sc->stg, sc->n_stg, sc->cap_stg, 64) < 0)
        return -1;
    struct staged *s = &sc->stg[sc->n_stg];
    memset(s, 0, sizeof(*s));
    if (!(s->key = strdup(key)))
        return -1;
    sc->n_stg++;
    return 0;
}

static int stage_service(void *ctx, const struct svcd_service *svc)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", svc->meta.ns, svc->meta.name);
    struct sync_ctx *sc = ctx;
    if (hmap_get(sc->dp->pending, key) || hmap_get(sc->dp->svcs, key))
        return 0;  /* staged from those maps already */
    return stage_key(ctx, key, NULL);
}

static int stage_programmed(void *ctx, const char *key, void *val)
{
    struct sync_ctx *sc = ctx;
    if (hmap_get(sc->dp->pending, key))
        return 0;
    return stage_key(ctx, key, val);
}

/* Reference-count deltas of everything a Service state uses. */
static int svcst_refs(struct sync_ctx *sc, const struct svcst *s, intptr_t d)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct fe *f = &s->fes[i];
        if (fe_has_chain(f)) {
            struct nft_lbchain c;
            fe_lbchain(f, &c);
            if (rc_add(sc->d_chain, &c, sizeof(c), d) < 0)
                return -1;
        }
        for (uint32_t j = 0; j < f->n; j++)
            if (nft_addrcount_add(&sc->d_hairpin, f->k.fam, f->be[j].addr, (int32_t)d) < 0)
                return -1;
    }
    for (size_t i = 0; i < s->n_cips; i++) {
        uint8_t fam = s->cips[i].family == AF_INET6 ? 6 : 4;
        if (nft_addrcount_add(&sc->d_cips, fam, s->cips[i].u.bytes, (int32_t)d) < 0)
            return -1;
    }
    return 0;
}

/* Drops planned frontends that another Service already owns. */
static void resolve_conflicts(struct sync_ctx *sc, size_t idx)
{
    struct staged *st = &sc->stg[idx];
    struct svcst *s = st->nw;
    if (!s)
        return;
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct fe *f = &s->fes[i];
        bool taken = false;
        uintptr_t so = (uintptr_t)hmap_get_bin(sc->staged_owner, &f->k, sizeof(f->k));
        if (so && so - 1 != idx)
            taken = true;
        if (!taken && !sc->full) {
            const struct svcst *po = hmap_get_bin(sc->dp->owner, &f->k, sizeof(f->k));
            /* owned by a programmed Service that is not re-planned now */
            if (po && strcmp(po->key, s->key) != 0 && !hmap_get(sc->dp->pending, po->key))
                taken = true;
        }
        if (taken) {
            char ab[INET6_ADDRSTRLEN] = "*";
            if (f->k.kind == FE_ADDR)
                inet_ntop(f->k.fam == 6 ? AF_INET6 : AF_INET, f->k.addr, ab, sizeof(ab));
            log_warn(MOD, "service %s: %s port %u/%u already used by another Service; skipped",
                     s->key, ab, f->k.port, f->k.proto);
            sc->conflicts++;
            continue;  /* its backends stay unused in the packed block */
        }
        hmap_set_bin(sc->staged_owner, &f->k, sizeof(f->k), (void *)(uintptr_t)(idx + 1));
        s->fes[w++] = *f;
    }
    s->n = w;
}

static int note_gone_udp(struct sync_ctx *sc, const struct fe *o, const struct fe *n)
{
    if (o->k.proto != IPPROTO_UDP)
        return 0;
    for (uint32_t i = 0; i < o->n; i++) {
        if (n && be_in(&o->be[i], n->be, n->n))
            continue;
        if (VEC_RESERVE(sc->gone, sc->n_gone, sc->cap_gone, 16) < 0)
            return -1;
        struct gone_udp *g = &sc->gone[sc->n_gone++];
        g->fam = o->k.fam;
        memcpy(g->addr, o->be[i].addr, 16);
        g->port = o->be[i].port;
    }
    return 0;
}

/* Records the affinity entries of an old frontend that must go: all its
 * slots when it is gone or loses affinity, otherwise the slots whose
 * endpoint changed (kube-proxy deletes a removed endpoint's affinity set). */
static int note_aff_purge(struct sync_ctx *sc, const struct fe *o, const struct fe *n)
{
    if (!o->timeout || o->k.view)
        return 0;
    bool all = !n || n->timeout != o->timeout || n->n == 0;
    struct nft_lbchain c;
    fe_lbchain(o, &c);
    for (uint32_t k = 0; k < o->n; k++) {
        if (!all && k < n->n && be_eq(&o->be[k], &n->be[k]))
            continue;
        if (VEC_RESERVE(sc->purge, sc->n_purge, sc->cap_purge, 8) < 0)
            return -1;
        struct aff_purge *p = &sc->purge[sc->n_purge++];
        memset(p, 0, sizeof(*p));
        p->kind = c.kind;
        p->slot = k;
        size_t off = 0;
        if (o->k.kind == FE_ADDR)
            off += enc_ip(p->m.fe + off, o->k.fam, o->k.addr);
        off += enc_proto(p->m.fe + off, o->k.proto);
        off += enc_port(p->m.fe + off, o->k.port);
        p->m.len = (uint8_t)off;
    }
    return 0;
}

/* Element changes of one staged Service. */
static int diff_service(struct sync_ctx *sc, uint32_t idx)
{
    const struct staged *st = &sc->stg[idx];
    const struct svcst *o = sc->full ? NULL : st->old, *n = st->nw;
    struct elemsink del = { sc->dels, idx, false }, add = { sc->adds, idx, true };
    if (o) {
        for (size_t i = 0; i < o->n; i++) {
            const struct fe *nf = svcst_find(n, &o->fes[i].k);
            if (note_gone_udp(sc, &o->fes[i], nf) < 0 || note_aff_purge(sc, &o->fes[i], nf) < 0)
                return -1;
            if (nf) {
                if (fe_diff(&o->fes[i], nf, &del, &add) < 0)
                    return -1;
            } else if (fe_all(&o->fes[i], &del) < 0) {
                return -1;
            }
        }
    } else if (st->old) {
        /* full sync: nothing to delete, but UDP backends may have gone */
        for (size_t i = 0; i < st->old->n; i++)
            if (note_gone_udp(sc, &st->old->fes[i], svcst_find(n, &st->old->fes[i].k)) < 0)
                return -1;
    }
    if (n) {
        for (size_t i = 0; i < n->n; i++) {
            if (svcst_find(o, &n->fes[i].k))
                continue;
            if (fe_all(&n->fes[i], &add) < 0)
                return -1;
        }
    }
    return 0;
}

/* Makes sure the affinity sets aff<kind>_<k> and slot chains exist for
 * every slot of an affinity lb chain (they are shared and kept). */
static int ensure_aff_objs(struct sync_ctx *sc, struct nft_batch *b, const struct nft_lbchain *c)
{
    const char *table = sc->dp->cfg.nft_table;
    for (uint32_t k = 0; k < c->n; k++) {
        char key[64];
        snprintf(key, sizeof(key), "s%d:%u", (int)c->kind, k);
        if (!hmap_get(sc->new_objs, key) && (sc->full || !hmap_get(sc->dp->aff_objs, key))) {
            if (nft_msg_affset_add(b, table, c->kind, k) < 0 ||
                hmap_set(sc->new_objs, key, (void *)1) < 0)
                return -1;
        }
    }
    for (uint32_t k = 0; k < c->n; k++) {
        char key[64];
        snprintf(key, sizeof(key), "c%d:%u:%u", (int)c->kind, k, c->timeout);
        if (!hmap_get(sc->new_objs, key) && (sc->full || !hmap_get(sc->dp->aff_objs, key))) {
            if (nft_msg_slotchain_add(b, table, c->kind, k, c->timeout) < 0 ||
                hmap_set(sc->new_objs, key, (void *)1) < 0)
                return -1;
        }
    }
    return 0;
}

static int merge_obj_cb(void *ctx, const char *key, void *val)
{
    return hmap_set(ctx, key, val);
}

struct chain_emit {
    struct sync_ctx *sc;
    struct nft_batch *b;
    bool adding;
    int rc;
};

/* Creates a load-balancing chain (and its affinity objects) unless it
 * exists. Chains are kept once created, until the next full replace: a
 * new rule that looks up a map makes the kernel walk every element of that
 * map (binding check), so creating and deleting chains as endpoint counts
 * change would cost O(Services) per change. Creating them up front is no
 * better: every rule bound to a map makes each element insertion costlier
 * (measured: 64 idle chains made a 10k-Service full sync 8x slower). */
static void lbchain_objkey(const struct nft_lbchain *c, char *key, size_t len)
{
    snprintf(key, len, "l%d:%u:%u:%u:%u:%u", (int)c->kind, c->n, c->timeout, c->masq, c->elocal,
             c->sc);
}

/* Creates a load-balancing chain (and its affinity objects) unless it
 * exists. Chains no frontend uses any more are deleted in the same
 * transaction (see chain_delta_cb). */
static int ensure_lbchain(struct sync_ctx *sc, struct nft_batch *b, const struct nft_lbchain *c)
{
    char key[64];
    lbchain_objkey(c, key, sizeof(key));
    if (hmap_get(sc->new_objs, key) || (!sc->full && hmap_get(sc->dp->aff_objs, key)))
        return 0;
    if (c->timeout && ensure_aff_objs(sc, b, c) < 0)
        return -1;
    if (nft_msg_lbchain_add(b, sc->dp->cfg.nft_table, c) < 0)
        return -1;
    return hmap_set(sc->new_objs, key, (void *)1);
}

static int chain_delta_cb(void *ctx, const char *key, void *val)
{
    /* hmap binary keys come back as the raw bytes */
    struct chain_emit *ce = ctx;
    struct nft_lbchain c;
    memcpy(&c, key, sizeof(c));
    intptr_t d = (intptr_t)(uintptr_t)val;
    intptr_t cur = ce->sc->full ? 0 : (intptr_t)rc_get(ce->sc->dp->rc_chain, &c, sizeof(c));
    if (cur + d > 0 && ensure_lbchain(ce->sc, ce->b, &c) < 0)
        ce->rc = -1;
    if (cur > 0 && cur + d <= 0) {
        /* unused now: garbage-collect the chain (after the element
         * deletions that pointed to it: chains are emitted between them) */
        struct sync_ctx *sc = ce->sc;
        if (nft_msg_lbchain_del(ce->b, sc->dp->cfg.nft_table, &c) < 0 ||
            VEC_RESERVE(sc->gone_chains, sc->n_gone_chains, sc->cap_gone_chains, 8) < 0)
            ce->rc = -1;
        else
            sc->gone_chains[sc->n_gone_chains++] = c;
    }
    return ce->rc;
}

struct ipset_emit {
    struct sync_ctx *sc;
    const struct nft_addrcount *cur;
    bool hairpin;
};

static int ipset_delta_cb(void *ctx, uint8_t fam, const uint8_t *addr, int32_t d)
{
    struct ipset_emit *ie = ctx;
    int32_t cur = ie->sc->full ? 0 : nft_addrcount_get(ie->cur, fam, addr);
    struct nft_elem e;
    memset(&e, 0, sizeof(e));
    size_t o = enc_ip(e.key, fam, addr);
    enum nft_set_id set;
    if (ie->hairpin) {
        enc_ip(e.key + o, fam, addr);
        set = fam == 6 ? NFT_SET_HAIRPIN6 : NFT_SET_HAIRPIN4;
    } else {
        set = fam == 6 ? NFT_SET_CIPS6 : NFT_SET_CIPS4;
    }
    if (cur == 0 && cur + d > 0)
        return recvec_push(&ie->sc->adds[set], &e, UINT32_MAX);
    if (cur > 0 && cur + d == 0)
        return recvec_push(&ie->sc->dels[set], &e, UINT32_MAX);
    return 0;
}

/* Emits the element lists of one direction, chunked per set, naming the
 * Services each chunk belongs to. */
static int emit_elems(struct sync_ctx *sc, struct nft_batch *b, struct recvec *lists, bool add)
{
    for (int set = 0; set < NFT_SET__COUNT; set++) {
        struct recvec *rv = &lists[set];
        for (size_t off = 0; off < rv->n; off += 200) {
            size_t cnt = rv->n - off < 200 ? rv->n - off : 200;
            struct nft_elem *tmp = malloc(cnt * sizeof(*tmp));
            if (!tmp)
                return -1;
            char what[256];
            size_t wl = 0, named = 0;
            uint32_t last = UINT32_MAX - 1;
            what[0] = '\0';
            for (size_t i = 0; i < cnt; i++) {
                tmp[i] = rv->v[off + i].e;
                uint32_t ow = rv->v[off + i].owner;
                if (ow != last && ow != UINT32_MAX && named < 3 && wl < sizeof(what) - 1) {
                    int r = snprintf(what + wl, sizeof(what) - wl, "%sservice %s",
                                     named ? ", " : "", sc->stg[ow].key);
                    if (r > 0)
                        wl += (size_t)r;
                    if (wl >= sizeof(what))
                        wl = sizeof(what) - 1;
                    named++;
                }
                last = ow;
            }
            if (!named)
                snprintf(what, sizeof(what), "shared sets");
            int rc = nft_msg_elems(b, sc->dp->cfg.nft_table, (enum nft_set_id)set, add, tmp, cnt,
                                   what);
            free(tmp);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static void sync_ctx_free(struct sync_ctx *sc, bool keep_new)
{
    for (size_t i = 0; i < sc->n_stg; i++) {
        free(sc->stg[i].key);
        if (!keep_new)
            svcst_free(sc->stg[i].nw);
    }
    free(sc->stg);
    for (int i = 0; i < NFT_SET__COUNT; i++) {
        free(sc->dels[i].v);
        free(sc->adds[i].v);
    }
    free(sc->gone_chains);
    free(sc->purge);
    hmap_free(sc->staged_owner);
    hmap_free(sc->d_chain);
    nft_addrcount_clear(&sc->d_hairpin);
    nft_addrcount_clear(&sc->d_cips);
    hmap_free(sc->new_objs);
    free(sc->gone);
}

static int free_svcst_cb(void *ctx, const char *key, void *val)
{
    (void)ctx; (void)key;
    svcst_free(val);
    return 0;
}

/* Applies the deltas of src to dst (binary keys of len kl). */
struct delta_apply {
    struct hmap *dst;
    size_t kl;
    int rc;
};

static int delta_apply_cb(void *ctx, const char *key, void *val)
{
    struct delta_apply *da = ctx;
    if (rc_add(da->dst, key, da->kl, (intptr_t)(uintptr_t)val) < 0)
        da->rc = -1;
    return 0;
}

struct addr_delta_apply {
    struct nft_addrcount *dst;
    int rc;
};

static int addr_delta_apply_cb(void *ctx, uint8_t fam, const uint8_t *addr, int32_t d)
{
    struct addr_delta_apply *da = ctx;
    if (nft_addrcount_add(da->dst, fam, addr, d) < 0)
        da->rc = -1;
    return 0;
}

static void nftdp_reset_programmed(struct nftdp *dp)
{
    hmap_foreach(dp->svcs, free_svcst_cb, NULL);
    hmap_free(dp->svcs);
    hmap_free(dp->owner);
    hmap_free(dp->rc_chain);
    nft_addrcount_clear(&dp->rc_hairpin);
    nft_addrcount_clear(&dp->rc_cips);
    hmap_free(dp->aff_objs);
    dp->aff_objs = hmap_new();
    dp->svcs = hmap_new();
    dp->owner = hmap_new();
    dp->rc_chain = hmap_new();
    dp->n_backends = dp->n_frontends = 0;
}

static void nftdp_set_error(struct nftdp *dp, const char *msg)
{
    snprintf(dp->last_error, sizeof(dp->last_error), "%s", msg);
    dp->has_error = true;
}

static void nftdp_update_gauges(struct nftdp *dp)
{
    dp->stats.services = hmap_count(dp->svcs);
    dp->stats.frontends = dp->n_frontends;
    dp->stats.backends = dp->n_backends;
    dp->stats.lb_chains = hmap_count(dp->rc_chain);
    metric_set(dp->m_svcs, (double)dp->stats.services);
    metric_set(dp->m_eps, (double)dp->stats.backends);
}

/* After a commit: deletes the affinity entries noted by note_aff_purge,
 * one listing per affected set. Best effort: a failure is logged. */
static void nftdp_affinity_cleanup(struct nftdp *dp, const struct sync_ctx *sc)
{
    for (size_t i = 0; i < sc->n_purge; i++) {
        const struct aff_purge *p = &sc->purge[i];
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            if (sc->purge[j].kind == p->kind && sc->purge[j].slot == p->slot)
                first = false;
        if (!first)
            continue;  /* this set was handled with an earlier entry */
        char key[32], set[40], err[256] = "";
        snprintf(key, sizeof(key), "s%d:%u", (int)p->kind, p->slot);
        if (!hmap_get(dp->aff_objs, key))
            continue;
        struct nft_aff_match *m = malloc((sc->n_purge - i) * sizeof(*m));
        if (!m)
            return;
        size_t nm = 0;
        for (size_t j = i; j < sc->n_purge; j++)
            if (sc->purge[j].kind == p->kind && sc->purge[j].slot == p->slot)
                m[nm++] = sc->purge[j].m;
        bool v6 = p->kind == NFT_LB_VIP6 || p->kind == NFT_LB_NP6;
        bool np = p->kind == NFT_LB_NP4 || p->kind == NFT_LB_NP6;
        size_t ipl = v6 ? 16 : 4;
        size_t klen = ipl + (np ? 0 : ipl) + 8;
        nft_msg_affset_name(p->kind, p->slot, set, sizeof(set));
        int n = nft_affinity_purge(dp->nl, dp->cfg.nft_table, set, klen, ipl, m, nm, err,
                                   sizeof(err));
        free(m);
        if (n < 0)
            log_warn(MOD, "affinity entries of changed Services not removed from %s: %s", set, err);
        else if (n > 0)
            log_debug(MOD, "removed %d affinity entries from %s", n, set);
    }
}

/* Queues the clean-up of the UDP endpoints that left; the cleaner works on
 * its own socket between other events (nft_conntrack.h). */
static void nftdp_conntrack_cleanup(struct nftdp *dp, const struct sync_ctx *sc)
{
    for (size_t i = 0; i < sc->n_gone; i++) {
        const struct gone_udp *g = &sc->gone[i];
        if (nft_ct_cleaner_add(dp->ct, g->fam == 6 ? AF_INET6 : AF_INET, g->addr, g->port) < 0)
            log_warn(MOD, "out of memory queueing a conntrack clean-up");
    }
}

/* One sync: plan, diff, send. 0 when committed (or nothing to do). */
static int nftdp_sync(struct nftdp *dp)
{
    bool full = dp->need_full || !dp->initial_done;
    if (!full && hmap_count(dp->pending) == 0)
        return 0;
    double t0 = nftdp_now_ms();
    struct sync_ctx sc;
    memset(&sc, 0, sizeof(sc));
    sc.dp = dp;
    sc.full = full;
    struct nft_batch *b = NULL;
    char err[512] = "";
    int rc = -1;
    sc.staged_owner = hmap_new();
    sc.d_chain = hmap_new();
    sc.new_objs = hmap_new();
    if (!sc.staged_owner || !sc.d_chain || !sc.new_objs)
        goto oom;
    /* 1. which Services */
    if (hmap_foreach(dp->pending, stage_key, &sc) != 0)
        goto oom;
    if (full) {
        if (hmap_foreach(dp->svcs, stage_programmed, &sc) != 0 ||
            store_foreach_service(dp->st, stage_service, &sc) != 0)
            goto oom;
    }
    /* 2. plan */
    for (size_t i = 0; i < sc.n_stg; i++) {
        struct staged *st = &sc.stg[i];
        int perr;
        st->old = hmap_get(dp->svcs, st->key);
        st->nw = plan_service(dp, st->key, st->old, &perr);
        if (perr)
            goto oom;
        resolve_conflicts(&sc, i);
        if (svcst_refs(&sc, full ? NULL : st->old, -1) < 0 || svcst_refs(&sc, st->nw, +1) < 0)
            goto oom;
    }
    /* 3. diff */
    for (size_t i = 0; i < sc.n_stg; i++)
        if (diff_service(&sc, (uint32_t)i) < 0)
            goto oom;
    struct ipset_emit ie = { &sc, &dp->rc_hairpin, true };
    if (nft_addrcount_foreach(&sc.d_hairpin, ipset_delta_cb, &ie) != 0)
        goto oom;
    ie = (struct ipset_emit){ &sc, &dp->rc_cips, false };
    if (nft_addrcount_foreach(&sc.d_cips, ipset_delta_cb, &ie) != 0)
        goto oom;
    /* 4. batch */
    b = nft_batch_new();
    if (!b)
        goto oom;
    if (full) {
        struct nft_ranges rg = { dp->cfg.pod_cidr, dp->cfg.service_cidr, dp->npa,
                                 dp->cfg.n_pod_cidr, dp->cfg.n_service_cidr, dp->n_npa };
        if (nft_msg_table_reset(b, dp->cfg.nft_table) < 0 ||
            nft_msg_skeleton(b, dp->cfg.nft_table, &rg) < 0)
            goto oom;
    }
    /* element deletions, then chains (new ones, and unused ones deleted:
     * no element points to them any more), then element additions */
    struct chain_emit ce = { &sc, b, true, 0 };
    if (emit_elems(&sc, b, sc.dels, false) < 0 ||
        hmap_foreach(sc.d_chain, chain_delta_cb, &ce) != 0 ||
        emit_elems(&sc, b, sc.adds, true) < 0)
        goto oom;
    size_t nmsgs = nft_batch_count(b), nbytes = nft_batch_bytes(b);
    if (nmsgs == 0) {
        rc = 0;  /* nothing changed in the kernel's view */
    } else {
        double ts = nftdp_now_ms();
        rc = nft_batch_send(b, dp->nl, err, sizeof(err));
        dp->stats.last_kernel_ms = nftdp_now_ms() - ts;
    }
    double ms = nftdp_now_ms() - t0;
    dp->stats.syncs++;
    metric_add(dp->m_syncs, 1);
    metric_observe(dp->m_dur, ms / 1e3);
    dp->stats.last_sync_ms = ms;
    dp->stats.last_batch_msgs = nmsgs;
    dp->stats.last_batch_bytes = nbytes;
    if (rc < 0) {
        dp->stats.failures++;
        metric_add(dp->m_fail, 1);
        nftdp_set_error(dp, err);
        log_err(MOD, "%s transaction rejected, previous rules stay in force: %s",
                full ? "full" : "incremental", err);
        rc = -1;
        goto out;
    }
    /* 5. committed: the plan becomes the programmed state */
    if (full) {
        /* the table was replaced: only the plan's references exist now */
        nftdp_reset_programmed(dp);
        dp->stats.full_syncs++;
    }
    struct delta_apply da = { dp->rc_chain, sizeof(struct nft_lbchain), 0 };
    hmap_foreach(sc.d_chain, delta_apply_cb, &da);
    struct addr_delta_apply ada = { &dp->rc_hairpin, 0 };
    nft_addrcount_foreach(&sc.d_hairpin, addr_delta_apply_cb, &ada);
    int ada_rc = ada.rc;
    ada = (struct addr_delta_apply){ &dp->rc_cips, 0 };
    nft_addrcount_foreach(&sc.d_cips, addr_delta_apply_cb, &ada);
    if (da.rc < 0 || ada_rc < 0 || ada.rc < 0)
        dp->need_full = true;  /* lost a reference count: rebuild next time */
    if (hmap_foreach(sc.new_objs, merge_obj_cb, dp->aff_objs) != 0)
        dp->need_full = true;
    for (size_t i = 0; i < sc.n_gone_chains; i++) {
        char key[64];
        lbchain_objkey(&sc.gone_chains[i], key, sizeof(key));
        hmap_del(dp->aff_objs, key);
    }
    for (size_t i = 0; i < sc.n_stg; i++) {
        struct staged *st = &sc.stg[i];
        struct svcst *old = full ? NULL : hmap_del(dp->svcs, st->key);
        if (old) {
            for (size_t j = 0; j < old->n; j++) {
                if (hmap_get_bin(dp->owner, &old->fes[j].k, sizeof(old->fes[j].k)) == old)
                    hmap_del_bin(dp->owner, &old->fes[j].k, sizeof(old->fes[j].k));
                dp->n_backends -= old->fes[j].n;
                dp->n_frontends--;
            }
        }
        if (old)
            svcst_free(old);
    }
    for (size_t i = 0; i < sc.n_stg; i++) {
        struct staged *st = &sc.stg[i];
        if (!st->nw)
            continue;
        hmap_set(dp->svcs, st->key, st->nw);
        for (size_t j = 0; j < st->nw->n; j++) {
            hmap_set_bin(dp->owner, &st->nw->fes[j].k, sizeof(st->nw->fes[j].k), st->nw);
            dp->n_backends += st->nw->fes[j].n;
            dp->n_frontends++;
        }
    }
    nftdp_conntrack_cleanup(dp, &sc);
    nftdp_affinity_cleanup(dp, &sc);
    hmap_free(dp->pending);
    dp->pending = hmap_new();
    dp->need_full = false;
    dp->initial_done = true;
    dp->has_error = false;
    dp->last_error[0] = '\0';
    dp->fail_row = 0;
    metric_set_now(dp->m_last_ok);
    dp->generation = store_generation(dp->st);
    nftdp_update_gauges(dp);
    log_debug(MOD, "%s sync: %zu services, %zu messages, %zu bytes, %.2f ms",
              full ? "full" : "incremental", sc.n_stg, nmsgs, nbytes, ms);
    nft_batch_free(b);
    sync_ctx_free(&sc, true);
    if (full)
        malloc_trim(0);  /* a full sync's transient buffers are large */
    return 0;
oom:
    nftdp_set_error(dp, "out of memory while building the transaction");
    log_err(MOD, "out of memory while building the transaction");
    dp->stats.failures++;
    metric_add(dp->m_fail, 1);
    rc = -1;
out:
    nft_batch_free(b);
    sync_ctx_free(&sc, false);
    return rc;
}

static void nftdp_arm(struct nftdp *dp, uint32_t ms)
{
    struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(dp->timer, &tv);
}

static void nftdp_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    struct nftdp *dp = arg;
    if (nftdp_sync(dp) == 0)
        return;
    dp->fail_row++;
    if (dp->fail_row >= 2)
        dp->need_full = true;
    uint32_t backoff = 100u << (dp->fail_row > 7 ? 7 : dp->fail_row - 1);
    if (backoff > 10000)
        backoff = 10000;
    log_warn(MOD, "retrying in %u ms%s", backoff, dp->need_full ? " with a full replace" : "");
    nftdp_arm(dp, backoff);
}

static void nftdp_on_commit(void *ctx, struct store *st, uint64_t generation,
                            const struct store_change *changes, size_t n_changes,
                            bool pods_changed)
{
    (void)st; (void)generation; (void)pods_changed;
    struct nftdp *dp = ctx;
    for (size_t i = 0; i < n_changes; i++) {
        char key[600];
        snprintf(key, sizeof(key), "%s/%s", changes[i].ns, changes[i].name);
        if (!hmap_get(dp->pending, key) && hmap_set(dp->pending, key, (void *)1) < 0) {
            dp->need_full = true;  /* lost track: replace everything */
        }
    }
    bool first = !dp->saw_commit;
    dp->saw_commit = true;
    if (first && !dp->initial_done) {
        /* first commit: sync as soon as allowed (replaces the start grace) */
        evtimer_del(dp->timer);
        nftdp_arm(dp, dp->cfg.sync_min_interval_ms);
        return;
    }
    if (!evtimer_pending(dp->timer, NULL))
        nftdp_arm(dp, dp->cfg.sync_min_interval_ms);
}

/* ---- public API ----------------------------------------------------------------- */

/* Another process changed our table (nft_watch): replace it with what we
 * know, at once. Until the replace commits, nftdp_synced() is false and
 * /readyz says so; a failing replace is retried with backoff like any sync. */
static void nftdp_on_drift(void *ctx, const char *what)
{
    struct nftdp *dp = ctx;
    log_warn(MOD, "table %s %s: restoring it", dp->cfg.nft_table, what);
    metric_add(dp->m_drift, 1);
    dp->need_full = true;
    nftdp_arm(dp, 0);
}

/* The interface of the default route of a family ("" when none), from
 * /proc/net/route or /proc/net/ipv6_route of svcd's network namespace. */
static void default_route_iface(int af, char *ifname, size_t len)
{
    ifname[0] = '\0';
    FILE *f = fopen(af == AF_INET6 ? "/proc/net/ipv6_route" : "/proc/net/route", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        char a[64], b[64], c[64], d[64], e[64], g[64], h[64], i[64], j[64];
        if (af == AF_INET) {
            /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
            if (sscanf(line, "%63s %63s %63s %63s %63s %63s %63s %63s", a, b, c, d, e, g, h, i) == 8 &&
                !strcmp(b, "00000000") && !strcmp(i, "00000000")) {
                snprintf(ifname, len, "%s", a);
                break;
            }
        } else {
            /* dest plen src splen nexthop metric refcnt use flags iface */
            char ifn[64];
            if (sscanf(line, "%63s %63s %63s %63s %63s %63s %63s %63s %63s %63s", a, b, c, d, e, g,
                       h, i, j, ifn) == 10 &&
                !strcmp(a, "00000000000000000000000000000000") && !strcmp(b, "00") &&
                strcmp(ifn, "lo") != 0) {
                snprintf(ifname, len, "%s", ifn);
                break;
            }
        }
    }
    fclose(f);
}

/* Adds a /32 or /128 for ip to the NodePort address list. */
static void npa_add_ip(struct nftdp *dp, const struct svcd_ip *ip)
{
    if (dp->n_npa >= sizeof(dp->npa) / sizeof(dp->npa[0]))
        return;
    struct svcd_cidr *c = &dp->npa[dp->n_npa++];
    memset(c, 0, sizeof(*c));
    c->addr = *ip;
    c->prefix = ip->family == AF_INET6 ? 128 : 32;
}

/* --nodeport-addresses: the CIDRs given, plus with "primary" (the default
 * when none is given) the node's primary addresses: --node-ip, otherwise the
 * first global address of each family on the interface of the default
 * route. Loopback is never added implicitly. */
static void nftdp_resolve_npa(struct nftdp *dp)
{
    const struct svcd_config *c = &dp->cfg;
    for (size_t i = 0; i < c->n_nodeport_cidr; i++)
        dp->npa[dp->n_npa++] = c->nodeport_cidr[i];
    if (c->n_nodeport_cidr && !c->nodeport_primary)
        return;
    if (c->n_node_ip) {
        for (size_t i = 0; i < c->n_node_ip; i++)
            npa_add_ip(dp, &c->node_ip[i]);
        return;
    }
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) < 0)
        return;
    for (int fi = 0; fi < 2; fi++) {
        int af = fi ? AF_INET6 : AF_INET;
        char ifname[64];
        default_route_iface(af, ifname, sizeof(ifname));
        if (!ifname[0])
            continue;
        for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
            if (!p->ifa_addr || p->ifa_addr->sa_family != af || strcmp(p->ifa_name, ifname))
                continue;
            struct svcd_ip ip;
            memset(&ip, 0, sizeof(ip));
            ip.family = af;
            if (af == AF_INET) {
                memcpy(ip.u.bytes, &((struct sockaddr_in *)(void *)p->ifa_addr)->sin_addr, 4);
            } else {
                const struct in6_addr *a6 = &((struct sockaddr_in6 *)(void *)p->ifa_addr)->sin6_addr;
                if (IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_LOOPBACK(a6))
                    continue;
                memcpy(ip.u.bytes, a6, 16);
            }
            npa_add_ip(dp, &ip);
            break;
        }
    }
    freeifaddrs(ifa);
}

struct nftdp *nftdp_new(struct event_base *base, struct store *st, const struct svcd_config *cfg)
{
    struct nftdp *dp = calloc(1, sizeof(*dp));
    if (!dp) {
        log_err(MOD, "out of memory");
        return NULL;
    }
    dp->base = base;
    dp->st = st;
    dp->cfg = *cfg;
    if (!dp->cfg.nft_table[0])
        snprintf(dp->cfg.nft_table, sizeof(dp->cfg.nft_table), "svcd");
    nftdp_resolve_npa(dp);
    for (size_t i = 0; i < dp->n_npa; i++) {
        char ab[INET6_ADDRSTRLEN];
        inet_ntop(dp->npa[i].addr.family, dp->npa[i].addr.u.bytes, ab, sizeof(ab));
        log_info(MOD, "NodePorts accepted on %s/%d", ab, dp->npa[i].prefix);
    }
    if (dp->n_npa == 0)
        log_warn(MOD, "no NodePort address (no --nodeport-addresses match, no --node-ip, no "
                      "default route): NodePorts are not reachable");
    dp->nl = nft_sock_open();
    if (!dp->nl) {
        log_err(MOD, "cannot open the netfilter netlink socket: %s", strerror(errno));
        goto fail;
    }
    dp->svcs = hmap_new();
    dp->owner = hmap_new();
    dp->rc_chain = hmap_new();
    dp->aff_objs = hmap_new();
    dp->pending = hmap_new();
    dp->timer = evtimer_new(base, nftdp_timer_cb, dp);
    if (!dp->svcs || !dp->owner || !dp->rc_chain || !dp->aff_objs || !dp->pending ||
        !dp->timer) {
        log_err(MOD, "out of memory");
        goto fail;
    }
    dp->m_last_ok = metric_gauge("svcd_nft_last_sync_timestamp_seconds", NULL,
                                 "Unix time of the last successful nftables transaction");
    dp->m_syncs = metric_counter("svcd_nft_syncs_total", NULL,
                                 "nftables transactions attempted");
    dp->m_fail = metric_counter("svcd_nft_sync_failures_total", NULL,
                                "nftables transactions the kernel rejected");
    dp->m_dur = metric_histogram("svcd_nft_sync_duration_seconds", NULL,
                                 "time from sync start to kernel commit");
    dp->m_svcs = metric_gauge("svcd_nft_services", NULL, "Services programmed in nftables");
    dp->m_eps = metric_gauge("svcd_nft_endpoints", NULL,
                             "endpoint slots programmed in nftables (per frontend)");
    dp->m_ct = metric_counter("svcd_nft_conntrack_deleted_total", NULL,
                              "UDP conntrack entries deleted for removed endpoints");
    dp->ct = nft_ct_cleaner_new(base, dp->m_ct);
    dp->m_drift = metric_counter("svcd_nft_drift_repairs_total", NULL,
                                 "full syncs started because another process changed the "
                                 "nftables table svcd owns");
    dp->watch = nft_watch_new(base, dp->cfg.nft_table, nftdp_on_drift, dp);
    struct store_subscriber sub = { nftdp_on_commit, dp };
    if (store_subscribe(st, &sub) < 0) {
        log_err(MOD, "cannot subscribe to the store");
        goto fail;
    }
    dp->subscribed = true;
    /* No commit within 1 s (no manifests): sync the (empty) store then. */
    nftdp_arm(dp, 1000);
    return dp;
fail:
    nftdp_free(dp);
    return NULL;
}

void nftdp_free(struct nftdp *dp)
{
    if (!dp)
        return;
    if (dp->subscribed)
        store_unsubscribe(dp->st, dp);
    if (dp->timer)
        event_free(dp->timer);
    nft_ct_cleaner_free(dp->ct);
    nft_watch_free(dp->watch);
    if (dp->svcs)
        hmap_foreach(dp->svcs, free_svcst_cb, NULL);
    hmap_free(dp->svcs);
    hmap_free(dp->owner);
    hmap_free(dp->rc_chain);
    nft_addrcount_clear(&dp->rc_hairpin);
    nft_addrcount_clear(&dp->rc_cips);
    hmap_free(dp->aff_objs);
    hmap_free(dp->pending);
    if (dp->nl)
        mnl_socket_close(dp->nl);
    free(dp);
}

int nftdp_cleanup(const char *table)
{
    struct mnl_socket *nl = nft_sock_open();
    if (!nl) {
        log_err(MOD, "cannot open the netfilter netlink socket: %s", strerror(errno));
        return -1;
    }
    int rc = -1;
    char err[512];
    struct nft_batch *b = nft_batch_new();
    /* nft add table inet T ; nft delete table inet T */
    if (!b || nft_msg_table_reset(b, table && table[0] ? table : "svcd") < 0) {
        log_err(MOD, "out of memory");
        goto out;
    }
    if (nft_batch_send(b, nl, err, sizeof(err)) < 0) {
        log_err(MOD, "cannot delete table inet %s: %s", table, err);
        goto out;
    }
    rc = 0;
out:
    nft_batch_free(b);
    mnl_socket_close(nl);
    return rc;
}

bool nftdp_synced(const struct nftdp *dp)
{
    return dp->initial_done && !dp->has_error && !dp->need_full && hmap_count(dp->pending) == 0;
}

const char *nftdp_last_error(const struct nftdp *dp)
{
    return dp->has_error ? dp->last_error : NULL;
}

uint64_t nftdp_generation(const struct nftdp *dp)
{
    return dp->generation;
}

int nftdp_sync_now(struct nftdp *dp)
{
    evtimer_del(dp->timer);
    if (nftdp_sync(dp) == 0)
        return 0;
    dp->fail_row++;
    if (dp->fail_row >= 2)
        dp->need_full = true;
    nftdp_arm(dp, 100);
    return -1;
}

void nftdp_get_stats(const struct nftdp *dp, struct nftdp_stats *out)
{
    *out = dp->stats;
    out->services = hmap_count(dp->svcs);
    out->frontends = dp->n_frontends;
    out->backends = dp->n_backends;
    out->lb_chains = hmap_count(dp->rc_chain);
}

int nftdp_frontend_backends(const struct nftdp *dp, int family, const struct svcd_ip *addr,
                            enum svcd_proto proto, uint16_t port, struct svcd_ip *ips,
                            uint16_t *ports, size_t max)
{
    struct fe_key k;
    memset(&k, 0, sizeof(k));
    int af = addr ? addr->family : family;
    k.fam = af == AF_INET6 ? 6 : 4;
    k.kind = addr ? FE_ADDR : FE_NODEPORT;
    k.proto = (uint8_t)svcd_proto_ipproto(proto);
    k.port = port;
    if (addr)
        memcpy(k.addr, addr->u.bytes, ipbytes(k.fam));
    const struct svcst *s = hmap_get_bin(dp->owner, &k, sizeof(k));
    const struct fe *f = svcst_find(s, &k);
    if (!f)
        return -1;
    for (uint32_t i = 0; i < f->n && i < max; i++) {
        memset(&ips[i], 0, sizeof(ips[i]));
        ips[i].family = af;
        memcpy(ips[i].u.bytes, f->be[i].addr, ipbytes(k.fam));
        ports[i] = f->be[i].port;
    }
    return (int)f->n;
}

/* Appends to a text buffer, truncating. */
static void txt_add(char *out, size_t len, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void txt_add(char *out, size_t len, size_t *o, const char *fmt, ...)
{
    if (*o >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out + *o, len - *o, fmt, ap);
    va_end(ap);
    if (r > 0)
        *o = *o + (size_t)r < len ? *o + (size_t)r : len;
}

int nftdp_plan_text(const struct svcd_config *cfg, struct store *st, const char *ns,
                    const char *name, char *out, size_t len)
{
    struct nftdp *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return -1;
    dp->cfg = *cfg;
    dp->st = st;
    char key[600];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    int err = 0;
    struct svcst *s = plan_service(dp, key, NULL, &err);
    free(dp);
    if (err)
        return -1;
    size_t o = 0;
    if (len)
        out[0] = '\0';
    int n = s ? (int)s->n : 0;
    for (int i = 0; i < n; i++) {
        const struct fe *f = &s->fes[i];
        char ab[INET6_ADDRSTRLEN] = "*", chain[48];
        if (f->k.kind == FE_ADDR)
            inet_ntop(f->k.fam == 6 ? AF_INET6 : AF_INET, f->k.addr, ab, sizeof(ab));
        struct nft_lbchain c;
        fe_lbchain(f, &c);
        if (fe_has_chain(f))
            nft_msg_lbchain_name(&c, chain, sizeof(chain));
        else
            snprintf(chain, sizeof(chain), "%s", f->empty_drop ? "drop" : "reject");
        txt_add(out, len, &o, "%s %u %u%s -> %s", ab, f->k.proto, f->k.port,
                f->k.view ? " sc" : "", chain);
        if (f->n == 0 && fe_has_chain(f))
            txt_add(out, len, &o, " (%s)", f->empty_drop ? "drop" : "reject");
        for (uint32_t j = 0; j < f->n; j++) {
            char bb[INET6_ADDRSTRLEN];
            inet_ntop(f->k.fam == 6 ? AF_INET6 : AF_INET, f->be[j].addr, bb, sizeof(bb));
            txt_add(out, len, &o, " %s:%u", bb, f->be[j].port);
        }
        txt_add(out, len, &o, "\n");
    }
    svcst_free(s);
    return n;
}
