/*
 * test_store: endpoint computation and change notification, table-driven.
 *
 * Each case loads YAML through the manifest parser into a store and renders
 * one Service's endpoints as text: "IP[,IP] R|- S|- T|- ports=P,P [host=H]"
 * joined by "; ", sorted by first IP, and compares with the expectation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcd/manifest.h"
#include "svcd/store.h"

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* Loads yaml into st as one batch; returns 0 or -1 (parse error printed). */
static int load(struct store *st, const char *yaml)
{
    struct manifest_objs o = { 0 };
    char err[512];
    if (manifest_parse(yaml, strlen(yaml), 1700000000, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "parse error: %s\n", err);
        return -1;
    }
    store_begin(st);
    for (size_t i = 0; i < o.n_services; i++) {
        store_service_upsert(st, o.services[i]);
        o.services[i] = NULL;
    }
    for (size_t i = 0; i < o.n_pods; i++) {
        store_pod_upsert(st, o.pods[i]);
        o.pods[i] = NULL;
    }
    for (size_t i = 0; i < o.n_slices; i++) {
        store_slice_upsert(st, o.slices[i]);
        o.slices[i] = NULL;
    }
    store_commit(st);
    manifest_objs_free(&o);
    return 0;
}

static void render(const struct store *st, const char *ns, const char *name, char *out,
                   size_t len)
{
    size_t n;
    const struct svcd_endpoint *eps = store_endpoints_get(st, ns, name, &n);
    const struct svcd_service *svc = store_service_get(st, ns, name);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const struct svcd_endpoint *e = &eps[i];
        char ip[64];
        if (i)
            used += (size_t)snprintf(out + used, len - used, "; ");
        for (size_t j = 0; j < e->n_ips; j++)
            used += (size_t)snprintf(out + used, len - used, "%s%s", j ? "," : "",
                                     svcd_ip_format(&e->ips[j], ip, sizeof(ip)));
        used += (size_t)snprintf(out + used, len - used, " %s %s %s", e->ready ? "R" : "-",
                                 e->serving ? "S" : "-", e->terminating ? "T" : "-");
        if (svc && svc->n_ports) {
            used += (size_t)snprintf(out + used, len - used, " ports=");
            for (size_t p = 0; p < svc->n_ports; p++)
                used += (size_t)snprintf(out + used, len - used, "%s%u", p ? "," : "",
                                         e->target_ports[p]);
        }
        if (e->hostname)
            used += (size_t)snprintf(out + used, len - used, " host=%s", e->hostname);
    }
}

#define POD(name, labels, ip, extra)                                            \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", labels: " labels "}\n" \
    "spec:\n  containers:\n  - name: c\n    ports:\n    - {name: http, containerPort: 8080}\n" \
    "    - {name: dns, containerPort: 5353, protocol: UDP}\n" extra                   \
    "status:\n  phase: Running\n  podIP: " ip "\n"

static const char *const SVC_WEB =
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports:\n"
    "  - {name: http, port: 80, targetPort: http}\n"
    "  - {name: raw, port: 81, targetPort: 9090}\n"
    "  - {name: dns, port: 53, targetPort: dns, protocol: UDP}\n";

struct ep_case {
    const char *name;
    const char *yaml;
    const char *svc;
    const char *want;
};

static const struct ep_case ep_cases[] = {
    { "selector picks matching running pods with IPs",
      POD("a", "{app: web}", "10.244.0.11", "")
      POD("b", "{app: web, tier: x}", "10.244.0.12", "")
      POD("c", "{app: db}", "10.244.0.13", ""),
      "web",
      "10.244.0.11 R S - ports=8080,9090,5353; 10.244.0.12 R S - ports=8080,9090,5353" },
    { "pod without IP and finished pods are not endpoints",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: noip, labels: {app: web}}\n"
      "spec: {containers: [{name: c}]}\nstatus: {phase: Pending}\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: done, labels: {app: web}}\n"
      "spec: {containers: [{name: c}]}\nstatus: {phase: Succeeded, podIP: 10.244.0.20}\n"
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad, labels: {app: web}}\n"
      "spec: {containers: [{name: c}]}\nstatus: {phase: Failed, podIP: 10.244.0.21}\n"
      POD("ok", "{app: web}", "10.244.0.22", ""),
      "web", "10.244.0.22 R S - ports=8080,9090,5353" },
    { "named targetPort missing on a pod gives 0 for that port only",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: web}}\n"
      "spec:\n  containers:\n  - name: c\n    ports: [{name: http, containerPort: 8000}]\n"
      "status: {phase: Running, podIP: 10.244.0.30}\n",
      "web", "10.244.0.30 R S - ports=8000,9090,0" },
    { "named targetPort resolves per protocol",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: web}}\n"
      "spec:\n  containers:\n  - name: c\n    ports: [{name: dns, containerPort: 53, "
      "protocol: TCP}]\n"
      "status: {phase: Running, podIP: 10.244.0.31}\n",
      "web", "10.244.0.31 R S - ports=0,9090,0" },
    { "not ready pod: not ready, not serving",
      POD("p", "{app: web}", "10.244.0.40", "")
      "  conditions: [{type: Ready, status: \"False\"}]\n",
      "web", "10.244.0.40 - - - ports=8080,9090,5353" },
    { "terminating ready pod: serving and terminating, not ready",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: t, labels: {app: web}, "
      "deletionTimestamp: \"2026-01-01T00:00:00Z\"}\n"
      "spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n"
      "status: {phase: Running, podIP: 10.244.0.50}\n",
      "web", "10.244.0.50 - S T ports=8080,9090,0" },
    { "publishNotReadyAddresses makes not-ready pods ready",
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: hl}\n"
      "spec: {clusterIP: None, publishNotReadyAddresses: true, selector: {app: db}}\n"
      POD("d", "{app: db}", "10.244.0.60", "")
      "  conditions: [{type: Ready, status: \"False\"}]\n",
      "hl", "10.244.0.60 R - -" },
    { "dual-stack pod keeps both IPs, v4 first",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: ds, labels: {app: web}}\n"
      "spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}\n"
      "status: {phase: Running, podIP: 10.244.0.70, podIPs: [{ip: 10.244.0.70}, "
      "{ip: \"fd00::70\"}]}\n",
      "web", "10.244.0.70,fd00::70 R S - ports=8080,9090,0" },
    { "hostname only when subdomain names the Service",
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: hl}\n"
      "spec: {clusterIP: None, selector: {app: db}}\n"
      POD("h1", "{app: db}", "10.244.0.81", "  hostname: one\n  subdomain: hl\n")
      POD("h2", "{app: db}", "10.244.0.82", "  hostname: two\n  subdomain: other\n"),
      "hl", "10.244.0.81 R S - host=one; 10.244.0.82 R S -" },
    { "other namespace does not match",
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: other, "
      "labels: {app: web}}\n"
      "spec: {containers: [{name: c}]}\nstatus: {phase: Running, podIP: 10.244.0.90}\n",
      "web", "" },
    { "Service without selector takes EndpointSlices",
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\n"
      "spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}\n"
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
      "metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}\n"
      "addressType: IPv4\n"
      "endpoints:\n- addresses: [192.0.2.1]\n- addresses: [192.0.2.2]\n"
      "  conditions: {ready: false}\n"
      "ports: [{name: http, port: 8443, protocol: TCP}]\n",
      "ext", "192.0.2.1 R S - ports=8443; 192.0.2.2 - - - ports=8443" },
};

static void test_endpoint_cases(void)
{
    for (size_t i = 0; i < sizeof(ep_cases) / sizeof(ep_cases[0]); i++) {
        const struct ep_case *c = &ep_cases[i];
        struct store *st = store_new();
        char got[4096];
        int rc = load(st, SVC_WEB);
        rc |= load(st, c->yaml);
        CHECK(rc == 0, "%s: load failed", c->name);
        render(st, "default", c->svc, got, sizeof(got));
        CHECK(strcmp(got, c->want) == 0, "%s:\n   got  \"%s\"\n   want \"%s\"", c->name, got,
              c->want);
        /* Same result when pods come before the Service. */
        struct store *st2 = store_new();
        rc = load(st2, c->yaml);
        rc |= load(st2, SVC_WEB);
        render(st2, "default", c->svc, got, sizeof(got));
        CHECK(rc == 0 && strcmp(got, c->want) == 0,
              "%s (pods first):\n   got  \"%s\"\n   want \"%s\"", c->name, got, c->want);
        store_free(st2);
        store_free(st);
    }
}

/* ---- notifications ---------------------------------------------------------- */

struct recorder {
    uint64_t gen;
    int calls;
    char log[2048];
    bool pods_changed;
};

static void rec_commit(void *ctx, struct store *st, uint64_t gen, const struct store_change *ch,
                       size_t n, bool pods_changed)
{
    struct recorder *r = ctx;
    (void)st;
    r->gen = gen;
    r->calls++;
    r->pods_changed = pods_changed;
    r->log[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(r->log);
        snprintf(r->log + l, sizeof(r->log) - l, "%s%s/%s:%s%s%s", i ? " " : "", ch[i].ns,
                 ch[i].name, ch[i].flags & STORE_SVC_SPEC ? "S" : "",
                 ch[i].flags & STORE_SVC_ENDPOINTS ? "E" : "",
                 ch[i].flags & STORE_SVC_DELETED ? "D" : "");
    }
}

static void test_notifications(void)
{
    struct store *st = store_new();
    struct recorder r = { 0 };
    struct store_subscriber sub = { rec_commit, &r };
    store_subscribe(st, &sub);

    load(st, SVC_WEB);
    CHECK(r.gen == 1 && r.calls == 1, "first commit is generation 1 (got %llu)",
          (unsigned long long)r.gen);
    CHECK(strcmp(r.log, "default/web:S") == 0, "service added: %s", r.log);

    load(st, POD("a", "{app: web}", "10.244.0.11", ""));
    CHECK(r.gen == 2 && strcmp(r.log, "default/web:E") == 0 && r.pods_changed,
          "pod added: gen %llu log %s", (unsigned long long)r.gen, r.log);

    /* Same content again: no commit, no new generation. */
    load(st, POD("a", "{app: web}", "10.244.0.11", ""));
    CHECK(r.calls == 2 && store_generation(st) == 2, "no-op reload keeps generation");

    /* Pod moves to another app: leaves web. */
    load(st, POD("a", "{app: db}", "10.244.0.11", ""));
    size_t n;
    store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 0 && strcmp(r.log, "default/web:E") == 0, "relabel leaves web: n=%zu log %s",
          n, r.log);

    /* Pod changes that do not touch any Service still advance the generation. */
    CHECK(r.gen == 3 && r.pods_changed, "relabel is generation 3");

    /* Probe readiness override. */
    load(st, POD("b", "{app: web}", "10.244.0.12", ""));
    store_begin(st);
    store_pod_set_probe_ready(st, "default", "b", SVCD_FALSE);
    store_commit(st);
    const struct svcd_endpoint *eps = store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 1 && !eps[0].ready, "probe says not ready");
    /* A source update keeps svcd's probe verdict. */
    load(st, POD("b", "{app: web, v: \"2\"}", "10.244.0.12", ""));
    eps = store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 1 && !eps[0].ready, "probe verdict survives a source update");

    const struct svcd_pod *p = store_pod_by_ip(st, &(struct svcd_ip){ 0 });
    CHECK(p == NULL, "no pod for the zero address");
    struct svcd_ip ip;
    svcd_ip_parse("10.244.0.12", &ip);
    p = store_pod_by_ip(st, &ip);
    CHECK(p && strcmp(p->meta.name, "b") == 0, "pod by IP");

    /* Service deleted. */
    store_begin(st);
    CHECK(store_service_delete(st, "default", "web") == 0, "delete existing");
    CHECK(store_service_delete(st, "default", "web") == -1, "delete twice fails");
    store_commit(st);
    CHECK(strcmp(r.log, "default/web:D") == 0, "deleted: %s", r.log);
    CHECK(store_service_get(st, "default", "web") == NULL, "gone");

    /* Pod delete after its Service is gone must not touch freed memory. */
    store_begin(st);
    CHECK(store_pod_delete(st, "default", "b") == 0, "pod delete");
    store_commit(st);

    struct store_stats s;
    store_get_stats(st, &s);
    CHECK(s.services == 0 && s.pods == 1, "stats: %zu services %zu pods", s.services, s.pods);
    store_free(st);
}

/* A pod change touches only the Services that select it: with many
 * Services, changing one pod reports exactly one changed Service. */
static void test_locality(void)
{
    struct store *st = store_new();
    struct recorder r = { 0 };
    struct store_subscriber sub = { rec_commit, &r };
    store_subscribe(st, &sub);
    char *yaml = malloc(1 << 20);
    size_t used = 0;
    for (int i = 0; i < 500; i++)
        used += (size_t)snprintf(yaml + used, (1 << 20) - used,
                                 "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d}\n"
                                 "spec: {clusterIP: 10.96.1.%d, selector: {app: a%d}, "
                                 "ports: [{port: 80}]}\n"
                                 "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p%d, "
                                 "labels: {app: a%d, common: x}}\n"
                                 "spec: {containers: [{name: c}]}\n"
                                 "status: {phase: Running, podIP: 10.244.1.%d}\n",
                                 i, i % 250, i, i, i, i % 250);
    load(st, yaml);
    CHECK(r.calls == 1, "one commit for the whole load");
    load(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p7, "
             "labels: {app: a7, common: x}}\n"
             "spec: {containers: [{name: c}]}\n"
             "status: {phase: Running, podIP: 10.244.9.7}\n");
    CHECK(strcmp(r.log, "default/s7:E") == 0, "one pod change touches one service: %s", r.log);
    free(yaml);
    store_free(st);
}

int main(void)
{
    test_endpoint_cases();
    test_notifications();
    test_locality();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
