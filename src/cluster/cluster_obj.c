/*
 * cluster_obj: the pure half of cluster mode. The etcd key layout (encode
 * and parse) and the objects as Kubernetes-shaped JSON: written with
 * jansson, read back through manifest_parse so that what comes out of etcd
 * is validated and defaulted by the same code as a manifest file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcd/cluster.h"
#include "svcd/manifest.h"

/* ---- keys ------------------------------------------------------------------ */

static bool cluster_part_ok(const char *s)
{
    return s && *s && !strchr(s, '/');
}

char *cluster_key_service(char *buf, size_t len, const char *ns, const char *name)
{
    if (!cluster_part_ok(ns) || !cluster_part_ok(name))
        return NULL;
    int n = snprintf(buf, len, CLUSTER_PREFIX "services/%s/%s", ns, name);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

char *cluster_key_pod(char *buf, size_t len, const char *node, const char *ns, const char *name)
{
    if (!cluster_part_ok(node) || !cluster_part_ok(ns) || !cluster_part_ok(name))
        return NULL;
    int n = snprintf(buf, len, CLUSTER_PREFIX "pods/%s/%s/%s", node, ns, name);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

char *cluster_key_pod_prefix(char *buf, size_t len, const char *node)
{
    if (!cluster_part_ok(node))
        return NULL;
    int n = snprintf(buf, len, CLUSTER_PREFIX "pods/%s/", node);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

char *cluster_key_node(char *buf, size_t len, const char *node)
{
    if (!cluster_part_ok(node))
        return NULL;
    int n = snprintf(buf, len, CLUSTER_PREFIX "nodes/%s", node);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

char *cluster_key_alloc_ip(char *buf, size_t len, const struct svcd_ip *ip)
{
    char a[INET6_ADDRSTRLEN];
    svcd_ip_format(ip, a, sizeof(a));
    int n = snprintf(buf, len, CLUSTER_PREFIX "alloc/clusterip/%s", a);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

char *cluster_key_alloc_nodeport(char *buf, size_t len, enum svcd_proto proto, uint16_t port)
{
    int n = snprintf(buf, len, CLUSTER_PREFIX "alloc/nodeport/%s/%u", svcd_proto_name(proto),
                     (unsigned)port);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

/* Splits buf at '/' into at most max parts; returns the count, or -1 when
 * there are more parts or an empty one. */
static int cluster_split(char *buf, const char **parts, int max)
{
    int n = 0;
    char *p = buf;
    for (;;) {
        if (n == max)
            return -1;
        char *sl = strchr(p, '/');
        if (sl)
            *sl = '\0';
        if (!*p)
            return -1;
        parts[n++] = p;
        if (!sl)
            return n;
        p = sl + 1;
    }
}

int cluster_key_parse(const char *key, struct cluster_key *out)
{
    memset(out, 0, sizeof(*out));
    size_t plen = strlen(CLUSTER_PREFIX), klen = strlen(key);
    if (klen < plen || memcmp(key, CLUSTER_PREFIX, plen) != 0 || klen >= sizeof(out->buf))
        return -1;
    memcpy(out->buf, key + plen, klen - plen + 1);
    const char *p[6];
    int n = cluster_split(out->buf, p, 6);
    if (n < 1)
        return 0;
    if (!strcmp(p[0], "services") && n == 3) {
        out->kind = CLUSTER_KEY_SERVICE;
        out->ns = p[1];
        out->name = p[2];
    } else if (!strcmp(p[0], "pods") && n == 4) {
        out->kind = CLUSTER_KEY_POD;
        out->node = p[1];
        out->ns = p[2];
        out->name = p[3];
    } else if (!strcmp(p[0], "nodes") && n == 2) {
        out->kind = CLUSTER_KEY_NODE;
        out->node = p[1];
    } else if (!strcmp(p[0], "alloc") && n == 3 && !strcmp(p[1], "clusterip")) {
        struct svcd_ip ip;
        if (svcd_ip_parse(p[2], &ip) == 0) {
            out->kind = CLUSTER_KEY_ALLOC_IP;
            out->ip = p[2];
        }
    } else if (!strcmp(p[0], "alloc") && n == 4 && !strcmp(p[1], "nodeport")) {
        enum svcd_proto proto;
        char *end = NULL;
        unsigned long port = strtoul(p[3], &end, 10);
        if (svcd_proto_parse(p[2], &proto) == 0 && end && !*end && port >= 1 && port <= 65535) {
            out->kind = CLUSTER_KEY_ALLOC_NODEPORT;
            out->proto = p[2];
            out->port = (uint16_t)port;
        }
    }
    return 0;
}

/* ---- serialisation ------------------------------------------------------- */

static json_t *cluster_kvmap_json(const struct svcd_kvmap *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->n; i++)
        json_object_set_new(o, m->items[i].key, json_string(m->items[i].value));
    return o;
}

static json_t *cluster_ip_json(const struct svcd_ip *ip)
{
    char a[INET6_ADDRSTRLEN];
    return json_string(svcd_ip_format(ip, a, sizeof(a)));
}

static json_t *cluster_meta_json(const struct svcd_meta *m)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "namespace", json_string(m->ns));
    if (m->labels.n)
        json_object_set_new(o, "labels", cluster_kvmap_json(&m->labels));
    if (m->annotations.n)
        json_object_set_new(o, "annotations", cluster_kvmap_json(&m->annotations));
    if (m->uid)
        json_object_set_new(o, "uid", json_string(m->uid));
    if (m->deletion_timestamp)
        json_object_set_new(o, "deletionTimestamp", json_string(m->deletion_timestamp));
    if (m->created > 0) {
        char t[32];
        struct tm tm;
        time_t secs = (time_t)m->created;
        if (gmtime_r(&secs, &tm) && strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm))
            json_object_set_new(o, "creationTimestamp", json_string(t));
    }
    return o;
}

static const char *cluster_policy_name(enum svcd_traffic_policy p)
{
    return p == SVCD_POLICY_LOCAL ? "Local" : "Cluster";
}

json_t *cluster_service_to_json(const struct svcd_service *s)
{
    json_t *spec = json_object(), *ports = json_array();
    json_t *root = json_pack("{s:s,s:s,s:o,s:o}", "apiVersion", "v1", "kind", "Service",
                             "metadata", cluster_meta_json(&s->meta), "spec", spec);
    if (!root || !spec || !ports) {
        json_decref(root);
        json_decref(ports);
        return NULL;
    }
    json_object_set_new(spec, "type", json_string(svcd_svc_type_name(s->type)));
    if (s->headless) {
        json_object_set_new(spec, "clusterIP", json_string("None"));
    } else if (s->n_cluster_ips) {
        json_t *ips = json_array();
        json_object_set_new(spec, "clusterIP", cluster_ip_json(&s->cluster_ips[0]));
        for (size_t i = 0; i < s->n_cluster_ips; i++)
            json_array_append_new(ips, cluster_ip_json(&s->cluster_ips[i]));
        json_object_set_new(spec, "clusterIPs", ips);
    }
    if (s->n_ip_families) {
        json_t *f = json_array();
        for (size_t i = 0; i < s->n_ip_families; i++)
            json_array_append_new(f, json_string(s->ip_families[i] == AF_INET6 ? "IPv6"
                                                                               : "IPv4"));
        json_object_set_new(spec, "ipFamilies", f);
        if (s->n_ip_families == 2)
            json_object_set_new(spec, "ipFamilyPolicy", json_string("PreferDualStack"));
    }
    for (size_t i = 0; i < s->n_ports; i++) {
        const struct svcd_service_port *p = &s->ports[i];
        json_t *o = json_object();
        if (p->name)
            json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "protocol", json_string(svcd_proto_name(p->protocol)));
        json_object_set_new(o, "port", json_integer(p->port));
        if (p->target_port_name)
            json_object_set_new(o, "targetPort", json_string(p->target_port_name));
        else if (p->target_port)
            json_object_set_new(o, "targetPort", json_integer(p->target_port));
        if (p->node_port)
            json_object_set_new(o, "nodePort", json_integer(p->node_port));
        json_array_append_new(ports, o);
    }
    if (s->n_ports)
        json_object_set(spec, "ports", ports);
    json_decref(ports);
    if (s->has_selector)
        json_object_set_new(spec, "selector", cluster_kvmap_json(&s->selector));
    if (s->affinity_client_ip) {
        json_object_set_new(spec, "sessionAffinity", json_string("ClientIP"));
        json_object_set_new(spec, "sessionAffinityConfig",
                            json_pack("{s:{s:i}}", "clientIP", "timeoutSeconds",
                                      (json_int_t)s->affinity_timeout));
    }
    if (s->publish_not_ready)
        json_object_set_new(spec, "publishNotReadyAddresses", json_true());
    if (s->external_name)
        json_object_set_new(spec, "externalName", json_string(s->external_name));
    if (s->n_external_ips) {
        json_t *a = json_array();
        for (size_t i = 0; i < s->n_external_ips; i++)
            json_array_append_new(a, cluster_ip_json(&s->external_ips[i]));
        json_object_set_new(spec, "externalIPs", a);
    }
    if (s->type != SVCD_SVC_EXTERNAL_NAME) {
        json_object_set_new(spec, "internalTrafficPolicy",
                            json_string(cluster_policy_name(s->internal_policy)));
        if (s->type == SVCD_SVC_NODE_PORT || s->type == SVCD_SVC_LOAD_BALANCER ||
            s->n_external_ips)
            json_object_set_new(spec, "externalTrafficPolicy",
                                json_string(cluster_policy_name(s->external_policy)));
    }
    if (s->n_lb_ingress_ips) {
        json_t *ing = json_array();
        for (size_t i = 0; i < s->n_lb_ingress_ips; i++)
            json_array_append_new(ing, json_pack("{s:o}", "ip",
                                                 cluster_ip_json(&s->lb_ingress_ips[i])));
        json_object_set_new(root, "status", json_pack("{s:{s:o}}", "loadBalancer",
                                                      "ingress", ing));
    }
    return root;
}

json_t *cluster_pod_to_json(const struct svcd_pod *p, const char *node_name)
{
    json_t *spec = json_object(), *status = json_object(), *ctrs = json_array();
    json_t *root = json_pack("{s:s,s:s,s:o,s:o,s:o}", "apiVersion", "v1", "kind", "Pod",
                             "metadata", cluster_meta_json(&p->meta), "spec", spec,
                             "status", status);
    if (!root || !ctrs) {
        json_decref(root);
        json_decref(ctrs);
        return NULL;
    }
    const char *node = p->node_name ? p->node_name : node_name;
    if (node)
        json_object_set_new(spec, "nodeName", json_string(node));
    if (p->hostname)
        json_object_set_new(spec, "hostname", json_string(p->hostname));
    if (p->subdomain)
        json_object_set_new(spec, "subdomain", json_string(p->subdomain));
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct svcd_container *c = &p->containers[i];
        json_t *o = json_pack("{s:s}", "name", c->name ? c->name : "c");
        json_t *ports = json_array();
        for (size_t k = 0; k < c->n_ports; k++) {
            json_t *po = json_pack("{s:i,s:s}", "containerPort", (json_int_t)c->ports[k].container_port,
                                   "protocol", svcd_proto_name(c->ports[k].protocol));
            if (c->ports[k].name)
                json_object_set_new(po, "name", json_string(c->ports[k].name));
            json_array_append_new(ports, po);
        }
        if (c->n_ports)
            json_object_set(o, "ports", ports);
        json_decref(ports);
        json_array_append_new(ctrs, o);
    }
    if (!p->n_containers)
        json_array_append_new(ctrs, json_pack("{s:s}", "name", "c"));
    json_object_set(spec, "containers", ctrs);
    json_decref(ctrs);
    json_object_set_new(status, "phase", json_string(svcd_pod_phase_name(p->phase)));
    if (p->n_ips) {
        json_t *ips = json_array();
        json_object_set_new(status, "podIP", cluster_ip_json(&p->ips[0]));
        for (size_t i = 0; i < p->n_ips; i++)
            json_array_append_new(ips, json_pack("{s:o}", "ip", cluster_ip_json(&p->ips[i])));
        json_object_set_new(status, "podIPs", ips);
    }
    json_object_set_new(status, "conditions",
                        json_pack("[{s:s,s:s}]", "type", "Ready", "status",
                                  svcd_pod_is_ready(p) ? "True" : "False"));
    return root;
}

int cluster_value_parse(const char *val, size_t len, struct svcd_service **svc,
                        struct svcd_pod **pod, char *err, size_t errlen)
{
    struct manifest_objs objs;
    *svc = NULL;
    *pod = NULL;
    if (manifest_parse(val, len, (int64_t)time(NULL), &objs, err, errlen) != 0)
        return -1;
    int rc = -1;
    if (objs.n_services == 1 && !objs.n_pods && !objs.n_slices) {
        *svc = objs.services[0];
        objs.services[0] = NULL;
        rc = 0;
    } else if (objs.n_pods == 1 && !objs.n_services && !objs.n_slices) {
        *pod = objs.pods[0];
        objs.pods[0] = NULL;
        rc = 0;
    } else {
        snprintf(err, errlen, "expected one Service or one Pod");
    }
    manifest_objs_free(&objs);
    return rc;
}

/* ---- allocation candidates -------------------------------------------------------- */

int cluster_alloc_ip_candidate(const struct svcd_cidr *cidr, uint64_t seed, uint32_t attempt,
                               struct svcd_ip *out)
{
    int total = cidr->addr.family == AF_INET ? 32 : 128;
    int bits = total - cidr->prefix;
    if (bits > 62)
        bits = 62;                    /* plenty: the low 62 bits vary */
    if (bits < 2)
        return -1;
    uint64_t size = (uint64_t)1 << bits;
    uint64_t usable = size - (cidr->addr.family == AF_INET ? 2 : 1);
    uint64_t off = 1 + (seed + attempt) % usable;
    *out = cidr->addr;
    size_t len = cidr->addr.family == AF_INET ? 4 : 16;
    for (size_t i = len; i-- > 0 && off; ) {
        uint64_t sum = out->u.bytes[i] + (off & 0xff);
        out->u.bytes[i] = (uint8_t)sum;
        off = (off >> 8) + (sum >> 8);
    }
    return 0;
}

uint16_t cluster_alloc_port_candidate(uint16_t lo, uint16_t hi, uint64_t seed, uint32_t attempt)
{
    uint32_t size = (uint32_t)hi - lo + 1;
    return (uint16_t)(lo + (seed + attempt) % size);
}
