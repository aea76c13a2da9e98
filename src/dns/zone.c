/*
 * zone: the cluster DNS zone built from the store (schema 1.1.0 of the
 * Kubernetes DNS-based service discovery specification; CoreDNS behaviour
 * where the specification is silent). See include/svcd/dns_zone.h.
 *
 * Layout: one hmap from lower-case wire owner name to struct zone_node.
 * A node holds a doubly linked list of pre-encoded records and a reference
 * count: one per record owned at that name plus one per record anywhere
 * below it, so empty non-terminals live exactly as long as something under
 * them. Each Service owns the records it produced (struct zone_svc), so a
 * commit removes and re-adds just the changed Services' records.
 */
#include "svcd/dns_zone.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/vec.h"

#define ZONE_MOD "dns"
#define ZONE_VERSION_TTL 28800
#define ZONE_SCHEMA_VERSION "1.1.0"

struct zone_node;

struct zone_rr {
    struct zone_rr *prev, *next;   /* in node->rrs */
    struct zone_node *node;
    uint16_t type;
    uint16_t rdlen;
    uint32_t ttl;
    uint8_t rdata[];               /* uncompressed wire rdata */
};

enum { NODE_PERMANENT = 1, NODE_NOT_AUTH = 2 };

struct zone_node {
    uint32_t refs;
    uint32_t rot;                  /* rotates multi-record answers */
    unsigned flags;
    struct zone_rr *rrs, *rrs_tail;
    size_t name_len;
    uint8_t name[];                /* lower-case wire */
};

/* The records one Service contributed. */
struct zone_svc {
    struct zone_rr **rrs;
    size_t n, cap;
};

/* The store subscription's context. */
struct zone_sub {
    struct dns_zone *z;
};

struct dns_zone {
    struct svcd_config cfg;
    struct store *st;
    struct zone_sub *sub;
    struct hmap *nodes;            /* wire name -> zone_node */
    struct hmap *svcs;             /* "ns/name" -> zone_svc */
    struct zone_svc perm;          /* apex records */
    uint64_t generation;
    uint32_t serial_base;
    uint8_t apex[DNS_NAME_MAX];
    size_t apex_len;
    uint8_t mname[DNS_NAME_MAX], rname[DNS_NAME_MAX];
    size_t mname_len, rname_len;
    uint8_t rev4[16], rev6[16];    /* "in-addr.arpa", "ip6.arpa" */
    size_t rev4_len, rev6_len;
};

/* ---- names ------------------------------------------------------------- */

/* Appends a text label (lower-cased); -1 if it is empty/too long or the
 * name would exceed 255 bytes with the root. */
static int zone_name_label(uint8_t *buf, size_t *len, const char *s, size_t slen)
{
    if (slen == 0 || slen > DNS_LABEL_MAX || *len + 1 + slen + 1 > DNS_NAME_MAX)
        return -1;
    buf[*len] = (uint8_t)slen;
    for (size_t i = 0; i < slen; i++) {
        char ch = s[i];
        buf[*len + 1 + i] = (uint8_t)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
    *len += 1 + slen;
    return 0;
}

static int zone_name_tail(uint8_t *buf, size_t *len, const uint8_t *tail, size_t tlen)
{
    if (*len + tlen > DNS_NAME_MAX)
        return -1;
    memcpy(buf + *len, tail, tlen);
    *len += tlen;
    return 0;
}

/* <name>.<ns>.svc.<zone> */
static int zone_name_svc(const struct dns_zone *z, const char *ns, const char *name,
                         uint8_t *out, size_t *len)
{
    *len = 0;
    if (zone_name_label(out, len, name, strlen(name)) < 0 ||
        zone_name_label(out, len, ns, strlen(ns)) < 0 ||
        zone_name_label(out, len, "svc", 3) < 0 ||
        zone_name_tail(out, len, z->apex, z->apex_len) < 0)
        return -1;
    return 0;
}

/* Dashed form of an address as CoreDNS writes it: 10-1-2-3, fd00--1. */
static void zone_ip_dashed(const struct svcd_ip *ip, char *buf, size_t blen)
{
    svcd_ip_format(ip, buf, blen);
    for (char *p = buf; *p; p++)
        if (*p == '.' || *p == ':')
            *p = '-';
}

/* Reverse owner name of an address (fully expanded for IPv6). */
static int zone_name_reverse(const struct dns_zone *z, const struct svcd_ip *ip,
                             uint8_t *out, size_t *len)
{
    char lab[4];
    *len = 0;
    if (ip->family == AF_INET) {
        for (int i = 3; i >= 0; i--) {
            int n = snprintf(lab, sizeof(lab), "%u", ip->u.bytes[i]);
            if (zone_name_label(out, len, lab, (size_t)n) < 0)
                return -1;
        }
        return zone_name_tail(out, len, z->rev4, z->rev4_len);
    }
    if (ip->family == AF_INET6) {
        static const char hex[] = "0123456789abcdef";
        for (int i = 15; i >= 0; i--) {
            lab[0] = hex[ip->u.bytes[i] & 0xf];
            zone_name_label(out, len, lab, 1);
            lab[0] = hex[ip->u.bytes[i] >> 4];
            zone_name_label(out, len, lab, 1);
        }
        return zone_name_tail(out, len, z->rev6, z->rev6_len);
    }
    return -1;
}

/* Parses a reverse name (lower-case wire) into an address; -1 when it is
 * not a complete in-addr.arpa / ip6.arpa address name. */
static int zone_reverse_parse(const struct dns_zone *z, const uint8_t *name, size_t len,
                              struct svcd_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    size_t i = 0;
    if (dns_name_is_subdomain(name, len, z->rev4, z->rev4_len)) {
        if (dns_name_labels(name, len) != 6)
            return -1;
        for (int k = 3; k >= 0; k--) {
            uint8_t l = name[i];
            if (l < 1 || l > 3)
                return -1;
            unsigned v = 0;
            for (uint8_t j = 1; j <= l; j++) {
                uint8_t ch = name[i + j];
                if (ch < '0' || ch > '9')
                    return -1;
                v = v * 10 + (unsigned)(ch - '0');
            }
            if (v > 255 || (l > 1 && name[i + 1] == '0'))
                return -1;
            ip->u.bytes[k] = (uint8_t)v;
            i += (size_t)l + 1;
        }
        ip->family = AF_INET;
        return 0;
    }
    if (dns_name_is_subdomain(name, len, z->rev6, z->rev6_len)) {
        if (dns_name_labels(name, len) != 34)
            return -1;
        for (int k = 31; k >= 0; k--) {
            if (name[i] != 1)
                return -1;
            uint8_t ch = name[i + 1];
            unsigned v;
            if (ch >= '0' && ch <= '9')
                v = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                v = (unsigned)(ch - 'a' + 10);
            else
                return -1;
            if (k & 1)
                ip->u.bytes[k / 2] |= (uint8_t)v;
            else
                ip->u.bytes[k / 2] |= (uint8_t)(v << 4);
            i += 2;
        }
        ip->family = AF_INET6;
        return 0;
    }
    return -1;
}

/* ---- nodes ------------------------------------------------------------- */

static struct zone_node *zone_node_get(const struct dns_zone *z, const uint8_t *name,
                                       size_t len)
{
    return hmap_get_bin(z->nodes, name, len);
}

static struct zone_node *zone_node_create(struct dns_zone *z, const uint8_t *name, size_t len)
{
    struct zone_node *n = calloc(1, sizeof(*n) + len);
    if (!n)
        return NULL;
    memcpy(n->name, name, len);
    n->name_len = len;
    if (hmap_set_bin(z->nodes, name, len, n) < 0) {
        free(n);
        return NULL;
    }
    return n;
}

static void zone_node_unref(struct dns_zone *z, const uint8_t *name, size_t len);

/* Takes a reference on name and on every ancestor up to a permanent node
 * (or the root, never created). Returns the node for name, or NULL on
 * ENOMEM (references taken so far are released). */
static struct zone_node *zone_node_ref(struct dns_zone *z, const uint8_t *name, size_t len)
{
    struct zone_node *first = NULL;
    size_t off = 0;
    while (off < len && name[off] != 0) {
        struct zone_node *n = zone_node_get(z, name + off, len - off);
        if (!n) {
            n = zone_node_create(z, name + off, len - off);
            if (!n) {
                if (off > 0)
                    zone_node_unref(z, name, len);  /* undo partial walk */
                return NULL;
            }
        }
        if (!first)
            first = n;
        if (n->flags & NODE_PERMANENT)
            break;
        n->refs++;
        off += (size_t)name[off] + 1;
    }
    return first;
}

/* Releases one reference on name and its ancestors; frees nodes reaching
 * zero. Tolerates a walk that stops early (partial ref). */
static void zone_node_unref(struct dns_zone *z, const uint8_t *name, size_t len)
{
    size_t off = 0;
    while (off < len && name[off] != 0) {
        struct zone_node *n = zone_node_get(z, name + off, len - off);
        if (!n || (n->flags & NODE_PERMANENT))
            break;
        off += (size_t)name[off] + 1;
        if (n->refs > 0 && --n->refs == 0) {
            hmap_del_bin(z->nodes, n->name, n->name_len);
            free(n);
        }
    }
}

/* ---- records ----------------------------------------------------------- */

static int zone_svc_push(struct zone_svc *s, struct zone_rr *rr)
{
    if (VEC_RESERVE(s->rrs, s->n, s->cap, 8) < 0)
        return -1;
    s->rrs[s->n++] = rr;
    return 0;
}

/* Adds a record at name, owned by s. 0 or -1 (ENOMEM). */
static int zone_rr_add(struct dns_zone *z, struct zone_svc *s, const uint8_t *name,
                       size_t len, uint16_t type, uint32_t ttl, const void *rdata,
                       size_t rdlen)
{
    if (rdlen > 65535)
        return -1;
    struct zone_rr *rr = calloc(1, sizeof(*rr) + rdlen);
    if (!rr)
        return -1;
    rr->type = type;
    rr->ttl = ttl;
    rr->rdlen = (uint16_t)rdlen;
    memcpy(rr->rdata, rdata, rdlen);
    if (zone_svc_push(s, rr) < 0) {
        free(rr);
        return -1;
    }
    struct zone_node *n = zone_node_ref(z, name, len);
    if (!n) {
        s->n--;
        free(rr);
        return -1;
    }
    rr->node = n;
    rr->prev = n->rrs_tail;
    if (n->rrs_tail)
        n->rrs_tail->next = rr;
    else
        n->rrs = rr;
    n->rrs_tail = rr;
    return 0;
}

static void zone_rr_remove(struct dns_zone *z, struct zone_rr *rr)
{
    struct zone_node *n = rr->node;
    if (rr->prev)
        rr->prev->next = rr->next;
    else
        n->rrs = rr->next;
    if (rr->next)
        rr->next->prev = rr->prev;
    else
        n->rrs_tail = rr->prev;
    /* the walk may free n: use a copy of its name */
    uint8_t name[DNS_NAME_MAX];
    size_t len = n->name_len;
    memcpy(name, n->name, len);
    zone_node_unref(z, name, len);
    free(rr);
}

static void zone_svc_clear(struct dns_zone *z, struct zone_svc *s)
{
    for (size_t i = s->n; i > 0; i--)
        zone_rr_remove(z, s->rrs[i - 1]);
    s->n = 0;
}

static void zone_svc_free(struct dns_zone *z, struct zone_svc *s)
{
    if (!s)
        return;
    zone_svc_clear(z, s);
    free(s->rrs);
    free(s);
}

static int zone_rr_addr(struct dns_zone *z, struct zone_svc *s, const uint8_t *name,
                        size_t len, const struct svcd_ip *ip)
{
    if (ip->family == AF_INET)
        return zone_rr_add(z, s, name, len, DNS_T_A, z->cfg.dns_ttl, ip->u.bytes, 4);
    if (ip->family == AF_INET6)
        return zone_rr_add(z, s, name, len, DNS_T_AAAA, z->cfg.dns_ttl, ip->u.bytes, 16);
    return 0;
}

static int zone_rr_ptr(struct dns_zone *z, struct zone_svc *s, const struct svcd_ip *ip,
                       const uint8_t *target, size_t tlen)
{
    uint8_t rev[DNS_NAME_MAX];
    size_t rlen;
    if (zone_name_reverse(z, ip, rev, &rlen) < 0)
        return 0;
    return zone_rr_add(z, s, rev, rlen, DNS_T_PTR, z->cfg.dns_ttl, target, tlen);
}

/* _<port>._<proto>.<base> */
static int zone_name_srv(const struct svcd_service_port *p, const uint8_t *base, size_t blen,
                         uint8_t *out, size_t *len)
{
    char lab[DNS_LABEL_MAX + 2];
    const char *proto = p->protocol == SVCD_PROTO_UDP ? "_udp"
                        : p->protocol == SVCD_PROTO_SCTP ? "_sctp" : "_tcp";
    int n = snprintf(lab, sizeof(lab), "_%s", p->name);
    *len = 0;
    if (n < 0 || (size_t)n >= sizeof(lab) ||
        zone_name_label(out, len, lab, (size_t)n) < 0 ||
        zone_name_label(out, len, proto, strlen(proto)) < 0 ||
        zone_name_tail(out, len, base, blen) < 0)
        return -1;
    return 0;
}

static int zone_rr_srv(struct dns_zone *z, struct zone_svc *s, const uint8_t *name,
                       size_t len, uint16_t weight, uint16_t port, const uint8_t *target,
                       size_t tlen)
{
    uint8_t rd[6 + DNS_NAME_MAX];
    rd[0] = 0; rd[1] = 0;                       /* priority */
    rd[2] = (uint8_t)(weight >> 8); rd[3] = (uint8_t)weight;
    rd[4] = (uint8_t)(port >> 8); rd[5] = (uint8_t)port;
    memcpy(rd + 6, target, tlen);
    return zone_rr_add(z, s, name, len, DNS_T_SRV, z->cfg.dns_ttl, rd, 6 + tlen);
}

/* Host label of a headless endpoint address: its hostname, else the
 * dashed address. */
static int zone_endpoint_name(const struct svcd_endpoint *e, const struct svcd_ip *ip,
                              const uint8_t *svcname, size_t slen, uint8_t *out, size_t *len)
{
    char dashed[INET6_ADDRSTRLEN];
    const char *host = e->hostname;
    if (!host || !*host) {
        zone_ip_dashed(ip, dashed, sizeof(dashed));
        host = dashed;
    }
    *len = 0;
    if (zone_name_label(out, len, host, strlen(host)) < 0 ||
        zone_name_tail(out, len, svcname, slen) < 0)
        return -1;
    return 0;
}

static uint16_t zone_srv_weight(size_t n)
{
    if (n == 0)
        return 100;
    size_t w = 100 / n;
    return (uint16_t)(w ? w : 1);
}

/* Builds every record of one Service into s. -1 on ENOMEM (s then holds
 * what was built). Names that cannot be encoded are skipped. */
static int zone_svc_build(struct dns_zone *z, struct zone_svc *s, const struct svcd_service *svc)
{
    uint8_t sn[DNS_NAME_MAX], nm[DNS_NAME_MAX], tn[DNS_NAME_MAX];
    size_t snl, nml, tnl;
    if (zone_name_svc(z, svc->meta.ns, svc->meta.name, sn, &snl) < 0) {
        log_warn(ZONE_MOD, "service %s/%s: name too long for DNS", svc->meta.ns,
                 svc->meta.name);
        return 0;
    }

    if (svc->type == SVCD_SVC_EXTERNAL_NAME) {
        if (!svc->external_name || dns_name_from_text(svc->external_name, tn, &tnl) < 0) {
            log_warn(ZONE_MOD, "service %s/%s: bad externalName", svc->meta.ns,
                     svc->meta.name);
            return 0;
        }
        dns_name_lower(tn, tn, tnl);
        return zone_rr_add(z, s, sn, snl, DNS_T_CNAME, z->cfg.dns_ttl, tn, tnl);
    }

    if (!svc->headless) {
        for (size_t i = 0; i < svc->n_cluster_ips; i++) {
            if (zone_rr_addr(z, s, sn, snl, &svc->cluster_ips[i]) < 0 ||
                zone_rr_ptr(z, s, &svc->cluster_ips[i], sn, snl) < 0)
                return -1;
        }
        for (size_t p = 0; p < svc->n_ports; p++) {
            const struct svcd_service_port *port = &svc->ports[p];
            if (!port->name || !*port->name || zone_name_srv(port, sn, snl, nm, &nml) < 0)
                continue;
            if (zone_rr_srv(z, s, nm, nml, 100, port->port, sn, snl) < 0)
                return -1;
        }
        return 0;
    }

    /* headless: ready endpoints (the store already made every endpoint
     * ready when publishNotReadyAddresses is set) */
    size_t n_eps = 0;
    const struct svcd_endpoint *eps = store_endpoints_get(z->st, svc->meta.ns, svc->meta.name,
                                                          &n_eps);
    for (size_t i = 0; i < n_eps; i++) {
        const struct svcd_endpoint *e = &eps[i];
        if (!e->ready)
            continue;
        for (size_t k = 0; k < e->n_ips; k++) {
            if (zone_rr_addr(z, s, sn, snl, &e->ips[k]) < 0)
                return -1;
            /* hostname name: all addresses under one name when there is a
             * hostname, one dashed name per address otherwise */
            if (zone_endpoint_name(e, &e->ips[k], sn, snl, tn, &tnl) < 0)
                continue;
            if (zone_rr_addr(z, s, tn, tnl, &e->ips[k]) < 0 ||
                zone_rr_ptr(z, s, &e->ips[k], tn, tnl) < 0)
                return -1;
        }
    }
    for (size_t p = 0; p < svc->n_ports; p++) {
        const struct svcd_service_port *port = &svc->ports[p];
        if (!port->name || !*port->name || zone_name_srv(port, sn, snl, nm, &nml) < 0)
            continue;
        size_t count = 0;
        for (size_t i = 0; i < n_eps; i++)
            if (eps[i].ready && eps[i].target_ports && eps[i].target_ports[p])
                count += (eps[i].hostname && *eps[i].hostname) ? 1 : eps[i].n_ips;
        uint16_t w = zone_srv_weight(count);
        for (size_t i = 0; i < n_eps; i++) {
            const struct svcd_endpoint *e = &eps[i];
            if (!e->ready || !e->target_ports || !e->target_ports[p] || e->n_ips == 0)
                continue;
            size_t targets = (e->hostname && *e->hostname) ? 1 : e->n_ips;
            for (size_t k = 0; k < targets; k++) {
                if (zone_endpoint_name(e, &e->ips[k], sn, snl, tn, &tnl) < 0)
                    continue;
                if (zone_rr_srv(z, s, nm, nml, w, e->target_ports[p], tn, tnl) < 0)
                    return -1;
            }
        }
    }
    return 0;
}

static void zone_svc_key(char *buf, size_t len, const char *ns, const char *name)
{
    snprintf(buf, len, "%s/%s", ns, name);
}

/* Rebuilds one Service's records from the store. */
static void zone_update_service(struct dns_zone *z, const char *ns, const char *name)
{
    char key[600];
    zone_svc_key(key, sizeof(key), ns, name);
    struct zone_svc *s = hmap_get(z->svcs, key);
    if (s)
        zone_svc_clear(z, s);
    const struct svcd_service *svc = store_service_get(z->st, ns, name);
    if (!svc) {
        if (s) {
            hmap_del(z->svcs, key);
            zone_svc_free(z, s);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || hmap_set(z->svcs, key, s) < 0) {
            free(s);
            log_err(ZONE_MOD, "out of memory adding service %s", key);
            return;
        }
    }
    if (zone_svc_build(z, s, svc) < 0)
        log_err(ZONE_MOD, "out of memory building records of %s (partial)", key);
}

static void zone_on_commit(void *ctx, struct store *st, uint64_t generation,
                           const struct store_change *changes, size_t n_changes,
                           bool pods_changed)
{
    struct zone_sub *sub = ctx;
    struct dns_zone *z = sub->z;
    if (!z)
        return;
    for (size_t i = 0; i < n_changes; i++)
        zone_update_service(z, changes[i].ns, changes[i].name);
    z->generation = generation;
    log_debug(ZONE_MOD, "zone at generation %llu: %zu names",
              (unsigned long long)generation, hmap_count(z->nodes));
}

static int zone_initial_cb(void *ctx, const struct svcd_service *svc)
{
    zone_update_service(ctx, svc->meta.ns, svc->meta.name);
    return 0;
}

/* ---- lifetime ---------------------------------------------------------- */

static struct zone_node *zone_permanent(struct dns_zone *z, const char *text, unsigned flags)
{
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    if (dns_name_from_text(text, w, &wl) < 0)
        return NULL;
    dns_name_lower(w, w, wl);
    struct zone_node *n = zone_node_get(z, w, wl);
    if (!n)
        n = zone_node_create(z, w, wl);
    if (n)
        n->flags |= NODE_PERMANENT | flags;
    return n;
}

static int zone_free_svc_cb(void *ctx, const char *key, void *value)
{
    zone_svc_free(ctx, value);
    return 0;
}

static int zone_free_node_cb(void *ctx, const char *key, void *value)
{
    struct zone_node *n = value;
    struct zone_rr *rr = n->rrs;
    while (rr) {
        struct zone_rr *next = rr->next;
        free(rr);
        rr = next;
    }
    free(n);
    return 0;
}

void dns_zone_free(struct dns_zone *z)
{
    if (!z)
        return;
    if (z->sub) {
        store_unsubscribe(z->st, z->sub);
        free(z->sub);
    }
    if (z->nodes && z->svcs) {
        hmap_foreach(z->svcs, zone_free_svc_cb, z);
        zone_svc_clear(z, &z->perm);
    }
    free(z->perm.rrs);
    hmap_free(z->svcs);
    if (z->nodes)
        hmap_foreach(z->nodes, zone_free_node_cb, NULL);
    hmap_free(z->nodes);
    free(z);
}

struct dns_zone *dns_zone_new(struct store *st, const struct svcd_config *cfg)
{
    struct dns_zone *z = calloc(1, sizeof(*z));
    char text[DNS_NAME_TEXT_MAX + 8];
    if (!z)
        goto fail;
    z->cfg = *cfg;
    z->st = st;
    z->serial_base = (uint32_t)time(NULL);
    z->nodes = hmap_new();
    z->svcs = hmap_new();
    if (!z->nodes || !z->svcs)
        goto fail;
    if (dns_name_from_text(cfg->cluster_domain[0] ? cfg->cluster_domain : "cluster.local",
                           z->apex, &z->apex_len) < 0 || z->apex_len <= 1) {
        log_err(ZONE_MOD, "bad cluster domain '%s'", cfg->cluster_domain);
        goto fail;
    }
    dns_name_lower(z->apex, z->apex, z->apex_len);
    dns_name_from_text("in-addr.arpa", z->rev4, &z->rev4_len);
    dns_name_from_text("ip6.arpa", z->rev6, &z->rev6_len);
    z->mname_len = z->rname_len = 0;
    if (zone_name_label(z->mname, &z->mname_len, "ns", 2) < 0 ||
        zone_name_label(z->mname, &z->mname_len, "dns", 3) < 0 ||
        zone_name_tail(z->mname, &z->mname_len, z->apex, z->apex_len) < 0 ||
        zone_name_label(z->rname, &z->rname_len, "hostmaster", 10) < 0 ||
        zone_name_tail(z->rname, &z->rname_len, z->apex, z->apex_len) < 0) {
        log_err(ZONE_MOD, "cluster domain '%s' too long", cfg->cluster_domain);
        goto fail;
    }
    char apex_text[DNS_NAME_TEXT_MAX];
    dns_name_to_text(z->apex, z->apex_len, apex_text, sizeof(apex_text));
    if (!zone_permanent(z, apex_text, 0) || !zone_permanent(z, "in-addr.arpa", NODE_NOT_AUTH) ||
        !zone_permanent(z, "ip6.arpa", NODE_NOT_AUTH))
        goto fail;
    snprintf(text, sizeof(text), "svc.%s", apex_text);
    if (!zone_permanent(z, text, 0))
        goto fail;
    snprintf(text, sizeof(text), "pod.%s", apex_text);
    if (!zone_permanent(z, text, 0))
        goto fail;
    /* apex NS, dns-version TXT */
    if (zone_rr_add(z, &z->perm, z->apex, z->apex_len, DNS_T_NS, cfg->dns_ttl, z->mname,
                    z->mname_len) < 0)
        goto fail;
    uint8_t vn[DNS_NAME_MAX];
    size_t vnl = 0;
    uint8_t txt[1 + sizeof(ZONE_SCHEMA_VERSION)];
    txt[0] = (uint8_t)(sizeof(ZONE_SCHEMA_VERSION) - 1);
    memcpy(txt + 1, ZONE_SCHEMA_VERSION, sizeof(ZONE_SCHEMA_VERSION) - 1);
    if (zone_name_label(vn, &vnl, "dns-version", 11) < 0 ||
        zone_name_tail(vn, &vnl, z->apex, z->apex_len) < 0 ||
        zone_rr_add(z, &z->perm, vn, vnl, DNS_T_TXT, ZONE_VERSION_TTL, txt,
                    sizeof(txt) - 1) < 0)
        goto fail;

    /* ns.dns.<zone>: the addresses svcd listens on (not wildcards), as
     * CoreDNS answers with its own Service IPs */
    for (size_t i = 0; i < cfg->n_dns_listen; i++) {
        const struct svcd_ip *ip = &cfg->dns_listen[i].ip;
        static const uint8_t zero[16];
        size_t alen = ip->family == AF_INET ? 4 : 16;
        bool dup = false;
        if (memcmp(ip->u.bytes, zero, alen) == 0)
            continue;
        for (size_t k = 0; k < i && !dup; k++)
            dup = svcd_ip_equal(ip, &cfg->dns_listen[k].ip);
        if (!dup && zone_rr_addr(z, &z->perm, z->mname, z->mname_len, ip) < 0)
            goto fail;
    }

    if (st) {
        store_foreach_service(st, zone_initial_cb, z);
        z->generation = store_generation(st);
        z->sub = calloc(1, sizeof(*z->sub));
        if (!z->sub)
            goto fail;
        z->sub->z = z;
        struct store_subscriber s = { .on_commit = zone_on_commit, .ctx = z->sub };
        if (store_subscribe(st, &s) < 0) {
            free(z->sub);
            z->sub = NULL;
            log_err(ZONE_MOD, "cannot subscribe to the store");
            goto fail;
        }
    }
    log_info(ZONE_MOD, "zone %s at generation %llu: %zu names", apex_text,
             (unsigned long long)z->generation, hmap_count(z->nodes));
    return z;
fail:
    if (!z)
        log_err(ZONE_MOD, "out of memory creating the zone");
    dns_zone_free(z);
    return NULL;
}

uint64_t dns_zone_generation(const struct dns_zone *z)
{
    return z->generation;
}

size_t dns_zone_names(const struct dns_zone *z)
{
    return hmap_count(z->nodes);
}

bool dns_zone_is_cluster_name(const struct dns_zone *z, const uint8_t *name, size_t len)
{
    return dns_name_is_subdomain(name, len, z->apex, z->apex_len);
}

const uint8_t *dns_zone_apex(const struct dns_zone *z, size_t *len)
{
    *len = z->apex_len;
    return z->apex;
}

/* ---- answering ---------------------------------------------------------- */

/* Writes one stored record with owner name `owner` (the question's
 * spelling, so its case is echoed and it compresses to a pointer). */
static int zone_emit(struct dns_builder *b, enum dns_section sec, const uint8_t *owner,
                     size_t olen, const struct zone_rr *rr)
{
    if (dns_builder_rr_start(b, sec, owner, olen, rr->type, DNS_C_IN, rr->ttl) < 0)
        return -1;
    int rc;
    switch (rr->type) {
    case DNS_T_CNAME:
    case DNS_T_PTR:
    case DNS_T_NS:
        rc = dns_builder_rdata_name(b, rr->rdata, rr->rdlen, true);
        break;
    case DNS_T_SRV:
        rc = dns_builder_rdata_bytes(b, rr->rdata, 6);
        if (rc == 0)
            rc = dns_builder_rdata_name(b, rr->rdata + 6, (size_t)rr->rdlen - 6, false);
        break;
    default:
        rc = dns_builder_rdata_bytes(b, rr->rdata, rr->rdlen);
        break;
    }
    if (rc < 0)
        return -1;
    return dns_builder_rr_end(b);
}

static int zone_emit_soa(const struct dns_zone *z, struct dns_builder *b, enum dns_section sec,
                         const uint8_t *owner, size_t olen)
{
    uint32_t serial = z->serial_base + (uint32_t)z->generation;
    if (dns_builder_rr_start(b, sec, owner, olen, DNS_T_SOA, DNS_C_IN, z->cfg.dns_ttl) < 0 ||
        dns_builder_rdata_name(b, z->mname, z->mname_len, true) < 0 ||
        dns_builder_rdata_name(b, z->rname, z->rname_len, true) < 0 ||
        dns_builder_rdata_u32(b, serial) < 0 || dns_builder_rdata_u32(b, 7200) < 0 ||
        dns_builder_rdata_u32(b, 1800) < 0 || dns_builder_rdata_u32(b, 86400) < 0 ||
        dns_builder_rdata_u32(b, z->cfg.dns_ttl) < 0)
        return -1;
    return dns_builder_rr_end(b);
}

static void zone_set_rcode(struct dns_builder *b, int rcode)
{
    uint16_t f = dns_builder_flags(b);
    f = (uint16_t)((f & ~0x000fu) | DNS_F_AA | (rcode & 0xf));
    dns_builder_set_flags(b, f);
}

/* The SOA owner for negative answers: the cluster apex, or the reverse
 * tree's apex for reverse names. */
static void zone_neg_owner(const struct dns_zone *z, const uint8_t *lname, size_t len,
                           const uint8_t **owner, size_t *olen)
{
    if (dns_name_is_subdomain(lname, len, z->rev4, z->rev4_len)) {
        *owner = z->rev4;
        *olen = z->rev4_len;
    } else if (dns_name_is_subdomain(lname, len, z->rev6, z->rev6_len)) {
        *owner = z->rev6;
        *olen = z->rev6_len;
    } else {
        *owner = z->apex;
        *olen = z->apex_len;
    }
}

static void zone_negative(const struct dns_zone *z, const uint8_t *lname, size_t len,
                          int rcode, struct dns_builder *b, struct dns_zone_result *res)
{
    const uint8_t *owner;
    size_t olen;
    zone_neg_owner(z, lname, len, &owner, &olen);
    zone_set_rcode(b, rcode);
    res->rcode = rcode;
    zone_emit_soa(z, b, DNS_SEC_AUTHORITY, owner, olen);
}

/* Emits the A/AAAA records of each SRV target in the additional section
 * (best effort: what does not fit is left out, no TC). */
static void zone_srv_additional(const struct dns_zone *z, struct dns_builder *b,
                                const struct zone_rr *const *srvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *t = srvs[i]->rdata + 6;
        size_t tl = (size_t)srvs[i]->rdlen - 6;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = srvs[j]->rdlen == srvs[i]->rdlen && memcmp(srvs[j]->rdata + 6, t, tl) == 0;
        if (dup)
            continue;
        const struct zone_node *tn = zone_node_get(z, t, tl);
        if (!tn)
            continue;
        for (const struct zone_rr *rr = tn->rrs; rr; rr = rr->next) {
            if (rr->type != DNS_T_A && rr->type != DNS_T_AAAA)
                continue;
            if (zone_emit(b, DNS_SEC_ADDITIONAL, tn->name, tn->name_len, rr) < 0) {
                b->full = false;     /* additional data is optional */
                return;
            }
        }
    }
}

/* Answers from a node: records of qtype (rotated), CNAME, ANY, or NODATA. */
static void zone_answer_node(struct dns_zone *z, struct zone_node *n, const struct dns_question *q,
                             const uint8_t *lname, struct dns_builder *b,
                             struct dns_zone_result *res)
{
    uint16_t qtype = q->qtype;
    zone_set_rcode(b, DNS_R_NOERROR);
    res->rcode = DNS_R_NOERROR;

    /* SOA at the apex is synthesized */
    if (n->name_len == z->apex_len && memcmp(n->name, z->apex, z->apex_len) == 0 &&
        (qtype == DNS_T_SOA || qtype == DNS_T_ANY)) {
        if (zone_emit_soa(z, b, DNS_SEC_ANSWER, q->name, q->name_len) < 0)
            res->truncated = true;
        return;
    }

    /* ExternalName: the CNAME answers every type */
    if (n->rrs && n->rrs->type == DNS_T_CNAME) {
        const struct zone_rr *rr = n->rrs;
        if (zone_emit(b, DNS_SEC_ANSWER, q->name, q->name_len, rr) < 0) {
            res->truncated = true;
            return;
        }
        if (qtype != DNS_T_CNAME && !dns_name_is_subdomain(rr->rdata, rr->rdlen, z->apex,
                                                            z->apex_len)) {
            res->external_cname = true;
            memcpy(res->cname_target, rr->rdata, rr->rdlen);
            res->cname_len = rr->rdlen;
        }
        return;
    }

    if (qtype == DNS_T_ANY && n->rrs)
        qtype = n->rrs->type;       /* RFC 8482: one RRset is enough */

    size_t count = 0;
    for (const struct zone_rr *rr = n->rrs; rr; rr = rr->next)
        if (rr->type == qtype)
            count++;
    if (count == 0) {
        zone_negative(z, lname, q->name_len, DNS_R_NOERROR, b, res);
        return;
    }

    /* rotate: start at a moving offset, wrap around */
    size_t start = count > 1 ? n->rot++ % count : 0;
    const struct zone_rr *srvs[32];
    size_t nsrv = 0;
    const struct zone_rr *rr = n->rrs;
    size_t idx = 0;
    /* find the start-th matching record */
    for (; rr; rr = rr->next)
        if (rr->type == qtype && idx++ == start)
            break;
    for (size_t done = 0; done < count; done++) {
        if (zone_emit(b, DNS_SEC_ANSWER, q->name, q->name_len, rr) < 0) {
            res->truncated = true;
            return;
        }
        if (qtype == DNS_T_SRV && nsrv < sizeof(srvs) / sizeof(srvs[0]))
            srvs[nsrv++] = rr;
        if (done + 1 == count)
            break;
        do {
            rr = rr->next ? rr->next : n->rrs;
        } while (rr->type != qtype);
    }
    if (nsrv)
        zone_srv_additional(z, b, srvs, nsrv);
}

/* <a-b-c-d>.<ns>.pod.<zone>: A/AAAA for a pod IP that exists in ns. */
static bool zone_answer_pod(struct dns_zone *z, const struct dns_question *q,
                            const uint8_t *lname, struct dns_builder *b,
                            struct dns_zone_result *res)
{
    if (!z->cfg.dns_pod_records || !z->st)
        return false;
    int zl = dns_name_labels(z->apex, z->apex_len);
    if (dns_name_labels(lname, q->name_len) != zl + 3)
        return false;
    const uint8_t *p = lname;
    uint8_t l1 = p[0];
    const uint8_t *ns = p + 1 + l1;
    uint8_t l2 = ns[0];
    const uint8_t *pod = ns + 1 + l2;
    if (pod[0] != 3 || memcmp(pod + 1, "pod", 3) != 0)
        return false;
    char ipbuf[DNS_LABEL_MAX + 1], nsbuf[DNS_LABEL_MAX + 1];
    memcpy(ipbuf, p + 1, l1);
    ipbuf[l1] = '\0';
    memcpy(nsbuf, ns + 1, l2);
    nsbuf[l2] = '\0';
    bool v6 = false;
    int dashes = 0;
    for (char *c = ipbuf; *c; c++) {
        if (*c == '-') {
            dashes++;
        } else if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) {
            return false;
        } else if (*c >= 'a') {
            v6 = true;
        }
    }
    if (dashes != 3)
        v6 = true;
    for (char *c = ipbuf; *c; c++)
        if (*c == '-')
            *c = v6 ? ':' : '.';
    struct svcd_ip ip;
    if (svcd_ip_parse(ipbuf, &ip) < 0)
        return false;
    const struct svcd_pod *pd = store_pod_by_ip(z->st, &ip);
    if (!pd || !pd->meta.ns || strcasecmp(pd->meta.ns, nsbuf) != 0)
        return false;
    zone_set_rcode(b, DNS_R_NOERROR);
    res->rcode = DNS_R_NOERROR;
    uint16_t want = ip.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
    if (q->qtype != want && q->qtype != DNS_T_ANY) {
        zone_negative(z, lname, q->name_len, DNS_R_NOERROR, b, res);
        return true;
    }
    if (dns_builder_rr(b, DNS_SEC_ANSWER, q->name, q->name_len, want, DNS_C_IN, z->cfg.dns_ttl,
                       ip.u.bytes, ip.family == AF_INET ? 4 : 16) < 0)
        res->truncated = true;
    return true;
}

/* Is this reverse name inside a service or pod CIDR? */
static bool zone_reverse_is_ours(const struct dns_zone *z, const uint8_t *lname, size_t len)
{
    struct svcd_ip ip;
    if (zone_reverse_parse(z, lname, len, &ip) < 0)
        return false;
    for (size_t i = 0; i < z->cfg.n_service_cidr; i++)
        if (svcd_cidr_contains(&z->cfg.service_cidr[i], &ip))
            return true;
    for (size_t i = 0; i < z->cfg.n_pod_cidr; i++)
        if (svcd_cidr_contains(&z->cfg.pod_cidr[i], &ip))
            return true;
    return false;
}

/* Autopath (CoreDNS "autopath @kubernetes"): a known pod asking
 * <name>.<its-ns>.svc.<zone> for a name that does not exist gets, in one
 * answer, a CNAME to the first of <name>.svc.<zone>, <name>.<zone> that
 * exists (followed by its records), else a CNAME to <name> that the server
 * resolves upstream (res->external_cname). False when it does not apply. */
static bool zone_autopath(struct dns_zone *z, const struct dns_question *q,
                          const uint8_t *lname, const struct svcd_ip *client,
                          struct dns_builder *b, struct dns_zone_result *res)
{
    if (!z->cfg.dns_autopath || !client || !z->st)
        return false;
    const struct svcd_pod *pod = store_pod_by_ip(z->st, client);
    if (!pod || !pod->meta.ns)
        return false;
    uint8_t sfx[DNS_NAME_MAX];
    size_t sl = 0;
    if (zone_name_label(sfx, &sl, pod->meta.ns, strlen(pod->meta.ns)) < 0 ||
        zone_name_label(sfx, &sl, "svc", 3) < 0 ||
        zone_name_tail(sfx, &sl, z->apex, z->apex_len) < 0)
        return false;
    if (q->name_len <= sl || !dns_name_is_subdomain(lname, q->name_len, sfx, sl))
        return false;
    size_t plen = q->name_len - sl;        /* the <name> labels */
    uint8_t cand[DNS_NAME_MAX];
    size_t cl;
    static const uint8_t svc_label[] = { 3, 's', 'v', 'c' };

    for (int k = 0; k < 2; k++) {
        cl = plen;
        memcpy(cand, lname, plen);
        if (k == 0) {
            if (cl + sizeof(svc_label) + z->apex_len > DNS_NAME_MAX)
                continue;
            memcpy(cand + cl, svc_label, sizeof(svc_label));
            cl += sizeof(svc_label);
        } else if (cl + z->apex_len > DNS_NAME_MAX) {
            continue;
        }
        memcpy(cand + cl, z->apex, z->apex_len);
        cl += z->apex_len;
        struct zone_node *n = zone_node_get(z, cand, cl);
        if (!n)
            continue;
        if (dns_builder_rr_start(b, DNS_SEC_ANSWER, q->name, q->name_len, DNS_T_CNAME,
                                 DNS_C_IN, z->cfg.dns_ttl) < 0 ||
            dns_builder_rdata_name(b, cand, cl, true) < 0 || dns_builder_rr_end(b) < 0) {
            res->truncated = true;
            zone_set_rcode(b, DNS_R_NOERROR);
            return true;
        }
        struct dns_question cq;
        memcpy(cq.name, cand, cl);
        cq.name_len = cl;
        cq.qtype = q->qtype;
        cq.qclass = DNS_C_IN;
        zone_answer_node(z, n, &cq, cand, b, res);
        return true;
    }
    /* upstream: <name>. */
    memcpy(cand, lname, plen);
    cand[plen] = 0;
    cl = plen + 1;
    if (dns_name_is_subdomain(cand, cl, z->apex, z->apex_len))
        return false;
    zone_set_rcode(b, DNS_R_NOERROR);
    res->rcode = DNS_R_NOERROR;
    if (dns_builder_rr_start(b, DNS_SEC_ANSWER, q->name, q->name_len, DNS_T_CNAME, DNS_C_IN,
                             z->cfg.dns_ttl) < 0 ||
        dns_builder_rdata_name(b, cand, cl, true) < 0 || dns_builder_rr_end(b) < 0) {
        res->truncated = true;
        return true;
    }
    res->external_cname = true;
    memcpy(res->cname_target, cand, cl);
    res->cname_len = cl;
    return true;
}

enum dns_zone_status dns_zone_answer(struct dns_zone *z, const struct dns_question *q,
                                     const struct svcd_ip *client, struct dns_builder *b,
                                     struct dns_zone_result *res)
{
    uint8_t lname[DNS_NAME_MAX];
    memset(res, 0, sizeof(*res));
    if (q->name_len > DNS_NAME_MAX || q->name_len < 1)
        return DNS_ZONE_NOT_AUTH;
    dns_name_lower(lname, q->name, q->name_len);

    bool cluster = dns_name_is_subdomain(lname, q->name_len, z->apex, z->apex_len);
    struct zone_node *n = NULL;
    if (cluster) {
        n = zone_node_get(z, lname, q->name_len);
    } else if (dns_name_is_subdomain(lname, q->name_len, z->rev4, z->rev4_len) ||
               dns_name_is_subdomain(lname, q->name_len, z->rev6, z->rev6_len)) {
        n = zone_node_get(z, lname, q->name_len);
        if (n && (n->flags & NODE_NOT_AUTH))
            return DNS_ZONE_NOT_AUTH;
        if (!n && !zone_reverse_is_ours(z, lname, q->name_len))
            return DNS_ZONE_NOT_AUTH;
    } else {
        return DNS_ZONE_NOT_AUTH;
    }

    if (n) {
        zone_answer_node(z, n, q, lname, b, res);
        return DNS_ZONE_ANSWERED;
    }
    if (cluster && zone_answer_pod(z, q, lname, b, res))
        return DNS_ZONE_ANSWERED;
    if (cluster && zone_autopath(z, q, lname, client, b, res))
        return DNS_ZONE_ANSWERED;
    zone_negative(z, lname, q->name_len, DNS_R_NXDOMAIN, b, res);
    return DNS_ZONE_ANSWERED;
}
