/*
 * kubeapi: the read-only Kubernetes API on the admin listener (see
 * include/svcd/kubeapi.h). Objects are built from the store with jansson in
 * the shapes the API server returns; kubectl's Table format is built here
 * too, with the columns kubectl shows for these kinds. Watches keep, per
 * stream, the last text sent for each object and turn every store commit
 * into ADDED / MODIFIED / DELETED events against it.
 */
#include "svcd/kubeapi.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/model.h"
#include "svcd/store.h"
#include "svcd/vec.h"

#define KUBE_MOD "kubeapi"

enum kube_res { KR_SERVICES, KR_PODS, KR_NAMESPACES, KR_SLICES, KR_NONE };

static const struct kube_res_info {
    const char *plural, *singular, *kind, *group_version, *short_name;
    bool namespaced;
} kube_res_info[] = {
    [KR_SERVICES] = { "services", "service", "Service", "v1", "svc", true },
    [KR_PODS] = { "pods", "pod", "Pod", "v1", "po", true },
    [KR_NAMESPACES] = { "namespaces", "namespace", "Namespace", "v1", "ns", false },
    [KR_SLICES] = { "endpointslices", "endpointslice", "EndpointSlice", "discovery.k8s.io/v1",
                    NULL, true },
};

/* What a request asks for. */
struct kube_query {
    enum kube_res res;
    const char *ns;            /* namespace from the path, or NULL (all) */
    const char *name;          /* single object, or NULL */
    const char *label_sel, *field_sel;
    bool table;
    bool watch;
    bool send_initial;         /* watch without a resourceVersion: ADDED for all */
    int timeout_s;             /* watch: end the stream after this (0: never) */
};

/* One object, its sort key and its JSON. */
struct kube_obj {
    char key[512];             /* ns/name */
    const char *ns, *name;
    int64_t created;
    json_t *obj;               /* full object */
    json_t *cells;             /* Table row cells */
};

struct kube_list {
    struct kube_obj *items;
    size_t n, cap;
};

struct kube_watch_item {
    char *cmp;                 /* object text without resourceVersion */
    json_t *obj;
    json_t *cells;             /* its Table row */
};

struct kube_watch {
    struct kube_watch *next;
    struct kubeapi *k;
    struct evhttp_request *req;
    char ns[254], name[254], label_sel[512], field_sel[512];
    enum kube_res res;
    bool table, columns_sent;
    struct hmap *sent;         /* key -> kube_watch_item */
    struct event *ev_timeout;  /* timeoutSeconds, or NULL */
};

struct kubeapi {
    struct store *st;
    struct kube_watch *watches;
};

/* ---- selectors (pure) ---------------------------------------------------- */

static bool kube_sel_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_' || c == '/';
}

/* Splits one term "k op v" (spaces trimmed) into key, op and value.
 * op: 0 exists, 1 equals, 2 not equals, 3 not exists. -1 when malformed. */
static int kube_sel_term(const char *t, size_t len, char *key, size_t klen, char *val,
                         size_t vlen, int *op)
{
    while (len && isspace((unsigned char)*t)) { t++; len--; }
    while (len && isspace((unsigned char)t[len - 1])) len--;
    if (!len)
        return -1;
    *op = 0;
    if (t[0] == '!') {
        *op = 3;
        t++; len--;
        while (len && isspace((unsigned char)*t)) { t++; len--; }
    }
    size_t i = 0;
    while (i < len && kube_sel_char_ok(t[i]))
        i++;
    if (i == 0 || i >= klen)
        return -1;
    memcpy(key, t, i);
    key[i] = '\0';
    size_t j = i;
    while (j < len && isspace((unsigned char)t[j]))
        j++;
    val[0] = '\0';
    if (j == len)
        return 0;
    if (*op == 3)
        return -1;
    if (t[j] == '!' && j + 1 < len && t[j + 1] == '=') {
        *op = 2;
        j += 2;
    } else if (t[j] == '=' && j + 1 < len && t[j + 1] == '=') {
        *op = 1;
        j += 2;
    } else if (t[j] == '=') {
        *op = 1;
        j += 1;
    } else {
        return -1;   /* "in (...)", "notin", ">" ... */
    }
    while (j < len && isspace((unsigned char)t[j]))
        j++;
    size_t vl = len - j;
    if (vl >= vlen)
        return -1;
    for (size_t x = j; x < len; x++) {
        if (!kube_sel_char_ok(t[x]))
            return -1;
    }
    memcpy(val, t + j, vl);
    val[vl] = '\0';
    return 0;
}

/* Walks the comma-separated terms; get(ctx, key, &known) returns a value or
 * NULL. 1 match, 0 no match, -1 malformed (or an unknown field). */
static int kube_sel_eval(const char *sel, const char *(*get)(void *ctx, const char *key,
                                                              bool *known), void *ctx)
{
    int result = 1;
    const char *p = sel ? sel : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char key[256], val[256];
        int op;
        if (kube_sel_term(p, len, key, sizeof(key), val, sizeof(val), &op) < 0)
            return -1;
        bool known = true;
        const char *have = get(ctx, key, &known);
        if (!known)
            return -1;
        bool ok;
        switch (op) {
        case 0:  ok = have != NULL; break;
        case 1:  ok = have && strcmp(have, val) == 0; break;
        case 2:  ok = !have || strcmp(have, val) != 0; break;
        default: ok = have == NULL; break;
        }
        if (!ok)
            result = 0;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return -1;   /* trailing comma */
    }
    return result;
}

static const char *kube_label_get(void *ctx, const char *key, bool *known)
{
    *known = true;
    return ctx ? svcd_kvmap_get(ctx, key) : NULL;
}

int kubeapi_label_match(const char *selector, const struct svcd_kvmap *labels)
{
    return kube_sel_eval(selector, kube_label_get, (void *)labels);
}

struct kube_fields { const char *ns, *name; };

static const char *kube_field_get(void *ctx, const char *key, bool *known)
{
    const struct kube_fields *f = ctx;
    *known = true;
    if (strcmp(key, "metadata.name") == 0)
        return f->name ? f->name : "";
    if (strcmp(key, "metadata.namespace") == 0)
        return f->ns ? f->ns : "";
    *known = false;
    return NULL;
}

int kubeapi_field_match(const char *selector, const char *ns, const char *name)
{
    struct kube_fields f = { ns, name };
    /* field selectors have no existence terms */
    for (const char *p = selector ? selector : ""; *p; p++) {
        if (*p == '!' && p[1] != '=')
            return -1;
    }
    const char *p = selector ? selector : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!memchr(p, '=', len))
            return -1;
        if (!end)
            break;
        p = end + 1;
    }
    return kube_sel_eval(selector, kube_field_get, &f);
}

/* ---- JSON helpers -------------------------------------------------------- */

static json_t *kube_jip(const struct svcd_ip *ip)
{
    char buf[INET6_ADDRSTRLEN];
    return json_string(svcd_ip_format(ip, buf, sizeof(buf)));
}

static json_t *kube_jkv(const struct svcd_kvmap *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->n; i++)
        json_object_set_new(o, m->items[i].key,
                            json_string(m->items[i].value ? m->items[i].value : ""));
    return o;
}

static void kube_fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%s", "");
}

/* A stable UID for objects whose manifest had none. */
static void kube_uid(const char *kind, const char *ns, const char *name, char *out, size_t len)
{
    char key[600];
    int n = snprintf(key, sizeof(key), "%s/%s/%s", kind, ns ? ns : "", name ? name : "");
    size_t kl = n < 0 ? 0 : ((size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1);
    uint64_t a = hmap_hash(key, kl, 0x5eed), b = hmap_hash(key, kl, 0xcafe);
    snprintf(out, len, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
             (unsigned long long)(b & 0xffffffffffffULL));
}

/* metadata of an object; rv NULL leaves resourceVersion out (watch diffs). */
static json_t *kube_meta(const char *kind, const struct svcd_meta *m, const char *ns,
                         const char *name, int64_t created, const char *rv)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char buf[64];
    json_object_set_new(o, "name", json_string(name ? name : ""));
    if (ns)
        json_object_set_new(o, "namespace", json_string(ns));
    if (m && m->uid) {
        json_object_set_new(o, "uid", json_string(m->uid));
    } else {
        kube_uid(kind, ns, name, buf, sizeof(buf));
        json_object_set_new(o, "uid", json_string(buf));
    }
    if (rv)
        json_object_set_new(o, "resourceVersion", json_string(rv));
    kube_fmt_time(created, buf, sizeof(buf));
    if (buf[0])
        json_object_set_new(o, "creationTimestamp", json_string(buf));
    if (m && m->deletion_timestamp)
        json_object_set_new(o, "deletionTimestamp", json_string(m->deletion_timestamp));
    if (m && m->labels.n)
        json_object_set_new(o, "labels", kube_jkv(&m->labels));
    if (m && m->annotations.n)
        json_object_set_new(o, "annotations", kube_jkv(&m->annotations));
    return o;
}

static json_t *kube_object(const char *api_version, const char *kind, json_t *meta)
{
    return json_pack("{s:s, s:s, s:o}", "apiVersion", api_version, "kind", kind,
                     "metadata", meta);
}

/* kubectl's AGE: k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
static void kube_age(int64_t created, int64_t now, char *buf, size_t len)
{
    if (created <= 0) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    int64_t s = now - created;
    if (s < 0)
        s = 0;
    int64_t m = s / 60, h = s / 3600, d = h / 24, y = d / 365;
    if (s < 120)
        snprintf(buf, len, "%llds", (long long)s);
    else if (m < 10)
        snprintf(buf, len, "%lldm%llds", (long long)m, (long long)(s % 60));
    else if (m < 180)
        snprintf(buf, len, "%lldm", (long long)m);
    else if (h < 8)
        snprintf(buf, len, "%lldh%lldm", (long long)h, (long long)(m % 60));
    else if (h < 48)
        snprintf(buf, len, "%lldh", (long long)h);
    else if (h < 192)
        snprintf(buf, len, "%lldd%lldh", (long long)d, (long long)(h % 24));
    else if (y < 2)
        snprintf(buf, len, "%lldd", (long long)d);
    else if (y < 8)
        snprintf(buf, len, "%lldy%lldd", (long long)y, (long long)(d % 365));
    else
        snprintf(buf, len, "%lldy", (long long)y);
}

/* Appends s to a growing comma list in buf. */
static void kube_join(char *buf, size_t len, const char *s)
{
    size_t u = strlen(buf);
    if (u + 1 < len)
        snprintf(buf + u, len - u, "%s%s", u ? "," : "", s);
}

/* ---- objects ------------------------------------------------------------- */

struct kube_ctx {
    struct kubeapi *k;
    const struct kube_query *q;
    struct kube_list *out;
    const char *rv;            /* NULL: build without resourceVersion */
    int64_t now;
    bool oom, bad_selector;
};

/* Filters by namespace, name and selectors; true when the object is wanted. */
static bool kube_wanted(struct kube_ctx *c, const char *ns, const char *name,
                        const struct svcd_kvmap *labels)
{
    const struct kube_query *q = c->q;
    if (q->ns && (!ns || strcmp(q->ns, ns) != 0))
        return false;
    if (q->name && strcmp(q->name, name) != 0)
        return false;
    int r = kubeapi_label_match(q->label_sel, labels);
    int f = kubeapi_field_match(q->field_sel, ns, name);
    if (r < 0 || f < 0)
        c->bad_selector = true;
    return r == 1 && f == 1;
}

static int kube_add(struct kube_ctx *c, const char *ns, const char *name, int64_t created,
                    json_t *obj, json_t *cells)
{
    if (!obj || !cells || VEC_RESERVE(c->out->items, c->out->n, c->out->cap, 16) < 0) {
        json_decref(obj);
        json_decref(cells);
        c->oom = true;
        return 1;
    }
    struct kube_obj *o = &c->out->items[c->out->n++];
    snprintf(o->key, sizeof(o->key), "%s/%s", ns ? ns : "", name);
    o->ns = ns;
    o->name = name;
    o->created = created;
    o->obj = obj;
    o->cells = cells;
    return 0;
}

static int kube_add_service(void *ctx, const struct svcd_service *s)
{
    struct kube_ctx *c = ctx;
    if (!kube_wanted(c, s->meta.ns, s->meta.name, &s->meta.labels))
        return 0;
    json_t *spec = json_object();
    char buf[INET6_ADDRSTRLEN], ports[512] = "", ext[512] = "", sel[512] = "", age[32];
    json_object_set_new(spec, "type", json_string(svcd_svc_type_name(s->type)));
    if (s->type != SVCD_SVC_EXTERNAL_NAME) {
        json_t *ips = json_array();
        if (s->headless) {
            json_object_set_new(spec, "clusterIP", json_string("None"));
            json_array_append_new(ips, json_string("None"));
        } else if (s->n_cluster_ips) {
            json_object_set_new(spec, "clusterIP", kube_jip(&s->cluster_ips[0]));
            for (size_t i = 0; i < s->n_cluster_ips; i++)
                json_array_append_new(ips, kube_jip(&s->cluster_ips[i]));
        }
        json_object_set_new(spec, "clusterIPs", ips);
        json_t *fam = json_array();
        for (size_t i = 0; i < s->n_ip_families; i++)
            json_array_append_new(fam, json_string(s->ip_families[i] == AF_INET6 ? "IPv6"
                                                                                : "IPv4"));
        json_object_set_new(spec, "ipFamilies", fam);
    } else if (s->external_name) {
        json_object_set_new(spec, "externalName", json_string(s->external_name));
    }
    json_t *jports = json_array();
    for (size_t i = 0; i < s->n_ports; i++) {
        const struct svcd_service_port *p = &s->ports[i];
        json_t *jp = json_object();
        if (p->name)
            json_object_set_new(jp, "name", json_string(p->name));
        json_object_set_new(jp, "protocol", json_string(svcd_proto_name(p->protocol)));
        json_object_set_new(jp, "port", json_integer(p->port));
        if (p->target_port)
            json_object_set_new(jp, "targetPort", json_integer(p->target_port));
        else if (p->target_port_name)
            json_object_set_new(jp, "targetPort", json_string(p->target_port_name));
        else
            json_object_set_new(jp, "targetPort", json_integer(p->port));
        if (p->node_port)
            json_object_set_new(jp, "nodePort", json_integer(p->node_port));
        json_array_append_new(jports, jp);
        char one[64];
        if (p->node_port)
            snprintf(one, sizeof(one), "%u:%u/%s", (unsigned)p->port, (unsigned)p->node_port,
                     svcd_proto_name(p->protocol));
        else
            snprintf(one, sizeof(one), "%u/%s", (unsigned)p->port, svcd_proto_name(p->protocol));
        kube_join(ports, sizeof(ports), one);
    }
    json_object_set_new(spec, "ports", jports);
    if (s->has_selector) {
        json_object_set_new(spec, "selector", kube_jkv(&s->selector));
        for (size_t i = 0; i < s->selector.n; i++) {
            char one[300];
            snprintf(one, sizeof(one), "%s=%s", s->selector.items[i].key,
                     s->selector.items[i].value ? s->selector.items[i].value : "");
            kube_join(sel, sizeof(sel), one);
        }
    }
    if (s->n_external_ips) {
        json_t *e = json_array();
        for (size_t i = 0; i < s->n_external_ips; i++) {
            json_array_append_new(e, kube_jip(&s->external_ips[i]));
            kube_join(ext, sizeof(ext), svcd_ip_format(&s->external_ips[i], buf, sizeof(buf)));
        }
        json_object_set_new(spec, "externalIPs", e);
    }
    json_object_set_new(spec, "sessionAffinity",
                        json_string(s->affinity_client_ip ? "ClientIP" : "None"));
    if (s->publish_not_ready)
        json_object_set_new(spec, "publishNotReadyAddresses", json_true());
    if (s->type != SVCD_SVC_EXTERNAL_NAME)
        json_object_set_new(spec, "internalTrafficPolicy",
                            json_string(s->internal_policy == SVCD_POLICY_LOCAL ? "Local"
                                                                                : "Cluster"));
    if (s->type == SVCD_SVC_NODE_PORT || s->type == SVCD_SVC_LOAD_BALANCER)
        json_object_set_new(spec, "externalTrafficPolicy",
                            json_string(s->external_policy == SVCD_POLICY_LOCAL ? "Local"
                                                                                : "Cluster"));
    json_t *ingress = json_array();
    for (size_t i = 0; i < s->n_lb_ingress_ips; i++) {
        json_array_append_new(ingress, json_pack("{s:o}", "ip", kube_jip(&s->lb_ingress_ips[i])));
        kube_join(ext, sizeof(ext), svcd_ip_format(&s->lb_ingress_ips[i], buf, sizeof(buf)));
    }
    json_t *status = json_object();
    json_object_set_new(status, "loadBalancer",
                        s->n_lb_ingress_ips ? json_pack("{s:o}", "ingress", ingress) : json_object());
    if (!s->n_lb_ingress_ips)
        json_decref(ingress);

    json_t *obj = kube_object("v1", "Service",
                              kube_meta("Service", &s->meta, s->meta.ns, s->meta.name,
                                        s->meta.created, c->rv));
    if (obj) {
        json_object_set_new(obj, "spec", spec);
        json_object_set_new(obj, "status", status);
    } else {
        json_decref(spec);
        json_decref(status);
    }
    /* NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR */
    const char *cip = "<none>";
    if (s->headless)
        cip = "None";
    else if (s->n_cluster_ips && s->type != SVCD_SVC_EXTERNAL_NAME)
        cip = svcd_ip_format(&s->cluster_ips[0], buf, sizeof(buf));
    if (s->type == SVCD_SVC_EXTERNAL_NAME && s->external_name)
        snprintf(ext, sizeof(ext), "%s", s->external_name);
    else if (!ext[0])
        snprintf(ext, sizeof(ext), "%s", s->type == SVCD_SVC_LOAD_BALANCER ? "<pending>"
                                                                           : "<none>");
    kube_age(s->meta.created, c->now, age, sizeof(age));
    json_t *cells = json_pack("[s,s,s,s,s,s,s]", s->meta.name, svcd_svc_type_name(s->type), cip,
                              ext, ports[0] ? ports : "<none>", age, sel[0] ? sel : "<none>");
    return kube_add(c, s->meta.ns, s->meta.name, s->meta.created, obj, cells);
}

static int kube_add_pod(void *ctx, const struct svcd_pod *p)
{
    struct kube_ctx *c = ctx;
    if (!kube_wanted(c, p->meta.ns, p->meta.name, &p->meta.labels))
        return 0;
    char buf[INET6_ADDRSTRLEN], age[32], ready[32];
    json_t *spec = json_object();
    if (p->node_name)
        json_object_set_new(spec, "nodeName", json_string(p->node_name));
    if (p->hostname)
        json_object_set_new(spec, "hostname", json_string(p->hostname));
    if (p->subdomain)
        json_object_set_new(spec, "subdomain", json_string(p->subdomain));
    json_t *ctrs = json_array();
    for (size_t i = 0; i < p->n_containers; i++) {
        const struct svcd_container *ct = &p->containers[i];
        json_t *jc = json_pack("{s:s}", "name", ct->name ? ct->name : "");
        json_t *jp = json_array();
        for (size_t j = 0; j < ct->n_ports; j++) {
            json_t *port = json_pack("{s:i, s:s}", "containerPort", (int)ct->ports[j].container_port,
                                     "protocol", svcd_proto_name(ct->ports[j].protocol));
            if (ct->ports[j].name)
                json_object_set_new(port, "name", json_string(ct->ports[j].name));
            json_array_append_new(jp, port);
        }
        if (ct->n_ports)
            json_object_set_new(jc, "ports", jp);
        else
            json_decref(jp);
        json_array_append_new(ctrs, jc);
    }
    json_object_set_new(spec, "containers", ctrs);
    bool is_ready = svcd_pod_is_ready(p);
    json_t *status = json_object();
    json_object_set_new(status, "phase", json_string(svcd_pod_phase_name(p->phase)));
    if (p->n_ips) {
        json_object_set_new(status, "podIP", kube_jip(&p->ips[0]));
        json_t *ips = json_array();
        for (size_t i = 0; i < p->n_ips; i++)
            json_array_append_new(ips, json_pack("{s:o}", "ip", kube_jip(&p->ips[i])));
        json_object_set_new(status, "podIPs", ips);
    }
    json_object_set_new(status, "conditions",
                        json_pack("[{s:s, s:s}]", "type", "Ready", "status",
                                  is_ready ? "True" : "False"));
    json_t *obj = kube_object("v1", "Pod", kube_meta("Pod", &p->meta, p->meta.ns, p->meta.name,
                                                     p->meta.created, c->rv));
    if (obj) {
        json_object_set_new(obj, "spec", spec);
        json_object_set_new(obj, "status", status);
    } else {
        json_decref(spec);
        json_decref(status);
    }
    /* NAME READY STATUS RESTARTS AGE IP NODE NOMINATED-NODE READINESS-GATES */
    size_t n = p->n_containers;
    snprintf(ready, sizeof(ready), "%zu/%zu", is_ready ? n : 0, n);
    kube_age(p->meta.created, c->now, age, sizeof(age));
    const char *st = p->meta.deletion_timestamp ? "Terminating" : svcd_pod_phase_name(p->phase);
    json_t *cells = json_pack("[s,s,s,i,s,s,s,s,s]", p->meta.name, ready, st, 0, age,
                              p->n_ips ? svcd_ip_format(&p->ips[0], buf, sizeof(buf)) : "<none>",
                              p->node_name ? p->node_name : "<none>", "<none>", "<none>");
    return kube_add(c, p->meta.ns, p->meta.name, p->meta.created, obj, cells);
}

/* EndpointSlices as the controller would make them: one per Service and
 * address family, named <service>-ipv4 / <service>-ipv6. */
static void kube_add_slice_family(struct kube_ctx *c, const struct svcd_service *s, int af)
{
    const char *fam = af == AF_INET6 ? "IPv6" : "IPv4";
    char name[300], buf[INET6_ADDRSTRLEN], age[32], eps[256] = "", ports[256] = "";
    snprintf(name, sizeof(name), "%s-%s", s->meta.name, af == AF_INET6 ? "ipv6" : "ipv4");
    struct svcd_kvmap labels = { 0 };
    svcd_kvmap_set(&labels, "kubernetes.io/service-name", s->meta.name);
    svcd_kvmap_set(&labels, "endpointslice.kubernetes.io/managed-by", "svcd.io");
    bool want = kube_wanted(c, s->meta.ns, name, &labels);
    if (!want) {
        svcd_kvmap_free(&labels);
        return;
    }
    size_t n = 0, shown = 0, total = 0;
    const struct svcd_endpoint *e = store_endpoints_get(c->k->st, s->meta.ns, s->meta.name, &n);
    json_t *jeps = json_array();
    const struct svcd_endpoint *first = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *addrs = json_array();
        for (size_t j = 0; j < e[i].n_ips; j++) {
            if (e[i].ips[j].family != af)
                continue;
            json_array_append_new(addrs, kube_jip(&e[i].ips[j]));
            total++;
            if (shown < 3) {
                kube_join(eps, sizeof(eps), svcd_ip_format(&e[i].ips[j], buf, sizeof(buf)));
                shown++;
            }
        }
        if (json_array_size(addrs) == 0) {
            json_decref(addrs);
            continue;
        }
        if (!first)
            first = &e[i];
        json_t *je = json_pack("{s:o, s:{s:b, s:b, s:b}}", "addresses", addrs, "conditions",
                               "ready", e[i].ready, "serving", e[i].serving, "terminating",
                               e[i].terminating);
        if (e[i].hostname)
            json_object_set_new(je, "hostname", json_string(e[i].hostname));
        if (e[i].node_name)
            json_object_set_new(je, "nodeName", json_string(e[i].node_name));
        if (e[i].pod_name)
            json_object_set_new(je, "targetRef", json_pack("{s:s, s:s, s:s}", "kind", "Pod",
                                                           "namespace", s->meta.ns,
                                                           "name", e[i].pod_name));
        json_array_append_new(jeps, je);
    }
    json_t *jports = json_array();
    for (size_t i = 0; first && i < s->n_ports; i++) {
        json_t *jp = json_pack("{s:s, s:i}", "protocol", svcd_proto_name(s->ports[i].protocol),
                               "port", (int)first->target_ports[i]);
        json_object_set_new(jp, "name", json_string(s->ports[i].name ? s->ports[i].name : ""));
        json_array_append_new(jports, jp);
        char one[16];
        snprintf(one, sizeof(one), "%u", (unsigned)first->target_ports[i]);
        kube_join(ports, sizeof(ports), one);
    }
    if (total > shown) {
        size_t u = strlen(eps);
        snprintf(eps + u, sizeof(eps) - u, " + %zu more...", total - shown);
    }
    json_t *meta = kube_meta("EndpointSlice", NULL, s->meta.ns, name, s->meta.created, c->rv);
    if (meta) {
        char uid[64];
        if (s->meta.uid)
            snprintf(uid, sizeof(uid), "%s", s->meta.uid);
        else
            kube_uid("Service", s->meta.ns, s->meta.name, uid, sizeof(uid));
        json_object_set_new(meta, "labels", kube_jkv(&labels));
        json_object_set_new(meta, "ownerReferences",
                            json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", "v1",
                                      "kind", "Service", "name", s->meta.name, "uid", uid,
                                      "controller", 1, "blockOwnerDeletion", 1));
    }
    svcd_kvmap_free(&labels);
    json_t *obj = kube_object("discovery.k8s.io/v1", "EndpointSlice", meta);
    if (obj) {
        json_object_set_new(obj, "addressType", json_string(fam));
        json_object_set_new(obj, "endpoints", jeps);
        json_object_set_new(obj, "ports", first ? jports : json_null());
        if (!first)
            json_decref(jports);
    } else {
        json_decref(jeps);
        json_decref(jports);
    }
    /* NAME ADDRESSTYPE PORTS ENDPOINTS AGE; name strings live in the
     * store, the slice name is copied by the cells. */
    kube_age(s->meta.created, c->now, age, sizeof(age));
    json_t *cells = json_pack("[s,s,s,s,s]", name, fam, ports[0] ? ports : "<unset>",
                              eps[0] ? eps : "<unset>", age);
    if (kube_add(c, s->meta.ns, s->meta.name, s->meta.created, obj, cells) == 0) {
        /* the key must be the slice's name, not the Service's */
        struct kube_obj *o = &c->out->items[c->out->n - 1];
        snprintf(o->key, sizeof(o->key), "%s/%s", s->meta.ns, name);
        o->name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    }
}

static int kube_add_slices(void *ctx, const struct svcd_service *s)
{
    struct kube_ctx *c = ctx;
    if (s->type == SVCD_SVC_EXTERNAL_NAME)
        return 0;
    bool v4 = false, v6 = false;
    for (size_t i = 0; i < s->n_ip_families; i++) {
        v4 |= s->ip_families[i] == AF_INET;
        v6 |= s->ip_families[i] == AF_INET6;
    }
    if (!v4 && !v6)
        v4 = true;
    if (v4)
        kube_add_slice_family(c, s, AF_INET);
    if (v6)
        kube_add_slice_family(c, s, AF_INET6);
    return c->oom ? 1 : 0;
}

/* Namespaces: every namespace some object is in, and "default". */
struct kube_ns_seen {
    struct hmap *ns;           /* name -> (intptr_t) earliest created */
};

static void kube_ns_note(struct kube_ns_seen *s, const char *ns, int64_t created)
{
    intptr_t have = (intptr_t)hmap_get(s->ns, ns);
    if (!have || (created > 0 && (have == 1 || created < have)))
        hmap_set(s->ns, ns, (void *)(intptr_t)(created > 0 ? created : 1));
}

static int kube_ns_svc(void *ctx, const struct svcd_service *s)
{
    kube_ns_note(ctx, s->meta.ns, s->meta.created);
    return 0;
}

static int kube_ns_pod(void *ctx, const struct svcd_pod *p)
{
    kube_ns_note(ctx, p->meta.ns, p->meta.created);
    return 0;
}

static int kube_ns_add(void *ctx, const char *key, void *value)
{
    struct kube_ctx *c = ctx;
    int64_t created = (intptr_t)value > 1 ? (int64_t)(intptr_t)value : 0;
    if (!kube_wanted(c, NULL, key, NULL))
        return 0;
    char age[32];
    json_t *obj = kube_object("v1", "Namespace", kube_meta("Namespace", NULL, NULL, key,
                                                           created, c->rv));
    if (obj) {
        json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
        json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
    }
    kube_age(created, c->now, age, sizeof(age));
    json_t *cells = json_pack("[s,s,s]", key, "Active", age);
    if (kube_add(c, NULL, key, created, obj, cells) == 0) {
        struct kube_obj *o = &c->out->items[c->out->n - 1];
        o->name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    }
    return c->oom ? 1 : 0;
}

static int kube_obj_cmp(const void *x, const void *y)
{
    return strcmp(((const struct kube_obj *)x)->key, ((const struct kube_obj *)y)->key);
}

static void kube_list_clear(struct kube_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        json_decref(l->items[i].obj);
        json_decref(l->items[i].cells);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Builds the wanted objects, sorted by namespace/name. rv NULL: without
 * resourceVersion. Returns 0, -1 on ENOMEM, -2 for a bad selector. */
static int kube_collect(struct kubeapi *k, const struct kube_query *q, const char *rv,
                        struct kube_list *out)
{
    struct kube_ctx c = { .k = k, .q = q, .out = out, .rv = rv, .now = (int64_t)time(NULL) };
    switch (q->res) {
    case KR_SERVICES:
        store_foreach_service(k->st, kube_add_service, &c);
        break;
    case KR_PODS:
        store_foreach_pod(k->st, kube_add_pod, &c);
        break;
    case KR_SLICES:
        store_foreach_service(k->st, kube_add_slices, &c);
        break;
    case KR_NAMESPACES: {
        struct kube_ns_seen seen = { hmap_new() };
        if (!seen.ns)
            return -1;
        kube_ns_note(&seen, "default", 0);
        store_foreach_service(k->st, kube_ns_svc, &seen);
        store_foreach_pod(k->st, kube_ns_pod, &seen);
        hmap_foreach(seen.ns, kube_ns_add, &c);
        hmap_free(seen.ns);
        break;
    }
    case KR_NONE:
        break;
    }
    if (c.bad_selector) {
        kube_list_clear(out);
        return -2;
    }
    if (c.oom) {
        kube_list_clear(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(out->items[0]), kube_obj_cmp);
    return 0;
}

/* ---- tables -------------------------------------------------------------- */

static json_t *kube_columns(enum kube_res r)
{
    static const char *const svc[] = { "Name", "Type", "Cluster-IP", "External-IP", "Port(s)",
                                       "Age", "Selector", NULL };
    static const int svc_p[] = { 0, 0, 0, 0, 0, 0, 1 };
    static const char *const pod[] = { "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node",
                                       "Nominated Node", "Readiness Gates", NULL };
    static const int pod_p[] = { 0, 0, 0, 0, 0, 1, 1, 1, 1 };
    static const char *const ns[] = { "Name", "Status", "Age", NULL };
    static const int ns_p[] = { 0, 0, 0 };
    static const char *const sl[] = { "Name", "AddressType", "Ports", "Endpoints", "Age", NULL };
    static const int sl_p[] = { 0, 0, 0, 0, 0 };
    const char *const *names = svc;
    const int *prio = svc_p;
    if (r == KR_PODS) { names = pod; prio = pod_p; }
    if (r == KR_NAMESPACES) { names = ns; prio = ns_p; }
    if (r == KR_SLICES) { names = sl; prio = sl_p; }
    json_t *cols = json_array();
    for (size_t i = 0; cols && names[i]; i++) {
        bool is_int = r == KR_PODS && strcmp(names[i], "Restarts") == 0;
        json_array_append_new(cols, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", names[i],
                                              "type", is_int ? "integer" : "string",
                                              "format", i == 0 ? "name" : "",
                                              "description", "", "priority", prio[i]));
    }
    return cols;
}

static json_t *kube_table_row(const struct kube_obj *o)
{
    json_t *meta = json_deep_copy(json_object_get(o->obj, "metadata"));
    return json_pack("{s:O, s:{s:s, s:s, s:o}}", "cells", o->cells, "object", "kind",
                     "PartialObjectMetadata", "apiVersion", "meta.k8s.io/v1", "metadata",
                     meta ? meta : json_object());
}

static json_t *kube_table(enum kube_res r, const char *rv, const struct kube_obj *objs, size_t n,
                          bool columns)
{
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < n; i++)
        json_array_append_new(rows, kube_table_row(&objs[i]));
    return json_pack("{s:s, s:s, s:{s:s}, s:o, s:o}", "kind", "Table", "apiVersion",
                     "meta.k8s.io/v1", "metadata", "resourceVersion", rv, "columnDefinitions",
                     columns ? kube_columns(r) : json_array(), "rows", rows);
}

/* ---- replies ------------------------------------------------------------- */

static void kube_send_json(struct evhttp_request *req, int code, const char *reason, json_t *doc)
{
    struct evbuffer *b = evbuffer_new();
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!b || !text) {
        free(text);
        if (b)
            evbuffer_free(b);
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* A metav1.Status error, as kubectl prints it: Error from server (Reason): msg */
static void kube_send_status(struct evhttp_request *req, int code, const char *reason,
                             const char *kreason, const char *msg)
{
    kube_send_json(req, code, reason,
                   json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
                             "apiVersion", "v1", "metadata", "status", "Failure", "message", msg,
                             "reason", kreason, "code", code));
}

static json_t *kube_discovery_resources(const char *group_version)
{
    json_t *res = json_array();
    for (size_t i = 0; i < KR_NONE; i++) {
        const struct kube_res_info *ri = &kube_res_info[i];
        if (strcmp(ri->group_version, group_version) != 0)
            continue;
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name", ri->plural,
                              "singularName", ri->singular, "namespaced", ri->namespaced,
                              "kind", ri->kind, "verbs", "get", "list", "watch");
        if (ri->short_name)
            json_object_set_new(r, "shortNames", json_pack("[s]", ri->short_name));
        json_array_append_new(res, r);
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", group_version, "resources", res);
}

/* ---- watch --------------------------------------------------------------- */

static int kube_watch_item_free(void *ctx, const char *key, void *value)
{
    struct kube_watch_item *it = value;
    (void)ctx; (void)key;
    free(it->cmp);
    json_decref(it->obj);
    json_decref(it->cells);
    free(it);
    return 0;
}

static void kube_watch_free(struct kube_watch *w, bool end_reply)
{
    struct kube_watch **pp = &w->k->watches;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    if (w->req) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(w->req);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        if (end_reply)
            evhttp_send_reply_end(w->req);
    }
    if (w->ev_timeout)
        event_free(w->ev_timeout);
    if (w->sent) {
        hmap_foreach(w->sent, kube_watch_item_free, NULL);
        hmap_free(w->sent);
    }
    free(w);
}

static void kube_watch_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    kube_watch_free(arg, false);
}

/* timeoutSeconds passed: the stream ends as the API server ends it. */
static void kube_watch_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    kube_watch_free(arg, true);
}

static void kube_watch_send(struct kube_watch *w, const char *type, json_t *obj, json_t *cells,
                            const char *rv)
{
    json_t *payload;
    if (w->table) {
        struct kube_obj one;
        memset(&one, 0, sizeof(one));
        one.obj = obj;
        one.cells = cells;
        payload = kube_table(w->res, rv, &one, 1, !w->columns_sent);
        w->columns_sent = true;
    } else {
        payload = json_incref(obj);
    }
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "object", payload);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    struct evbuffer *b = evbuffer_new();
    if (text && b) {
        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n", 1);
        evhttp_send_reply_chunk(w->req, b);
    }
    free(text);
    if (b)
        evbuffer_free(b);
}

struct kube_watch_gone {
    struct kube_watch *w;
    const char *rv;
};

static int kube_watch_send_deleted(void *ctx, const char *key, void *value)
{
    struct kube_watch_gone *g = ctx;
    struct kube_watch_item *it = value;
    (void)key;
    json_t *meta = json_object_get(it->obj, "metadata");
    if (meta)
        json_object_set_new(meta, "resourceVersion", json_string(g->rv));
    kube_watch_send(g->w, "DELETED", it->obj, it->cells, g->rv);
    return 0;
}

/* Sends the difference between what w last sent and the store now (only
 * records the state when send is false). */
static void kube_watch_update(struct kube_watch *w, bool send)
{
    struct kubeapi *k = w->k;
    char rv[32];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_generation(k->st));
    struct kube_query q;
    memset(&q, 0, sizeof(q));
    q.res = w->res;
    q.ns = w->ns[0] ? w->ns : NULL;
    q.name = w->name[0] ? w->name : NULL;
    q.label_sel = w->label_sel;
    q.field_sel = w->field_sel;
    struct kube_list l = { 0 };
    struct hmap *next = hmap_new();
    if (!next || kube_collect(k, &q, rv, &l) < 0) {
        hmap_free(next);
        return;
    }
    for (size_t i = 0; i < l.n; i++) {
        struct kube_obj *o = &l.items[i];
        struct kube_watch_item *it = calloc(1, sizeof(*it));
        json_t *cmpobj = json_deep_copy(o->obj);
        if (!it || !cmpobj) {
            free(it);
            json_decref(cmpobj);
            continue;
        }
        json_object_del(json_object_get(cmpobj, "metadata"), "resourceVersion");
        it->cmp = json_dumps(cmpobj, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(cmpobj);
        it->obj = json_incref(o->obj);
        it->cells = json_incref(o->cells);
        struct kube_watch_item *old = hmap_del(w->sent, o->key);
        if (send && (!old || !old->cmp || !it->cmp || strcmp(old->cmp, it->cmp) != 0))
            kube_watch_send(w, old ? "MODIFIED" : "ADDED", o->obj, o->cells, rv);
        if (old)
            kube_watch_item_free(NULL, NULL, old);
        if (hmap_set(next, o->key, it) < 0)
            kube_watch_item_free(NULL, NULL, it);
    }
    /* what is left in the old map is gone */
    struct hmap *old = w->sent;
    w->sent = next;
    if (send) {
        struct kube_watch_gone g = { w, rv };
        hmap_foreach(old, kube_watch_send_deleted, &g);
    }
    hmap_foreach(old, kube_watch_item_free, NULL);
    hmap_free(old);
    kube_list_clear(&l);
}

static void kube_on_commit(void *ctx, struct store *st, uint64_t generation,
                           const struct store_change *changes, size_t n_changes,
                           bool pods_changed)
{
    struct kubeapi *k = ctx;
    (void)st; (void)generation; (void)changes; (void)n_changes; (void)pods_changed;
    for (struct kube_watch *w = k->watches; w; w = w->next)
        kube_watch_update(w, true);
}

static void kube_watch_start(struct kubeapi *k, struct evhttp_request *req,
                             const struct kube_query *q)
{
    struct kube_watch *w = calloc(1, sizeof(*w));
    if (!w || !(w->sent = hmap_new())) {
        free(w);
        kube_send_status(req, 500, "Internal Server Error", "InternalError", "out of memory");
        return;
    }
    w->k = k;
    w->req = req;
    w->res = q->res;
    w->table = q->table;
    snprintf(w->ns, sizeof(w->ns), "%s", q->ns ? q->ns : "");
    snprintf(w->name, sizeof(w->name), "%s", q->name ? q->name : "");
    snprintf(w->label_sel, sizeof(w->label_sel), "%s", q->label_sel ? q->label_sel : "");
    snprintf(w->field_sel, sizeof(w->field_sel), "%s", q->field_sel ? q->field_sel : "");
    w->next = k->watches;
    k->watches = w;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply_start(req, 200, "OK");
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        evhttp_connection_set_closecb(evcon, kube_watch_closed, w);
        evhttp_connection_set_timeout(evcon, 24 * 3600);
        if (q->timeout_s > 0) {
            struct timeval tv = { q->timeout_s, 0 };
            w->ev_timeout = evtimer_new(evhttp_connection_get_base(evcon), kube_watch_timeout, w);
            if (w->ev_timeout)
                evtimer_add(w->ev_timeout, &tv);
        }
    }
    /* Without a resourceVersion (or "0") the stream opens with the current
     * objects as ADDED; with one the client has them already. */
    kube_watch_update(w, q->send_initial);
}

/* ---- requests ------------------------------------------------------------ */

bool kubeapi_owns(const char *path)
{
    return strcmp(path, "/version") == 0 || strcmp(path, "/api") == 0 ||
           strcmp(path, "/api/v1") == 0 || strncmp(path, "/api/v1/", 8) == 0 ||
           strcmp(path, "/apis") == 0 || strncmp(path, "/apis/", 6) == 0;
}

static enum kube_res kube_res_by_name(const char *name, const char *group_version)
{
    for (size_t i = 0; i < KR_NONE; i++) {
        if (strcmp(kube_res_info[i].plural, name) == 0 &&
            strcmp(kube_res_info[i].group_version, group_version) == 0)
            return (enum kube_res)i;
    }
    return KR_NONE;
}

/* Splits the path after the group-version prefix into at most 4 segments. */
static size_t kube_split(char *rest, char **seg, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(rest, "/"); tok; tok = strtok(NULL, "/")) {
        if (n == max)
            return max + 1;
        seg[n++] = tok;
    }
    return n;
}

static bool kube_wants_table(struct evhttp_request *req)
{
    const char *accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    return accept && strstr(accept, "as=Table") != NULL;
}

static void kube_handle_list(struct kubeapi *k, struct evhttp_request *req, struct kube_query *q)
{
    char rv[32], msg[600];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_generation(k->st));
    if (q->watch) {
        kube_watch_start(k, req, q);
        return;
    }
    struct kube_list l = { 0 };
    int r = kube_collect(k, q, rv, &l);
    if (r == -2) {
        snprintf(msg, sizeof(msg), "unable to parse requirement: labelSelector \"%.200s\", "
                 "fieldSelector \"%.200s\" (svcd supports =, ==, != and existence on labels, "
                 "metadata.name and metadata.namespace on fields)",
                 q->label_sel ? q->label_sel : "", q->field_sel ? q->field_sel : "");
        kube_send_status(req, 400, "Bad Request", "BadRequest", msg);
        return;
    }
    if (r < 0) {
        kube_send_status(req, 500, "Internal Server Error", "InternalError", "out of memory");
        return;
    }
    const struct kube_res_info *ri = &kube_res_info[q->res];
    if (q->name && l.n == 0) {
        snprintf(msg, sizeof(msg), "%s \"%.256s\" not found", ri->plural, q->name);
        kube_send_status(req, 404, "Not Found", "NotFound", msg);
        return;
    }
    json_t *doc;
    if (q->table) {
        doc = kube_table(q->res, rv, l.items, l.n, true);
    } else if (q->name) {
        doc = json_incref(l.items[0].obj);
    } else {
        json_t *items = json_array();
        for (size_t i = 0; items && i < l.n; i++)
            json_array_append(items, l.items[i].obj);
        char kind[64];
        snprintf(kind, sizeof(kind), "%sList", ri->kind);
        doc = json_pack("{s:s, s:s, s:{s:s}, s:o}", "kind", kind, "apiVersion",
                        ri->group_version, "metadata", "resourceVersion", rv, "items", items);
    }
    kube_list_clear(&l);
    kube_send_json(req, 200, "OK", doc);
}

void kubeapi_handle(struct kubeapi *k, struct evhttp_request *req, const char *path,
                    const char *query)
{
    char msg[400];
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        kube_send_status(req, 405, "Method Not Allowed", "MethodNotAllowed",
                         "svcd serves a read-only Kubernetes API (get, list, watch)");
        return;
    }
    if (strcmp(path, "/version") == 0) {
        kube_send_json(req, 200, "OK",
                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1", "minor", "30",
                                 "gitVersion", "v1.30.0+svcd-" SVCD_VERSION, "goVersion", "",
                                 "compiler", "gcc", "platform", "linux/amd64"));
        return;
    }
    if (strcmp(path, "/api") == 0) {
        kube_send_json(req, 200, "OK",
                       json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions",
                                 "versions", "v1", "serverAddressByClientCIDRs", "clientCIDR",
                                 "0.0.0.0/0", "serverAddress", ""));
        return;
    }
    if (strcmp(path, "/apis") == 0) {
        kube_send_json(req, 200, "OK",
                       json_pack("{s:s, s:s, s:[{s:s, s:[{s:s, s:s}], s:{s:s, s:s}}]}",
                                 "kind", "APIGroupList", "apiVersion", "v1", "groups",
                                 "name", "discovery.k8s.io", "versions", "groupVersion",
                                 "discovery.k8s.io/v1", "version", "v1", "preferredVersion",
                                 "groupVersion", "discovery.k8s.io/v1", "version", "v1"));
        return;
    }
    if (strcmp(path, "/api/v1") == 0 || strcmp(path, "/apis/discovery.k8s.io/v1") == 0) {
        kube_send_json(req, 200, "OK",
                       kube_discovery_resources(path[4] == 's' ? "discovery.k8s.io/v1" : "v1"));
        return;
    }
    if (strcmp(path, "/apis/discovery.k8s.io") == 0) {
        kube_send_json(req, 200, "OK",
                       json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "kind",
                                 "APIGroup", "apiVersion", "v1", "name", "discovery.k8s.io",
                                 "versions", "groupVersion", "discovery.k8s.io/v1", "version",
                                 "v1", "preferredVersion", "groupVersion",
                                 "discovery.k8s.io/v1", "version", "v1"));
        return;
    }
    const char *gv = NULL, *rest = NULL;
    if (strncmp(path, "/api/v1/", 8) == 0) {
        gv = "v1";
        rest = path + 8;
    } else if (strncmp(path, "/apis/discovery.k8s.io/v1/", 26) == 0) {
        gv = "discovery.k8s.io/v1";
        rest = path + 26;
    }
    char buf[512], *seg[5];
    size_t n = 0;
    if (rest && strlen(rest) < sizeof(buf)) {
        snprintf(buf, sizeof(buf), "%s", rest);
        n = kube_split(buf, seg, 4);
    }
    struct kube_query q;
    memset(&q, 0, sizeof(q));
    q.res = KR_NONE;
    /* RES | RES/NAME | namespaces/NS | namespaces/NS/RES | namespaces/NS/RES/NAME */
    if (gv && n >= 1 && n <= 4) {
        if (strcmp(seg[0], "namespaces") == 0 && strcmp(gv, "v1") == 0 && n <= 2) {
            q.res = KR_NAMESPACES;
            q.name = n == 2 ? seg[1] : NULL;
        } else if (strcmp(seg[0], "namespaces") == 0 && n >= 3) {
            q.ns = seg[1];
            q.res = kube_res_by_name(seg[2], gv);
            q.name = n == 4 ? seg[3] : NULL;
            if (q.res != KR_NONE && !kube_res_info[q.res].namespaced)
                q.res = KR_NONE;
        } else if (n <= 2 && strcmp(seg[0], "namespaces") != 0) {
            q.res = kube_res_by_name(seg[0], gv);
            q.name = n == 2 ? seg[1] : NULL;
            if (q.name && q.res != KR_NONE && kube_res_info[q.res].namespaced)
                q.res = KR_NONE;   /* a namespaced object needs its namespace */
        }
    }
    if (q.res == KR_NONE) {
        snprintf(msg, sizeof(msg), "the server could not find the requested resource (%.300s)",
                 path);
        kube_send_status(req, 404, "Not Found", "NotFound", msg);
        return;
    }
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (query && evhttp_parse_query_str(query, &params) != 0) {
        kube_send_status(req, 400, "Bad Request", "BadRequest", "malformed query string");
        return;
    }
    q.label_sel = evhttp_find_header(&params, "labelSelector");
    q.field_sel = evhttp_find_header(&params, "fieldSelector");
    const char *watch = evhttp_find_header(&params, "watch");
    q.watch = watch && (strcasecmp(watch, "true") == 0 || strcmp(watch, "1") == 0);
    const char *tmo = evhttp_find_header(&params, "timeoutSeconds");
    q.timeout_s = tmo ? atoi(tmo) : 0;
    const char *rv = evhttp_find_header(&params, "resourceVersion");
    q.send_initial = !rv || !*rv || strcmp(rv, "0") == 0;
    q.table = kube_wants_table(req);
    /* a watch of one object: kubectl get KIND NAME -w uses the list path
     * with fieldSelector=metadata.name=NAME, which the selector handles */
    kube_handle_list(k, req, &q);
    evhttp_clear_headers(&params);
}

/* ---- lifecycle ----------------------------------------------------------- */

struct kubeapi *kubeapi_new(struct store *st)
{
    struct kubeapi *k = calloc(1, sizeof(*k));
    if (!k) {
        log_err(KUBE_MOD, "out of memory");
        return NULL;
    }
    k->st = st;
    struct store_subscriber sub = { kube_on_commit, k };
    if (store_subscribe(st, &sub) < 0) {
        log_err(KUBE_MOD, "cannot subscribe to the store");
        free(k);
        return NULL;
    }
    return k;
}

void kubeapi_free(struct kubeapi *k)
{
    if (!k)
        return;
    while (k->watches)
        kube_watch_free(k->watches, true);
    store_unsubscribe(k->st, k);
    free(k);
}
