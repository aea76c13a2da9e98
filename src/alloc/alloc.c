/*
 * alloc: clusterIP and nodePort allocation with a persisted state, as the
 * API server's ipallocator / portallocator and Service REST storage do it
 * (see include/svcd/alloc.h for the rules).
 *
 * Each range keeps a cursor: every address below it has been handed out at
 * some time, so the never-used part of the range is [cursor, last]. Freed
 * addresses and ports go to a queue in release order; they are handed out
 * again, oldest first, only when no never-used one is left. Owners are
 * indexed by address and by (protocol, nodePort), so checks are O(1).
 *
 * alloc_service() plans the Service's whole allocation without changing
 * anything, then commits it: a failure leaves no trace.
 */
#include "svcd/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "svcd/hmap.h"
#include "svcd/vec.h"

typedef unsigned __int128 u128;

struct alloc_range {
    struct svcd_cidr cidr;
    bool lower;                /* the lower band of a split range */
    u128 first, last;          /* handed-out part of the range */
    u128 next;                 /* cursor; > last when used up */
    bool done;                 /* cursor ran past last */
};

/* One nodePort of a Service: service port (protocol, port) -> node port. */
struct alloc_np {
    enum svcd_proto proto;
    uint16_t port;
    uint16_t node_port;
};

struct alloc_rec {
    char *key;                 /* "ns/name" */
    struct svcd_ip ips[2];
    size_t n_ips;
    struct alloc_np *nps;
    size_t n_nps;
    uint16_t hc_port;          /* healthCheckNodePort (TCP), 0 = none */
    bool seen;
    bool unsaved;              /* got something new since the last save */
};

struct alloc {
    struct alloc_range *ranges;
    size_t n_ranges;
    uint16_t np_min, np_max, np_next;
    struct hmap *recs;         /* key -> alloc_rec */
    struct hmap *ip_owner;     /* address key -> alloc_rec */
    struct hmap *port_owner;   /* port key -> alloc_rec */
    struct svcd_ip *rel_ips;   /* released addresses, oldest first */
    size_t n_rel_ips, cap_rel_ips;
    uint16_t *rel_ports;       /* released node ports, oldest first */
    size_t n_rel_ports, cap_rel_ports;
    bool dirty;
    char *saved;               /* JSON of the last load/save: the rollback point */
};

static const enum svcd_proto alloc_protos[] = { SVCD_PROTO_TCP, SVCD_PROTO_UDP,
                                                SVCD_PROTO_SCTP };

__attribute__((format(printf, 3, 4)))
static int alloc_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- addresses as integers ------------------------------------------------ */

static size_t alloc_ip_len(int family)
{
    return family == AF_INET ? 4 : 16;
}

static u128 alloc_ip_u(const struct svcd_ip *ip)
{
    u128 v = 0;
    for (size_t i = 0; i < alloc_ip_len(ip->family); i++)
        v = (v << 8) | ip->u.bytes[i];
    return v;
}

static void alloc_u_ip(int family, u128 v, struct svcd_ip *out)
{
    size_t n = alloc_ip_len(family);
    memset(out, 0, sizeof(*out));
    out->family = family;
    for (size_t i = 0; i < n; i++) {
        out->u.bytes[n - 1 - i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Binary owner key of an address: family byte + its bytes. */
static size_t alloc_ip_key(const struct svcd_ip *ip, uint8_t key[17])
{
    key[0] = ip->family == AF_INET ? 4 : 6;
    memcpy(key + 1, ip->u.bytes, alloc_ip_len(ip->family));
    return 1 + alloc_ip_len(ip->family);
}

static struct alloc_rec *alloc_ip_owner(const struct alloc *a, const struct svcd_ip *ip)
{
    uint8_t key[17];
    size_t n = alloc_ip_key(ip, key);
    return hmap_get_bin(a->ip_owner, key, n);
}

static size_t alloc_port_key(enum svcd_proto proto, uint16_t port, uint8_t key[3])
{
    key[0] = (uint8_t)proto;
    key[1] = (uint8_t)(port >> 8);
    key[2] = (uint8_t)port;
    return 3;
}

static struct alloc_rec *alloc_port_owner(const struct alloc *a, enum svcd_proto proto,
                                          uint16_t port)
{
    uint8_t key[3];
    return hmap_get_bin(a->port_owner, key, alloc_port_key(proto, port, key));
}

static bool alloc_port_free_all(const struct alloc *a, uint16_t port)
{
    for (size_t i = 0; i < 3; i++)
        if (alloc_port_owner(a, alloc_protos[i], port))
            return false;
    return true;
}

static const struct alloc_range *alloc_range_of(const struct alloc *a, const struct svcd_ip *ip)
{
    for (size_t i = 0; i < a->n_ranges; i++) {
        const struct alloc_range *r = &a->ranges[i];
        if (r->cidr.addr.family != ip->family || !svcd_cidr_contains(&r->cidr, ip))
            continue;
        u128 v = alloc_ip_u(ip);
        if (v >= r->first && v <= r->last)
            return r;
    }
    return NULL;
}

static bool alloc_family_configured(const struct alloc *a, int family)
{
    for (size_t i = 0; i < a->n_ranges; i++)
        if (a->ranges[i].cidr.addr.family == family)
            return true;
    return false;
}

static const char *alloc_family_name(int family)
{
    return family == AF_INET ? "IPv4" : "IPv6";
}

/* "10.96.0.0/16, fd00::/108" (the ranges of a family, or all). */
static void alloc_ranges_text(const struct alloc *a, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->n_ranges && off < len; i++) {
        char ip[INET6_ADDRSTRLEN];
        if (a->ranges[i].lower)
            continue;
        int n = snprintf(buf + off, len - off, "%s%s/%d", off ? ", " : "",
                         svcd_ip_format(&a->ranges[i].cidr.addr, ip, sizeof(ip)),
                         a->ranges[i].cidr.prefix);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

/* ---- released queues ------------------------------------------------------ */

static void alloc_rel_ip_remove(struct alloc *a, const struct svcd_ip *ip)
{
    for (size_t i = 0; i < a->n_rel_ips; i++) {
        if (svcd_ip_equal(&a->rel_ips[i], ip)) {
            memmove(&a->rel_ips[i], &a->rel_ips[i + 1],
                    (a->n_rel_ips - i - 1) * sizeof(*a->rel_ips));
            a->n_rel_ips--;
            return;
        }
    }
}

static bool alloc_rel_ip_has(const struct alloc *a, const struct svcd_ip *ip)
{
    for (size_t i = 0; i < a->n_rel_ips; i++)
        if (svcd_ip_equal(&a->rel_ips[i], ip))
            return true;
    return false;
}

static int alloc_rel_ip_push(struct alloc *a, const struct svcd_ip *ip)
{
    alloc_rel_ip_remove(a, ip);
    if (VEC_RESERVE(a->rel_ips, a->n_rel_ips, a->cap_rel_ips, 16) < 0)
        return -1;
    a->rel_ips[a->n_rel_ips++] = *ip;
    return 0;
}

static void alloc_rel_port_remove(struct alloc *a, uint16_t port)
{
    for (size_t i = 0; i < a->n_rel_ports; i++) {
        if (a->rel_ports[i] == port) {
            memmove(&a->rel_ports[i], &a->rel_ports[i + 1],
                    (a->n_rel_ports - i - 1) * sizeof(*a->rel_ports));
            a->n_rel_ports--;
            return;
        }
    }
}

static bool alloc_rel_port_has(const struct alloc *a, uint16_t port)
{
    for (size_t i = 0; i < a->n_rel_ports; i++)
        if (a->rel_ports[i] == port)
            return true;
    return false;
}

static int alloc_rel_port_push(struct alloc *a, uint16_t port)
{
    alloc_rel_port_remove(a, port);
    if (VEC_RESERVE(a->rel_ports, a->n_rel_ports, a->cap_rel_ports, 16) < 0)
        return -1;
    a->rel_ports[a->n_rel_ports++] = port;
    return 0;
}

/* ---- records -------------------------------------------------------------- */

static void alloc_rec_free(struct alloc_rec *r)
{
    if (!r)
        return;
    free(r->key);
    free(r->nps);
    free(r);
}

static int alloc_free_rec_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    alloc_rec_free(value);
    return 0;
}

/* Drops every record, owner and queue; ranges and cursors back to start. */
static void alloc_clear(struct alloc *a)
{
    hmap_foreach(a->recs, alloc_free_rec_cb, NULL);
    hmap_free(a->recs);
    hmap_free(a->ip_owner);
    hmap_free(a->port_owner);
    a->recs = hmap_new();
    a->ip_owner = hmap_new();
    a->port_owner = hmap_new();
    a->n_rel_ips = 0;
    a->n_rel_ports = 0;
    for (size_t i = 0; i < a->n_ranges; i++) {
        a->ranges[i].next = a->ranges[i].first;
        a->ranges[i].done = false;
    }
    a->np_next = a->np_min;
}

static int alloc_claim_ip(struct alloc *a, struct alloc_rec *r, const struct svcd_ip *ip)
{
    uint8_t key[17];
    size_t n = alloc_ip_key(ip, key);
    alloc_rel_ip_remove(a, ip);
    return hmap_set_bin(a->ip_owner, key, n, r);
}

static int alloc_claim_port(struct alloc *a, struct alloc_rec *r, enum svcd_proto proto,
                            uint16_t port)
{
    uint8_t key[3];
    alloc_rel_port_remove(a, port);
    return hmap_set_bin(a->port_owner, key, alloc_port_key(proto, port, key), r);
}

static void alloc_unclaim_ip(struct alloc *a, const struct svcd_ip *ip)
{
    uint8_t key[17];
    size_t n = alloc_ip_key(ip, key);
    hmap_del_bin(a->ip_owner, key, n);
    alloc_rel_ip_push(a, ip);
}

static void alloc_unclaim_port(struct alloc *a, enum svcd_proto proto, uint16_t port)
{
    uint8_t key[3];
    hmap_del_bin(a->port_owner, key, alloc_port_key(proto, port, key));
    if (alloc_port_free_all(a, port))
        alloc_rel_port_push(a, port);
}

/* ---- lifecycle ------------------------------------------------------------ */

struct alloc *alloc_new(const struct svcd_cidr *cidrs, size_t n, uint16_t np_min,
                        uint16_t np_max)
{
    struct alloc *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (n && !(a->ranges = calloc(2 * n, sizeof(*a->ranges)))) {
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct alloc_range *r = &a->ranges[a->n_ranges++];
        int bits = cidrs[i].addr.family == AF_INET ? 32 : 128;
        int host = bits - cidrs[i].prefix;
        u128 base = alloc_ip_u(&cidrs[i].addr);
        u128 top = host >= 128 ? ~(u128)0 : base + (((u128)1 << host) - 1);
        r->cidr = cidrs[i];
        /* The network address is never handed out; in IPv4 neither is the
         * broadcast address (both only when the range has room for them). */
        r->first = host >= 1 && !(bits == 32 && host == 1) ? base + 1 : base;
        r->last = bits == 32 && host >= 2 ? top - 1 : top;
        r->next = r->first;
        /* The API server's split (KEP-3070): dynamic allocation starts in
         * the upper band, so the lower band (size/16, 16 to 256 addresses)
         * stays for addresses written into manifests; it is used only
         * when the upper band is full. Ranges under 32 addresses are not
         * split (the lower band would hold all of them anyway). */
        if (host >= 5) {
            u128 off = host >= 12 ? 256 : ((u128)1 << host) / 16;
            if (off < 16)
                off = 16;
            struct alloc_range *lo = &a->ranges[a->n_ranges++];
            *lo = *r;
            lo->lower = true;
            lo->last = base + off - 1;
            r->first = r->next = base + off;
        }
    }
    a->np_min = np_min;
    a->np_max = np_max;
    a->np_next = np_min;
    a->recs = hmap_new();
    a->ip_owner = hmap_new();
    a->port_owner = hmap_new();
    if (!a->recs || !a->ip_owner || !a->port_owner) {
        alloc_free(a);
        return NULL;
    }
    return a;
}

void alloc_free(struct alloc *a)
{
    if (!a)
        return;
    if (a->recs)
        hmap_foreach(a->recs, alloc_free_rec_cb, NULL);
    hmap_free(a->recs);
    hmap_free(a->ip_owner);
    hmap_free(a->port_owner);
    free(a->ranges);
    free(a->rel_ips);
    free(a->rel_ports);
    free(a->saved);
    free(a);
}

/* ---- finding free addresses and ports ------------------------------------- */

static bool alloc_ip_in(const struct svcd_ip *ip, const struct svcd_ip *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (svcd_ip_equal(ip, &set[i]))
            return true;
    return false;
}

/* A free address of family, not in excl. *range_idx is the range whose
 * cursor it came from, or SIZE_MAX when it came from the released queue.
 * 0, or -1 when the family's ranges are full. Changes nothing. */
static int alloc_find_ip(const struct alloc *a, int family, const struct svcd_ip *excl,
                         size_t n_excl, struct svcd_ip *out, size_t *range_idx)
{
    for (size_t i = 0; i < a->n_ranges; i++) {
        const struct alloc_range *r = &a->ranges[i];
        if (r->cidr.addr.family != family || r->done || r->next > r->last)
            continue;
        for (u128 v = r->next;; v++) {
            alloc_u_ip(family, v, out);
            if (!alloc_ip_owner(a, out) && !alloc_rel_ip_has(a, out) &&
                !alloc_ip_in(out, excl, n_excl)) {
                *range_idx = i;
                return 0;
            }
            if (v == r->last)
                break;
        }
    }
    for (size_t i = 0; i < a->n_rel_ips; i++) {
        const struct svcd_ip *ip = &a->rel_ips[i];
        if (ip->family == family && alloc_range_of(a, ip) && !alloc_ip_owner(a, ip) &&
            !alloc_ip_in(ip, excl, n_excl)) {
            *out = *ip;
            *range_idx = SIZE_MAX;
            return 0;
        }
    }
    return -1;
}

static bool alloc_port_in(uint16_t port, const uint16_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == port)
            return true;
    return false;
}

/* A node port free for every protocol and not in excl: never-used ones
 * first (*cursor set), then the released queue. 0 when none is left.
 * Changes nothing. */
static uint16_t alloc_find_port(const struct alloc *a, const uint16_t *excl, size_t n_excl,
                                bool *cursor)
{
    *cursor = true;
    if (a->np_min && a->np_next >= a->np_min) {
        for (unsigned p = a->np_next; p <= a->np_max; p++) {
            if (alloc_port_free_all(a, (uint16_t)p) && !alloc_rel_port_has(a, (uint16_t)p) &&
                !alloc_port_in((uint16_t)p, excl, n_excl))
                return (uint16_t)p;
        }
    }
    *cursor = false;
    for (size_t i = 0; i < a->n_rel_ports; i++) {
        uint16_t p = a->rel_ports[i];
        if (p >= a->np_min && p <= a->np_max && alloc_port_free_all(a, p) &&
            !alloc_port_in(p, excl, n_excl))
            return p;
    }
    return 0;
}

/* ---- alloc_service -------------------------------------------------------- */

/* The planned allocation of one Service. */
struct alloc_plan {
    struct svcd_ip ips[2];
    size_t n_ips;
    size_t ip_range[2];        /* cursor range, SIZE_MAX = explicit/kept/released */
    uint16_t *node_ports;      /* per service port (NULL: no node ports) */
    bool *np_cursor;           /* per service port: came from the cursor */
    uint16_t hc_port;
    bool hc_cursor;
};

static struct alloc_rec *alloc_rec_get(const struct alloc *a, const char *ns, const char *name)
{
    char key[520];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    return hmap_get(a->recs, key);
}

/* The families the Service gets, primary first (as the API server's
 * initIPFamilyFields). 0, or -1 with err. */
static int alloc_families(const struct alloc *a, const struct svcd_service *s,
                          const struct alloc_rec *rec, int fam[2], size_t *n,
                          char *err, size_t errlen)
{
    *n = 0;
    for (size_t i = 0; i < s->n_ip_families && i < 2; i++)
        fam[(*n)++] = s->ip_families[i];
    if (*n == 0)
        for (size_t i = 0; i < s->n_cluster_ips && i < 2; i++)
            fam[(*n)++] = s->cluster_ips[i].family;
    if (*n == 0 && rec && rec->n_ips) {
        /* keep the families it had (the range may have changed order) */
        fam[(*n)++] = rec->ips[0].family;
    }
    if (*n == 0) {
        if (a->n_ranges == 0)
            return 0;
        fam[(*n)++] = a->ranges[0].cidr.addr.family;
    }
    for (size_t i = 0; i < *n; i++) {
        if (a->n_ranges && !alloc_family_configured(a, fam[i]) &&
            !(i < s->n_cluster_ips)) {
            if (i == 1 && s->ip_family_policy == SVCD_IPFP_PREFER_DUAL) {
                *n = 1;
                break;
            }
            return alloc_err(err, errlen, "spec.ipFamilies[%zu]: %s is not configured on this "
                             "node (no --service-cidr of that family)", i,
                             alloc_family_name(fam[i]));
        }
    }
    if (*n == 1 && s->ip_family_policy != SVCD_IPFP_SINGLE && a->n_ranges) {
        int other = fam[0] == AF_INET ? AF_INET6 : AF_INET;
        if (alloc_family_configured(a, other))
            fam[(*n)++] = other;
        else if (s->ip_family_policy == SVCD_IPFP_REQUIRE_DUAL)
            return alloc_err(err, errlen, "spec.ipFamilyPolicy: RequireDualStack, but this node "
                             "has no %s --service-cidr", alloc_family_name(other));
    }
    return 0;
}

static int alloc_plan_ips(const struct alloc *a, const struct svcd_service *s,
                          const struct alloc_rec *rec, struct alloc_plan *pl,
                          char *err, size_t errlen)
{
    int fam[2];
    size_t nf;
    char ipb[INET6_ADDRSTRLEN], rng[512];

    pl->n_ips = 0;
    if (s->headless || s->type == SVCD_SVC_EXTERNAL_NAME)
        return 0;
    if (alloc_families(a, s, rec, fam, &nf, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < nf; i++) {
        struct svcd_ip *ip = &pl->ips[i];
        pl->ip_range[i] = SIZE_MAX;
        if (i < s->n_cluster_ips) {
            const struct alloc_rec *owner;
            *ip = s->cluster_ips[i];
            const char *field = s->n_cluster_ips > 1 ? "spec.clusterIPs" : "spec.clusterIP";
            if (a->n_ranges && !alloc_range_of(a, ip)) {
                alloc_ranges_text(a, rng, sizeof(rng));
                return alloc_err(err, errlen, "%s: %s is not in --service-cidr %s "
                                 "(or is its network or broadcast address)", field,
                                 svcd_ip_format(ip, ipb, sizeof(ipb)), rng);
            }
            owner = alloc_ip_owner(a, ip);
            if (owner && owner != rec)
                return alloc_err(err, errlen, "%s: %s is already allocated to Service %s",
                                 field, svcd_ip_format(ip, ipb, sizeof(ipb)), owner->key);
            continue;
        }
        if (a->n_ranges == 0) {
            nf = i;                      /* nothing to allocate from */
            break;
        }
        /* Keep the address it had for this family, if still in range. */
        bool kept = false;
        for (size_t k = 0; rec && k < rec->n_ips && !kept; k++) {
            if (rec->ips[k].family == fam[i] && alloc_range_of(a, &rec->ips[k]) &&
                !alloc_ip_in(&rec->ips[k], pl->ips, i) &&
                !alloc_ip_in(&rec->ips[k], s->cluster_ips, s->n_cluster_ips)) {
                *ip = rec->ips[k];
                kept = true;
            }
        }
        if (kept)
            continue;
        if (alloc_find_ip(a, fam[i], pl->ips, i, ip, &pl->ip_range[i]) < 0) {
            alloc_ranges_text(a, rng, sizeof(rng));
            return alloc_err(err, errlen, "spec.clusterIPs: no free %s address left in "
                             "--service-cidr %s", alloc_family_name(fam[i]), rng);
        }
    }
    pl->n_ips = nf;
    return 0;
}

static bool alloc_np_wanted(const struct svcd_service *s)
{
    return s->type == SVCD_SVC_NODE_PORT || s->type == SVCD_SVC_LOAD_BALANCER;
}

/* Checks one explicit node port. */
static int alloc_check_port(const struct alloc *a, const struct alloc_rec *rec,
                            enum svcd_proto proto, uint16_t port, const char *field,
                            char *err, size_t errlen)
{
    const struct alloc_rec *owner;
    if (port < a->np_min || port > a->np_max)
        return alloc_err(err, errlen, "%s: %u is outside --node-port-range %u-%u", field,
                         port, a->np_min, a->np_max);
    owner = alloc_port_owner(a, proto, port);
    if (owner && owner != rec)
        return alloc_err(err, errlen, "%s: %u/%s is already allocated to Service %s", field,
                         port, svcd_proto_name(proto), owner->key);
    return 0;
}

static int alloc_plan_ports(const struct alloc *a, const struct svcd_service *s,
                            const struct alloc_rec *rec, struct alloc_plan *pl,
                            char *err, size_t errlen)
{
    char field[64];
    size_t n = s->n_ports;
    uint16_t *excl;

    pl->hc_port = 0;
    if (!alloc_np_wanted(s))
        return 0;
    if (!(pl->node_ports = calloc(n + 1, sizeof(*pl->node_ports))) ||
        !(pl->np_cursor = calloc(n + 1, sizeof(*pl->np_cursor))) ||
        !(excl = calloc(n + 1, sizeof(*excl))))
        return alloc_err(err, errlen, "out of memory");
    size_t n_excl = 0;
    /* Explicit ones first, so kept or new ones never take them. */
    for (size_t i = 0; i < n; i++) {
        const struct svcd_service_port *sp = &s->ports[i];
        if (!sp->node_port)
            continue;
        snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
        if (alloc_check_port(a, rec, sp->protocol, sp->node_port, field, err, errlen) < 0)
            goto fail;
        pl->node_ports[i] = sp->node_port;
        excl[n_excl++] = sp->node_port;
    }
    bool hc = s->type == SVCD_SVC_LOAD_BALANCER && s->external_policy == SVCD_POLICY_LOCAL;
    if (hc && s->health_check_node_port) {
        if (alloc_check_port(a, rec, SVCD_PROTO_TCP, s->health_check_node_port,
                             "spec.healthCheckNodePort", err, errlen) < 0)
            goto fail;
        if (alloc_port_in(s->health_check_node_port, excl, n_excl)) {
            alloc_err(err, errlen, "spec.healthCheckNodePort: %u is also a nodePort of this "
                      "Service", s->health_check_node_port);
            goto fail;
        }
        pl->hc_port = s->health_check_node_port;
        excl[n_excl++] = pl->hc_port;
    }
    for (size_t i = 0; i < n; i++) {
        const struct svcd_service_port *sp = &s->ports[i];
        if (pl->node_ports[i])
            continue;
        /* The one it had for this (protocol, port). */
        for (size_t k = 0; rec && k < rec->n_nps; k++) {
            const struct alloc_np *np = &rec->nps[k];
            if (np->proto == sp->protocol && np->port == sp->port &&
                np->node_port >= a->np_min && np->node_port <= a->np_max &&
                !alloc_port_in(np->node_port, excl, n_excl)) {
                pl->node_ports[i] = np->node_port;
                break;
            }
        }
        /* The same port number under another protocol shares its node port,
         * as the API server does (53/TCP and 53/UDP). */
        for (size_t j = 0; j < n && !pl->node_ports[i]; j++) {
            uint16_t np = pl->node_ports[j];
            const struct alloc_rec *owner;
            if (j == i || !np || s->ports[j].port != sp->port ||
                s->ports[j].protocol == sp->protocol)
                continue;
            owner = alloc_port_owner(a, sp->protocol, np);
            if (!owner || owner == rec)
                pl->node_ports[i] = np;
        }
        if (!pl->node_ports[i]) {
            uint16_t np = alloc_find_port(a, excl, n_excl, &pl->np_cursor[i]);
            if (!np) {
                snprintf(field, sizeof(field), "spec.ports[%zu].nodePort", i);
                alloc_err(err, errlen, "%s: no free port left in --node-port-range %u-%u",
                          field, a->np_min, a->np_max);
                goto fail;
            }
            pl->node_ports[i] = np;
        }
        excl[n_excl++] = pl->node_ports[i];
    }
    if (hc && !pl->hc_port) {
        if (rec && rec->hc_port >= a->np_min && rec->hc_port <= a->np_max &&
            !alloc_port_in(rec->hc_port, excl, n_excl))
            pl->hc_port = rec->hc_port;
        else if (!(pl->hc_port = alloc_find_port(a, excl, n_excl, &pl->hc_cursor))) {
            alloc_err(err, errlen, "spec.healthCheckNodePort: no free port left in "
                      "--node-port-range %u-%u", a->np_min, a->np_max);
            goto fail;
        }
    }
    free(excl);
    return 0;
fail:
    free(excl);
    return -1;
}

static struct alloc_rec *alloc_rec_new(struct alloc *a, const struct svcd_meta *m)
{
    struct alloc_rec *r = calloc(1, sizeof(*r));
    if (!r || asprintf(&r->key, "%s/%s", m->ns, m->name) < 0) {
        free(r);
        return NULL;
    }
    if (hmap_set(a->recs, r->key, r) < 0) {
        alloc_rec_free(r);
        return NULL;
    }
    return r;
}

/* Releases everything r holds; r itself stays. */
static void alloc_rec_release(struct alloc *a, struct alloc_rec *r)
{
    for (size_t i = 0; i < r->n_ips; i++)
        alloc_unclaim_ip(a, &r->ips[i]);
    for (size_t i = 0; i < r->n_nps; i++)
        alloc_unclaim_port(a, r->nps[i].proto, r->nps[i].node_port);
    if (r->hc_port)
        alloc_unclaim_port(a, SVCD_PROTO_TCP, r->hc_port);
    r->n_ips = 0;
    r->n_nps = 0;
    r->hc_port = 0;
}

static bool alloc_rec_same(const struct alloc_rec *r, const struct alloc_plan *pl,
                           const struct svcd_service *s)
{
    size_t n_nps = 0;
    if (r->n_ips != pl->n_ips || r->hc_port != pl->hc_port)
        return false;
    for (size_t i = 0; i < pl->n_ips; i++)
        if (!svcd_ip_equal(&r->ips[i], &pl->ips[i]))
            return false;
    for (size_t i = 0; pl->node_ports && i < s->n_ports; i++) {
        if (n_nps >= r->n_nps || r->nps[n_nps].proto != s->ports[i].protocol ||
            r->nps[n_nps].port != s->ports[i].port ||
            r->nps[n_nps].node_port != pl->node_ports[i])
            return false;
        n_nps++;
    }
    return n_nps == r->n_nps;
}

/* A port taken from the cursor moves it past that port. */
static void alloc_port_cursor(struct alloc *a, uint16_t port)
{
    if (port >= a->np_next)
        a->np_next = (uint16_t)(port >= a->np_max ? a->np_max : port + 1);
    if (port >= a->np_max)
        a->np_next = 0;          /* used up (0 is never a valid cursor) */
}

/* Makes r hold exactly the plan. 0 or -1 (ENOMEM; state may be partial). */
static int alloc_commit(struct alloc *a, struct alloc_rec *r, const struct alloc_plan *pl,
                        const struct svcd_service *s)
{
    struct alloc_np *nps = NULL;
    size_t n_nps = pl->node_ports ? s->n_ports : 0;
    bool gained = false;

    if (n_nps && !(nps = calloc(n_nps, sizeof(*nps))))
        return -1;
    /* Release what the Service no longer has. */
    for (size_t i = 0; i < r->n_ips; i++)
        if (!alloc_ip_in(&r->ips[i], pl->ips, pl->n_ips))
            alloc_unclaim_ip(a, &r->ips[i]);
    for (size_t i = 0; i < r->n_nps; i++) {
        bool still = false;
        for (size_t k = 0; k < n_nps && !still; k++)
            still = s->ports[k].protocol == r->nps[i].proto &&
                    pl->node_ports[k] == r->nps[i].node_port;
        if (!still)
            alloc_unclaim_port(a, r->nps[i].proto, r->nps[i].node_port);
    }
    if (r->hc_port && r->hc_port != pl->hc_port)
        alloc_unclaim_port(a, SVCD_PROTO_TCP, r->hc_port);
    /* Claim the new ones. */
    for (size_t i = 0; i < pl->n_ips; i++) {
        if (alloc_ip_owner(a, &pl->ips[i]) != r) {
            gained = true;
            if (alloc_claim_ip(a, r, &pl->ips[i]) < 0)
                goto nomem;
        }
        if (pl->ip_range[i] != SIZE_MAX) {
            struct alloc_range *rg = &a->ranges[pl->ip_range[i]];
            u128 v = alloc_ip_u(&pl->ips[i]);
            if (v >= rg->next) {
                if (v == rg->last)
                    rg->done = true;
                else
                    rg->next = v + 1;
            }
        }
        r->ips[i] = pl->ips[i];
    }
    r->n_ips = pl->n_ips;
    for (size_t i = 0; i < n_nps; i++) {
        uint16_t np = pl->node_ports[i];
        nps[i] = (struct alloc_np){ s->ports[i].protocol, s->ports[i].port, np };
        if (alloc_port_owner(a, s->ports[i].protocol, np) != r) {
            gained = true;
            if (alloc_claim_port(a, r, s->ports[i].protocol, np) < 0)
                goto nomem;
        }
        if (pl->np_cursor[i])
            alloc_port_cursor(a, np);
    }
    free(r->nps);
    r->nps = nps;
    r->n_nps = n_nps;
    if (pl->hc_port) {
        if (alloc_port_owner(a, SVCD_PROTO_TCP, pl->hc_port) != r) {
            gained = true;
            if (alloc_claim_port(a, r, SVCD_PROTO_TCP, pl->hc_port) < 0)
                return -1;
        }
        if (pl->hc_cursor)
            alloc_port_cursor(a, pl->hc_port);
    }
    r->hc_port = pl->hc_port;
    if (gained)
        r->unsaved = true;
    a->dirty = true;
    return 0;
nomem:
    free(nps);
    return -1;
}

/* Writes the allocation into the Service and its fingerprint. */
static void alloc_apply(const struct alloc_rec *r, struct svcd_service *s)
{
    uint64_t fp = s->meta.fingerprint;
    if (r->n_ips) {
        for (size_t i = 0; i < r->n_ips; i++) {
            s->cluster_ips[i] = r->ips[i];
            s->ip_families[i] = r->ips[i].family;
            fp = hmap_hash(r->ips[i].u.bytes, 16, fp);
        }
        s->n_cluster_ips = r->n_ips;
        s->n_ip_families = r->n_ips;
        if (r->n_ips == 2 && s->ip_family_policy == SVCD_IPFP_SINGLE)
            s->ip_family_policy = SVCD_IPFP_REQUIRE_DUAL;
    }
    for (size_t i = 0; i < r->n_nps && i < s->n_ports; i++) {
        s->ports[i].node_port = r->nps[i].node_port;
        fp = hmap_hash(&r->nps[i].node_port, sizeof(r->nps[i].node_port), fp);
    }
    s->health_check_node_port = r->hc_port;
    fp = hmap_hash(&r->hc_port, sizeof(r->hc_port), fp);
    s->meta.fingerprint = fp;
}

int alloc_service(struct alloc *a, struct svcd_service *s, char *err, size_t errlen)
{
    struct alloc_rec *rec = alloc_rec_get(a, s->meta.ns, s->meta.name);
    struct alloc_plan pl;
    int rc = -1;

    if (err && errlen)
        err[0] = '\0';
    memset(&pl, 0, sizeof(pl));
    if (alloc_plan_ips(a, s, rec, &pl, err, errlen) < 0 ||
        alloc_plan_ports(a, s, rec, &pl, err, errlen) < 0)
        goto out;
    if (!rec && pl.n_ips == 0 && !pl.node_ports) {
        rc = 0;                          /* nothing to hold */
        goto out;
    }
    if (!rec && !(rec = alloc_rec_new(a, &s->meta))) {
        alloc_err(err, errlen, "out of memory");
        goto out;
    }
    rec->seen = true;
    if (!alloc_rec_same(rec, &pl, s) && alloc_commit(a, rec, &pl, s) < 0) {
        alloc_err(err, errlen, "out of memory");
        goto out;
    }
    alloc_apply(rec, s);
    if (!rec->n_ips && !rec->n_nps && !rec->hc_port) {
        hmap_del(a->recs, rec->key);       /* holds nothing any more */
        alloc_rec_free(rec);
    }
    rc = 0;
out:
    free(pl.node_ports);
    free(pl.np_cursor);
    return rc;
}

void alloc_release(struct alloc *a, const char *ns, const char *name)
{
    struct alloc_rec *r = alloc_rec_get(a, ns, name);
    if (!r)
        return;
    alloc_rec_release(a, r);
    hmap_del(a->recs, r->key);
    alloc_rec_free(r);
    a->dirty = true;
}

void alloc_keep(struct alloc *a, const char *ns, const char *name)
{
    struct alloc_rec *r = alloc_rec_get(a, ns, name);
    if (r)
        r->seen = true;
}

static int alloc_unseen_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    ((struct alloc_rec *)value)->seen = false;
    return 0;
}

void alloc_mark_unseen(struct alloc *a)
{
    hmap_foreach(a->recs, alloc_unseen_cb, NULL);
}

struct alloc_keys {
    char **keys;
    size_t n, cap;
    bool unsaved;              /* collect unsaved instead of unseen */
};

static int alloc_collect_cb(void *ctx, const char *key, void *value)
{
    struct alloc_keys *k = ctx;
    struct alloc_rec *r = value;
    if (k->unsaved ? !r->unsaved : r->seen)
        return 0;
    if (VEC_RESERVE(k->keys, k->n, k->cap, 16) < 0)
        return 1;
    k->keys[k->n++] = (char *)key;
    return 0;
}

size_t alloc_release_unseen(struct alloc *a)
{
    struct alloc_keys k = { 0 };
    hmap_foreach(a->recs, alloc_collect_cb, &k);
    for (size_t i = 0; i < k.n; i++) {
        struct alloc_rec *r = hmap_get(a->recs, k.keys[i]);
        alloc_rec_release(a, r);
        hmap_del(a->recs, r->key);
        alloc_rec_free(r);
        a->dirty = true;
    }
    free(k.keys);
    return k.n;
}

void alloc_foreach_unsaved(const struct alloc *a, void (*cb)(void *ctx, const char *key),
                           void *ctx)
{
    struct alloc_keys k = { .unsaved = true };
    hmap_foreach(a->recs, alloc_collect_cb, &k);
    for (size_t i = 0; i < k.n; i++)
        cb(ctx, k.keys[i]);
    free(k.keys);
}

static int alloc_count_cb(void *ctx, const char *key, void *value)
{
    struct alloc_stats *st = ctx;
    const struct alloc_rec *r = value;
    (void)key;
    st->services++;
    st->cluster_ips += r->n_ips;
    st->node_ports += r->n_nps + (r->hc_port != 0);
    return 0;
}

void alloc_get_stats(const struct alloc *a, struct alloc_stats *out)
{
    memset(out, 0, sizeof(*out));
    hmap_foreach(a->recs, alloc_count_cb, out);
    out->released_ips = a->n_rel_ips;
    out->released_ports = a->n_rel_ports;
}

bool alloc_dirty(const struct alloc *a)
{
    return a->dirty;
}

/* ---- state file ------------------------------------------------------------ */

/* "10.96.0.0/16" (the dynamic band) or "10.96.0.0/16 lower". */
static void alloc_range_name(const struct alloc_range *r, char *buf, size_t len)
{
    char b[INET6_ADDRSTRLEN];
    snprintf(buf, len, "%s/%d%s", svcd_ip_format(&r->cidr.addr, b, sizeof(b)), r->cidr.prefix,
             r->lower ? " lower" : "");
}

static json_t *alloc_jip(const struct svcd_ip *ip)
{
    char b[INET6_ADDRSTRLEN];
    return json_string(svcd_ip_format(ip, b, sizeof(b)));
}

static int alloc_dump_rec(void *ctx, const char *key, void *value)
{
    json_t *svcs = ctx;
    const struct alloc_rec *r = value;
    json_t *o = json_object(), *ips = json_array(), *nps = json_array();
    for (size_t i = 0; i < r->n_ips; i++)
        json_array_append_new(ips, alloc_jip(&r->ips[i]));
    for (size_t i = 0; i < r->n_nps; i++)
        json_array_append_new(nps, json_pack("{s:s,s:i,s:i}", "protocol",
                                             svcd_proto_name(r->nps[i].proto), "port",
                                             (int)r->nps[i].port, "nodePort",
                                             (int)r->nps[i].node_port));
    json_object_set_new(o, "clusterIPs", ips);
    json_object_set_new(o, "nodePorts", nps);
    if (r->hc_port)
        json_object_set_new(o, "healthCheckNodePort", json_integer(r->hc_port));
    json_object_set_new(svcs, key, o);
    return 0;
}

char *alloc_dump_json(const struct alloc *a)
{
    json_t *root = json_object(), *svcs = json_object(), *rel = json_object();
    json_t *rips = json_array(), *rports = json_array(), *next = json_object();
    json_t *nips = json_object();
    char *out;

    hmap_foreach(a->recs, alloc_dump_rec, svcs);
    for (size_t i = 0; i < a->n_rel_ips; i++)
        json_array_append_new(rips, alloc_jip(&a->rel_ips[i]));
    for (size_t i = 0; i < a->n_rel_ports; i++)
        json_array_append_new(rports, json_integer(a->rel_ports[i]));
    for (size_t i = 0; i < a->n_ranges; i++) {
        const struct alloc_range *r = &a->ranges[i];
        char name[INET6_ADDRSTRLEN + 16];
        struct svcd_ip ip;
        alloc_range_name(r, name, sizeof(name));
        if (r->done) {
            json_object_set_new(nips, name, json_null());
        } else {
            alloc_u_ip(r->cidr.addr.family, r->next, &ip);
            json_object_set_new(nips, name, alloc_jip(&ip));
        }
    }
    json_object_set_new(next, "clusterIPs", nips);
    json_object_set_new(next, "nodePort", json_integer(a->np_next));
    json_object_set_new(rel, "clusterIPs", rips);
    json_object_set_new(rel, "nodePorts", rports);
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "services", svcs);
    json_object_set_new(root, "released", rel);
    json_object_set_new(root, "next", next);
    out = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    return out;
}

static int alloc_jparse_ip(json_t *v, struct svcd_ip *out)
{
    return json_is_string(v) ? svcd_ip_parse(json_string_value(v), out) : -1;
}

static int alloc_jport(json_t *v, uint16_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return -1;
    *out = (uint16_t)json_integer_value(v);
    return 0;
}

static int alloc_load_rec(struct alloc *a, const char *key, json_t *o, char *err, size_t errlen)
{
    json_t *ips = json_object_get(o, "clusterIPs"), *nps = json_object_get(o, "nodePorts");
    json_t *hc = json_object_get(o, "healthCheckNodePort"), *v;
    struct alloc_rec *r;
    size_t i;
    const char *slash = strchr(key, '/');

    if (!json_is_object(o) || !slash || slash == key || !slash[1] || strchr(slash + 1, '/'))
        return alloc_err(err, errlen, "services.%s: not a namespace/name with an object", key);
    if ((ips && (!json_is_array(ips) || json_array_size(ips) > 2)) ||
        (nps && !json_is_array(nps)))
        return alloc_err(err, errlen, "services.%s: bad clusterIPs or nodePorts", key);
    if (!(r = calloc(1, sizeof(*r))) || !(r->key = strdup(key)) ||
        hmap_set(a->recs, key, r) < 0) {
        alloc_rec_free(r);
        return alloc_err(err, errlen, "out of memory");
    }
    json_array_foreach(ips, i, v) {
        if (alloc_jparse_ip(v, &r->ips[i]) < 0)
            return alloc_err(err, errlen, "services.%s.clusterIPs[%zu]: not an address", key, i);
        if (alloc_ip_owner(a, &r->ips[i]))
            return alloc_err(err, errlen, "services.%s.clusterIPs[%zu]: held twice", key, i);
        if (alloc_claim_ip(a, r, &r->ips[i]) < 0)
            return alloc_err(err, errlen, "out of memory");
        r->n_ips = i + 1;
    }
    if (nps && json_array_size(nps) &&
        !(r->nps = calloc(json_array_size(nps), sizeof(*r->nps))))
        return alloc_err(err, errlen, "out of memory");
    json_array_foreach(nps, i, v) {
        struct alloc_np *np = &r->nps[i];
        json_t *pr = json_object_get(v, "protocol");
        if (!json_is_string(pr) || svcd_proto_parse(json_string_value(pr), &np->proto) < 0 ||
            alloc_jport(json_object_get(v, "port"), &np->port) < 0 ||
            alloc_jport(json_object_get(v, "nodePort"), &np->node_port) < 0)
            return alloc_err(err, errlen, "services.%s.nodePorts[%zu]: bad entry", key, i);
        if (alloc_port_owner(a, np->proto, np->node_port))
            return alloc_err(err, errlen, "services.%s.nodePorts[%zu]: held twice", key, i);
        if (alloc_claim_port(a, r, np->proto, np->node_port) < 0)
            return alloc_err(err, errlen, "out of memory");
        r->n_nps = i + 1;
    }
    if (hc) {
        if (alloc_jport(hc, &r->hc_port) < 0)
            return alloc_err(err, errlen, "services.%s.healthCheckNodePort: bad port", key);
        if (alloc_port_owner(a, SVCD_PROTO_TCP, r->hc_port))
            return alloc_err(err, errlen, "services.%s.healthCheckNodePort: held twice", key);
        if (alloc_claim_port(a, r, SVCD_PROTO_TCP, r->hc_port) < 0)
            return alloc_err(err, errlen, "out of memory");
    }
    return 0;
}

static int alloc_load_root(struct alloc *a, json_t *root, char *err, size_t errlen)
{
    json_t *svcs, *rel, *next, *v, *nips;
    const char *key;
    size_t i;

    if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1)
        return alloc_err(err, errlen, "not a version 1 state");
    svcs = json_object_get(root, "services");
    if (svcs && !json_is_object(svcs))
        return alloc_err(err, errlen, "services: not an object");
    json_object_foreach(svcs, key, v)
        if (alloc_load_rec(a, key, v, err, errlen) < 0)
            return -1;
    rel = json_object_get(root, "released");
    json_array_foreach(json_object_get(rel, "clusterIPs"), i, v) {
        struct svcd_ip ip;
        if (alloc_jparse_ip(v, &ip) < 0)
            return alloc_err(err, errlen, "released.clusterIPs[%zu]: not an address", i);
        if (!alloc_ip_owner(a, &ip) && alloc_rel_ip_push(a, &ip) < 0)
            return alloc_err(err, errlen, "out of memory");
    }
    json_array_foreach(json_object_get(rel, "nodePorts"), i, v) {
        uint16_t p;
        if (alloc_jport(v, &p) < 0)
            return alloc_err(err, errlen, "released.nodePorts[%zu]: not a port", i);
        if (alloc_port_free_all(a, p) && alloc_rel_port_push(a, p) < 0)
            return alloc_err(err, errlen, "out of memory");
    }
    next = json_object_get(root, "next");
    nips = json_object_get(next, "clusterIPs");
    for (size_t k = 0; k < a->n_ranges; k++) {
        struct alloc_range *r = &a->ranges[k];
        char name[INET6_ADDRSTRLEN + 16];
        struct svcd_ip ip;
        alloc_range_name(r, name, sizeof(name));
        v = json_object_get(nips, name);
        if (json_is_null(v)) {
            r->done = true;
        } else if (v) {
            u128 n;
            if (alloc_jparse_ip(v, &ip) < 0 || ip.family != r->cidr.addr.family)
                return alloc_err(err, errlen, "next.clusterIPs.%s: not an address", name);
            n = alloc_ip_u(&ip);
            if (n > r->last)
                r->done = true;
            else if (n > r->first)
                r->next = n;
        }
    }
    v = json_object_get(next, "nodePort");
    if (json_is_integer(v) && json_integer_value(v) == 0)
        a->np_next = 0;                  /* used up */
    else if (json_is_integer(v) && json_integer_value(v) > a->np_min &&
             json_integer_value(v) <= a->np_max)
        a->np_next = (uint16_t)json_integer_value(v);
    return 0;
}

int alloc_load_json(struct alloc *a, const char *data, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    int rc;

    alloc_clear(a);
    if (!root)
        return alloc_err(err, errlen, "line %d: %s", je.line, je.text);
    rc = alloc_load_root(a, root, err, errlen);
    json_decref(root);
    if (rc < 0) {
        alloc_clear(a);
        return -1;
    }
    a->dirty = false;
    free(a->saved);
    a->saved = alloc_dump_json(a);
    return 0;
}

int alloc_load(struct alloc *a, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX], bad[PATH_MAX + 16];
    struct stat sb;
    char *buf = NULL;
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/%s", dir, ALLOC_STATE_FILE);
    if (!(f = fopen(path, "re"))) {
        if (errno == ENOENT) {
            alloc_clear(a);
            free(a->saved);
            a->saved = alloc_dump_json(a);
            a->dirty = false;
            return 0;
        }
        return alloc_err(err, errlen, "%s: %s", path, strerror(errno));
    }
    if (fstat(fileno(f), &sb) < 0 || sb.st_size > (64 << 20) ||
        !(buf = malloc((size_t)sb.st_size + 1)) ||
        fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        fclose(f);
        free(buf);
        return alloc_err(err, errlen, "%s: cannot read", path);
    }
    fclose(f);
    char why[400];
    rc = alloc_load_json(a, buf, (size_t)sb.st_size, why, sizeof(why));
    free(buf);
    if (rc == 0)
        return 0;
    snprintf(bad, sizeof(bad), "%s.corrupt", path);
    if (rename(path, bad) < 0)
        return alloc_err(err, errlen, "%s: %s; cannot move it aside: %s", path, why,
                         strerror(errno));
    free(a->saved);
    a->saved = alloc_dump_json(a);
    a->dirty = true;
    alloc_err(err, errlen, "%s: %s; moved to %s, starting with no allocations", path, why, bad);
    return 1;
}

static int alloc_write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int alloc_save(struct alloc *a, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    char *text = alloc_dump_json(a);
    int fd = -1, dfd = -1, rc = -1;

    if (!text)
        return alloc_err(err, errlen, "out of memory");
    snprintf(path, sizeof(path), "%s/%s", dir, ALLOC_STATE_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || alloc_write_all(fd, text, strlen(text)) < 0 ||
        alloc_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        alloc_err(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        alloc_err(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        alloc_err(err, errlen, "rename to %s: %s", path, strerror(errno));
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        alloc_err(err, errlen, "%s: fsync: %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    if (dfd >= 0)
        close(dfd);
    if (rc == 0) {
        free(a->saved);
        a->saved = text;
        text = NULL;
        a->dirty = false;
        struct alloc_keys k = { .unsaved = true };
        hmap_foreach(a->recs, alloc_collect_cb, &k);
        for (size_t i = 0; i < k.n; i++)
            ((struct alloc_rec *)hmap_get(a->recs, k.keys[i]))->unsaved = false;
        free(k.keys);
    }
    free(text);
    return rc;
}

void alloc_rollback(struct alloc *a)
{
    char *saved = a->saved;
    char err[256];
    a->saved = NULL;
    if (!saved || alloc_load_json(a, saved, strlen(saved), err, sizeof(err)) < 0)
        alloc_clear(a);
    free(a->saved);
    a->saved = saved;
    a->dirty = false;
}
