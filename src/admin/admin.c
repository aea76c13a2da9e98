/*
 * admin: the HTTP admin API (see include/svcd/admin.h).
 *
 * One evhttp server on the daemon's event loop. Every handler is read-only:
 * it walks the store, builds a jansson document (or Prometheus text) and
 * sends it in one reply. The listening socket is made here rather than by
 * evhttp_bind_socket() so that a bind failure is logged with its errno and
 * so that port 0 can be read back for tests.
 *
 * Connections are bounded (admin_set_limits). evhttp owns each accepted
 * connection, but it creates the connection's bufferevent through our
 * callback (evhttp_set_bevcb), and we keep one reference on it
 * (bufferevent_incref): the object stays valid after evhttp has freed it,
 * and a sweep every 100 ms sees that (evhttp cleared its callbacks) and
 * drops our reference, which closes the socket. With that list: a new
 * connection must complete its first request head within the header
 * timeout; evhttp's own timeout closes connections idle longer than the
 * idle timeout; at the connection cap the idle connection whose last request
 * is oldest is shut down (shutdown(2): evhttp sees EOF and frees it), and
 * well above the cap the listener pauses until connections close. The caps
 * keep clients from taking the descriptors probes, nftables and conntrack
 * need.
 *
 * JSON field names follow the Kubernetes API (camelCase, clusterIPs,
 * targetPort ...) so that kubectl users recognise them; docs/ADMIN.md is the
 * reference.
 */
#include "svcd/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#include "svcd/config.h"
#include "svcd/health.h"
#include "svcd/kubeapi.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/model.h"
#include "svcd/probe.h"
#include "svcd/store.h"
#include "svcd/manifest_dir.h"
#include "svcd/vec.h"

#define ADMIN_MOD "admin"
/* Accepted connections beyond the cap that may wait for their eviction to
 * complete before the listener pauses. */
#define ADMIN_CONN_SLACK 64

struct admin;

/* One accepted connection. */
struct admin_conn {
    TAILQ_ENTRY(admin_conn) link;   /* oldest last request first */
    struct bufferevent *bev;        /* evhttp's; we hold one reference */
    struct timeval born;
    bool got_request;               /* a request head arrived */
    bool closing;                   /* shut down by us, not yet freed */
};
TAILQ_HEAD(admin_conn_list, admin_conn);

struct admin {
    struct event_base *base;
    struct store *st;
    struct probe_mgr *probes;      /* or NULL: no probe status shown */
    struct manifest_dir *md;       /* or NULL: no manifest problems shown */
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    uint16_t port;
    admin_ready_fn ready;
    void *ready_ctx;
    struct health *health;         /* or NULL: ready() decides */
    struct kubeapi *kube;          /* the read-only Kubernetes API */
    struct metric *m_commits;      /* svcd_store_commits_total */
    struct metric *m_requests[5];  /* by status class 1xx..5xx */
    /* connections */
    struct admin_conn_list conns;
    size_t n_conns, n_closing;
    uint32_t max_conns, idle_ms, header_ms;
    bool paused;                   /* listener disabled at cap + slack */
    struct event *sweep;           /* every 100 ms while connections exist */
    struct metric *m_conns;        /* svcd_admin_connections */
    struct metric *m_closed_limit, *m_closed_header;
    /* endpoint condition counts, recomputed when the generation moves */
    uint64_t ep_gen;
    bool ep_valid;
    size_t ep_ready, ep_serving, ep_terminating;
};

/* ---- store gauges -------------------------------------------------------- */

enum admin_gauge {
    ADMIN_G_SERVICES, ADMIN_G_PODS, ADMIN_G_SLICES,
    ADMIN_G_EP_READY, ADMIN_G_EP_SERVING, ADMIN_G_EP_TERMINATING,
    ADMIN_G_GENERATION,
};

/* Callback gauges get (admin, which) through a small static table of
 * contexts: one per gauge, each pointing back at the live admin. */
struct admin_gauge_ctx {
    struct admin *a;
    enum admin_gauge which;
};
static struct admin_gauge_ctx admin_gauge_ctxs[ADMIN_G_GENERATION + 1];

/* Counts endpoints per condition (an endpoint counts under each condition
 * it has, as in EndpointSlice). Walks every Service's endpoints once per
 * store generation; scrapes in between reuse the counts. */
static int admin_count_endpoints_cb(void *ctx, const struct svcd_service *svc)
{
    struct admin *a = ctx;
    size_t n = 0;
    const struct svcd_endpoint *eps = store_endpoints_get(a->st, svc->meta.ns, svc->meta.name, &n);
    for (size_t i = 0; i < n; i++) {
        a->ep_ready += eps[i].ready;
        a->ep_serving += eps[i].serving;
        a->ep_terminating += eps[i].terminating;
    }
    return 0;
}

static void admin_count_endpoints(struct admin *a)
{
    uint64_t gen = store_generation(a->st);
    if (a->ep_valid && a->ep_gen == gen)
        return;
    a->ep_ready = a->ep_serving = a->ep_terminating = 0;
    store_foreach_service(a->st, admin_count_endpoints_cb, a);
    a->ep_gen = gen;
    a->ep_valid = true;
}

static double admin_gauge_read(void *ctx)
{
    const struct admin_gauge_ctx *g = ctx;
    struct admin *a = g->a;
    if (!a || !a->st)
        return 0;
    struct store_stats s;
    memset(&s, 0, sizeof(s));
    store_get_stats(a->st, &s);
    switch (g->which) {
    case ADMIN_G_SERVICES:       return (double)s.services;
    case ADMIN_G_PODS:           return (double)s.pods;
    case ADMIN_G_SLICES:         return (double)s.slices;
    case ADMIN_G_EP_READY:       admin_count_endpoints(a); return (double)a->ep_ready;
    case ADMIN_G_EP_SERVING:     admin_count_endpoints(a); return (double)a->ep_serving;
    case ADMIN_G_EP_TERMINATING: admin_count_endpoints(a); return (double)a->ep_terminating;
    case ADMIN_G_GENERATION:     return (double)store_generation(a->st);
    }
    return 0;
}

static void admin_metrics_register(struct admin *a)
{
    static const struct {
        enum admin_gauge which;
        const char *name, *labels, *help;
    } gauges[] = {
        { ADMIN_G_SERVICES, "svcd_services", NULL, "Services in the store." },
        { ADMIN_G_PODS, "svcd_pods", NULL, "Pods in the store." },
        { ADMIN_G_SLICES, "svcd_endpointslices", NULL, "EndpointSlices in the store." },
        { ADMIN_G_EP_READY, "svcd_endpoints", "condition=\"ready\"",
          "Service endpoints by condition; an endpoint counts under each condition it has." },
        { ADMIN_G_EP_SERVING, "svcd_endpoints", "condition=\"serving\"",
          "Service endpoints by condition; an endpoint counts under each condition it has." },
        { ADMIN_G_EP_TERMINATING, "svcd_endpoints", "condition=\"terminating\"",
          "Service endpoints by condition; an endpoint counts under each condition it has." },
        { ADMIN_G_GENERATION, "svcd_store_generation", NULL,
          "Current store generation (advances once per commit that changed something)." },
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        struct admin_gauge_ctx *g = &admin_gauge_ctxs[gauges[i].which];
        g->a = a;
        g->which = gauges[i].which;
        metric_gauge_fn(gauges[i].name, gauges[i].labels, gauges[i].help, admin_gauge_read, g);
    }
    a->m_commits = metric_counter("svcd_store_commits_total", NULL,
                                  "Store commits that changed something.");
    static const char *const classes[] = {
        "code=\"1xx\"", "code=\"2xx\"", "code=\"3xx\"", "code=\"4xx\"", "code=\"5xx\"" };
    for (size_t i = 0; i < 5; i++)
        a->m_requests[i] = metric_counter("svcd_admin_requests_total", classes[i],
                                          "Admin API requests by status class.");
    metrics_register_process();
    metric_set(metric_gauge("svcd_build_info", "version=\"" SVCD_VERSION "\"",
                            "svcd build information (always 1)."), 1);
}

/* Brings the commits counter up to the store's count before a render. */
static void admin_metrics_refresh(struct admin *a)
{
    struct store_stats s;
    memset(&s, 0, sizeof(s));
    store_get_stats(a->st, &s);
    double cur = metric_value(a->m_commits);
    if ((double)s.commits > cur)
        metric_add(a->m_commits, (double)s.commits - cur);
}

/* ---- replies ------------------------------------------------------------- */

static void admin_reply(struct admin *a, struct evhttp_request *req, int code,
                        const char *reason, const char *ctype, struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (code >= 100 && code < 600)
        metric_add(a->m_requests[code / 100 - 1], 1);
    evhttp_send_reply(req, code, reason, body);
}

static void admin_reply_text(struct admin *a, struct evhttp_request *req, int code,
                             const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    admin_reply(a, req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* Sends doc as JSON and drops the reference. */
static void admin_reply_json(struct admin *a, struct evhttp_request *req, int code,
                             const char *reason, json_t *doc)
{
    struct evbuffer *b = evbuffer_new();
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!b || !text) {
        free(text);
        if (b)
            evbuffer_free(b);
        log_err(ADMIN_MOD, "out of memory building a reply");
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, text, strlen(text));
    evbuffer_add(b, "\n", 1);
    free(text);
    admin_reply(a, req, code, reason, "application/json", b);
    evbuffer_free(b);
}

static void admin_reply_error(struct admin *a, struct evhttp_request *req, int code,
                              const char *reason, const char *msg)
{
    admin_reply_json(a, req, code, reason, json_pack("{s:s, s:i}", "error", msg, "code", code));
}

/* ---- JSON building ------------------------------------------------------- */

/* json_string() of NULL is NULL, and json_object_set_new() of NULL fails;
 * these helpers map a NULL C string to JSON null. */
static json_t *admin_jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *admin_jip(const struct svcd_ip *ip)
{
    char buf[INET6_ADDRSTRLEN];
    return json_string(svcd_ip_format(ip, buf, sizeof(buf)));
}

static json_t *admin_jips(const struct svcd_ip *ips, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, admin_jip(&ips[i]));
    return arr;
}

static json_t *admin_jkv(const struct svcd_kvmap *m)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < m->n; i++)
        json_object_set_new(o, m->items[i].key, admin_jstr(m->items[i].value));
    return o;
}

/* RFC 3339 UTC, or null when unknown (0). */
static json_t *admin_jtime(int64_t t)
{
    if (t <= 0)
        return json_null();
    time_t tt = (time_t)t;
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return json_null();
    return json_string(buf);
}

static const char *admin_tristate_name(enum svcd_tristate t)
{
    switch (t) {
    case SVCD_TRUE:    return "True";
    case SVCD_FALSE:   return "False";
    case SVCD_UNKNOWN: break;
    }
    return "Unknown";
}

static const char *admin_family_name(int af)
{
    return af == AF_INET6 ? "IPv6" : "IPv4";
}

static json_t *admin_json_service(const struct svcd_service *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "namespace", admin_jstr(s->meta.ns));
    json_object_set_new(o, "name", admin_jstr(s->meta.name));
    json_object_set_new(o, "uid", admin_jstr(s->meta.uid));
    json_object_set_new(o, "labels", admin_jkv(&s->meta.labels));
    json_object_set_new(o, "type", json_string(svcd_svc_type_name(s->type)));
    json_object_set_new(o, "clusterIPs", admin_jips(s->cluster_ips, s->n_cluster_ips));
    json_object_set_new(o, "headless", json_boolean(s->headless));
    json_t *fam = json_array();
    for (size_t i = 0; fam && i < s->n_ip_families; i++)
        json_array_append_new(fam, json_string(admin_family_name(s->ip_families[i])));
    json_object_set_new(o, "ipFamilies", fam);
    if (s->type != SVCD_SVC_EXTERNAL_NAME)
        json_object_set_new(o, "ipFamilyPolicy",
                            json_string(svcd_ip_family_policy_name(s->ip_family_policy)));

    json_t *ports = json_array();
    for (size_t i = 0; ports && i < s->n_ports; i++) {
        const struct svcd_service_port *p = &s->ports[i];
        json_t *tp;
        if (p->target_port)
            tp = json_integer(p->target_port);
        else if (p->target_port_name)
            tp = json_string(p->target_port_name);
        else
            tp = json_integer(p->port);
        json_array_append_new(ports, json_pack("{s:o, s:s, s:i, s:o, s:i}",
                                               "name", admin_jstr(p->name),
                                               "protocol", svcd_proto_name(p->protocol),
                                               "port", (int)p->port,
                                               "targetPort", tp,
                                               "nodePort", (int)p->node_port));
    }
    json_object_set_new(o, "ports", ports);
    json_object_set_new(o, "selector", s->has_selector ? admin_jkv(&s->selector) : json_null());
    json_object_set_new(o, "externalName", admin_jstr(s->external_name));
    json_object_set_new(o, "externalIPs", admin_jips(s->external_ips, s->n_external_ips));
    json_object_set_new(o, "loadBalancerIngress",
                        admin_jips(s->lb_ingress_ips, s->n_lb_ingress_ips));
    json_object_set_new(o, "sessionAffinity",
                        json_string(s->affinity_client_ip ? "ClientIP" : "None"));
    if (s->affinity_client_ip)
        json_object_set_new(o, "sessionAffinityTimeoutSeconds",
                            json_integer(s->affinity_timeout));
    json_object_set_new(o, "publishNotReadyAddresses", json_boolean(s->publish_not_ready));
    json_object_set_new(o, "internalTrafficPolicy",
                        json_string(s->internal_policy == SVCD_POLICY_LOCAL ? "Local" : "Cluster"));
    json_object_set_new(o, "externalTrafficPolicy",
                        json_string(s->external_policy == SVCD_POLICY_LOCAL ? "Local" : "Cluster"));
    if (s->health_check_node_port)
        json_object_set_new(o, "healthCheckNodePort", json_integer(s->health_check_node_port));
    json_object_set_new(o, "creationTimestamp", admin_jtime(s->meta.created));
    json_object_set_new(o, "deletionTimestamp", admin_jstr(s->meta.deletion_timestamp));
    return o;
}

static const char *admin_probe_kind_name(enum svcd_probe_kind k)
{
    switch (k) {
    case SVCD_PROBE_EXEC: return "exec";
    case SVCD_PROBE_TCP:  return "tcpSocket";
    case SVCD_PROBE_HTTP: return "httpGet";
    case SVCD_PROBE_GRPC: return "grpc";
    case SVCD_PROBE_NONE: break;
    }
    return NULL;
}

/* A probe summary, or null when the container has none of that kind. */
static json_t *admin_json_probe(const struct svcd_probe *p)
{
    const char *kind = admin_probe_kind_name(p->kind);
    if (!kind)
        return json_null();
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "kind", json_string(kind));
    if (p->kind == SVCD_PROBE_EXEC) {
        json_t *argv = json_array();
        for (size_t i = 0; argv && p->exec_argv && p->exec_argv[i]; i++)
            json_array_append_new(argv, json_string(p->exec_argv[i]));
        json_object_set_new(o, "command", argv);
    } else {
        if (p->port_name)
            json_object_set_new(o, "port", json_string(p->port_name));
        else
            json_object_set_new(o, "port", json_integer(p->port));
    }
    if (p->kind == SVCD_PROBE_HTTP) {
        json_object_set_new(o, "path", json_string(p->path ? p->path : "/"));
        json_object_set_new(o, "scheme", json_string(p->scheme ? p->scheme : "HTTP"));
    }
    if (p->host)
        json_object_set_new(o, "host", json_string(p->host));
    if (p->kind == SVCD_PROBE_GRPC && p->grpc_service)
        json_object_set_new(o, "service", json_string(p->grpc_service));
    json_object_set_new(o, "initialDelaySeconds", json_integer(p->initial_delay_s));
    json_object_set_new(o, "periodSeconds", json_integer(p->period_s));
    json_object_set_new(o, "timeoutSeconds", json_integer(p->timeout_s));
    json_object_set_new(o, "successThreshold", json_integer(p->success_threshold));
    json_object_set_new(o, "failureThreshold", json_integer(p->failure_threshold));
    return o;
}

/* ---- probe status -------------------------------------------------------- */

/* The probe manager's JSON for one pod (probe_status_json), with "kind" added
 * to lastProbe (the kind of the probe that produced the last result, found in
 * the container that ran it) so that clients need not search the containers.
 * Returns a new object, or NULL on ENOMEM. */
static json_t *admin_json_probe_status(const struct probe_pod_status *ps)
{
    json_t *o = probe_status_json(ps);
    if (!o)
        return NULL;
    json_t *last = json_object_get(o, "lastProbe");
    if (json_is_object(last) && ps->last_type < PROBE_TYPE_COUNT) {
        const char *kind = NULL;
        for (size_t i = 0; i < ps->n_containers; i++) {
            const struct probe_check_status *c = &ps->containers[i].probes[ps->last_type];
            if (!c->configured)
                continue;
            if (!kind || c->last_probe_ms == ps->last_probe_ms)
                kind = probe_kind_name(c->kind);
            if (c->last_probe_ms == ps->last_probe_ms)
                break;
        }
        json_object_set_new(last, "kind", admin_jstr(kind));
    }
    return o;
}

/* The "probes" member of a pod item: the probe status without the pod's
 * namespace/name (already in the item), or NULL when there is no manager or
 * the manager has no opinion on the pod. */
static json_t *admin_json_pod_probes(const struct admin *a, const struct svcd_pod *p)
{
    if (!a->probes || !p->meta.ns || !p->meta.name)
        return NULL;
    const struct probe_pod_status *ps = probe_status_get(a->probes, p->meta.ns, p->meta.name);
    if (!ps)
        return NULL;
    json_t *o = admin_json_probe_status(ps);
    if (o) {
        json_object_del(o, "namespace");
        json_object_del(o, "name");
    }
    return o;
}

/* Why the pod is not a ready endpoint of the Services selecting it, or
 * null when it is one. */
static json_t *admin_pod_endpoint_reason(const struct svcd_pod *p)
{
    if (p->n_ips == 0)
        return json_string("no status.podIP: svcd does not run pods; write the pod's status "
                           "(phase, podIP) in its manifest, or run it with `podman kube play` "
                           "and use the podman source");
    if (p->phase == SVCD_PHASE_SUCCEEDED || p->phase == SVCD_PHASE_FAILED)
        return json_pack("s+", "phase ", svcd_pod_phase_name(p->phase));
    if (p->meta.deletion_timestamp)
        return json_string("terminating");
    if (p->phase != SVCD_PHASE_RUNNING)
        return json_pack("s+s", "phase ", svcd_pod_phase_name(p->phase), " (not Running)");
    if (!svcd_pod_is_ready(p))
        return json_string(p->probe_ready == SVCD_FALSE ? "readiness probe failing"
                                                        : "not ready");
    return json_null();
}

static json_t *admin_json_pod(const struct admin *a, const struct svcd_pod *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "namespace", admin_jstr(p->meta.ns));
    json_object_set_new(o, "name", admin_jstr(p->meta.name));
    json_object_set_new(o, "uid", admin_jstr(p->meta.uid));
    json_object_set_new(o, "labels", admin_jkv(&p->meta.labels));
    json_object_set_new(o, "phase", json_string(svcd_pod_phase_name(p->phase)));
    json_object_set_new(o, "podIPs", admin_jips(p->ips, p->n_ips));
    json_object_set_new(o, "nodeName", admin_jstr(p->node_name));
    json_object_set_new(o, "ready", json_boolean(svcd_pod_is_ready(p)));
    json_object_set_new(o, "endpointReason", admin_pod_endpoint_reason(p));
    json_object_set_new(o, "readyCondition", json_string(admin_tristate_name(p->ready_condition)));
    json_object_set_new(o, "probeReady", json_string(admin_tristate_name(p->probe_ready)));
    json_object_set_new(o, "hostname", admin_jstr(p->hostname));
    json_object_set_new(o, "subdomain", admin_jstr(p->subdomain));
    json_t *cs = json_array();
    for (size_t i = 0; cs && i < p->n_containers; i++) {
        const struct svcd_container *c = &p->containers[i];
        json_t *ports = json_array();
        for (size_t j = 0; ports && j < c->n_ports; j++) {
            const struct svcd_container_port *cp = &c->ports[j];
            json_array_append_new(ports, json_pack("{s:o, s:i, s:s}",
                                                   "name", admin_jstr(cp->name),
                                                   "containerPort", (int)cp->container_port,
                                                   "protocol", svcd_proto_name(cp->protocol)));
        }
        json_t *probes = json_pack("{s:o, s:o, s:o}",
                                   "readiness", admin_json_probe(&c->readiness),
                                   "liveness", admin_json_probe(&c->liveness),
                                   "startup", admin_json_probe(&c->startup));
        json_array_append_new(cs, json_pack("{s:o, s:o, s:o}",
                                            "name", admin_jstr(c->name),
                                            "ports", ports ? ports : json_array(),
                                            "probes", probes ? probes : json_object()));
    }
    json_object_set_new(o, "containers", cs);
    json_object_set_new(o, "creationTimestamp", admin_jtime(p->meta.created));
    json_object_set_new(o, "deletionTimestamp", admin_jstr(p->meta.deletion_timestamp));
    json_t *probes = admin_json_pod_probes(a, p);
    if (probes)
        json_object_set_new(o, "probes", probes);
    return o;
}

static json_t *admin_json_endpoints(const struct store *st, const struct svcd_service *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "namespace", admin_jstr(s->meta.ns));
    json_object_set_new(o, "name", admin_jstr(s->meta.name));
    json_object_set_new(o, "headless", json_boolean(s->headless));
    json_object_set_new(o, "creationTimestamp", admin_jtime(s->meta.created));
    size_t n = 0;
    const struct svcd_endpoint *eps = store_endpoints_get(st, s->meta.ns, s->meta.name, &n);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        const struct svcd_endpoint *e = &eps[i];
        json_t *ports = json_array();
        for (size_t j = 0; ports && e->target_ports && j < s->n_ports; j++) {
            if (e->target_ports[j] == 0)
                continue;
            json_array_append_new(ports, json_pack("{s:o, s:i, s:s}",
                                                   "name", admin_jstr(s->ports[j].name),
                                                   "port", (int)e->target_ports[j],
                                                   "protocol",
                                                   svcd_proto_name(s->ports[j].protocol)));
        }
        json_array_append_new(arr, json_pack("{s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:o}",
                                             "addresses", admin_jips(e->ips, e->n_ips),
                                             "hostname", admin_jstr(e->hostname),
                                             "nodeName", admin_jstr(e->node_name),
                                             "podName", admin_jstr(e->pod_name),
                                             "ready", (int)e->ready,
                                             "serving", (int)e->serving,
                                             "terminating", (int)e->terminating,
                                             "ports", ports ? ports : json_array()));
    }
    json_object_set_new(o, "endpoints", arr);
    return o;
}

/* ---- /api listing -------------------------------------------------------- */

enum admin_kind { ADMIN_KIND_SERVICES, ADMIN_KIND_PODS, ADMIN_KIND_ENDPOINTS, ADMIN_KIND_PROBES };

/* One collected object with its sort key. */
struct admin_item {
    const char *ns, *name;
    const void *obj;
};

struct admin_collect {
    const char *ns_filter, *name_filter;
    enum admin_kind kind;
    struct admin_item *items;
    size_t n, cap;
    bool oom;
};

static int admin_collect_add(struct admin_collect *c, const char *ns, const char *name,
                             const void *obj)
{
    ns = ns ? ns : "";
    name = name ? name : "";
    if (c->ns_filter && strcmp(c->ns_filter, ns) != 0)
        return 0;
    if (c->name_filter && strcmp(c->name_filter, name) != 0)
        return 0;
    if (VEC_RESERVE(c->items, c->n, c->cap, 64) < 0) {
        c->oom = true;
        return 1;
    }
    c->items[c->n].ns = ns;
    c->items[c->n].name = name;
    c->items[c->n].obj = obj;
    c->n++;
    return 0;
}

static int admin_collect_service(void *ctx, const struct svcd_service *svc)
{
    struct admin_collect *c = ctx;
    /* ExternalName Services have no endpoints object (as in Kubernetes). */
    if (c->kind == ADMIN_KIND_ENDPOINTS && svc->type == SVCD_SVC_EXTERNAL_NAME)
        return 0;
    return admin_collect_add(c, svc->meta.ns, svc->meta.name, svc);
}

static int admin_collect_pod(void *ctx, const struct svcd_pod *pod)
{
    return admin_collect_add(ctx, pod->meta.ns, pod->meta.name, pod);
}

static int admin_collect_probe(void *ctx, const struct probe_pod_status *ps)
{
    return admin_collect_add(ctx, ps->ns, ps->name, ps);
}

static int admin_item_cmp(const void *x, const void *y)
{
    const struct admin_item *a = x, *b = y;
    int r = strcmp(a->ns, b->ns);
    return r ? r : strcmp(a->name, b->name);
}

/* Returns a query parameter's value (owned by q) or NULL when absent/empty. */
static const char *admin_query_get(struct evkeyvalq *q, const char *key)
{
    const char *v = evhttp_find_header(q, key);
    return (v && *v) ? v : NULL;
}

static void admin_handle_list(struct admin *a, struct evhttp_request *req,
                              enum admin_kind kind, struct evkeyvalq *q)
{
    struct admin_collect c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.ns_filter = admin_query_get(q, "namespace");
    c.name_filter = admin_query_get(q, "name");
    json_t *doc = NULL, *items = NULL;

    if (kind == ADMIN_KIND_PODS)
        store_foreach_pod(a->st, admin_collect_pod, &c);
    else if (kind == ADMIN_KIND_PROBES) {
        /* The statuses stay valid until the manager is called again: collect
         * pointers first, then build JSON only from those pointers. */
        if (a->probes)
            probe_status_foreach(a->probes, admin_collect_probe, &c);
    } else
        store_foreach_service(a->st, admin_collect_service, &c);
    if (c.oom)
        goto oom;
    if (c.n > 1)
        qsort(c.items, c.n, sizeof(c.items[0]), admin_item_cmp);

    items = json_array();
    if (!items)
        goto oom;
    for (size_t i = 0; i < c.n; i++) {
        json_t *it;
        if (kind == ADMIN_KIND_SERVICES)
            it = admin_json_service(c.items[i].obj);
        else if (kind == ADMIN_KIND_PODS)
            it = admin_json_pod(a, c.items[i].obj);
        else if (kind == ADMIN_KIND_PROBES)
            it = admin_json_probe_status(c.items[i].obj);
        else
            it = admin_json_endpoints(a->st, c.items[i].obj);
        if (!it || json_array_append_new(items, it) != 0)
            goto oom;
    }
    doc = json_pack("{s:I, s:o}", "generation", (json_int_t)store_generation(a->st),
                    "items", items);
    items = NULL;   /* owned by doc (or freed by json_pack on failure) */
    if (!doc)
        goto oom;
    free(c.items);
    admin_reply_json(a, req, 200, "OK", doc);
    return;
oom:
    json_decref(items);
    free(c.items);
    log_err(ADMIN_MOD, "out of memory listing objects");
    admin_reply_error(a, req, 500, "Internal Server Error", "out of memory");
}

/* ---- other endpoints ----------------------------------------------------- */

static void admin_handle_metrics(struct admin *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    /* count this request before rendering so the scrape sees itself */
    metric_add(a->m_requests[1], 1);
    admin_metrics_refresh(a);
    metrics_render(b);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* Whether a raw query string has the flag key (kube style "?verbose", which
 * evhttp's key=value parser rejects), alone or as "key=...". */
static bool admin_query_flag(const char *query, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p; ) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= kl && strncmp(p, key, kl) == 0 && (len == kl || p[kl] == '='))
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int admin_collect_problem(void *ctx, const char *file, const char *object,
                                 const char *reason, const char *message)
{
    json_array_append_new(ctx, json_pack("{s:s, s:o, s:s, s:s}", "file", file, "object",
                                         admin_jstr(object), "reason", reason, "message",
                                         message));
    return 0;
}

static int admin_cmp_problem(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int r = strcmp(json_string_value(json_object_get(a, "file")),
                   json_string_value(json_object_get(b, "file")));
    if (r)
        return r;
    const char *oa = json_string_value(json_object_get(a, "object"));
    const char *ob = json_string_value(json_object_get(b, "object"));
    return strcmp(oa ? oa : "", ob ? ob : "");
}

/* /api/status: generation, readiness and what is wrong with the manifests. */
static void admin_handle_status(struct admin *a, struct evhttp_request *req)
{
    char reason[512];
    const char *why = NULL;
    if (a->health) {
        if (health_eval(a->health, reason, sizeof(reason)) != HEALTH_OK)
            why = reason;
    } else if (a->ready) {
        why = a->ready(a->ready_ctx);
    }
    json_t *probs = json_array(), *sorted = json_array();
    if (a->md)
        manifest_dir_foreach_problem(a->md, admin_collect_problem, probs);
    size_t n = json_array_size(probs);
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(probs, i);
    if (v)
        qsort(v, n, sizeof(*v), admin_cmp_problem);
    for (size_t i = 0; v && i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_decref(probs);
    admin_reply_json(a, req, 200, "OK",
                     json_pack("{s:s, s:I, s:b, s:o, s:o}", "version", SVCD_VERSION,
                               "generation", (json_int_t)store_generation(a->st),
                               "ready", why == NULL, "readyReason", admin_jstr(why),
                               "problems", sorted));
}

static void admin_handle_readyz(struct admin *a, struct evhttp_request *req,
                                const char *query)
{
    if (a->health) {
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            evhttp_send_error(req, 500, NULL);
            return;
        }
        bool ok = health_render(a->health, b, admin_query_flag(query, "verbose"));
        admin_reply(a, req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable",
                    "text/plain; charset=utf-8", b);
        evbuffer_free(b);
        return;
    }
    const char *why = a->ready ? a->ready(a->ready_ctx) : NULL;
    if (!why) {
        admin_reply_text(a, req, 200, "OK", "ok");
        return;
    }
    admin_reply_text(a, req, 503, "Service Unavailable", why);
}

/* Dispatches every request (evhttp's generic callback). */
/* ---- connections ---------------------------------------------------------- */

/* Makes evhttp drop the connection: it reads EOF and frees it. */
static void admin_conn_close(struct admin *a, struct admin_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    a->n_closing++;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

static void admin_listener_set(struct admin *a, bool on)
{
    struct evconnlistener *l = a->bound ? evhttp_bound_socket_get_listener(a->bound) : NULL;
    if (!l || a->paused == !on)
        return;
    a->paused = !on;
    if (on)
        evconnlistener_enable(l);
    else
        evconnlistener_disable(l);
}

/* Drops our reference (closing the socket if evhttp has not). */
static void admin_conn_free(struct admin *a, struct admin_conn *c)
{
    TAILQ_REMOVE(&a->conns, c, link);
    a->n_conns--;
    if (c->closing)
        a->n_closing--;
    bufferevent_decref(c->bev);
    free(c);
}

/* The sweep runs every 100 ms while connections exist, every 5 ms while
 * the listener is paused (connections we shut down are waiting to be
 * forgotten so that accepting can resume). */
static void admin_sweep_schedule(struct admin *a)
{
    if (TAILQ_EMPTY(&a->conns)) {
        event_del(a->sweep);
        return;
    }
    struct timeval tv = { .tv_sec = 0, .tv_usec = a->paused ? 5000 : 100000 };
    event_add(a->sweep, &tv);
}

/* Every 100 ms while connections exist: forget connections evhttp freed,
 * close those past the header timeout, resume a paused listener. */
static void admin_conn_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    (void)fd; (void)what;
    struct timeval now, age;
    event_base_gettimeofday_cached(a->base, &now);
    struct admin_conn *c, *next;
    for (c = TAILQ_FIRST(&a->conns); c; c = next) {
        next = TAILQ_NEXT(c, link);
        bufferevent_event_cb eventcb = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
        if (!eventcb) {            /* evhttp freed it */
            admin_conn_free(a, c);
            continue;
        }
        timersub(&now, &c->born, &age);
        if (!c->got_request && !c->closing &&
            (uint64_t)age.tv_sec * 1000 + (uint64_t)age.tv_usec / 1000 >= a->header_ms) {
            metric_add(a->m_closed_header, 1);
            admin_conn_close(a, c);
        }
    }
    metric_set(a->m_conns, (double)a->n_conns);
    if (a->paused && a->n_conns < (size_t)a->max_conns + ADMIN_CONN_SLACK / 2)
        admin_listener_set(a, true);
    admin_sweep_schedule(a);
}

/* evhttp_set_bevcb: called for each accepted connection (evhttp sets the
 * socket on the returned bufferevent afterwards). */
static struct bufferevent *admin_conn_new(struct event_base *base, void *arg)
{
    struct admin *a = arg;
    /* At the cap the idle connection with the oldest request makes room.
     * Idle: nothing waiting to be read or written. A client's request may
     * sit unread in its socket while a burst of connections is accepted in
     * one go; that connection is not idle and stays. */
    struct admin_conn *old = TAILQ_FIRST(&a->conns);
    while (old && a->n_conns - a->n_closing >= a->max_conns) {
        int pending = 0;
        evutil_socket_t fd = bufferevent_getfd(old->bev);
        if (!old->closing && fd >= 0 && ioctl(fd, FIONREAD, &pending) == 0 && pending == 0 &&
            evbuffer_get_length(bufferevent_get_output(old->bev)) == 0) {
            metric_add(a->m_closed_limit, 1);
            admin_conn_close(a, old);
        }
        old = TAILQ_NEXT(old, link);
    }
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        free(c);
        return NULL;
    }
    bufferevent_incref(c->bev);
    event_base_gettimeofday_cached(base, &c->born);
    TAILQ_INSERT_TAIL(&a->conns, c, link);
    a->n_conns++;
    metric_set(a->m_conns, (double)a->n_conns);
    if (a->n_conns >= (size_t)a->max_conns + ADMIN_CONN_SLACK) {
        admin_listener_set(a, false);
        admin_sweep_schedule(a);
    } else if (!evtimer_pending(a->sweep, NULL)) {
        admin_sweep_schedule(a);
    }
    return c->bev;
}

/* A request head arrived on req's connection: no header timeout any more,
 * and it becomes the most recently used. */
static void admin_conn_got_request(struct admin *a, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct admin_conn *c;
    TAILQ_FOREACH_REVERSE(c, &a->conns, admin_conn_list, link) {
        if (c->bev == bev) {
            c->got_request = true;
            if (TAILQ_NEXT(c, link)) {
                TAILQ_REMOVE(&a->conns, c, link);
                TAILQ_INSERT_TAIL(&a->conns, c, link);
            }
            return;
        }
    }
}

void admin_set_limits(struct admin *a, uint32_t max_conns, uint32_t idle_ms, uint32_t header_ms)
{
    if (!a)
        return;
    a->max_conns = max_conns ? max_conns : 1;
    a->idle_ms = idle_ms;
    a->header_ms = header_ms;
    /* whole seconds: evhttp_set_timeout_tv() breaks connections made by a
     * bevcb in libevent 2.1.12 (they are freed at once) */
    evhttp_set_timeout(a->http, (int)((idle_ms + 999) / 1000));
}

static void admin_handle(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    admin_conn_got_request(a, req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    char pbuf[256];
    struct evkeyvalq q;
    TAILQ_INIT(&q);

    if (!path || !*path)
        path = "/";
    /* one trailing slash is forgiven: /api/pods/ == /api/pods */
    size_t plen = strlen(path);
    if (plen > 1 && plen < sizeof(pbuf) && path[plen - 1] == '/') {
        memcpy(pbuf, path, plen - 1);
        pbuf[plen - 1] = '\0';
        path = pbuf;
    }

    if (kubeapi_owns(path)) {
        kubeapi_handle(a->kube, req, path, query);
        goto out;
    }
    enum { R_NONE, R_HEALTH, R_READY, R_METRICS, R_SVC, R_POD, R_EP, R_PROBES, R_STATUS,
           R_ROOT } route = R_NONE;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/livez") == 0)
        route = R_HEALTH;
    else if (strcmp(path, "/readyz") == 0)
        route = R_READY;
    else if (strcmp(path, "/metrics") == 0)
        route = R_METRICS;
    else if (strcmp(path, "/api/services") == 0)
        route = R_SVC;
    else if (strcmp(path, "/api/pods") == 0)
        route = R_POD;
    else if (strcmp(path, "/api/endpoints") == 0)
        route = R_EP;
    else if (strcmp(path, "/api/probes") == 0)
        route = R_PROBES;
    else if (strcmp(path, "/api/status") == 0)
        route = R_STATUS;
    else if (strcmp(path, "/") == 0)
        route = R_ROOT;

    if (route == R_NONE) {
        char msg[300];
        snprintf(msg, sizeof(msg), "no such path: %.256s", path);
        admin_reply_error(a, req, 404, "Not Found", msg);
        goto out;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        admin_reply_error(a, req, 405, "Method Not Allowed", "method not allowed (use GET)");
        goto out;
    }
    if (query && route != R_READY && evhttp_parse_query_str(query, &q) != 0) {
        admin_reply_error(a, req, 400, "Bad Request", "malformed query string");
        goto out;
    }

    switch (route) {
    case R_HEALTH:
        admin_reply_text(a, req, 200, "OK", "ok");
        break;
    case R_READY:
        admin_handle_readyz(a, req, query);
        break;
    case R_METRICS:
        admin_handle_metrics(a, req);
        break;
    case R_SVC:
        admin_handle_list(a, req, ADMIN_KIND_SERVICES, &q);
        break;
    case R_POD:
        admin_handle_list(a, req, ADMIN_KIND_PODS, &q);
        break;
    case R_EP:
        admin_handle_list(a, req, ADMIN_KIND_ENDPOINTS, &q);
        break;
    case R_PROBES:
        admin_handle_list(a, req, ADMIN_KIND_PROBES, &q);
        break;
    case R_STATUS:
        admin_handle_status(a, req);
        break;
    case R_ROOT:
        admin_reply_json(a, req, 200, "OK",
                         json_pack("{s:s, s:[s,s,s,s,s,s,s,s]}", "version", SVCD_VERSION,
                                   "paths", "/healthz", "/readyz", "/metrics", "/api/services",
                                   "/api/pods", "/api/endpoints", "/api/probes",
                                   "/api/status"));
        break;
    case R_NONE:
        break;
    }
out:
    evhttp_clear_headers(&q);
}

/* ---- lifecycle ----------------------------------------------------------- */

/* Makes a listening, non-blocking TCP socket; -1 with errno on failure. */
static evutil_socket_t admin_listen_socket(const struct svcd_hostport *hp, uint16_t *port_out)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (hp->ip.family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(hp->port);
        memcpy(&s6->sin6_addr, &hp->ip.u.v6, sizeof(s6->sin6_addr));
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(hp->port);
        s4->sin_addr = hp->ip.u.v4;
        sl = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    int err;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail;
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0)
        goto fail;
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

struct admin *admin_new(struct event_base *base, struct store *st,
                        const struct svcd_hostport *listen,
                        admin_ready_fn ready, void *ready_ctx)
{
    struct admin *a = calloc(1, sizeof(*a));
    evutil_socket_t fd = -1;
    if (!a) {
        log_err(ADMIN_MOD, "out of memory");
        return NULL;
    }
    a->base = base;
    a->st = st;
    a->ready = ready;
    a->ready_ctx = ready_ctx;
    a->kube = kubeapi_new(st);
    if (!a->kube)
        goto fail;

    fd = admin_listen_socket(listen, &a->port);
    if (fd < 0) {
        log_err(ADMIN_MOD, "cannot listen on %s: %s", listen->text, strerror(errno));
        goto fail;
    }
    a->http = evhttp_new(base);
    if (!a->http) {
        log_err(ADMIN_MOD, "evhttp_new failed");
        goto fail;
    }
    /* Let every method reach admin_handle so that it answers 405 itself. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_max_body_size(a->http, 65536);
    TAILQ_INIT(&a->conns);
    a->m_conns = metric_gauge("svcd_admin_connections", NULL, "Open admin API connections.");
    a->m_closed_limit = metric_counter("svcd_admin_connections_closed_total",
                                       "reason=\"limit\"",
                                       "Admin connections svcd closed, by reason.");
    a->m_closed_header = metric_counter("svcd_admin_connections_closed_total",
                                        "reason=\"header_timeout\"",
                                        "Admin connections svcd closed, by reason.");
    admin_set_limits(a, ADMIN_DEFAULT_MAX_CONNS, ADMIN_DEFAULT_IDLE_MS, ADMIN_DEFAULT_HEADER_MS);
    a->sweep = event_new(base, -1, EV_PERSIST, admin_conn_sweep, a);
    if (!a->sweep) {
        log_err(ADMIN_MOD, "out of memory");
        goto fail;
    }
    evhttp_set_bevcb(a->http, admin_conn_new, a);
    evhttp_set_gencb(a->http, admin_handle, a);
    a->bound = evhttp_accept_socket_with_handle(a->http, fd);
    if (!a->bound) {
        log_err(ADMIN_MOD, "cannot serve HTTP on %s", listen->text);
        goto fail;
    }
    fd = -1;   /* owned by evhttp now */
    admin_metrics_register(a);
    log_info(ADMIN_MOD, "admin API listening on %s (port %u)", listen->text, (unsigned)a->port);
    return a;
fail:
    if (fd >= 0)
        close(fd);
    admin_free(a);
    return NULL;
}

void admin_set_health(struct admin *a, struct health *h)
{
    if (a)
        a->health = h;
}

void admin_set_probes(struct admin *a, struct probe_mgr *mgr)
{
    if (a)
        a->probes = mgr;
}

void admin_set_manifests(struct admin *a, struct manifest_dir *md)
{
    if (a)
        a->md = md;
}

uint16_t admin_port(const struct admin *a)
{
    return a ? a->port : 0;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < sizeof(admin_gauge_ctxs) / sizeof(admin_gauge_ctxs[0]); i++) {
        if (admin_gauge_ctxs[i].a == a)
            admin_gauge_ctxs[i].a = NULL;
    }
    kubeapi_free(a->kube);      /* ends watch streams before their connections go */
    if (a->http)
        evhttp_free(a->http);   /* closes the bound socket and connections too */
    while (!TAILQ_EMPTY(&a->conns))
        admin_conn_free(a, TAILQ_FIRST(&a->conns));
    if (a->sweep)
        event_free(a->sweep);
    free(a);
}
