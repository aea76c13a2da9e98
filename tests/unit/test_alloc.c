/*
 * test_alloc: clusterIP / nodePort allocation (src/alloc/alloc.c), table
 * driven: each step applies one Service (or releases one) and checks the
 * addresses/ports it got or the error. Also restart from the state file,
 * a corrupt state file and rollback. No root needed (a temporary dir).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcd/alloc.h"
#include "testutil.h"

/* One Service from a short spec: "NAME key: value; key: value" where the
 * keys are the YAML of spec (flow style allowed). */
static struct svcd_service *svc_from(const char *name, const char *spec)
{
    char yaml[2048];
    struct manifest_objs o = { 0 };
    char err[512];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {%s}\n", name, spec);
    if (manifest_parse(yaml, strlen(yaml), 1700000000, &o, err, sizeof(err)) < 0 ||
        o.n_services != 1) {
        fprintf(stderr, "parse %s: %s\n", name, err);
        manifest_objs_free(&o);
        return NULL;
    }
    struct svcd_service *s = o.services[0];
    o.services[0] = NULL;
    manifest_objs_free(&o);
    return s;
}

#define P80 "ports: [{port: 80}]"

enum op { APPLY, RELEASE };

struct step {
    enum op op;
    const char *name;
    const char *spec;
    const char *want;     /* "ip[,ip] np,np.. hc:N" as alloc_describe prints, or error
                             substring prefixed with "!" */
};

/* "10.96.0.1,fd00::1 np:30000,30001 hc:30002" */
static void describe(const struct svcd_service *s, char *buf, size_t len)
{
    size_t off = 0;
    char ip[64];
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_cluster_ips; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
                                svcd_ip_format(&s->cluster_ips[i], ip, sizeof(ip)));
    bool any = false;
    for (size_t i = 0; i < s->n_ports; i++) {
        if (!s->ports[i].node_port)
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%u", any ? "," : " np:",
                                s->ports[i].node_port);
        any = true;
    }
    if (s->health_check_node_port)
        snprintf(buf + off, len - off, " hc:%u", s->health_check_node_port);
}

static void run_steps(const char *title, struct alloc *a, const struct step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct step *st = &steps[i];
        if (st->op == RELEASE) {
            alloc_release(a, "default", st->name);
            continue;
        }
        struct svcd_service *s = svc_from(st->name, st->spec);
        CHECK(s != NULL, "%s step %zu: parse", title, i);
        if (!s)
            continue;
        char err[512], got[256];
        int rc = alloc_service(a, s, err, sizeof(err));
        if (st->want[0] == '!') {
            CHECK(rc < 0 && strstr(err, st->want + 1), "%s step %zu (%s): want error \"%s\", "
                  "got rc %d \"%s\"", title, i, st->name, st->want + 1, rc, err);
        } else {
            describe(s, got, sizeof(got));
            CHECK(rc == 0 && strcmp(got, st->want) == 0, "%s step %zu (%s): want \"%s\", got "
                  "rc %d \"%s\" err \"%s\"", title, i, st->name, st->want, rc, got,
                  rc ? err : "");
        }
        model_service_free(s);
    }
}

static unsigned alloc_ip_u_test(const struct svcd_ip *ip)
{
    return ((unsigned)ip->u.bytes[0] << 24) | ((unsigned)ip->u.bytes[1] << 16) |
           ((unsigned)ip->u.bytes[2] << 8) | ip->u.bytes[3];
}

static struct svcd_cidr cidr(const char *s)
{
    struct svcd_cidr c;
    if (svcd_cidr_parse(s, &c) != 0)
        abort();
    return c;
}

static void test_ipv4(void)
{
    struct svcd_cidr c[] = { cidr("10.96.0.0/29") };      /* .1 - .6 usable */
    struct alloc *a = alloc_new(c, 1, 30000, 30002);
    static const struct step steps[] = {
        { APPLY, "a", P80, "10.96.0.1" },
        { APPLY, "b", P80, "10.96.0.2" },
        { APPLY, "a", "ports: [{port: 81}], selector: {app: x}", "10.96.0.1" },  /* edit */
        { APPLY, "c", "clusterIP: 10.96.0.5, " P80, "10.96.0.5" },
        { APPLY, "d", P80, "10.96.0.3" },
        { APPLY, "e", P80, "10.96.0.4" },
        { APPLY, "f", P80, "10.96.0.6" },                        /* skips c's .5 */
        { APPLY, "g", P80, "!spec.clusterIPs: no free IPv4 address left in --service-cidr "
                           "10.96.0.0/29" },
        { APPLY, "h", "clusterIP: 10.96.0.3, " P80, "!spec.clusterIP: 10.96.0.3 is already "
                                                  "allocated to Service default/d" },
        { APPLY, "h", "clusterIP: 10.0.0.3, " P80, "!spec.clusterIP: 10.0.0.3 is not in "
                                                 "--service-cidr 10.96.0.0/29" },
        { APPLY, "h", "clusterIP: 10.96.0.0, " P80, "!is not in --service-cidr" },  /* network */
        { APPLY, "h", "clusterIP: 10.96.0.7, " P80, "!is not in --service-cidr" },  /* broadcast */
        { APPLY, "hl", "clusterIP: None, " P80, "" },            /* headless: nothing */
        { APPLY, "x", "type: ExternalName, externalName: a.example", "" },
        { RELEASE, "b", NULL, NULL },
        { RELEASE, "e", NULL, NULL },
        { APPLY, "g", P80, "10.96.0.2" },                        /* oldest released first */
        { APPLY, "i", P80, "10.96.0.4" },
        { APPLY, "j", P80, "!no free IPv4 address" },
        /* a Service that turns ExternalName gives its address back */
        { APPLY, "a", "type: ExternalName, externalName: a.example", "" },
        { APPLY, "j", P80, "10.96.0.1" },
        /* the holder of an explicit address keeps it when it is edited */
        { APPLY, "c", "clusterIP: 10.96.0.5, ports: [{port: 90}]", "10.96.0.5" },
    };
    run_steps("ipv4", a, steps, sizeof(steps) / sizeof(steps[0]));
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    CHECK(st.cluster_ips == 6 && st.released_ips == 0, "ipv4: 6 held, 0 released (got %zu, %zu)",
          st.cluster_ips, st.released_ips);
    alloc_free(a);
}

static void test_dual_stack(void)
{
    struct svcd_cidr c[] = { cidr("10.96.0.0/28"), cidr("fd00:96::/124") };  /* no split */
    struct alloc *a = alloc_new(c, 2, 30000, 32767);
    static const struct step steps[] = {
        { APPLY, "single", P80, "10.96.0.1" },
        { APPLY, "prefer", "ipFamilyPolicy: PreferDualStack, " P80, "10.96.0.2,fd00:96::1" },
        { APPLY, "require6", "ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv6, IPv4], " P80,
          "fd00:96::2,10.96.0.3" },
        { APPLY, "v6only", "ipFamilies: [IPv6], " P80, "fd00:96::3" },
        { APPLY, "two", "ipFamilies: [IPv4, IPv6], " P80, "10.96.0.4,fd00:96::4" },
        { APPLY, "half", "clusterIP: 10.96.0.10, ipFamilyPolicy: PreferDualStack, " P80,
          "10.96.0.10,fd00:96::5" },
        /* stable: the same Service applied again keeps both */
        { APPLY, "prefer", "ipFamilyPolicy: PreferDualStack, ports: [{port: 8080}]",
          "10.96.0.2,fd00:96::1" },
        /* going single-stack gives the second family back */
        { APPLY, "prefer", P80, "10.96.0.2" },
        { APPLY, "v6bad", "clusterIPs: [\"fd00:97::1\"], " P80, "!spec.clusterIP" },
    };
    run_steps("dual", a, steps, sizeof(steps) / sizeof(steps[0]));
    alloc_free(a);

    struct svcd_cidr c4[] = { cidr("10.96.0.0/28") };
    a = alloc_new(c4, 1, 30000, 32767);
    static const struct step steps4[] = {
        { APPLY, "prefer", "ipFamilyPolicy: PreferDualStack, " P80, "10.96.0.1" },
        { APPLY, "require", "ipFamilyPolicy: RequireDualStack, " P80,
          "!spec.ipFamilyPolicy: RequireDualStack, but this node has no IPv6 --service-cidr" },
        { APPLY, "v6", "ipFamilies: [IPv6], " P80, "!spec.ipFamilies[0]: IPv6 is not configured" },
    };
    run_steps("v4only", a, steps4, sizeof(steps4) / sizeof(steps4[0]));
    alloc_free(a);

    /* No range at all: nothing allocated, explicit addresses still unique. */
    a = alloc_new(NULL, 0, 30000, 32767);
    static const struct step steps0[] = {
        { APPLY, "none", P80, "" },
        { APPLY, "own", "clusterIP: 10.1.2.3, " P80, "10.1.2.3" },
        { APPLY, "dup", "clusterIP: 10.1.2.3, " P80, "!already allocated to Service default/own" },
    };
    run_steps("norange", a, steps0, sizeof(steps0) / sizeof(steps0[0]));
    alloc_free(a);
}

#define NP2 "type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 81}]"

static void test_node_ports(void)
{
    struct svcd_cidr c[] = { cidr("10.96.0.0/28") };
    struct alloc *a = alloc_new(c, 1, 30000, 30005);
    static const struct step steps[] = {
        { APPLY, "np", NP2, "10.96.0.1 np:30000,30001" },
        { APPLY, "np", "type: NodePort, ports: [{name: a, port: 80}, {name: b, port: 81}, "
                       "{name: c, port: 82}]", "10.96.0.1 np:30000,30001,30002" },
        { APPLY, "own", "type: NodePort, ports: [{port: 80, nodePort: 30004}]",
          "10.96.0.2 np:30004" },
        { APPLY, "dup", "type: NodePort, ports: [{port: 80, nodePort: 30004}]",
          "!spec.ports[0].nodePort: 30004/TCP is already allocated to Service default/own" },
        /* the same number for another protocol is free */
        { APPLY, "udp", "type: NodePort, ports: [{port: 80, protocol: UDP, nodePort: 30004}]",
          "10.96.0.3 np:30004" },
        { APPLY, "low", "type: NodePort, ports: [{port: 80, nodePort: 29999}]",
          "!spec.ports[0].nodePort: 29999 is outside --node-port-range 30000-30005" },
        /* 53/TCP and 53/UDP share one node port */
        { APPLY, "dns", "type: NodePort, ports: [{name: t, port: 53}, {name: u, port: 53, "
                        "protocol: UDP}]", "10.96.0.4 np:30003,30003" },
        { APPLY, "lb", "type: LoadBalancer, externalTrafficPolicy: Local, " P80,
          "!spec.healthCheckNodePort: no free port left in --node-port-range 30000-30005" },
        { RELEASE, "dup", NULL, NULL },          /* held nothing: no-op */
        /* back to ClusterIP: its node ports are released */
        { APPLY, "np", P80, "10.96.0.1" },
        { APPLY, "lb", "type: LoadBalancer, externalTrafficPolicy: Local, " P80,
          "10.96.0.5 np:30005 hc:30000" },
        { APPLY, "lb2", "type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: "
                        "30002, " P80, "10.96.0.6 np:30001 hc:30002" },
        { APPLY, "lb3", "type: LoadBalancer, externalTrafficPolicy: Local, healthCheckNodePort: "
                        "30000, " P80, "!spec.healthCheckNodePort: 30000/TCP is already "
                        "allocated to Service default/lb" },
    };
    run_steps("nodeport", a, steps, sizeof(steps) / sizeof(steps[0]));
    alloc_free(a);
}

/* A /24 is split: dynamic addresses come from .16-.254 first, the lower
 * band .1-.15 (kept for addresses written in manifests) only after. */
static void test_split(void)
{
    struct svcd_cidr c[] = { cidr("10.96.0.0/24") };
    struct alloc *a = alloc_new(c, 1, 30000, 32767);
    static const struct step steps[] = {
        { APPLY, "first", P80, "10.96.0.16" },
        { APPLY, "static", "clusterIP: 10.96.0.5, " P80, "10.96.0.5" },
    };
    run_steps("split", a, steps, 2);
    char name[32], err[256], ip[64];
    int bad = 0;
    for (int i = 17; i <= 254; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        struct svcd_service *s = svc_from(name, P80);
        if (!s || alloc_service(a, s, err, sizeof(err)) < 0 || s->n_cluster_ips != 1 ||
            (alloc_ip_u_test(&s->cluster_ips[0]) & 0xff) != (unsigned)i)
            bad++;
        model_service_free(s);
    }
    CHECK(bad == 0, "split: the upper band in order (%d wrong)", bad);
    static const struct step lower[] = {
        { APPLY, "l1", P80, "10.96.0.1" },
        { APPLY, "l2", P80, "10.96.0.2" },
        { APPLY, "l3", P80, "10.96.0.3" },
        { APPLY, "l4", P80, "10.96.0.4" },
        { APPLY, "l6", P80, "10.96.0.6" },
    };
    run_steps("split-lower", a, lower, 5);
    (void)ip;
    alloc_free(a);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_persist(void)
{
    char dir[] = "/tmp/svcd-test-alloc-XXXXXX", path[256], err[512];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof(path), "%s/%s", dir, ALLOC_STATE_FILE);
    struct svcd_cidr c[] = { cidr("10.96.0.0/29"), cidr("fd00::/124") };

    struct alloc *a = alloc_new(c, 2, 30000, 30010);
    CHECK(alloc_load(a, dir, err, sizeof(err)) == 0, "load of a missing file: %s", err);
    static const struct step first[] = {
        { APPLY, "a", P80, "10.96.0.1" },
        { APPLY, "b", "type: NodePort, ipFamilyPolicy: PreferDualStack, " P80,
          "10.96.0.2,fd00::1 np:30000" },
        { APPLY, "c", P80, "10.96.0.3" },
        { RELEASE, "c", NULL, NULL },
    };
    run_steps("persist-1", a, first, sizeof(first) / sizeof(first[0]));
    CHECK(alloc_dirty(a), "dirty after allocations");
    CHECK(alloc_save(a, dir, err, sizeof(err)) == 0, "save: %s", err);
    CHECK(!alloc_dirty(a), "clean after save");
    struct stat sb;
    CHECK(stat(path, &sb) == 0, "state file written");
    snprintf(path + strlen(path), sizeof(path) - strlen(path), ".tmp");
    CHECK(stat(path, &sb) < 0, "no temporary file left");
    snprintf(path, sizeof(path), "%s/%s", dir, ALLOC_STATE_FILE);

    /* rollback: an unsaved allocation disappears */
    static const struct step extra[] = { { APPLY, "d", P80, "10.96.0.4" } };
    run_steps("persist-rb", a, extra, 1);
    alloc_rollback(a);
    CHECK(!alloc_dirty(a), "clean after rollback");
    alloc_free(a);

    /* restart: same addresses; the cursor and the released queue survive */
    a = alloc_new(c, 2, 30000, 30010);
    CHECK(alloc_load(a, dir, err, sizeof(err)) == 0, "reload: %s", err);
    static const struct step second[] = {
        { APPLY, "b", "type: NodePort, ipFamilyPolicy: PreferDualStack, " P80,
          "10.96.0.2,fd00::1 np:30000" },
        { APPLY, "a", P80, "10.96.0.1" },
        { APPLY, "d", P80, "10.96.0.4" },        /* after c's .3, which is released */
        { APPLY, "e", P80, "10.96.0.5" },
        { APPLY, "f", P80, "10.96.0.6" },
        { APPLY, "g", P80, "10.96.0.3" },        /* only now c's old address */
    };
    run_steps("persist-2", a, second, sizeof(second) / sizeof(second[0]));
    CHECK(alloc_save(a, dir, err, sizeof(err)) == 0, "save 2: %s", err);
    alloc_free(a);

    /* Services gone while down are released once unseen */
    a = alloc_new(c, 2, 30000, 30010);
    CHECK(alloc_load(a, dir, err, sizeof(err)) == 0, "reload 2: %s", err);
    static const struct step third[] = { { APPLY, "a", P80, "10.96.0.1" } };
    run_steps("persist-3", a, third, 1);
    alloc_keep(a, "default", "b");           /* defined but rejected: kept */
    CHECK(alloc_release_unseen(a) == 4, "4 unseen released");
    struct alloc_stats st;
    alloc_get_stats(a, &st);
    CHECK(st.services == 2 && st.cluster_ips == 3, "a and b left (got %zu, %zu)", st.services,
          st.cluster_ips);
    alloc_free(a);

    /* a corrupt file is moved aside; the state starts empty */
    CHECK(write_file(path, "{\"version\": 1, \"services\": {\"default/a\": {\"clusterIPs\": "
                           "[\"nope\"]}}}") == 0, "write corrupt");
    a = alloc_new(c, 2, 30000, 30010);
    err[0] = '\0';
    CHECK(alloc_load(a, dir, err, sizeof(err)) == 1 && strstr(err, "not an address") &&
          strstr(err, ".corrupt"), "corrupt: got \"%s\"", err);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), ".corrupt");
    CHECK(stat(path, &sb) == 0, "moved aside");
    unlink(path);
    alloc_get_stats(a, &st);
    CHECK(st.services == 0, "empty after corrupt");
    alloc_free(a);

    /* bad shapes and duplicates are refused by alloc_load_json */
    static const char *const bad[] = {
        "", "[]", "{\"version\": 2}", "{\"version\": 1, \"services\": []}",
        "{\"version\": 1, \"services\": {\"a/b\": {\"clusterIPs\": [\"10.96.0.1\"]}, "
        "\"a/c\": {\"clusterIPs\": [\"10.96.0.1\"]}}}",
        "{\"version\": 1, \"services\": {\"a/b\": {\"nodePorts\": [{\"protocol\": \"TCP\", "
        "\"port\": 80, \"nodePort\": 70000}]}}}",
        "{\"version\": 1, \"services\": {\"nons\": {}}}",
    };
    a = alloc_new(c, 2, 30000, 30010);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(alloc_load_json(a, bad[i], strlen(bad[i]), err, sizeof(err)) < 0,
              "bad state %zu refused", i);
    alloc_free(a);

    snprintf(path, sizeof(path), "%s/%s", dir, ALLOC_STATE_FILE);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_ipv4();
    test_dual_stack();
    test_node_ports();
    test_split();
    test_persist();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
