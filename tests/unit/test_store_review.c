/*
 * test_store_review: second-opinion tests of the store, the manifest
 * directory source and the config parser.
 *
 *  1. A randomized differential test of the store: random Pod / Service /
 *     EndpointSlice upserts, deletes, relabels, probe verdicts and
 *     terminations, in random batches. After every commit each Service's
 *     endpoints must equal those of a store built from scratch from the same
 *     final objects, every Service whose endpoints changed must have been
 *     announced to subscribers, and look-ups (pods, pod by IP, stats) must
 *     agree with the model. Run it under ASan to catch stale pointers.
 *  2. Table-driven cases for contracts in store.h (change list, pod by IP,
 *     EndpointSlice conditions as the Kubernetes controller sets them).
 *  3. manifest_dir on a real directory and event loop: conflicts between
 *     files, runner-up taking over, an editor's rename-away-then-write,
 *     grace periods.
 *  4. config edge cases (trailing dot in domains, long stub-domain keys).
 *
 * Env: SVCD_REVIEW_SEEDS=N (default 200) randomized runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "svcd/config.h"
#include "svcd/log.h"
#include "svcd/manifest.h"
#include "svcd/manifest_dir.h"
#include "svcd/store.h"

#include "testutil.h"



/* ---- small helpers --------------------------------------------------------- */

struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0)
            abort();
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap - b->n <= (size_t)k)
            cap *= 2;
        b->s = realloc(b->s, cap);
        if (!b->s)
            abort();
        b->cap = cap;
    }
}

static void sb_reset(struct sbuf *b)
{
    b->n = 0;
    if (b->s)
        b->s[0] = '\0';
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

/* Parses yaml; takes its objects into st (inside the caller's batch). */
static int upsert_yaml(struct store *st, const char *yaml)
{
    struct manifest_objs o = { 0 };
    char err[512];
    if (manifest_parse(yaml, strlen(yaml), 1700000000, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "parse error: %s\n---\n%s\n", err, yaml);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < o.n_services; i++) {
        rc |= store_service_upsert(st, o.services[i]);
        o.services[i] = NULL;
    }
    for (size_t i = 0; i < o.n_pods; i++) {
        rc |= store_pod_upsert(st, o.pods[i]);
        o.pods[i] = NULL;
    }
    for (size_t i = 0; i < o.n_slices; i++) {
        rc |= store_slice_upsert(st, o.slices[i]);
        o.slices[i] = NULL;
    }
    manifest_objs_free(&o);
    return rc;
}

static void load(struct store *st, const char *yaml)
{
    store_begin(st);
    upsert_yaml(st, yaml);
    store_commit(st);
}

/* Everything the store says about one Service, as text. */
static void render(const struct store *st, const char *ns, const char *name, struct sbuf *b)
{
    sb_reset(b);
    const struct svcd_service *svc = store_service_get(st, ns, name);
    if (!svc) {
        sb_add(b, "ABSENT");
        return;
    }
    size_t n;
    const struct svcd_endpoint *eps = store_endpoints_get(st, ns, name, &n);
    sb_add(b, "%zu:", n);
    for (size_t i = 0; i < n; i++) {
        const struct svcd_endpoint *e = &eps[i];
        char ip[64];
        sb_add(b, " [");
        for (size_t j = 0; j < e->n_ips; j++)
            sb_add(b, "%s%s", j ? "," : "", svcd_ip_format(&e->ips[j], ip, sizeof(ip)));
        sb_add(b, " %c%c%c", e->ready ? 'R' : '-', e->serving ? 'S' : '-',
               e->terminating ? 'T' : '-');
        for (size_t p = 0; p < svc->n_ports; p++)
            sb_add(b, "%s%u", p ? "," : " ports=", e->target_ports[p]);
        if (e->hostname)
            sb_add(b, " host=%s", e->hostname);
        if (e->node_name)
            sb_add(b, " node=%s", e->node_name);
        if (e->pod_name)
            sb_add(b, " pod=%s", e->pod_name);
        sb_add(b, "]");
    }
}

/* ---- 1. randomized differential test ------------------------------------------ */

#define N_NS 2
#define PODS_PER_NS 6
#define SVCS_PER_NS 4
#define SLICES_PER_NS 3
#define N_PODS (N_NS * PODS_PER_NS)
#define N_SVCS (N_NS * SVCS_PER_NS)
#define N_SLICES (N_NS * SLICES_PER_NS)

static const char *const NS[N_NS] = { "default", "other" };

struct pod_m {
    bool exists;
    int app, tier;        /* 0 none, 1/2 values */
    int ip;               /* 0 = none, else 10.0.0.ip */
    bool dual;
    int phase;            /* 0 Running, 1 Pending, 2 Succeeded, 3 Failed */
    int cond;             /* 0 none, 1 True, 2 False */
    bool deleting;        /* metadata.deletionTimestamp in the manifest */
    int host, sub;        /* hostname h0/h1 (0 none), subdomain s0..s3 (0 none) */
    bool node;
    int ports;            /* bit0 http (8080 or 8081), bit1 dns/UDP */
    int http_port;
    /* store-side state */
    enum svcd_tristate probe;
    bool marked;          /* store_pod_mark_terminating applied */
};

struct svc_m {
    bool exists;
    int type;             /* 0 ClusterIP, 1 headless, 2 ExternalName */
    int sel;              /* index into SELECTORS */
    int ports;            /* index into PORTSETS */
    bool pnr;
    int cip;
};

struct slice_m {
    bool exists;
    int svc;              /* s0..s3 */
    int n_eps;
    bool ready[2], serving[2], term[2];
    int ports;            /* 0 none, 1 http/8443, 2 unnamed 9000 */
};

static const char *const SELECTORS[] = {
    NULL, "{app: a}", "{app: b}", "{app: a, tier: x}", "{tier: x}", "{app: b, tier: y}",
};
#define N_SELECTORS 6

static const char *const PORTSETS[] = {
    NULL,
    "  ports:\n  - {name: http, port: 80, targetPort: http}\n",
    "  ports:\n  - {name: http, port: 80, targetPort: http}\n"
    "  - {name: raw, port: 81, targetPort: 9090}\n"
    "  - {name: dns, port: 53, targetPort: dns, protocol: UDP}\n",
    "  ports:\n  - {port: 82}\n",
    "  ports:\n  - {name: metrics, port: 90, targetPort: metrics}\n",
};
#define N_PORTSETS 5

struct world {
    struct pod_m pods[N_PODS];
    struct svc_m svcs[N_SVCS];
    struct slice_m slices[N_SLICES];
};

static void pod_yaml(const struct world *w, int i, struct sbuf *b)
{
    const struct pod_m *p = &w->pods[i];
    static const char *const phases[] = { "Running", "Pending", "Succeeded", "Failed" };
    sb_reset(b);
    sb_add(b, "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p%d\n  namespace: %s\n",
           i % PODS_PER_NS, NS[i / PODS_PER_NS]);
    sb_add(b, "  labels: {");
    bool first = true;
    if (p->app) {
        sb_add(b, "app: %c", p->app == 1 ? 'a' : 'b');
        first = false;
    }
    if (p->tier)
        sb_add(b, "%stier: %c", first ? "" : ", ", p->tier == 1 ? 'x' : 'y');
    sb_add(b, "}\n");
    if (p->deleting)
        sb_add(b, "  deletionTimestamp: \"2026-01-01T00:00:00Z\"\n");
    sb_add(b, "spec:\n");
    if (p->host)
        sb_add(b, "  hostname: h%d\n", p->host);
    if (p->sub)
        sb_add(b, "  subdomain: s%d\n", p->sub - 1);
    if (p->node)
        sb_add(b, "  nodeName: node-1\n");
    sb_add(b, "  containers:\n  - name: c\n");
    if (p->ports) {
        sb_add(b, "    ports:\n");
        if (p->ports & 1)
            sb_add(b, "    - {name: http, containerPort: %d}\n", p->http_port);
        if (p->ports & 2)
            sb_add(b, "    - {name: dns, containerPort: 5353, protocol: UDP}\n");
    }
    sb_add(b, "status:\n  phase: %s\n", phases[p->phase]);
    if (p->ip) {
        sb_add(b, "  podIP: 10.0.0.%d\n", p->ip);
        if (p->dual)
            sb_add(b, "  podIPs: [{ip: 10.0.0.%d}, {ip: \"fd00::%d\"}]\n", p->ip, p->ip);
    }
    if (p->cond)
        sb_add(b, "  conditions: [{type: Ready, status: \"%s\"}]\n",
               p->cond == 1 ? "True" : "False");
}

static void svc_yaml(const struct world *w, int i, struct sbuf *b)
{
    const struct svc_m *s = &w->svcs[i];
    sb_reset(b);
    sb_add(b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: %s}\nspec:\n",
           i % SVCS_PER_NS, NS[i / SVCS_PER_NS]);
    if (s->type == 2)
        sb_add(b, "  type: ExternalName\n  externalName: ext.example.com\n");
    else if (s->type == 1)
        sb_add(b, "  clusterIP: None\n");
    else
        sb_add(b, "  clusterIP: 10.96.%d.%d\n", i, s->cip);
    if (SELECTORS[s->sel])
        sb_add(b, "  selector: %s\n", SELECTORS[s->sel]);
    if (s->pnr)
        sb_add(b, "  publishNotReadyAddresses: true\n");
    if (PORTSETS[s->ports])
        sb_add(b, "%s", PORTSETS[s->ports]);
}

static void slice_yaml(const struct world *w, int i, struct sbuf *b)
{
    const struct slice_m *l = &w->slices[i];
    sb_reset(b);
    sb_add(b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
              "metadata: {name: e%d, namespace: %s, labels: {kubernetes.io/service-name: s%d}}\n"
              "addressType: IPv4\n",
           i % SLICES_PER_NS, NS[i / SLICES_PER_NS], l->svc);
    if (l->n_eps == 0)
        sb_add(b, "endpoints: []\n");
    else
        sb_add(b, "endpoints:\n");
    for (int k = 0; k < l->n_eps; k++)
        sb_add(b, "- addresses: [192.0.2.%d]\n  conditions: {ready: %s, serving: %s, "
                  "terminating: %s}\n",
               i * 4 + k + 1, l->ready[k] ? "true" : "false", l->serving[k] ? "true" : "false",
               l->term[k] ? "true" : "false");
    if (l->ports == 1)
        sb_add(b, "ports: [{name: http, port: 8443, protocol: TCP}]\n");
    else if (l->ports == 2)
        sb_add(b, "ports: [{port: 9000, protocol: TCP}]\n");
}

static void pod_randomize(struct pod_m *p, bool fresh)
{
    /* fresh: every field random; else change one field (relabel, new IP...) */
    int which = fresh ? -1 : (int)rnd(9);
    if (which < 0 || which == 0) p->app = (int)rnd(3);
    if (which < 0 || which == 1) p->tier = (int)rnd(3);
    if (which < 0 || which == 2) { p->ip = (int)rnd(7); p->dual = rnd(4) == 0; }
    if (which < 0 || which == 3) p->phase = rnd(3) ? 0 : (int)rnd(4);
    if (which < 0 || which == 4) p->cond = (int)rnd(3);
    if (which < 0 || which == 5) p->deleting = rnd(6) == 0;
    if (which < 0 || which == 6) { p->host = (int)rnd(3); p->sub = (int)rnd(5); }
    if (which < 0 || which == 7) p->node = rnd(2);
    if (which < 0 || which == 8) { p->ports = (int)rnd(4); p->http_port = 8080 + (int)rnd(2); }
    if (fresh) {
        p->probe = SVCD_UNKNOWN;
        if (p->ip == 0)
            p->ip = 1 + (int)rnd(6);
    }
}

static void svc_randomize(struct svc_m *s, bool fresh)
{
    int which = fresh ? -1 : (int)rnd(5);
    if (which < 0 || which == 0) s->type = rnd(6) == 0 ? 2 : (int)rnd(2);
    if (which < 0 || which == 1) s->sel = rnd(3) == 0 ? 0 : (int)rnd(N_SELECTORS);
    if (which < 0 || which == 2) s->ports = (int)rnd(N_PORTSETS);
    if (which < 0 || which == 3) s->pnr = rnd(4) == 0;
    if (which < 0 || which == 4) s->cip = 1 + (int)rnd(200);
    if (s->type != 1 && s->ports == 0)
        s->ports = 1;        /* only headless Services may have no ports */
}

static void slice_randomize(struct slice_m *l)
{
    l->svc = (int)rnd(SVCS_PER_NS);
    l->n_eps = (int)rnd(3);
    for (int k = 0; k < 2; k++) {
        l->ready[k] = rnd(3) != 0;
        l->serving[k] = rnd(3) != 0 ? l->ready[k] : !l->ready[k];
        l->term[k] = rnd(5) == 0;
    }
    l->ports = (int)rnd(3);
}

/* Subscriber recording one commit's change list and checking its contract. */
struct rec {
    int commits;
    uint64_t gen;
    char names[64][64];
    unsigned flags[64];
    size_t n;
    int dup_names;          /* a Service listed twice in one commit */
    int deleted_but_present;/* DELETED while store_service_get() finds it */
};

static void rec_commit(void *ctx, struct store *st, uint64_t generation,
                       const struct store_change *ch, size_t n, bool pods_changed)
{
    struct rec *r = ctx;
    (void)pods_changed;
    r->commits++;
    r->gen = generation;
    r->n = 0;
    for (size_t i = 0; i < n; i++) {
        char nm[64];
        snprintf(nm, sizeof(nm), "%s/%s", ch[i].ns, ch[i].name);
        for (size_t j = 0; j < r->n; j++)
            if (strcmp(r->names[j], nm) == 0)
                r->dup_names++;
        if ((ch[i].flags & STORE_SVC_DELETED) && store_service_get(st, ch[i].ns, ch[i].name))
            r->deleted_but_present++;
        if (r->n < 64) {
            snprintf(r->names[r->n], sizeof(r->names[r->n]), "%s", nm);
            r->flags[r->n] = ch[i].flags;
            r->n++;
        }
    }
}

static bool rec_has(const struct rec *r, const char *nm)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->names[i], nm) == 0)
            return true;
    return false;
}

/* Builds a store from scratch holding exactly the world's objects. */
static struct store *world_build(const struct world *w, bool pods_first)
{
    struct store *st = store_new();
    struct sbuf b = { 0 };
    store_begin(st);
    for (int pass = 0; pass < 2; pass++) {
        bool do_pods = (pass == 0) == pods_first;
        if (do_pods) {
            for (int i = N_PODS - 1; i >= 0; i--) {
                if (!w->pods[i].exists)
                    continue;
                pod_yaml(w, i, &b);
                upsert_yaml(st, b.s);
            }
        } else {
            for (int i = 0; i < N_SVCS; i++) {
                if (!w->svcs[i].exists)
                    continue;
                svc_yaml(w, i, &b);
                upsert_yaml(st, b.s);
            }
            for (int i = 0; i < N_SLICES; i++) {
                if (!w->slices[i].exists)
                    continue;
                slice_yaml(w, i, &b);
                upsert_yaml(st, b.s);
            }
        }
    }
    for (int i = 0; i < N_PODS; i++) {
        const struct pod_m *p = &w->pods[i];
        char name[16];
        snprintf(name, sizeof(name), "p%d", i % PODS_PER_NS);
        if (!p->exists)
            continue;
        if (p->probe != SVCD_UNKNOWN)
            store_pod_set_probe_ready(st, NS[i / PODS_PER_NS], name, p->probe);
        if (p->marked)
            store_pod_mark_terminating(st, NS[i / PODS_PER_NS], name, "2026-02-02T00:00:00Z");
    }
    store_commit(st);
    free(b.s);
    return st;
}

struct diff_stats {
    int endpoint_diffs, notify_misses, gen_misses, lookup_diffs, stats_diffs, by_ip_diffs;
    int dup_names, deleted_but_present;
};

/* Prints the first few examples of each kind of difference. */
static void diff_note(int count, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diff_note(int count, const char *fmt, ...)
{
    if (count > 3)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void run_seed(uint64_t seed, int batches, struct diff_stats *d)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
    struct store *st = store_new();
    struct rec r;
    memset(&r, 0, sizeof(r));
    struct store_subscriber sub = { rec_commit, &r };
    store_subscribe(st, &sub);
    struct sbuf b = { 0 }, x = { 0 }, y = { 0 };
    char prev[N_SVCS][2048];
    for (int i = 0; i < N_SVCS; i++)
        snprintf(prev[i], sizeof(prev[i]), "ABSENT");
    char log[4096];

    for (int bt = 0; bt < batches; bt++) {
        int ops = 1 + (int)rnd(5);
        size_t used = 0;
        log[0] = '\0';
        store_begin(st);
        bool nested = rnd(5) == 0;
        if (nested)
            store_begin(st);
        for (int o = 0; o < ops; o++) {
            uint32_t op = rnd(100);
            char name[16];
            if (op < 35) {                                 /* pod upsert */
                int i = (int)rnd(N_PODS);
                struct pod_m *p = &w.pods[i];
                bool same = p->exists && rnd(8) == 0;
                if (!same)
                    pod_randomize(p, !p->exists);
                p->exists = true;
                p->marked = false;
                pod_yaml(&w, i, &b);
                upsert_yaml(st, b.s);
                used += (size_t)snprintf(log + used, sizeof(log) - used, " podup(%d%s)", i,
                                         same ? ",same" : "");
            } else if (op < 45) {                          /* pod delete */
                int i = (int)rnd(N_PODS);
                snprintf(name, sizeof(name), "p%d", i % PODS_PER_NS);
                int rc = store_pod_delete(st, NS[i / PODS_PER_NS], name);
                if (w.pods[i].exists != (rc == 0))
                    d->lookup_diffs++;
                memset(&w.pods[i], 0, sizeof(w.pods[i]));
                used += (size_t)snprintf(log + used, sizeof(log) - used, " poddel(%d)", i);
            } else if (op < 62) {                          /* service upsert */
                int i = (int)rnd(N_SVCS);
                struct svc_m *s = &w.svcs[i];
                svc_randomize(s, !s->exists);
                s->exists = true;
                svc_yaml(&w, i, &b);
                upsert_yaml(st, b.s);
                used += (size_t)snprintf(log + used, sizeof(log) - used, " svcup(%d)", i);
            } else if (op < 70) {                          /* service delete */
                int i = (int)rnd(N_SVCS);
                snprintf(name, sizeof(name), "s%d", i % SVCS_PER_NS);
                int rc = store_service_delete(st, NS[i / SVCS_PER_NS], name);
                if (w.svcs[i].exists != (rc == 0))
                    d->lookup_diffs++;
                memset(&w.svcs[i], 0, sizeof(w.svcs[i]));
                used += (size_t)snprintf(log + used, sizeof(log) - used, " svcdel(%d)", i);
            } else if (op < 82) {                          /* slice upsert */
                int i = (int)rnd(N_SLICES);
                slice_randomize(&w.slices[i]);
                w.slices[i].exists = true;
                slice_yaml(&w, i, &b);
                upsert_yaml(st, b.s);
                used += (size_t)snprintf(log + used, sizeof(log) - used, " sliceup(%d)", i);
            } else if (op < 86) {                          /* slice delete */
                int i = (int)rnd(N_SLICES);
                snprintf(name, sizeof(name), "e%d", i % SLICES_PER_NS);
                int rc = store_slice_delete(st, NS[i / SLICES_PER_NS], name);
                if (w.slices[i].exists != (rc == 0))
                    d->lookup_diffs++;
                memset(&w.slices[i], 0, sizeof(w.slices[i]));
                used += (size_t)snprintf(log + used, sizeof(log) - used, " slicedel(%d)", i);
            } else if (op < 95) {                          /* probe verdict */
                int i = (int)rnd(N_PODS);
                enum svcd_tristate v = (enum svcd_tristate)rnd(3);
                snprintf(name, sizeof(name), "p%d", i % PODS_PER_NS);
                int rc = store_pod_set_probe_ready(st, NS[i / PODS_PER_NS], name, v);
                if (w.pods[i].exists != (rc == 0))
                    d->lookup_diffs++;
                if (w.pods[i].exists)
                    w.pods[i].probe = v;
                used += (size_t)snprintf(log + used, sizeof(log) - used, " probe(%d,%d)", i, v);
            } else {                                       /* terminating */
                int i = (int)rnd(N_PODS);
                snprintf(name, sizeof(name), "p%d", i % PODS_PER_NS);
                int rc = store_pod_mark_terminating(st, NS[i / PODS_PER_NS], name,
                                                    "2026-02-02T00:00:00Z");
                if (w.pods[i].exists != (rc == 0))
                    d->lookup_diffs++;
                if (w.pods[i].exists && !w.pods[i].deleting)
                    w.pods[i].marked = true;
                used += (size_t)snprintf(log + used, sizeof(log) - used, " term(%d)", i);
            }
            if (used >= sizeof(log))
                used = sizeof(log) - 1;
        }
        if (nested)
            store_commit(st);
        int commits_before = r.commits;
        uint64_t gen_before = store_generation(st);
        r.n = 0;
        store_commit(st);
        bool notified = r.commits != commits_before;
        d->dup_names += r.dup_names;
        d->deleted_but_present += r.deleted_but_present;
        r.dup_names = r.deleted_but_present = 0;

        struct store *ref = world_build(&w, rnd(2));
        for (int i = 0; i < N_SVCS; i++) {
            char name[16], full[64];
            snprintf(name, sizeof(name), "s%d", i % SVCS_PER_NS);
            snprintf(full, sizeof(full), "%s/%s", NS[i / SVCS_PER_NS], name);
            render(st, NS[i / SVCS_PER_NS], name, &x);
            render(ref, NS[i / SVCS_PER_NS], name, &y);
            if (strcmp(x.s, y.s) != 0) {
                d->endpoint_diffs++;
                diff_note(d->endpoint_diffs, "seed %llu batch %d:%s\n  %s incremental: %s\n  %s from scratch: %s",
                          (unsigned long long)seed, bt, log, full, x.s, full, y.s);
            }
            if (strcmp(x.s, prev[i]) != 0) {
                if (!notified || !rec_has(&r, full)) {
                    d->notify_misses++;
                    diff_note(d->notify_misses, "seed %llu batch %d:%s\n  %s changed (%s -> %s) but was not "
                              "announced", (unsigned long long)seed, bt, log, full, prev[i], x.s);
                }
                if (store_generation(st) == gen_before)
                    d->gen_misses++;
            }
            snprintf(prev[i], sizeof(prev[i]), "%s", x.s);
            if ((store_service_get(st, NS[i / SVCS_PER_NS], name) != NULL) != w.svcs[i].exists)
                d->lookup_diffs++;
        }
        for (int i = 0; i < N_PODS; i++) {
            char name[16];
            snprintf(name, sizeof(name), "p%d", i % PODS_PER_NS);
            const struct svcd_pod *p = store_pod_get(st, NS[i / PODS_PER_NS], name);
            if ((p != NULL) != w.pods[i].exists)
                d->lookup_diffs++;
            if (!p || !w.pods[i].ip)
                continue;
            /* An IP held by exactly one pod must find that pod. */
            int holders = 0;
            for (int j = 0; j < N_PODS; j++)
                holders += w.pods[j].exists && w.pods[j].ip == w.pods[i].ip;
            struct svcd_ip ip;
            char ipt[32];
            snprintf(ipt, sizeof(ipt), "10.0.0.%d", w.pods[i].ip);
            svcd_ip_parse(ipt, &ip);
            if (holders == 1 && store_pod_by_ip(st, &ip) != p) {
                d->by_ip_diffs++;
                diff_note(d->by_ip_diffs, "seed %llu batch %d:%s\n  pod_by_ip(%s) is not %s/%s, its only "
                          "holder", (unsigned long long)seed, bt, log, ipt, NS[i / PODS_PER_NS],
                          name);
            }
        }
        struct store_stats s1, s2;
        store_get_stats(st, &s1);
        store_get_stats(ref, &s2);
        if (s1.services != s2.services || s1.pods != s2.pods || s1.slices != s2.slices ||
            s1.endpoints_ready != s2.endpoints_ready ||
            s1.endpoints_not_ready != s2.endpoints_not_ready ||
            s1.endpoints_terminating != s2.endpoints_terminating)
            d->stats_diffs++;
        store_free(ref);
    }
    store_free(st);
    free(b.s);
    free(x.s);
    free(y.s);
}

static void test_randomized(void)
{
    int seeds = 200;
    const char *e = getenv("SVCD_REVIEW_SEEDS");
    if (e && atoi(e) > 0)
        seeds = atoi(e);
    struct diff_stats d;
    memset(&d, 0, sizeof(d));
    for (int s = 1; s <= seeds; s++)
        run_seed((uint64_t)s, 60, &d);
    CHECK(d.endpoint_diffs == 0, "randomized: %d endpoint lists differ from a from-scratch store",
          d.endpoint_diffs);
    CHECK(d.notify_misses == 0, "randomized: %d endpoint changes not announced to subscribers",
          d.notify_misses);
    CHECK(d.gen_misses == 0, "randomized: %d changes without a new generation", d.gen_misses);
    CHECK(d.lookup_diffs == 0, "randomized: %d look-up/return-code mismatches", d.lookup_diffs);
    CHECK(d.stats_diffs == 0, "randomized: %d store_get_stats mismatches", d.stats_diffs);
    CHECK(d.by_ip_diffs == 0, "randomized: %d store_pod_by_ip misses for an IP held by one pod",
          d.by_ip_diffs);
    CHECK(d.dup_names == 0, "randomized: %d commits listed a Service twice (store.h: each "
          "changed Service once)", d.dup_names);
    CHECK(d.deleted_but_present == 0, "randomized: %d DELETED changes whose Service "
          "store_service_get() still finds", d.deleted_but_present);
    fprintf(stderr, "randomized: %d seeds x 60 batches\n", seeds);
}

/* ---- 2. table-driven store contracts ----------------------------------------------- */

static const char *const SVC_WEB =
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports:\n"
    "  - {name: http, port: 80, targetPort: 8080}\n";

static const char *const POD_A =
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: web}}\n"
    "spec: {containers: [{name: c}]}\nstatus: {phase: Running, podIP: 10.244.0.11}\n";

/* Service deleted and re-created in one batch (a manifest renamed a.yaml -> b.yaml is
 * exactly this): subscribers must see it once, and not as DELETED. */
static void test_delete_readd_same_batch(void)
{
    struct store *st = store_new();
    struct rec r;
    memset(&r, 0, sizeof(r));
    struct store_subscriber sub = { rec_commit, &r };
    store_subscribe(st, &sub);
    load(st, SVC_WEB);
    load(st, POD_A);
    store_begin(st);
    store_service_delete(st, "default", "web");
    upsert_yaml(st, SVC_WEB);
    store_commit(st);
    size_t n_web = 0;
    unsigned flags = 0;
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.names[i], "default/web") == 0) {
            n_web++;
            flags |= r.flags[i];
        }
    CHECK(n_web == 1, "delete+re-add in one batch: default/web listed %zu times (want once)",
          n_web);
    CHECK(r.deleted_but_present == 0, "delete+re-add in one batch: a DELETED change for a "
          "Service store_service_get() returns");
    size_t n;
    store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 1, "delete+re-add: %zu endpoints (want 1)", n);
    /* The re-added Service must still follow its pod. */
    store_begin(st);
    store_pod_delete(st, "default", "a");
    store_commit(st);
    store_endpoints_get(st, "default", "web", &n);
    CHECK(n == 0, "delete+re-add then pod delete: %zu endpoints (want 0)", n);
    store_free(st);
}

/* Kubernetes reuses IPs: a finished Job pod keeps status.podIP while a new pod
 * gets the same address. Deleting one holder must not hide the other. */
static void test_pod_by_ip_shared(void)
{
    struct store *st = store_new();
    load(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: done}\n"
             "spec: {containers: [{name: c}]}\nstatus: {phase: Succeeded, podIP: 10.244.0.9}\n");
    load(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: live}\n"
             "spec: {containers: [{name: c}]}\nstatus: {phase: Running, podIP: 10.244.0.9}\n");
    store_begin(st);
    store_pod_delete(st, "default", "live");
    store_commit(st);
    struct svcd_ip ip;
    svcd_ip_parse("10.244.0.9", &ip);
    const struct svcd_pod *p = store_pod_by_ip(st, &ip);
    CHECK(p && strcmp(p->meta.name, "done") == 0,
          "pod_by_ip after deleting one of two holders: got %s (want done)",
          p ? p->meta.name : "NULL");
    /* And a running pod wins over a finished one holding the same IP. */
    load(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: live}\n"
             "spec: {containers: [{name: c}]}\nstatus: {phase: Running, podIP: 10.244.0.9}\n");
    load(st, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: done, labels: {x: y}}\n"
             "spec: {containers: [{name: c}]}\nstatus: {phase: Succeeded, podIP: 10.244.0.9}\n");
    p = store_pod_by_ip(st, &ip);
    CHECK(p && strcmp(p->meta.name, "live") == 0,
          "pod_by_ip with a Running and a Succeeded holder: got %s (want live)",
          p ? p->meta.name : "NULL");
    store_free(st);
}

struct cond_case {
    const char *name;
    const char *svc_extra;
    const char *pod_extra_meta;
    const char *pod_status_extra;
    const char *want;   /* "RST" flags */
};

/* EndpointSlice controller (pkg/controller/endpointslice/utils.go podToEndpoint):
 *   serving     = podutil.IsPodReady(pod)
 *   terminating = pod.DeletionTimestamp != nil
 *   ready       = service.Spec.PublishNotReadyAddresses || (serving && !terminating)
 * publishNotReadyAddresses changes "ready" only. */
static const struct cond_case cond_cases[] = {
    { "ready pod", "", "", "", "RS-" },
    { "not ready pod", "", "", "  conditions: [{type: Ready, status: \"False\"}]\n", "---" },
    { "terminating ready pod", "", ", deletionTimestamp: \"2026-01-01T00:00:00Z\"", "", "-ST" },
    { "terminating not-ready pod", "", ", deletionTimestamp: \"2026-01-01T00:00:00Z\"",
      "  conditions: [{type: Ready, status: \"False\"}]\n", "--T" },
    { "pnr + not ready pod: ready, not serving", "  publishNotReadyAddresses: true\n", "",
      "  conditions: [{type: Ready, status: \"False\"}]\n", "R--" },
    { "pnr + terminating ready pod", "  publishNotReadyAddresses: true\n",
      ", deletionTimestamp: \"2026-01-01T00:00:00Z\"", "", "RST" },
    { "pnr + terminating not-ready pod", "  publishNotReadyAddresses: true\n",
      ", deletionTimestamp: \"2026-01-01T00:00:00Z\"",
      "  conditions: [{type: Ready, status: \"False\"}]\n", "R-T" },
};

static void test_conditions(void)
{
    for (size_t i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
        const struct cond_case *c = &cond_cases[i];
        char yaml[2048];
        snprintf(yaml, sizeof(yaml),
                 "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                 "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n%s  ports:\n"
                 "  - {name: http, port: 80, targetPort: 8080}\n"
                 "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: web}%s}\n"
                 "spec: {containers: [{name: c}]}\nstatus:\n  phase: Running\n"
                 "  podIP: 10.244.0.11\n%s",
                 c->svc_extra, c->pod_extra_meta, c->pod_status_extra);
        struct store *st = store_new();
        load(st, yaml);
        size_t n;
        const struct svcd_endpoint *e = store_endpoints_get(st, "default", "web", &n);
        char got[4] = "???";
        if (n == 1) {
            got[0] = e->ready ? 'R' : '-';
            got[1] = e->serving ? 'S' : '-';
            got[2] = e->terminating ? 'T' : '-';
        }
        CHECK(strcmp(got, c->want) == 0, "conditions: %s: got %s want %s", c->name, got,
              c->want);
        store_free(st);
    }
}

/* ---- 3. manifest_dir on a real directory ------------------------------------------- */

struct md_env {
    struct event_base *base;
    struct store *st;
    struct manifest_dir *md;
    char dir[256];
    int svc_deleted;        /* DELETED notifications for default/web */
};

static void md_rec(void *ctx, struct store *st, uint64_t generation,
                   const struct store_change *ch, size_t n, bool pods_changed)
{
    struct md_env *e = ctx;
    (void)st; (void)generation; (void)pods_changed;
    for (size_t i = 0; i < n; i++)
        if ((ch[i].flags & STORE_SVC_DELETED) && strcmp(ch[i].name, "web") == 0)
            e->svc_deleted++;
}

static void md_run(struct md_env *e, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    event_base_loopexit(e->base, &tv);
    event_base_dispatch(e->base);
}

/* Runs the loop until COND holds, for at most MS: the deadline is generous
 * (a slow machine only waits longer); the check after it is exact. */
#define MD_WAIT(e, ms, cond)                                                           \
    do {                                                                               \
        for (int md_i_ = 0; md_i_ < (ms) / 10 && !(cond); md_i_++)                     \
            md_run((e), 10);                                                           \
    } while (0)

static double md_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void md_write(struct md_env *e, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void md_unlink(struct md_env *e, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", e->dir, name);
    unlink(path);
}

static void md_rename(struct md_env *e, const char *from, const char *to)
{
    char a[512], b[512];
    snprintf(a, sizeof(a), "%s/%s", e->dir, from);
    snprintf(b, sizeof(b), "%s/%s", e->dir, to);
    rename(a, b);
}

#define MD_POD(name, ip, extra_meta)                                                   \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name extra_meta "}\n"           \
    "spec: {containers: [{name: c}]}\nstatus: {phase: Running, podIP: " ip "}\n"

/* Waits until the manifest directory has handled every change made before
 * the call, including removals' debounce timers: a sentinel file written
 * now is loaded after them (events are read in order), and its removal
 * takes effect after any removal timer started before it. Lets a test
 * check that something did NOT happen without guessing a duration. */
static void md_sync(struct md_env *e)
{
    md_write(e, "zz-md-sync.yaml", MD_POD("md-sync", "10.1.255.1", ""));
    MD_WAIT(e, 10000, store_pod_get(e->st, "default", "md-sync") != NULL);
    CHECK(store_pod_get(e->st, "default", "md-sync") != NULL, "md: sync sentinel loaded");
    md_unlink(e, "zz-md-sync.yaml");
    MD_WAIT(e, 10000, store_pod_get(e->st, "default", "md-sync") == NULL);
    CHECK(store_pod_get(e->st, "default", "md-sync") == NULL, "md: sync sentinel removed");
}

static char md_preset_dir[256];   /* made by the parent of a forked test */

static int md_setup(struct md_env *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s",
             md_preset_dir[0] ? md_preset_dir : "/tmp/svcd-review-md-XXXXXX");
    if (!md_preset_dir[0] && !mkdtemp(e->dir))
        return -1;
    e->base = event_base_new();
    e->st = store_new();
    struct store_subscriber sub = { md_rec, e };
    store_subscribe(e->st, &sub);
    e->md = manifest_dir_new(e->base, e->st, e->dir);
    if (!e->md)
        return -1;
    MD_WAIT(e, 10000, manifest_dir_loaded(e->md));
    return manifest_dir_loaded(e->md) ? 0 : -1;
}

static void md_teardown(struct md_env *e)
{
    manifest_dir_free(e->md);
    store_free(e->st);
    event_base_free(e->base);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", e->dir);
}

static const char *pod_ip(struct md_env *e, const char *name, char *buf, size_t len)
{
    const struct svcd_pod *p = store_pod_get(e->st, "default", name);
    if (!p)
        return "ABSENT";
    if (!p->n_ips)
        return "NOIP";
    return svcd_ip_format(&p->ips[0], buf, len);
}

static void test_md_conflicts(void)
{
    struct md_env e;
    if (md_setup(&e) < 0) {
        CHECK(0, "manifest_dir setup failed");
        return;
    }
    char ip[64];
    md_write(&e, "b.yaml", MD_POD("x", "10.1.0.2", ""));
    md_write(&e, "a.yaml", MD_POD("x", "10.1.0.1", ""));
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "ABSENT") != 0);
    CHECK(strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.1") == 0,
          "md conflict: a.yaml must win, got %s", ip);
    md_write(&e, "b.yaml", MD_POD("x", "10.1.0.3", ""));
    md_sync(&e);
    CHECK(strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.1") == 0,
          "md conflict: a change to the loser must be ignored, got %s", ip);
    md_unlink(&e, "a.yaml");
    /* removals may be debounced (editors' saves) */
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.1") != 0);
    CHECK(strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.3") == 0,
          "md conflict: winner removed -> runner-up's content, got %s", ip);
    /* Runner-up broken: its last good content takes over. */
    md_write(&e, "a.yaml", MD_POD("x", "10.1.0.1", ""));
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.1") == 0);
    md_write(&e, "b.yaml", "kind: Pod\napiVersion: v1\nmetadata: {name: [}\n");
    MD_WAIT(&e, 5000, manifest_dir_failing(e.md) == 1);
    md_unlink(&e, "a.yaml");
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.1") != 0);
    CHECK(strcmp(pod_ip(&e, "x", ip, sizeof(ip)), "10.1.0.3") == 0,
          "md conflict: winner removed, runner-up failing -> its last good, got %s", ip);
    CHECK(manifest_dir_failing(e.md) == 1, "md: failing files %zu (want 1)",
          manifest_dir_failing(e.md));
    /* Hidden temp file renamed in (sed -i, gedit, kubectl-like tools). */
    md_write(&e, ".tmp-c.yaml", MD_POD("y", "10.1.0.7", ""));
    md_sync(&e);
    CHECK(strcmp(pod_ip(&e, "y", ip, sizeof(ip)), "ABSENT") == 0, "md: hidden file read");
    md_rename(&e, ".tmp-c.yaml", "c.yaml");
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "y", ip, sizeof(ip)), "ABSENT") != 0);
    CHECK(strcmp(pod_ip(&e, "y", ip, sizeof(ip)), "10.1.0.7") == 0,
          "md: file renamed in not read, got %s", ip);
    /* Renamed out of the directory's wanted names. */
    md_rename(&e, "c.yaml", "c.yaml.disabled");
    MD_WAIT(&e, 5000, strcmp(pod_ip(&e, "y", ip, sizeof(ip)), "ABSENT") == 0);
    CHECK(strcmp(pod_ip(&e, "y", ip, sizeof(ip)), "ABSENT") == 0,
          "md: file renamed away still has its pod, got %s", ip);
    md_teardown(&e);
}

/* vim (backupcopy=auto, the default) saves by renaming FILE to FILE~, writing a
 * new FILE, then unlinking FILE~. Between the rename and the close of the new
 * file the objects must not be deleted (that would drop the VIP and reset
 * connections on every save). */
static void test_md_editor_save(void)
{
    struct md_env e;
    if (md_setup(&e) < 0) {
        CHECK(0, "manifest_dir setup failed");
        return;
    }
    md_write(&e, "web.yaml", SVC_WEB);
    MD_WAIT(&e, 5000, store_service_get(e.st, "default", "web") != NULL);
    CHECK(store_service_get(e.st, "default", "web") != NULL, "md: web.yaml not loaded");
    md_rename(&e, "web.yaml", "web.yaml~");
    md_run(&e, 20);           /* the editor writing (and fsyncing) the new file */
    md_write(&e, "web.yaml",
             "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
             "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports:\n"
             "  - {name: http, port: 80, targetPort: 8081}\n");
    md_unlink(&e, "web.yaml~");
    MD_WAIT(&e, 5000, (store_service_get(e.st, "default", "web") != NULL &&
                       store_service_get(e.st, "default", "web")->ports[0].target_port == 8081));
    /* past the removal debounce too: a late deletion would show now */
    md_sync(&e);
    CHECK(store_service_get(e.st, "default", "web") != NULL, "md: web.yaml lost after save");
    CHECK(e.svc_deleted == 0, "md: an editor's save (rename away, write new) deleted the "
          "Service %d time(s) before re-adding it", e.svc_deleted);
    md_teardown(&e);
}

/* Pod removed with a grace period, re-added, removed again: the first timer
 * must not cut the second grace period short. */
static void test_md_grace_twice(void)
{
    struct md_env e;
    if (md_setup(&e) < 0) {
        CHECK(0, "manifest_dir setup failed");
        return;
    }
    char ip[64];
    const char *pod = MD_POD("g", "10.1.0.9",
                             ", annotations: {svcd.io/grace-period-seconds: \"2\"}");
    const struct svcd_pod *p;
    md_write(&e, "g.yaml", pod);
    MD_WAIT(&e, 5000, store_pod_get(e.st, "default", "g") != NULL);
    double t0 = md_now();
    md_write(&e, "g.yaml", "");                /* t=0: removed, grace until t=2 */
    MD_WAIT(&e, 5000, (p = store_pod_get(e.st, "default", "g")) && p->meta.deletion_timestamp);
    p = store_pod_get(e.st, "default", "g");
    CHECK(p && p->meta.deletion_timestamp, "md grace: pod not terminating during grace");
    while (md_now() < t0 + 1.0)
        md_run(&e, 10);
    md_write(&e, "g.yaml", pod);               /* t=1: back */
    MD_WAIT(&e, 5000, (p = store_pod_get(e.st, "default", "g")) && !p->meta.deletion_timestamp);
    p = store_pod_get(e.st, "default", "g");
    CHECK(p && !p->meta.deletion_timestamp, "md grace: re-added pod still terminating");
    double t1 = md_now();
    md_write(&e, "g.yaml", "");                /* t=1.x: removed again, grace until t1+2 */
    while (md_now() < t0 + 2.4)                /* the first timer (t=2) has fired */
        md_run(&e, 10);
    /* The window [t0+2.4, t1+2) shows the first timer did not cut the second
     * grace period short; a machine stalled past t1+2 cannot tell, and says so. */
    bool present = strcmp(pod_ip(&e, "g", ip, sizeof(ip)), "ABSENT") != 0;
    if (md_now() < t1 + 2.0)
        CHECK(present, "md grace: second grace period cut short by the first timer");
    else
        printf("note: md grace: machine stalled past the second grace period; window check skipped\n");
    MD_WAIT(&e, 10000, strcmp(pod_ip(&e, "g", ip, sizeof(ip)), "ABSENT") == 0);
    CHECK(strcmp(pod_ip(&e, "g", ip, sizeof(ip)), "ABSENT") == 0,
          "md grace: pod still there after its grace period");
    CHECK(md_now() >= t1 + 2.0, "md grace: pod removed %.2f s into its 2 s grace period",
          md_now() - t1);
    md_teardown(&e);
}

/* A FIFO named like a manifest (mkfifo, or a stray named pipe) must not hang
 * the daemon: open(O_RDONLY) on a FIFO blocks until a writer appears. Runs in
 * a child with an alarm so a hang fails the check instead of the test. */
static void test_md_fifo(void)
{
    snprintf(md_preset_dir, sizeof(md_preset_dir), "/tmp/svcd-review-md-XXXXXX");
    if (!mkdtemp(md_preset_dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);   /* a hang, not slowness: the child needs well under a second */
        struct md_env e;
        if (md_setup(&e) < 0)
            _exit(4);
        char path[512];
        snprintf(path, sizeof(path), "%s/pipe.yaml", e.dir);
        if (mkfifo(path, 0600) < 0)
            _exit(5);
        md_write(&e, "web.yaml", SVC_WEB);
        manifest_dir_rescan(e.md);      /* SIGHUP: re-reads every file */
        MD_WAIT(&e, 2000, store_service_get(e.st, "default", "web") != NULL);
        int ok = store_service_get(e.st, "default", "web") != NULL;
        md_teardown(&e);
        _exit(ok ? 0 : 6);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", md_preset_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", md_preset_dir);
    md_preset_dir[0] = '\0';
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "md: a FIFO named pipe.yaml in the directory: child %s %d (want the other files "
          "loaded, no hang)", WIFEXITED(status) ? "exited" : "killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* A ConfigMap mounted as the manifest directory (kubectl users' habit): the
 * kubelet updates it by writing ..2024_x/, pointing the ..data symlink at it
 * (rename of a temp symlink) and deleting the old dir. The visible web.yaml ->
 * ..data/web.yaml symlink never changes, so only the "..data" events tell. */
static void test_md_configmap_swap(void)
{
    struct md_env e;
    if (md_setup(&e) < 0) {
        CHECK(0, "manifest_dir setup failed");
        return;
    }
    char p1[512], p2[512];
    snprintf(p1, sizeof(p1), "%s/..v1", e.dir);
    mkdir(p1, 0755);
    md_write(&e, "..v1/web.yaml", SVC_WEB);
    snprintf(p1, sizeof(p1), "%s/..data", e.dir);
    if (symlink("..v1", p1) < 0)
        perror("symlink");
    snprintf(p1, sizeof(p1), "%s/web.yaml", e.dir);
    if (symlink("..data/web.yaml", p1) < 0)
        perror("symlink");
    MD_WAIT(&e, 5000, store_service_get(e.st, "default", "web") != NULL);
    CHECK(store_service_get(e.st, "default", "web") != NULL,
          "md: a manifest symlinked into the directory (ln -s) is not loaded");
    manifest_dir_rescan(e.md);
    md_sync(&e);
    /* the update */
    snprintf(p1, sizeof(p1), "%s/..v2", e.dir);
    mkdir(p1, 0755);
    md_write(&e, "..v2/web.yaml",
             "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
             "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n  ports:\n"
             "  - {name: http, port: 8000, targetPort: 8080}\n");
    snprintf(p1, sizeof(p1), "%s/..data_tmp", e.dir);
    snprintf(p2, sizeof(p2), "%s/..data", e.dir);
    if (symlink("..v2", p1) < 0 || rename(p1, p2) < 0)
        perror("swap");
    md_unlink(&e, "..v1/web.yaml");
    snprintf(p1, sizeof(p1), "%s/..v1", e.dir);
    rmdir(p1);
    const struct svcd_service *svc;
    MD_WAIT(&e, 5000, (svc = store_service_get(e.st, "default", "web")) && svc->n_ports == 1 &&
                          svc->ports[0].port == 8000);
    svc = store_service_get(e.st, "default", "web");
    CHECK(svc && svc->n_ports == 1 && svc->ports[0].port == 8000,
          "md: ConfigMap-style ..data swap not picked up (port %u, want 8000)",
          svc && svc->n_ports ? svc->ports[0].port : 0);
    md_teardown(&e);
}

/* ---- 4. config ------------------------------------------------------------------------- */

static int cfg_args(struct svcd_config *c, const char *a1, const char *a2)
{
    char *argv[4] = { (char *)"svcd", (char *)a1, (char *)a2, NULL };
    bool cleanup;
    int argc = a2 ? 3 : a1 ? 2 : 1;
    return config_load(c, argc, argv, &cleanup);
}

static void test_config(void)
{
    static struct svcd_config c;
    /* dig, kubectl and CoreDNS all accept the absolute form with the dot. */
    int rc = cfg_args(&c, "--cluster-domain", "cluster.local.");
    CHECK(rc == 0 && strcmp(c.cluster_domain, "cluster.local") == 0,
          "config: --cluster-domain cluster.local. rejected (rc %d)", rc);
    rc = cfg_args(&c, "--stub-domain", "corp.example.=10.0.0.53");
    CHECK(rc == 0 && c.n_stub == 1 && strcmp(c.stub[0].domain, "corp.example") == 0,
          "config: --stub-domain corp.example.=ADDR rejected (rc %d)", rc);
    rc = cfg_args(&c, "--dns-ttl", "30");
    CHECK(rc == 0 && c.dns_ttl == 30, "config: --dns-ttl 30");
    rc = cfg_args(&c, "--dns-ttl", "-1");
    CHECK(rc == -1, "config: --dns-ttl -1 accepted");

    /* A stub-domain key longer than the 1 KiB assembly buffer in the config
     * file: must be an error, not a stack overflow. Run in a child so an ASan
     * report (or a crash) fails this check instead of the whole program. */
    char path[] = "/tmp/svcd-review-cfg-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "mkstemp");
        return;
    }
    FILE *f = fdopen(fd, "w");
    /* 16 labels of 63 + 16 dots + 6 = 1030 characters: "%s=" needs 1031 bytes,
     * so the value lands just past the buffer (in ASan's red zone; a longer key
     * writes further, into other locals, silently). */
    fputs("stub-domain:\n  ? ", f);
    for (int i = 0; i < 16; i++)
        fprintf(f, "%.63s.", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    fputs("bbbbbb\n  : 10.0.0.53\n", f);
    fclose(f);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        struct svcd_config *cc = malloc(sizeof(*cc));
        rc = cfg_args(cc, "--config", path);
        _exit(rc == -1 ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    unlink(path);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "config: 1030-byte stub-domain key in the file: child %s %d (want a clean error)",
          WIFEXITED(status) ? "exited" : "killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(void)
{
    log_set_level(LOG_LVL_ERROR);
    test_randomized();
    test_delete_readd_same_batch();
    test_pod_by_ip_shared();
    test_conditions();
    test_md_conflicts();
    test_md_editor_save();
    test_md_grace_twice();
    test_md_fifo();
    test_md_configmap_swap();
    test_config();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
