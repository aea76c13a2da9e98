/*
 * model: helpers for the plain Kubernetes object structs of svcd/model.h.
 *
 * Everything here is pure and allocation-light: address and prefix parsing
 * (inet_pton, no hand-rolled parsers), protocol names, the sorted key/value
 * map used for labels and selectors, pod readiness, and the destructors.
 * Destructors accept NULL and half-built objects (zeroed fields), so a
 * parser can free whatever it built so far on any error path.
 */
#include "svcd/model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses ---------------------------------------------------------- */

int svcd_ip_parse(const char *s, struct svcd_ip *out)
{
    struct svcd_ip ip;

    if (!s || !out)
        return -1;
    memset(&ip, 0, sizeof(ip));
    if (inet_pton(AF_INET, s, &ip.u.v4) == 1) {
        ip.family = AF_INET;
    } else if (inet_pton(AF_INET6, s, &ip.u.v6) == 1) {
        ip.family = AF_INET6;
    } else {
        return -1;
    }
    *out = ip;
    return 0;
}

const char *svcd_ip_format(const struct svcd_ip *ip, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!ip)
        return buf;
    if (ip->family == AF_INET || ip->family == AF_INET6) {
        if (!inet_ntop(ip->family, ip->u.bytes, buf, (socklen_t)len))
            buf[0] = '\0';
    }
    return buf;
}

/* Number of significant bytes for a family (4, 16, or 0 if unset). */
static size_t model_ip_len(int family)
{
    if (family == AF_INET)
        return 4;
    if (family == AF_INET6)
        return 16;
    return 0;
}

int svcd_ip_equal(const struct svcd_ip *a, const struct svcd_ip *b)
{
    return svcd_ip_cmp(a, b) == 0;
}

int svcd_ip_cmp(const struct svcd_ip *a, const struct svcd_ip *b)
{
    int r;

    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    r = memcmp(a->u.bytes, b->u.bytes, model_ip_len(a->family));
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

/* ---- CIDR prefixes ------------------------------------------------------ */

/* True when the bits of bytes after the first prefix bits are all zero. */
static bool model_host_bits_zero(const uint8_t *bytes, size_t nbytes, int prefix)
{
    for (size_t i = 0; i < nbytes; i++) {
        int bit0 = (int)i * 8;
        uint8_t mask;
        if (bit0 + 8 <= prefix)
            continue;
        if (bit0 >= prefix)
            mask = 0xff;
        else
            mask = (uint8_t)(0xffu >> (prefix - bit0));
        if (bytes[i] & mask)
            return false;
    }
    return true;
}

int svcd_cidr_parse(const char *s, struct svcd_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash;
    size_t alen;
    char *end;
    long prefix;
    struct svcd_cidr c;

    if (!s || !out)
        return -1;
    slash = strchr(s, '/');
    if (!slash)
        return -1;
    alen = (size_t)(slash - s);
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(&c, 0, sizeof(c));
    if (svcd_ip_parse(addr, &c.addr) != 0)
        return -1;
    if (slash[1] < '0' || slash[1] > '9')
        return -1;
    errno = 0;
    prefix = strtol(slash + 1, &end, 10);
    if (errno || *end != '\0')
        return -1;
    if (prefix < 0 || prefix > (long)model_ip_len(c.addr.family) * 8)
        return -1;
    c.prefix = (int)prefix;
    if (!model_host_bits_zero(c.addr.u.bytes, model_ip_len(c.addr.family), c.prefix))
        return -1;
    *out = c;
    return 0;
}

bool svcd_cidr_contains(const struct svcd_cidr *c, const struct svcd_ip *ip)
{
    int full, rest;

    if (!c || !ip || c->addr.family != ip->family)
        return false;
    full = c->prefix / 8;
    rest = c->prefix % 8;
    if (memcmp(c->addr.u.bytes, ip->u.bytes, (size_t)full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((c->addr.u.bytes[full] & mask) != (ip->u.bytes[full] & mask))
            return false;
    }
    return true;
}

/* ---- protocols ---------------------------------------------------------- */

int svcd_proto_parse(const char *s, enum svcd_proto *out)
{
    if (!s || !out)
        return -1;
    if (strcmp(s, "TCP") == 0)
        *out = SVCD_PROTO_TCP;
    else if (strcmp(s, "UDP") == 0)
        *out = SVCD_PROTO_UDP;
    else if (strcmp(s, "SCTP") == 0)
        *out = SVCD_PROTO_SCTP;
    else
        return -1;
    return 0;
}

const char *svcd_proto_name(enum svcd_proto p)
{
    switch (p) {
    case SVCD_PROTO_TCP:  return "TCP";
    case SVCD_PROTO_UDP:  return "UDP";
    case SVCD_PROTO_SCTP: return "SCTP";
    }
    return "?";
}

int svcd_proto_ipproto(enum svcd_proto p)
{
    switch (p) {
    case SVCD_PROTO_TCP:  return IPPROTO_TCP;
    case SVCD_PROTO_UDP:  return IPPROTO_UDP;
    case SVCD_PROTO_SCTP: return IPPROTO_SCTP;
    }
    return 0;
}

/* ---- sorted key/value map ----------------------------------------------- */

/* Binary search; returns the index of key, or -(insertion point) - 1. */
static long model_kvmap_find(const struct svcd_kvmap *m, const char *key)
{
    size_t lo = 0, hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(m->items[mid].key, key);
        if (r == 0)
            return (long)mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const char *svcd_kvmap_get(const struct svcd_kvmap *m, const char *key)
{
    long i;

    if (!m || !key || m->n == 0)
        return NULL;
    i = model_kvmap_find(m, key);
    return i >= 0 ? m->items[i].value : NULL;
}

int svcd_kvmap_set(struct svcd_kvmap *m, const char *key, const char *value)
{
    long i;
    size_t pos;
    char *k = NULL, *v = NULL;
    struct svcd_kv *items;

    if (!m || !key || !value)
        return -1;
    v = strdup(value);
    if (!v)
        return -1;
    i = model_kvmap_find(m, key);
    if (i >= 0) {
        free(m->items[i].value);
        m->items[i].value = v;
        return 0;
    }
    k = strdup(key);
    if (!k)
        goto fail;
    items = realloc(m->items, (m->n + 1) * sizeof(*items));
    if (!items)
        goto fail;
    m->items = items;
    pos = (size_t)(-(i + 1));
    memmove(&m->items[pos + 1], &m->items[pos], (m->n - pos) * sizeof(*items));
    m->items[pos].key = k;
    m->items[pos].value = v;
    m->n++;
    return 0;
fail:
    free(k);
    free(v);
    return -1;
}

bool svcd_kvmap_equal(const struct svcd_kvmap *a, const struct svcd_kvmap *b)
{
    size_t na = a ? a->n : 0, nb = b ? b->n : 0;

    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a->items[i].key, b->items[i].key) != 0 ||
            strcmp(a->items[i].value, b->items[i].value) != 0)
            return false;
    }
    return true;
}

void svcd_kvmap_free(struct svcd_kvmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        free(m->items[i].value);
    }
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

bool svcd_selector_matches(const struct svcd_kvmap *sel, const struct svcd_kvmap *labels)
{
    if (!sel || sel->n == 0)
        return true;
    for (size_t i = 0; i < sel->n; i++) {
        const char *v = svcd_kvmap_get(labels, sel->items[i].key);
        if (!v || strcmp(v, sel->items[i].value) != 0)
            return false;
    }
    return true;
}

/* ---- names -------------------------------------------------------------- */

const char *svcd_svc_type_name(enum svcd_svc_type t)
{
    switch (t) {
    case SVCD_SVC_CLUSTER_IP:    return "ClusterIP";
    case SVCD_SVC_NODE_PORT:     return "NodePort";
    case SVCD_SVC_LOAD_BALANCER: return "LoadBalancer";
    case SVCD_SVC_EXTERNAL_NAME: return "ExternalName";
    }
    return "?";
}

const char *svcd_ip_family_policy_name(enum svcd_ip_family_policy p)
{
    switch (p) {
    case SVCD_IPFP_SINGLE:       return "SingleStack";
    case SVCD_IPFP_PREFER_DUAL:  return "PreferDualStack";
    case SVCD_IPFP_REQUIRE_DUAL: return "RequireDualStack";
    }
    return "?";
}

const char *svcd_pod_phase_name(enum svcd_pod_phase p)
{
    switch (p) {
    case SVCD_PHASE_PENDING:   return "Pending";
    case SVCD_PHASE_RUNNING:   return "Running";
    case SVCD_PHASE_SUCCEEDED: return "Succeeded";
    case SVCD_PHASE_FAILED:    return "Failed";
    case SVCD_PHASE_UNKNOWN:   return "Unknown";
    }
    return "?";
}

/* ---- pods --------------------------------------------------------------- */

uint16_t svcd_pod_named_port(const struct svcd_pod *pod, const char *name,
                             enum svcd_proto proto)
{
    if (!pod || !name)
        return 0;
    for (size_t c = 0; c < pod->n_containers; c++) {
        const struct svcd_container *ct = &pod->containers[c];
        for (size_t i = 0; i < ct->n_ports; i++) {
            const struct svcd_container_port *p = &ct->ports[i];
            if (p->name && p->protocol == proto && strcmp(p->name, name) == 0)
                return p->container_port;
        }
    }
    return 0;
}

bool svcd_pod_is_ready(const struct svcd_pod *pod)
{
    if (!pod || pod->phase != SVCD_PHASE_RUNNING)
        return false;
    if (pod->probe_ready != SVCD_UNKNOWN)
        return pod->probe_ready == SVCD_TRUE;
    /* A pod with a readiness or startup probe starts not ready until svcd's
     * first verdict, as the kubelet does; the probes decide, not status. */
    for (size_t i = 0; i < pod->n_containers; i++)
        if (pod->containers[i].readiness.kind != SVCD_PROBE_NONE ||
            pod->containers[i].startup.kind != SVCD_PROBE_NONE)
            return false;
    if (pod->ready_condition != SVCD_UNKNOWN)
        return pod->ready_condition == SVCD_TRUE;
    return true;
}

/* ---- freeing ------------------------------------------------------------ */

void model_meta_free(struct svcd_meta *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->ns);
    svcd_kvmap_free(&m->labels);
    svcd_kvmap_free(&m->annotations);
    free(m->deletion_timestamp);
    free(m->uid);
    m->name = m->ns = m->deletion_timestamp = m->uid = NULL;
}

void model_probe_free(struct svcd_probe *p)
{
    if (!p)
        return;
    if (p->exec_argv) {
        for (char **a = p->exec_argv; *a; a++)
            free(*a);
        free(p->exec_argv);
    }
    free(p->port_name);
    free(p->host);
    free(p->path);
    free(p->scheme);
    svcd_kvmap_free(&p->http_headers);
    free(p->grpc_service);
    p->exec_argv = NULL;
    p->port_name = p->host = p->path = p->scheme = p->grpc_service = NULL;
}

void model_service_free(struct svcd_service *s)
{
    if (!s)
        return;
    model_meta_free(&s->meta);
    for (size_t i = 0; s->ports && i < s->n_ports; i++) {
        free(s->ports[i].name);
        free(s->ports[i].target_port_name);
    }
    free(s->ports);
    svcd_kvmap_free(&s->selector);
    free(s->external_name);
    free(s->external_ips);
    free(s->lb_ingress_ips);
    free(s);
}

static void model_container_free_contents(struct svcd_container *c)
{
    free(c->name);
    for (size_t i = 0; c->ports && i < c->n_ports; i++)
        free(c->ports[i].name);
    free(c->ports);
    model_probe_free(&c->readiness);
    model_probe_free(&c->liveness);
    model_probe_free(&c->startup);
}

void model_pod_free(struct svcd_pod *p)
{
    if (!p)
        return;
    model_meta_free(&p->meta);
    free(p->hostname);
    free(p->subdomain);
    free(p->node_name);
    for (size_t i = 0; p->containers && i < p->n_containers; i++)
        model_container_free_contents(&p->containers[i]);
    free(p->containers);
    free(p);
}

void model_slice_free(struct svcd_endpoint_slice *s)
{
    if (!s)
        return;
    model_meta_free(&s->meta);
    free(s->service_name);
    for (size_t i = 0; s->endpoints && i < s->n_endpoints; i++) {
        free(s->endpoints[i].addresses);
        free(s->endpoints[i].hostname);
        free(s->endpoints[i].node_name);
    }
    free(s->endpoints);
    for (size_t i = 0; s->ports && i < s->n_ports; i++)
        free(s->ports[i].name);
    free(s->ports);
    free(s);
}

void model_endpoint_free_contents(struct svcd_endpoint *e)
{
    if (!e)
        return;
    free(e->hostname);
    free(e->node_name);
    free(e->pod_name);
    free(e->target_ports);
    e->hostname = e->node_name = e->pod_name = NULL;
    e->target_ports = NULL;
}
