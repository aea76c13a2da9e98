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

#include "testutil.h"




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
        int rc = testutil_load_yaml(st, SVC_WEB);
        rc |= testutil_load_yaml(st, c->yaml);
        CHECK(rc == 0, "%s: load failed", c->name);
        render(st, "default", c->svc, got, sizeof(got));
        CHECK(strcmp(got, c->want) == 0, "%s:\n   got  \"%s\"\n   want \"%s\"", c->name, got,
              c->want);
        /* Same result when pods come before the Service. */
        struct store *st2 = store_new();
        rc = testutil_load_yaml(st2, c->yaml);
        rc |= testutil_load_yaml(st2, SVC_WEB);
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

    testutil_load_yaml(st, SVC_WEB);
    CHECK(r.gen == 1 && r.calls == 1, "first commit is generation 1 (got %llu)",
          (unsigned long long)r.gen);
    CHECK(strcmp(r.log, "default/web:S") == 0, "service added: %s", r.log);

    testutil_load_yaml(st, POD("a", "{app: web}", "10.244.0.11", ""));
    CHECK(r.gen == 2 && strcmp(r.log, "default/web:E") == 0 && r.pods_changed,
          "pod added: gen %llu log %s", (unsigned long long)r.gen, r.log);

    /* Same content again: no commit, no new generation. */
    testutil_load_yaml(st, POD("a", "{app: web}", "10.244.0.11", ""));
    CHECK(r.calls == 2 && store_generation(st) == 2, "no-op reload keeps generation");

    /* Pod moves to another app: leaves web. */
    testutil_load_yaml(st, POD("a", "{app: db}", "10.244.0.11", ""));
    size_t n;
    store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 0 && strcmp(r.log, "default/web:E") == 0, "relabel leaves web: n=%zu log %s",
          n, r.log);

    /* Pod changes that do not touch any Service still advance the generation. */
    CHECK(r.gen == 3 && r.pods_changed, "relabel is generation 3");

    /* Probe readiness override. */
    testutil_load_yaml(st, POD("b", "{app: web}", "10.244.0.12", ""));
    store_begin(st);
    store_pod_set_probe_ready(st, "default", "b", SVCD_FALSE);
    store_commit(st);
    const struct svcd_endpoint *eps = store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 1 && !eps[0].ready, "probe says not ready");
    /* A source update keeps svcd's probe verdict. */
    testutil_load_yaml(st, POD("b", "{app: web, v: \"2\"}", "10.244.0.12", ""));
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
    testutil_load_yaml(st, yaml);
    CHECK(r.calls == 1, "one commit for the whole load");
    testutil_load_yaml(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p7, "
             "labels: {app: a7, common: x}}\n"
             "spec: {containers: [{name: c}]}\n"
             "status: {phase: Running, podIP: 10.244.9.7}\n");
    CHECK(strcmp(r.log, "default/s7:E") == 0, "one pod change touches one service: %s", r.log);
    free(yaml);
    store_free(st);
}

/* ---- changed pods (store_changed_pods) ------------------------------------ */

struct pod_rec {
    int calls;
    bool lost;
    char list[4096];      /* "ns/name[-]" sorted, space-separated; '-' = deleted */
};

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void pod_rec_commit(void *ctx, struct store *st, uint64_t gen,
                           const struct store_change *ch, size_t n, bool pods_changed)
{
    struct pod_rec *r = ctx;
    (void)gen; (void)ch; (void)n;
    r->calls++;
    r->list[0] = '\0';
    const struct store_pod_ref *refs;
    size_t np = store_changed_pods(st, &refs);
    r->lost = np == SIZE_MAX;
    if (r->lost)
        return;
    CHECK((np > 0) == pods_changed, "changed pods (%zu) agree with pods_changed", np);
    CHECK((np == 0) == (refs == NULL), "list pointer NULL exactly when empty");
    char **items = calloc(np ? np : 1, sizeof(*items));
    for (size_t i = 0; i < np; i++) {
        const struct svcd_pod *p = store_pod_get(st, refs[i].ns, refs[i].name);
        CHECK((p == NULL) == refs[i].deleted, "%s/%s: deleted flag %d but store has it: %d",
              refs[i].ns, refs[i].name, refs[i].deleted, p != NULL);
        size_t l = strlen(refs[i].ns) + strlen(refs[i].name) + 3;
        items[i] = malloc(l);
        snprintf(items[i], l, "%s/%s%s", refs[i].ns, refs[i].name, refs[i].deleted ? "-" : "");
    }
    qsort(items, np, sizeof(*items), str_cmp);
    size_t used = 0;
    for (size_t i = 0; i < np; i++) {
        used += (size_t)snprintf(r->list + used, sizeof(r->list) - used, "%s%s", i ? " " : "",
                                 items[i]);
        free(items[i]);
    }
    free(items);
}

static struct svcd_pod *mk_pod(const char *ns, const char *name, uint64_t fp)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->meta.ns = strdup(ns);
    p->meta.name = strdup(name);
    p->meta.fingerprint = fp;
    p->phase = SVCD_PHASE_RUNNING;
    svcd_ip_parse("10.244.0.9", &p->ips[0]);
    p->n_ips = 1;
    return p;
}

/* Table: each case runs a script of operations in one batch on a store
 * preloaded with pods a and b (ns "d") and expects the listed pods. */
struct chg_case {
    const char *name;
    const char *ops;      /* "u:x:fp" upsert, "d:x" delete, "r:x:T|F|U" probe verdict,
                             "t:x" terminating, "s" service upsert; separated by ' ' */
    const char *want;     /* sorted list as pod_rec renders it, or NULL = no commit */
};

static const struct chg_case chg_cases[] = {
    { "upserts and a verdict, each pod once", "u:a:2 u:c:1 r:a:F u:a:3", "d/a d/c" },
    { "same fingerprint is no change", "u:a:1 u:b:1", NULL },
    { "same verdict is no change", "r:a:U", NULL },
    { "delete", "d:b", "d/b-" },
    { "delete then add back: once, not deleted", "d:a u:a:5", "d/a" },
    { "add then delete a new pod: listed deleted", "u:c:1 d:c", "d/c-" },
    { "delete, add, delete: once, deleted", "d:a u:a:5 d:a", "d/a-" },
    { "delete, add, delete, add", "d:a u:a:5 d:a u:a:6 r:a:T", "d/a" },
    { "changed, then deleted", "u:a:7 r:a:T d:a", "d/a-" },
    { "terminating", "t:b t:b", "d/b" },
    { "service only: no pods listed", "s", "" },
    { "service and pods", "s d:a d:b u:b:1", "d/a- d/b" },
    { "unknown pod delete is no change", "d:zz", NULL },
};

static void chg_run(struct store *st, const char *ops)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", ops);
    for (char *save = NULL, *op = strtok_r(buf, " ", &save); op; op = strtok_r(NULL, " ", &save)) {
        char name[32] = "";
        char arg[32] = "";
        sscanf(op + 1, ":%31[^:]:%31s", name, arg);
        switch (op[0]) {
        case 'u': store_pod_upsert(st, mk_pod("d", name, strtoull(arg, NULL, 10))); break;
        case 'd': store_pod_delete(st, "d", name); break;
        case 'r':
            store_pod_set_probe_ready(st, "d", name, arg[0] == 'T' ? SVCD_TRUE
                                                     : arg[0] == 'F' ? SVCD_FALSE : SVCD_UNKNOWN);
            break;
        case 't': store_pod_mark_terminating(st, "d", name, "2026-01-01T00:00:00Z"); break;
        case 's': {
            struct svcd_service *svc = calloc(1, sizeof(*svc));
            svc->meta.ns = strdup("d");
            svc->meta.name = strdup("svc");
            svc->meta.fingerprint = 42;
            store_service_upsert(st, svc);
            break;
        }
        }
    }
}

static void test_changed_pods_cases(void)
{
    for (size_t c = 0; c < sizeof(chg_cases) / sizeof(chg_cases[0]); c++) {
        const struct chg_case *tc = &chg_cases[c];
        struct store *st = store_new();
        struct pod_rec r = { 0 };
        struct store_subscriber sub = { pod_rec_commit, &r };
        store_subscribe(st, &sub);
        chg_run(st, "");
        store_begin(st);
        chg_run(st, "u:a:1 u:b:1");
        store_commit(st);
        CHECK(strcmp(r.list, "d/a d/b") == 0, "preload lists both: %s", r.list);
        const struct store_pod_ref *refs = (const void *)1;
        CHECK(store_changed_pods(st, &refs) == 0 && refs == NULL, "empty outside a callback");
        int calls = r.calls;
        store_begin(st);
        chg_run(st, tc->ops);
        store_commit(st);
        if (!tc->want)
            CHECK(r.calls == calls, "%s: no commit expected, got list \"%s\"", tc->name, r.list);
        else
            CHECK(r.calls == calls + 1 && !r.lost && strcmp(r.list, tc->want) == 0,
                  "%s:\n   got  \"%s\"\n   want \"%s\"", tc->name, r.list, tc->want);
        /* The next batch starts with an empty list. */
        store_begin(st);
        store_pod_upsert(st, mk_pod("d", "zz", 99));
        store_commit(st);
        CHECK(strcmp(r.list, "d/zz") == 0, "%s: next batch lists only its pod: %s", tc->name, r.list);
        store_free(st);
    }
}

/* Random batches against a model: the list holds exactly the pods whose
 * state an operation changed, each once, flagged deleted when absent. */
static void test_changed_pods_random(void)
{
    enum { NPODS = 12, BATCHES = 400 };
    struct model_pod { bool present; uint64_t fp; int ready; bool term; } m[NPODS] = { 0 };
    struct store *st = store_new();
    struct pod_rec r = { 0 };
    struct store_subscriber sub = { pod_rec_commit, &r };
    store_subscribe(st, &sub);
    unsigned seed = 12345;
    int bad = 0;
    for (int b = 0; b < BATCHES && bad < 5; b++) {
        bool touched[NPODS] = { false };
        store_begin(st);
        int nops = 1 + rand_r(&seed) % 8;
        for (int o = 0; o < nops; o++) {
            int i = rand_r(&seed) % NPODS;
            char name[16];
            snprintf(name, sizeof(name), "p%d", i);
            switch (rand_r(&seed) % 4) {
            case 0: {
                uint64_t fp = 1 + rand_r(&seed) % 3;
                store_pod_upsert(st, mk_pod("r", name, fp));
                if (!m[i].present || m[i].fp != fp) {
                    touched[i] = true;
                    if (!m[i].present)
                        m[i].ready = SVCD_UNKNOWN;
                    m[i].term = false;
                }
                m[i].present = true;
                m[i].fp = fp;
                break;
            }
            case 1:
                if (m[i].present)
                    touched[i] = true;
                store_pod_delete(st, "r", name);
                m[i].present = false;
                break;
            case 2: {
                int v = rand_r(&seed) % 3;
                enum svcd_tristate t = v == 0 ? SVCD_UNKNOWN : v == 1 ? SVCD_TRUE : SVCD_FALSE;
                if (m[i].present && m[i].ready != (int)t) {
                    touched[i] = true;
                    m[i].ready = (int)t;
                }
                store_pod_set_probe_ready(st, "r", name, t);
                break;
            }
            case 3:
                if (m[i].present && !m[i].term) {
                    touched[i] = true;
                    m[i].term = true;
                    m[i].fp ^= 0x9e3779b97f4a7c15ULL;
                }
                store_pod_mark_terminating(st, "r", name, "2026-01-01T00:00:00Z");
                break;
            }
        }
        int calls = r.calls;
        store_commit(st);
        /* Model order p0, p1, p10, p11, p2... matches strcmp order. */
        char *names[NPODS];
        size_t nn = 0;
        for (int i = 0; i < NPODS; i++) {
            if (!touched[i])
                continue;
            names[nn] = malloc(16);
            snprintf(names[nn], 16, "r/p%d%s", i, m[i].present ? "" : "-");
            nn++;
        }
        qsort(names, nn, sizeof(*names), str_cmp);
        char want[512] = "";
        size_t used = 0;
        for (size_t i = 0; i < nn; i++) {
            used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s", i ? " " : "",
                                     names[i]);
            free(names[i]);
        }
        bool ok = nn == 0 ? r.calls == calls : (r.calls == calls + 1 && strcmp(r.list, want) == 0);
        CHECK(ok, "random batch %d:\n   got  \"%s\" (%d commits)\n   want \"%s\"", b,
              r.calls > calls ? r.list : "", r.calls - calls, want);
        bad += !ok;
    }
    store_free(st);
}

/* A store freed with a batch open (pods changed and deleted) frees the
 * pending list too (ASan/LSan checks). A commit nested inside a callback
 * gets its own list; the outer one is intact after it. */
struct nest_rec {
    int depth;
    char outer_before[256], outer_after[256], inner[256];
};

static void nest_render(struct store *st, char *out, size_t len)
{
    const struct store_pod_ref *refs;
    size_t n = store_changed_pods(st, &refs);
    out[0] = '\0';
    for (size_t i = 0; i < n && n != SIZE_MAX; i++) {
        size_t l = strlen(out);
        snprintf(out + l, len - l, "%s%s%s", i ? " " : "", refs[i].name, refs[i].deleted ? "-" : "");
    }
}

static void nest_commit(void *ctx, struct store *st, uint64_t gen, const struct store_change *ch,
                        size_t n, bool pods_changed)
{
    struct nest_rec *r = ctx;
    (void)gen; (void)ch; (void)n; (void)pods_changed;
    if (r->depth++ > 0) {
        nest_render(st, r->inner, sizeof(r->inner));
        return;
    }
    nest_render(st, r->outer_before, sizeof(r->outer_before));
    /* A stray mutation from a callback (not allowed by contract, but it
     * must not corrupt the list being notified). */
    store_begin(st);
    store_pod_upsert(st, mk_pod("d", "inner", 1));
    store_commit(st);
    nest_render(st, r->outer_after, sizeof(r->outer_after));
}

static void test_changed_pods_open_batch(void)
{
    struct store *st = store_new();
    store_begin(st);
    store_pod_upsert(st, mk_pod("d", "a", 1));
    store_pod_upsert(st, mk_pod("d", "b", 1));
    store_commit(st);
    store_begin(st);
    store_pod_delete(st, "d", "a");
    store_pod_upsert(st, mk_pod("d", "c", 1));
    store_pod_set_probe_ready(st, "d", "b", SVCD_TRUE);
    store_free(st);             /* batch still open */
    CHECK(1, "open batch freed");

    st = store_new();
    struct nest_rec r = { 0 };
    struct store_subscriber sub = { nest_commit, &r };
    store_subscribe(st, &sub);
    store_begin(st);
    store_pod_upsert(st, mk_pod("d", "a", 1));
    store_pod_delete(st, "d", "a");
    store_commit(st);
    CHECK(strcmp(r.outer_before, "a-") == 0 && strcmp(r.outer_after, "a-") == 0 &&
          strcmp(r.inner, "inner") == 0, "nested commit: outer \"%s\"/\"%s\" inner \"%s\"",
          r.outer_before, r.outer_after, r.inner);
    store_free(st);
}

int main(void)
{
    test_endpoint_cases();
    test_notifications();
    test_locality();
    test_changed_pods_cases();
    test_changed_pods_random();
    test_changed_pods_open_batch();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
