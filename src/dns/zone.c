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

enum { NODE_PERMANENT = 1, NODE_NOT_AUTH = 2, NODE_APEX = 4 };

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

/* A reverse zone svcd is authoritative for (from a service or pod CIDR). */
struct zone_rev {
    uint8_t name[DNS_NAME_MAX];
    size_t len;
};

struct dns_zone {
    struct svcd_config cfg;
    struct zone_rev rz[2 * SVCD_MAX_CIDR];
    size_t n_rz;
    struct hmap *ns_refs;          /* namespaces holding <ns>.svc / <ns>.pod */
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

/* Parses a reverse name (lower-case wire, below in-addr.arpa or ip6.arpa)
 * into the address prefix it names: *bits is 8 per decimal label (IPv4) or
 * 4 per nibble label (IPv6), so 32 / 128 for a complete address. -1 when a
 * label is not an octet / nibble or there are too many labels. */
static int zone_reverse_parse(const struct dns_zone *z, const uint8_t *name, size_t len,
                              struct svcd_ip *ip, int *bits)
{
    memset(ip, 0, sizeof(*ip));
    bool v4 = dns_name_is_subdomain(name, len, z->rev4, z->rev4_len);
    if (!v4 && !dns_name_is_subdomain(name, len, z->rev6, z->rev6_len))
        return -1;
    int labels = dns_name_labels(name, len) - 2;
    if (labels < 0 || labels > (v4 ? 4 : 32))
        return -1;
    size_t i = 0;
    for (int k = labels - 1; k >= 0; k--) {
        uint8_t l = name[i];
        if (v4) {
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
        } else {
            if (l != 1)
                return -1;
            uint8_t ch = name[i + 1];
            unsigned v;
            if (ch >= '0' && ch <= '9')
                v = (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f')
                v = (unsigned)(ch - 'a' + 10);
            else
                return -1;
            ip->u.bytes[k / 2] |= (uint8_t)((k & 1) ? v : v << 4);
        }
        i += (size_t)l + 1;
    }
    ip->family = v4 ? AF_INET : AF_INET6;
    *bits = labels * (v4 ? 8 : 4);
    return 0;
}

/* The reverse zone of a CIDR: its prefix rounded down to whole octets
 * (IPv4) or nibbles (IPv6), e.g. 10.96.0.0/12 -> 10.in-addr.arpa,
 * fd00:10:96::/108 -> 27 nibbles.ip6.arpa. -1 for prefixes too short to
 * name one label. */
static int zone_name_rev_zone(const struct dns_zone *z, const struct svcd_cidr *c,
                              uint8_t *out, size_t *len)
{
    static const char hex[] = "0123456789abcdef";
    char lab[4];
    *len = 0;
    if (c->addr.family == AF_INET) {
        for (int k = c->prefix / 8 - 1; k >= 0; k--) {
            int n = snprintf(lab, sizeof(lab), "%u", c->addr.u.bytes[k]);
            if (zone_name_label(out, len, lab, (size_t)n) < 0)
                return -1;
        }
        return *len ? zone_name_tail(out, len, z->rev4, z->rev4_len) : -1;
    }
    for (int k = c->prefix / 4 - 1; k >= 0; k--) {
        uint8_t byte = c->addr.u.bytes[k / 2];
        lab[0] = hex[(k & 1) ? (byte & 0xf) : (byte >> 4)];
        if (zone_name_label(out, len, lab, 1) < 0)
            return -1;
    }
    return *len ? zone_name_tail(out, len, z->rev6, z->rev6_len) : -1;
}

/* The longest reverse zone (of a service or pod CIDR) containing lname,
 * or NULL. */
static const struct zone_rev *zone_rev_zone(const struct dns_zone *z, const uint8_t *lname,
                                            size_t len)
{
    const struct zone_rev *best = NULL;
    for (size_t i = 0; i < z->n_rz; i++)
        if (dns_name_is_subdomain(lname, len, z->rz[i].name, z->rz[i].len) &&
            (!best || z->rz[i].len > best->len))
            best = &z->rz[i];
    return best;
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

/* One Service's build: the records go to s; seen holds every (name, type,
 * rdata) added so far, so the same address found in two EndpointSlices (or
 * two endpoints sharing a hostname) gives one record, not two. */
struct zone_build {
    struct dns_zone *z;
    struct zone_svc *s;
    struct hmap *seen;
};

enum { SEEN_RR = 'r', SEEN_SRV_TARGET = 't' };

/* Records (tag, name, type, data) in bc->seen. 1 if new, 0 if already
 * there, -1 on ENOMEM. */
static int zone_seen(struct zone_build *bc, uint8_t tag, const uint8_t *name, size_t len,
                     uint16_t type, const void *data, size_t dlen)
{
    uint8_t key[2 + DNS_NAME_MAX + 2 + 6 + DNS_NAME_MAX];
    if (len > DNS_NAME_MAX || dlen > 6 + DNS_NAME_MAX)
        return -1;
    key[0] = tag;
    key[1] = (uint8_t)len;
    memcpy(key + 2, name, len);
    key[2 + len] = (uint8_t)(type >> 8);
    key[3 + len] = (uint8_t)type;
    memcpy(key + 4 + len, data, dlen);
    size_t klen = 4 + len + dlen;
    if (hmap_get_bin(bc->seen, key, klen))
        return 0;
    return hmap_set_bin(bc->seen, key, klen, bc) < 0 ? -1 : 1;
}

/* Adds a record of the Service being built unless it already has it. */
static int zone_build_add(struct zone_build *bc, const uint8_t *name, size_t len, uint16_t type,
                          const void *rdata, size_t rdlen)
{
    int fresh = zone_seen(bc, SEEN_RR, name, len, type, rdata, rdlen);
    if (fresh <= 0)
        return fresh;
    return zone_rr_add(bc->z, bc->s, name, len, type, bc->z->cfg.dns_ttl, rdata, rdlen);
}

static int zone_rr_addr(struct zone_build *bc, const uint8_t *name, size_t len,
                        const struct svcd_ip *ip)
{
    if (ip->family == AF_INET)
        return zone_build_add(bc, name, len, DNS_T_A, ip->u.bytes, 4);
    if (ip->family == AF_INET6)
        return zone_build_add(bc, name, len, DNS_T_AAAA, ip->u.bytes, 16);
    return 0;
}

static int zone_rr_ptr(struct zone_build *bc, const struct svcd_ip *ip, const uint8_t *target,
                       size_t tlen)
{
    uint8_t rev[DNS_NAME_MAX];
    size_t rlen;
    if (zone_name_reverse(bc->z, ip, rev, &rlen) < 0)
        return 0;
    return zone_build_add(bc, rev, rlen, DNS_T_PTR, target, tlen);
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

static int zone_rr_srv(struct zone_build *bc, const uint8_t *name, size_t len, uint16_t weight,
                       uint16_t port, const uint8_t *target, size_t tlen)
{
    uint8_t rd[6 + DNS_NAME_MAX];
    rd[0] = 0; rd[1] = 0;                       /* priority */
    rd[2] = (uint8_t)(weight >> 8); rd[3] = (uint8_t)weight;
    rd[4] = (uint8_t)(port >> 8); rd[5] = (uint8_t)port;
    memcpy(rd + 6, target, tlen);
    return zone_build_add(bc, name, len, DNS_T_SRV, rd, 6 + tlen);
}

/* Host label of a headless endpoint address: its hostname, else the
 * dashed address. -1 when the name cannot be encoded (a hostname over 63
 * octets, or a name over 255). */
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

/* The SRV records of a headless Service at name nm: one per distinct
 * (target port, endpoint name) over the ports [p0, p1). Counted first so
 * the weight is 100 / number of distinct targets. */
static int zone_headless_srv(struct zone_build *bc, const struct svcd_endpoint *eps, size_t n_eps, size_t p0,
                             size_t p1, const uint8_t *sn, size_t snl, const uint8_t *nm,
                             size_t nml)
{
    uint8_t tn[DNS_NAME_MAX], key[2 + DNS_NAME_MAX];
    size_t tnl, count = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint16_t w = zone_srv_weight(count);
        for (size_t p = p0; p < p1; p++) {
            for (size_t i = 0; i < n_eps; i++) {
                const struct svcd_endpoint *e = &eps[i];
                if (!e->ready || !e->target_ports || !e->target_ports[p] || e->n_ips == 0)
                    continue;
                uint16_t port = e->target_ports[p];
                size_t targets = (e->hostname && *e->hostname) ? 1 : e->n_ips;
                for (size_t k = 0; k < targets; k++) {
                    if (zone_endpoint_name(e, &e->ips[k], sn, snl, tn, &tnl) < 0)
                        continue;
                    if (pass == 1) {
                        if (zone_rr_srv(bc, nm, nml, w, port, tn, tnl) < 0)
                            return -1;
                        continue;
                    }
                    key[0] = (uint8_t)(port >> 8);
                    key[1] = (uint8_t)port;
                    memcpy(key + 2, tn, tnl);
                    int fresh = zone_seen(bc, SEEN_SRV_TARGET, nm, nml, DNS_T_SRV, key, 2 + tnl);
                    if (fresh < 0)
                        return -1;
                    count += (size_t)fresh;
                }
            }
        }
        if (count == 0)
            break;
    }
    return 0;
}

/* Builds every record of one Service into bc->s. -1 on ENOMEM (s then
 * holds what was built). Names that cannot be encoded are skipped, with a
 * warning. */
static int zone_svc_build(struct zone_build *bc, const struct svcd_service *svc)
{
    struct dns_zone *z = bc->z;
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
        return zone_build_add(bc, sn, snl, DNS_T_CNAME, tn, tnl);
    }

    if (!svc->headless) {
        for (size_t i = 0; i < svc->n_cluster_ips; i++) {
            if (zone_rr_addr(bc, sn, snl, &svc->cluster_ips[i]) < 0 ||
                zone_rr_ptr(bc, &svc->cluster_ips[i], sn, snl) < 0)
                return -1;
        }
        /* _<port>._<proto>.<svc>: named ports; <svc> itself (CoreDNS):
         * every port, one record per distinct port number */
        size_t distinct = 0;
        for (size_t p = 0; p < svc->n_ports; p++) {
            uint8_t pk[2] = { (uint8_t)(svc->ports[p].port >> 8), (uint8_t)svc->ports[p].port };
            int fresh = zone_seen(bc, SEEN_SRV_TARGET, sn, snl, DNS_T_SRV, pk, 2);
            if (fresh < 0)
                return -1;
            distinct += (size_t)fresh;
        }
        for (size_t p = 0; p < svc->n_ports; p++) {
            const struct svcd_service_port *port = &svc->ports[p];
            if (zone_rr_srv(bc, sn, snl, zone_srv_weight(distinct), port->port, sn, snl) < 0)
                return -1;
            if (!port->name || !*port->name || zone_name_srv(port, sn, snl, nm, &nml) < 0)
                continue;
            if (zone_rr_srv(bc, nm, nml, 100, port->port, sn, snl) < 0)
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
            if (zone_rr_addr(bc, sn, snl, &e->ips[k]) < 0)
                return -1;
            /* hostname name: all addresses under one name when there is a
             * hostname, one dashed name per address otherwise */
            if (zone_endpoint_name(e, &e->ips[k], sn, snl, tn, &tnl) < 0) {
                log_warn(ZONE_MOD, "service %s/%s: endpoint hostname '%s' is not a DNS label "
                         "of at most 63 octets (or the name is over 255): no record for it",
                         svc->meta.ns, svc->meta.name, e->hostname ? e->hostname : "");
                continue;
            }
            if (zone_rr_addr(bc, tn, tnl, &e->ips[k]) < 0 ||
                zone_rr_ptr(bc, &e->ips[k], tn, tnl) < 0)
                return -1;
        }
    }
    for (size_t p = 0; p < svc->n_ports; p++) {
        const struct svcd_service_port *port = &svc->ports[p];
        if (!port->name || !*port->name || zone_name_srv(port, sn, snl, nm, &nml) < 0)
            continue;
        if (zone_headless_srv(bc, eps, n_eps, p, p + 1, sn, snl, nm, nml) < 0)
            return -1;
    }
    return zone_headless_srv(bc, eps, n_eps, 0, svc->n_ports, sn, snl, sn, snl);
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
    struct zone_build bc = { .z = z, .s = s, .seen = hmap_new() };
    if (!bc.seen || zone_svc_build(&bc, svc) < 0)
        log_err(ZONE_MOD, "out of memory building records of %s (partial)", key);
    hmap_free(bc.seen);
}

/* ---- namespaces ---------------------------------------------------------
 * A namespace exists while it has a Service or a Pod (svcd reads no
 * Namespace objects); then <ns>.svc.<zone> and <ns>.pod.<zone> exist and
 * answer NODATA, as in CoreDNS. Each namespace in z->ns_refs holds one
 * reference on both names. */

static void zone_ns_ref(struct dns_zone *z, const char *ns, bool take)
{
    static const char *const kinds[] = { "svc", "pod" };
    for (size_t k = 0; k < (z->cfg.dns_pod_records ? 2 : 1); k++) {
        uint8_t name[DNS_NAME_MAX];
        size_t len = 0;
        if (zone_name_label(name, &len, ns, strlen(ns)) < 0 ||
            zone_name_label(name, &len, kinds[k], 3) < 0 ||
            zone_name_tail(name, &len, z->apex, z->apex_len) < 0)
            continue;
        if (take && !zone_node_ref(z, name, len))
            log_err(ZONE_MOD, "out of memory adding namespace %s", ns);
        else if (!take)
            zone_node_unref(z, name, len);
    }
}

struct zone_ns_scan {
    struct dns_zone *z;
    struct hmap *now;       /* namespaces seen in the store */
    struct hmap *other;     /* the set to compare with */
    int err;
};

static int zone_ns_note(struct zone_ns_scan *sc, const char *ns)
{
    if (ns && !hmap_get(sc->now, ns) && hmap_set(sc->now, ns, sc) < 0)
        sc->err = -1;
    return sc->err;
}

static int zone_ns_svc_cb(void *ctx, const struct svcd_service *svc)
{
    return zone_ns_note(ctx, svc->meta.ns);
}

static int zone_ns_pod_cb(void *ctx, const struct svcd_pod *pod)
{
    return zone_ns_note(ctx, pod->meta.ns);
}

/* For each key of the iterated set missing from sc->other: take (or drop)
 * the namespace's references. */
static int zone_ns_take_cb(void *ctx, const char *key, void *value)
{
    struct zone_ns_scan *sc = ctx;
    if (!hmap_get(sc->other, key))
        zone_ns_ref(sc->z, key, true);
    return 0;
}

static int zone_ns_drop_cb(void *ctx, const char *key, void *value)
{
    struct zone_ns_scan *sc = ctx;
    if (!hmap_get(sc->other, key))
        zone_ns_ref(sc->z, key, false);
    return 0;
}

/* Brings the namespace names in step with the store. O(services + pods). */
static void zone_sync_namespaces(struct dns_zone *z)
{
    struct zone_ns_scan sc = { .z = z, .now = hmap_new() };
    if (!sc.now || store_foreach_service(z->st, zone_ns_svc_cb, &sc) ||
        store_foreach_pod(z->st, zone_ns_pod_cb, &sc)) {
        log_err(ZONE_MOD, "out of memory listing namespaces");
        hmap_free(sc.now);
        return;
    }
    sc.other = z->ns_refs;
    hmap_foreach(sc.now, zone_ns_take_cb, &sc);
    sc.other = sc.now;
    hmap_foreach(z->ns_refs, zone_ns_drop_cb, &sc);
    hmap_free(z->ns_refs);
    z->ns_refs = sc.now;
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
    if (n_changes || pods_changed)
        zone_sync_namespaces(z);
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

static struct zone_node *zone_permanent_wire(struct dns_zone *z, const uint8_t *w, size_t wl,
                                             unsigned flags)
{
    struct zone_node *n = zone_node_get(z, w, wl);
    if (!n)
        n = zone_node_create(z, w, wl);
    if (n)
        n->flags |= NODE_PERMANENT | flags;
    return n;
}

static struct zone_node *zone_permanent(struct dns_zone *z, const char *text, unsigned flags)
{
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    if (dns_name_from_text(text, w, &wl) < 0)
        return NULL;
    dns_name_lower(w, w, wl);
    return zone_permanent_wire(z, w, wl, flags);
}

/* The reverse zones of the service and pod CIDRs: permanent apex nodes
 * with SOA (synthesized) and NS. 0 or -1 (ENOMEM). */
static int zone_add_reverse_zones(struct dns_zone *z)
{
    const struct svcd_cidr *cidrs[2 * SVCD_MAX_CIDR];
    size_t n = 0;
    for (size_t i = 0; i < z->cfg.n_service_cidr && i < SVCD_MAX_CIDR; i++)
        cidrs[n++] = &z->cfg.service_cidr[i];
    for (size_t i = 0; i < z->cfg.n_pod_cidr && i < SVCD_MAX_CIDR; i++)
        cidrs[n++] = &z->cfg.pod_cidr[i];
    for (size_t i = 0; i < n; i++) {
        struct zone_rev *rz = &z->rz[z->n_rz];
        if (zone_name_rev_zone(z, cidrs[i], rz->name, &rz->len) < 0)
            continue;
        struct zone_node *node = zone_node_get(z, rz->name, rz->len);
        if (node && (node->flags & NODE_APEX))
            continue;                   /* two CIDRs, one zone */
        if (!zone_permanent_wire(z, rz->name, rz->len, NODE_APEX) ||
            zone_rr_add(z, &z->perm, rz->name, rz->len, DNS_T_NS, z->cfg.dns_ttl, z->mname,
                        z->mname_len) < 0)
            return -1;
        z->n_rz++;
    }
    return 0;
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
    hmap_free(z->ns_refs);
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
    z->ns_refs = hmap_new();
    if (!z->nodes || !z->svcs || !z->ns_refs)
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
    if (!zone_permanent(z, apex_text, NODE_APEX) ||
        !zone_permanent(z, "in-addr.arpa", NODE_NOT_AUTH) ||
        !zone_permanent(z, "ip6.arpa", NODE_NOT_AUTH))
        goto fail;
    snprintf(text, sizeof(text), "svc.%s", apex_text);
    if (!zone_permanent(z, text, 0))
        goto fail;
    /* with pod records off, nothing exists under pod.<zone> (CoreDNS
     * "pods disabled") */
    snprintf(text, sizeof(text), "pod.%s", apex_text);
    if ((cfg->dns_pod_records && !zone_permanent(z, text, 0)) || zone_add_reverse_zones(z) < 0)
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
        if (!dup && zone_rr_add(z, &z->perm, z->mname, z->mname_len,
                                ip->family == AF_INET ? DNS_T_A : DNS_T_AAAA, cfg->dns_ttl,
                                ip->u.bytes, alen) < 0)
            goto fail;
    }

    if (st) {
        store_foreach_service(st, zone_initial_cb, z);
        zone_sync_namespaces(z);
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

/* The SOA owner for negative answers: the cluster apex; for reverse names
 * the reverse zone of the CIDR holding them, else in-addr.arpa / ip6.arpa. */
static void zone_neg_owner(const struct dns_zone *z, const uint8_t *lname, size_t len,
                           const uint8_t **owner, size_t *olen)
{
    const struct zone_rev *rz = zone_rev_zone(z, lname, len);
    if (rz) {
        *owner = rz->name;
        *olen = rz->len;
    } else if (dns_name_is_subdomain(lname, len, z->rev4, z->rev4_len)) {
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

/* Emits the A/AAAA records of each SRV or NS target in the additional
 * section (best effort: what does not fit is left out, no TC). */
static void zone_additional(const struct dns_zone *z, struct dns_builder *b,
                            const struct zone_rr *const *rrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t off = rrs[i]->type == DNS_T_SRV ? 6 : 0;
        const uint8_t *t = rrs[i]->rdata + off;
        size_t tl = (size_t)rrs[i]->rdlen - off;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = rrs[j]->rdlen == rrs[i]->rdlen && memcmp(rrs[j]->rdata + off, t, tl) == 0;
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

static bool zone_is_apex(const struct zone_node *n)
{
    return (n->flags & NODE_APEX) != 0;
}

static void zone_answer_lookup(struct dns_zone *z, const struct dns_question *q,
                               const uint8_t *lname, struct dns_builder *b,
                               struct dns_zone_result *res, int depth);

/* CNAMEs followed inside the zone in one answer (an ExternalName pointing
 * at another cluster name, possibly through more ExternalNames). */
#define ZONE_CHASE_MAX 8

/* Answers from a node: records of qtype (rotated), CNAME, ANY, or NODATA. */
static void zone_answer_node(struct dns_zone *z, struct zone_node *n, const struct dns_question *q,
                             const uint8_t *lname, struct dns_builder *b,
                             struct dns_zone_result *res, int depth)
{
    uint16_t qtype = q->qtype;
    zone_set_rcode(b, DNS_R_NOERROR);
    res->rcode = DNS_R_NOERROR;

    /* SOA at the apex (cluster or reverse zone) is synthesized */
    if (zone_is_apex(n) && (qtype == DNS_T_SOA || qtype == DNS_T_ANY)) {
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
        if (qtype == DNS_T_CNAME)
            return;
        if (!dns_name_is_subdomain(rr->rdata, rr->rdlen, z->apex, z->apex_len)) {
            res->external_cname = true;
            memcpy(res->cname_target, rr->rdata, rr->rdlen);
            res->cname_len = rr->rdlen;
            return;
        }
        /* a cluster name: follow it here, as CoreDNS does, so stub
         * resolvers that do not chase CNAMEs (glibc) get the address */
        if (depth >= ZONE_CHASE_MAX)
            return;
        struct dns_question cq = { .name_len = rr->rdlen, .qtype = q->qtype,
                                   .qclass = DNS_C_IN };
        memcpy(cq.name, rr->rdata, rr->rdlen);
        zone_answer_lookup(z, &cq, cq.name, b, res, depth + 1);
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
    const struct zone_rr *targets[32];
    size_t ntargets = 0;
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
        if ((qtype == DNS_T_SRV || qtype == DNS_T_NS) &&
            ntargets < sizeof(targets) / sizeof(targets[0]))
            targets[ntargets++] = rr;
        if (done + 1 == count)
            break;
        do {
            rr = rr->next ? rr->next : n->rrs;
        } while (rr->type != qtype);
    }
    if (ntargets)
        zone_additional(z, b, targets, ntargets);
}

/* <a-b-c-d>.<ns>.pod.<zone>: whether lname names a pod IP that exists in
 * ns ("pods verified"); the address in *ip. */
static bool zone_pod_lookup(const struct dns_zone *z, const uint8_t *lname, size_t len,
                            struct svcd_ip *ip)
{
    if (!z->cfg.dns_pod_records || !z->st)
        return false;
    int zl = dns_name_labels(z->apex, z->apex_len);
    if (dns_name_labels(lname, len) != zl + 3 ||
        !dns_name_is_subdomain(lname, len, z->apex, z->apex_len))
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
    if (svcd_ip_parse(ipbuf, ip) < 0)
        return false;
    const struct svcd_pod *pd = store_pod_by_ip(z->st, ip);
    return pd && pd->meta.ns && strcasecmp(pd->meta.ns, nsbuf) == 0;
}

/* Answers a pod record; false when lname is not one. */
static bool zone_answer_pod(struct dns_zone *z, const struct dns_question *q,
                            const uint8_t *lname, struct dns_builder *b,
                            struct dns_zone_result *res)
{
    struct svcd_ip ip;
    if (!zone_pod_lookup(z, lname, q->name_len, &ip))
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

/* Answers a name of the zone: its records, a pod record, or NXDOMAIN.
 * depth counts the CNAMEs followed to get here. */
static void zone_answer_lookup(struct dns_zone *z, const struct dns_question *q,
                               const uint8_t *lname, struct dns_builder *b,
                               struct dns_zone_result *res, int depth)
{
    struct zone_node *n = zone_node_get(z, lname, q->name_len);
    if (n && !(n->flags & NODE_NOT_AUTH)) {
        zone_answer_node(z, n, q, lname, b, res, depth);
        return;
    }
    if (zone_answer_pod(z, q, lname, b, res))
        return;
    zone_negative(z, lname, q->name_len, DNS_R_NXDOMAIN, b, res);
}

/* Whether a cluster name exists (has a node or is a verified pod record). */
static bool zone_name_exists(const struct dns_zone *z, const uint8_t *lname, size_t len)
{
    struct svcd_ip ip;
    return zone_node_get(z, lname, len) != NULL || zone_pod_lookup(z, lname, len, &ip);
}

/* Whether svcd answers this reverse name (lower case, below in-addr.arpa
 * or ip6.arpa, no node of its own): it names an address or a prefix inside
 * a service or pod CIDR, or it is not an address name at all but lies in
 * one of the reverse zones of those CIDRs (NXDOMAIN, as CoreDNS). */
static bool zone_reverse_is_ours(const struct dns_zone *z, const uint8_t *lname, size_t len)
{
    struct svcd_ip ip;
    int bits;
    if (zone_reverse_parse(z, lname, len, &ip, &bits) < 0)
        return zone_rev_zone(z, lname, len) != NULL;
    for (size_t i = 0; i < z->cfg.n_service_cidr; i++)
        if (z->cfg.service_cidr[i].prefix <= bits &&
            svcd_cidr_contains(&z->cfg.service_cidr[i], &ip))
            return true;
    for (size_t i = 0; i < z->cfg.n_pod_cidr; i++)
        if (z->cfg.pod_cidr[i].prefix <= bits && svcd_cidr_contains(&z->cfg.pod_cidr[i], &ip))
            return true;
    return false;
}

/* Writes "<qname> CNAME <target>" into the answer. -1 when it does not fit. */
static int zone_emit_cname(const struct dns_zone *z, struct dns_builder *b,
                           const struct dns_question *q, const uint8_t *target, size_t tlen)
{
    if (dns_builder_rr_start(b, DNS_SEC_ANSWER, q->name, q->name_len, DNS_T_CNAME, DNS_C_IN,
                             z->cfg.dns_ttl) < 0 ||
        dns_builder_rdata_name(b, target, tlen, true) < 0 || dns_builder_rr_end(b) < 0)
        return -1;
    return 0;
}

/* Autopath (CoreDNS "autopath @kubernetes"): a known pod asking
 * <name>.<its-ns>.svc.<zone> for a name that does not exist gets, in one
 * answer, a CNAME to the first of <name>.svc.<zone>, <name>.<zone>,
 * <name>. that exists in the zone (followed by its records), or, when
 * <name>. is outside the zone, a CNAME to it that the server resolves
 * upstream (res->external_cname). False when it does not apply or nothing
 * exists (the caller answers NXDOMAIN). */
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
    static const uint8_t svc_label[] = { 3, 's', 'v', 'c' };
    static const uint8_t root[] = { 0 };
    const struct { const uint8_t *a; size_t al; const uint8_t *b; size_t bl; } sfxs[] = {
        { svc_label, sizeof(svc_label), z->apex, z->apex_len },
        { z->apex, z->apex_len, NULL, 0 },
        { root, sizeof(root), NULL, 0 },
    };
    for (size_t k = 0; k < sizeof(sfxs) / sizeof(sfxs[0]); k++) {
        struct dns_question cq = { .name_len = plen, .qtype = q->qtype, .qclass = DNS_C_IN };
        if (plen + sfxs[k].al + sfxs[k].bl > DNS_NAME_MAX)
            continue;
        memcpy(cq.name, lname, plen);
        memcpy(cq.name + plen, sfxs[k].a, sfxs[k].al);
        if (sfxs[k].bl)
            memcpy(cq.name + plen + sfxs[k].al, sfxs[k].b, sfxs[k].bl);
        cq.name_len = plen + sfxs[k].al + sfxs[k].bl;
        bool inside = dns_name_is_subdomain(cq.name, cq.name_len, z->apex, z->apex_len);
        if (inside && !zone_name_exists(z, cq.name, cq.name_len))
            continue;
        zone_set_rcode(b, DNS_R_NOERROR);
        res->rcode = DNS_R_NOERROR;
        if (zone_emit_cname(z, b, q, cq.name, cq.name_len) < 0) {
            res->truncated = true;
            return true;
        }
        if (inside) {
            zone_answer_lookup(z, &cq, cq.name, b, res, 1);
        } else {
            res->external_cname = true;
            memcpy(res->cname_target, cq.name, cq.name_len);
            res->cname_len = cq.name_len;
        }
        return true;
    }
    return false;
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
        zone_answer_node(z, n, q, lname, b, res, 0);
        return DNS_ZONE_ANSWERED;
    }
    if (cluster && zone_answer_pod(z, q, lname, b, res))
        return DNS_ZONE_ANSWERED;
    if (cluster && zone_autopath(z, q, lname, client, b, res))
        return DNS_ZONE_ANSWERED;
    zone_negative(z, lname, q->name_len, DNS_R_NXDOMAIN, b, res);
    return DNS_ZONE_ANSWERED;
}
