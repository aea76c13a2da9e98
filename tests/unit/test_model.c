/*
 * test_model: table-driven checks of the model helpers (addresses, CIDR
 * prefixes, protocols, the sorted key/value map, selectors, pod readiness,
 * destructors on half-built objects).
 */
#include "svcd/model.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...) do {                                   \
        if (cond) {                                             \
            passed++;                                           \
        } else {                                                \
            failed++;                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);         \
            printf(__VA_ARGS__);                                \
            printf("\n");                                       \
        }                                                       \
    } while (0)

static void test_ip_parse_format(void)
{
    static const struct {
        const char *in;
        int rc;
        int family;
        const char *out;   /* canonical text */
    } rows[] = {
        { "10.0.0.1", 0, AF_INET, "10.0.0.1" },
        { "0.0.0.0", 0, AF_INET, "0.0.0.0" },
        { "255.255.255.255", 0, AF_INET, "255.255.255.255" },
        { "fd00::1", 0, AF_INET6, "fd00::1" },
        { "FD00:0:0:0:0:0:0:1", 0, AF_INET6, "fd00::1" },
        { "::", 0, AF_INET6, "::" },
        { "::ffff:10.0.0.1", 0, AF_INET6, "::ffff:10.0.0.1" },
        { "2001:db8::a:b", 0, AF_INET6, "2001:db8::a:b" },
        { "256.0.0.1", -1, 0, NULL },
        { "10.0.0", -1, 0, NULL },
        { "10.0.0.1 ", -1, 0, NULL },
        { "", -1, 0, NULL },
        { "fd00:::1", -1, 0, NULL },
        { "None", -1, 0, NULL },
        { "10.0.0.1/32", -1, 0, NULL },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct svcd_ip ip;
        char buf[INET6_ADDRSTRLEN];
        int rc = svcd_ip_parse(rows[i].in, &ip);
        CHECK(rc == rows[i].rc, "ip_parse(%s) rc %d want %d", rows[i].in, rc, rows[i].rc);
        if (rc == 0 && rows[i].rc == 0) {
            CHECK(ip.family == rows[i].family, "ip_parse(%s) family", rows[i].in);
            svcd_ip_format(&ip, buf, sizeof(buf));
            CHECK(strcmp(buf, rows[i].out) == 0, "format(%s) = %s want %s",
                  rows[i].in, buf, rows[i].out);
        }
    }
    CHECK(svcd_ip_parse(NULL, NULL) == -1, "ip_parse(NULL)");
}

static void test_ip_cmp(void)
{
    static const struct {
        const char *a, *b;
        int cmp;
    } rows[] = {
        { "10.0.0.1", "10.0.0.1", 0 },
        { "10.0.0.1", "10.0.0.2", -1 },
        { "10.0.1.0", "10.0.0.255", 1 },
        { "255.0.0.0", "::", -1 },     /* AF_INET sorts before AF_INET6 */
        { "fd00::2", "fd00::1", 1 },
        { "fd00::1", "fd00:0::1", 0 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct svcd_ip a, b;
        CHECK(svcd_ip_parse(rows[i].a, &a) == 0 && svcd_ip_parse(rows[i].b, &b) == 0,
              "parse %s %s", rows[i].a, rows[i].b);
        int c = svcd_ip_cmp(&a, &b);
        CHECK(c == rows[i].cmp, "cmp(%s,%s)=%d want %d", rows[i].a, rows[i].b, c, rows[i].cmp);
        CHECK(svcd_ip_equal(&a, &b) == (rows[i].cmp == 0), "equal(%s,%s)", rows[i].a, rows[i].b);
        CHECK(svcd_ip_cmp(&b, &a) == -rows[i].cmp, "cmp reverse(%s,%s)", rows[i].a, rows[i].b);
    }
}

static void test_cidr(void)
{
    static const struct {
        const char *cidr;
        int rc;
        const char *ip;
        bool inside;
    } rows[] = {
        { "10.96.0.0/12", 0, "10.96.0.1", true },
        { "10.96.0.0/12", 0, "10.111.255.255", true },
        { "10.96.0.0/12", 0, "10.112.0.0", false },
        { "10.96.0.0/12", 0, "10.95.255.255", false },
        { "10.96.0.0/12", 0, "fd00::1", false },
        { "0.0.0.0/0", 0, "1.2.3.4", true },
        { "10.0.0.1/32", 0, "10.0.0.1", true },
        { "10.0.0.1/32", 0, "10.0.0.2", false },
        { "fd00:10:96::/112", 0, "fd00:10:96::ffff", true },
        { "fd00:10:96::/112", 0, "fd00:10:96::1:0", false },
        { "fc00::/7", 0, "fdff::1", true },
        { "fd00::/7", -1, NULL, false },    /* low bit of fd is host bit */
        { "fc00::/7", 0, "fe00::1", false },
        { "::/0", 0, "2001:db8::1", true },
        { "::/0", 0, "10.0.0.1", false },
        { "10.96.0.1/12", -1, NULL, false },    /* host bits set */
        { "10.96.0.0/33", -1, NULL, false },
        { "10.96.0.0/-1", -1, NULL, false },
        { "10.96.0.0/", -1, NULL, false },
        { "10.96.0.0/12x", -1, NULL, false },
        { "10.96.0.0", -1, NULL, false },
        { "/12", -1, NULL, false },
        { "fd00::/129", -1, NULL, false },
        { "fd00::1/64", -1, NULL, false },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct svcd_cidr c;
        int rc = svcd_cidr_parse(rows[i].cidr, &c);
        CHECK(rc == rows[i].rc, "cidr_parse(%s) rc %d want %d", rows[i].cidr, rc, rows[i].rc);
        if (rc == 0 && rows[i].ip) {
            struct svcd_ip ip;
            CHECK(svcd_ip_parse(rows[i].ip, &ip) == 0, "parse %s", rows[i].ip);
            CHECK(svcd_cidr_contains(&c, &ip) == rows[i].inside, "%s contains %s != %d",
                  rows[i].cidr, rows[i].ip, rows[i].inside);
        }
    }
}

static void test_proto(void)
{
    static const struct {
        const char *s;
        int rc;
        enum svcd_proto p;
        int ipproto;
    } rows[] = {
        { "TCP", 0, SVCD_PROTO_TCP, IPPROTO_TCP },
        { "UDP", 0, SVCD_PROTO_UDP, IPPROTO_UDP },
        { "SCTP", 0, SVCD_PROTO_SCTP, IPPROTO_SCTP },
        { "tcp", -1, 0, 0 },
        { "HTTP", -1, 0, 0 },
        { "", -1, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum svcd_proto p;
        int rc = svcd_proto_parse(rows[i].s, &p);
        CHECK(rc == rows[i].rc, "proto_parse(%s)", rows[i].s);
        if (rc == 0) {
            CHECK(p == rows[i].p, "proto %s", rows[i].s);
            CHECK(strcmp(svcd_proto_name(p), rows[i].s) == 0, "proto_name %s", rows[i].s);
            CHECK(svcd_proto_ipproto(p) == rows[i].ipproto, "ipproto %s", rows[i].s);
        }
    }
}

static void test_names(void)
{
    CHECK(strcmp(svcd_svc_type_name(SVCD_SVC_CLUSTER_IP), "ClusterIP") == 0, "ClusterIP");
    CHECK(strcmp(svcd_svc_type_name(SVCD_SVC_NODE_PORT), "NodePort") == 0, "NodePort");
    CHECK(strcmp(svcd_svc_type_name(SVCD_SVC_LOAD_BALANCER), "LoadBalancer") == 0, "LB");
    CHECK(strcmp(svcd_svc_type_name(SVCD_SVC_EXTERNAL_NAME), "ExternalName") == 0, "EN");
    CHECK(strcmp(svcd_pod_phase_name(SVCD_PHASE_PENDING), "Pending") == 0, "Pending");
    CHECK(strcmp(svcd_pod_phase_name(SVCD_PHASE_RUNNING), "Running") == 0, "Running");
    CHECK(strcmp(svcd_pod_phase_name(SVCD_PHASE_SUCCEEDED), "Succeeded") == 0, "Succeeded");
    CHECK(strcmp(svcd_pod_phase_name(SVCD_PHASE_FAILED), "Failed") == 0, "Failed");
    CHECK(strcmp(svcd_pod_phase_name(SVCD_PHASE_UNKNOWN), "Unknown") == 0, "Unknown");
}

static void test_kvmap(void)
{
    struct svcd_kvmap m = { 0 }, m2 = { 0 };
    static const char *keys[] = { "zeta", "app", "tier", "m", "app.kubernetes.io/name", "b" };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(svcd_kvmap_set(&m, keys[i], keys[i]) == 0, "set %s", keys[i]);
    CHECK(m.n == 6, "n=%zu", m.n);
    for (size_t i = 1; i < m.n; i++)
        CHECK(strcmp(m.items[i - 1].key, m.items[i].key) < 0, "sorted at %zu", i);
    CHECK(svcd_kvmap_set(&m, "app", "web") == 0, "replace");
    CHECK(m.n == 6, "replace keeps n");
    CHECK(strcmp(svcd_kvmap_get(&m, "app"), "web") == 0, "get replaced");
    CHECK(strcmp(svcd_kvmap_get(&m, "zeta"), "zeta") == 0, "get last");
    CHECK(svcd_kvmap_get(&m, "nope") == NULL, "get missing");
    CHECK(svcd_kvmap_get(&m2, "app") == NULL, "get on empty");
    CHECK(svcd_kvmap_set(&m, NULL, "x") == -1, "NULL key");

    /* same pairs inserted in another order compare equal */
    for (size_t i = sizeof(keys) / sizeof(keys[0]); i-- > 0;)
        svcd_kvmap_set(&m2, keys[i], keys[i]);
    CHECK(!svcd_kvmap_equal(&m, &m2), "differs before replace");
    svcd_kvmap_set(&m2, "app", "web");
    CHECK(svcd_kvmap_equal(&m, &m2), "equal regardless of insertion order");
    svcd_kvmap_set(&m2, "extra", "1");
    CHECK(!svcd_kvmap_equal(&m, &m2), "different size");

    svcd_kvmap_free(&m);
    svcd_kvmap_free(&m2);
    CHECK(m.n == 0 && m.items == NULL, "free resets");
    svcd_kvmap_free(&m);    /* twice is fine */
    svcd_kvmap_free(NULL);
    CHECK(svcd_kvmap_equal(&m, &m2), "empty maps equal");
}

/* Builds a map from "k=v,k=v" (test helper). */
static void kv_from(struct svcd_kvmap *m, const char *spec)
{
    char buf[256];
    char *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        svcd_kvmap_set(m, tok, eq + 1);
    }
}

static void test_selector(void)
{
    static const struct {
        const char *sel, *labels;
        bool match;
    } rows[] = {
        { "", "", true },
        { "", "app=web", true },
        { "app=web", "app=web", true },
        { "app=web", "app=web,tier=fe", true },
        { "app=web,tier=fe", "app=web", false },
        { "app=web", "app=db", false },
        { "app=web", "", false },
        { "app=web,tier=fe", "tier=fe,app=web,x=y", true },
        { "app=", "app=", true },
        { "app=", "app=x", false },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct svcd_kvmap s = { 0 }, l = { 0 };
        kv_from(&s, rows[i].sel);
        kv_from(&l, rows[i].labels);
        CHECK(svcd_selector_matches(&s, &l) == rows[i].match, "selector {%s} on {%s}",
              rows[i].sel, rows[i].labels);
        svcd_kvmap_free(&s);
        svcd_kvmap_free(&l);
    }
    CHECK(svcd_selector_matches(NULL, NULL), "NULL selector matches");
}

static void test_pod_ready(void)
{
    static const struct {
        enum svcd_pod_phase phase;
        enum svcd_tristate cond, probe;
        bool ready;
    } rows[] = {
        { SVCD_PHASE_RUNNING, SVCD_UNKNOWN, SVCD_UNKNOWN, true },
        { SVCD_PHASE_RUNNING, SVCD_TRUE, SVCD_UNKNOWN, true },
        { SVCD_PHASE_RUNNING, SVCD_FALSE, SVCD_UNKNOWN, false },
        { SVCD_PHASE_RUNNING, SVCD_FALSE, SVCD_TRUE, true },
        { SVCD_PHASE_RUNNING, SVCD_TRUE, SVCD_FALSE, false },
        { SVCD_PHASE_RUNNING, SVCD_UNKNOWN, SVCD_FALSE, false },
        { SVCD_PHASE_PENDING, SVCD_TRUE, SVCD_TRUE, false },
        { SVCD_PHASE_SUCCEEDED, SVCD_TRUE, SVCD_UNKNOWN, false },
        { SVCD_PHASE_FAILED, SVCD_UNKNOWN, SVCD_UNKNOWN, false },
        { SVCD_PHASE_UNKNOWN, SVCD_TRUE, SVCD_TRUE, false },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct svcd_pod p;
        memset(&p, 0, sizeof(p));
        p.phase = rows[i].phase;
        p.ready_condition = rows[i].cond;
        p.probe_ready = rows[i].probe;
        CHECK(svcd_pod_is_ready(&p) == rows[i].ready, "pod_is_ready row %zu", i);
    }
    CHECK(!svcd_pod_is_ready(NULL), "NULL pod not ready");
}

static void test_named_port(void)
{
    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->n_containers = 2;
    p->containers = calloc(2, sizeof(*p->containers));
    p->containers[0].n_ports = 2;
    p->containers[0].ports = calloc(2, sizeof(struct svcd_container_port));
    p->containers[0].ports[0] = (struct svcd_container_port){ strdup("http"), 8080, SVCD_PROTO_TCP };
    p->containers[0].ports[1] = (struct svcd_container_port){ NULL, 9000, SVCD_PROTO_TCP };
    p->containers[1].n_ports = 2;
    p->containers[1].ports = calloc(2, sizeof(struct svcd_container_port));
    p->containers[1].ports[0] = (struct svcd_container_port){ strdup("dns"), 5353, SVCD_PROTO_UDP };
    p->containers[1].ports[1] = (struct svcd_container_port){ strdup("dns-tcp"), 5354, SVCD_PROTO_TCP };
    p->containers[1].readiness.kind = SVCD_PROBE_EXEC;
    p->containers[1].readiness.exec_argv = calloc(3, sizeof(char *));
    p->containers[1].readiness.exec_argv[0] = strdup("true");
    p->containers[1].readiness.exec_argv[1] = strdup("x");

    static const struct {
        const char *name;
        enum svcd_proto proto;
        uint16_t port;
    } rows[] = {
        { "http", SVCD_PROTO_TCP, 8080 },
        { "http", SVCD_PROTO_UDP, 0 },
        { "dns", SVCD_PROTO_UDP, 5353 },
        { "dns", SVCD_PROTO_TCP, 0 },
        { "dns-tcp", SVCD_PROTO_TCP, 5354 },
        { "missing", SVCD_PROTO_TCP, 0 },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        CHECK(svcd_pod_named_port(p, rows[i].name, rows[i].proto) == rows[i].port,
              "named_port %s/%s", rows[i].name, svcd_proto_name(rows[i].proto));
    CHECK(svcd_pod_named_port(p, NULL, SVCD_PROTO_TCP) == 0, "NULL name");
    model_pod_free(p);   /* checked for leaks under ASan */
}

static void test_free_half_built(void)
{
    struct svcd_service *s = calloc(1, sizeof(*s));
    s->meta.name = strdup("x");
    s->n_ports = 3;
    s->ports = calloc(3, sizeof(*s->ports));   /* entries left zeroed */
    s->ports[0].name = strdup("p");
    model_service_free(s);

    struct svcd_endpoint_slice *sl = calloc(1, sizeof(*sl));
    sl->n_endpoints = 2;
    sl->endpoints = calloc(2, sizeof(*sl->endpoints));
    sl->endpoints[1].hostname = strdup("h");
    model_slice_free(sl);

    struct svcd_pod *p = calloc(1, sizeof(*p));
    p->n_containers = 5;   /* containers NULL: must not be walked */
    model_pod_free(p);

    model_service_free(NULL);
    model_pod_free(NULL);
    model_slice_free(NULL);
    model_meta_free(NULL);
    model_probe_free(NULL);
    model_endpoint_free_contents(NULL);

    struct svcd_endpoint e = { 0 };
    e.pod_name = strdup("pod");
    e.target_ports = calloc(2, sizeof(uint16_t));
    model_endpoint_free_contents(&e);
    CHECK(e.pod_name == NULL && e.target_ports == NULL, "endpoint contents cleared");
    passed++;
}

int main(void)
{
    test_ip_parse_format();
    test_ip_cmp();
    test_cidr();
    test_proto();
    test_names();
    test_kvmap();
    test_selector();
    test_pod_ready();
    test_named_port();
    test_free_half_built();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
