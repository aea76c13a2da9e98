/*
 * test_admin: the admin HTTP API in-process.
 *
 * A store is loaded with a few Services and Pods through the manifest
 * parser, admin_new() listens on 127.0.0.1:0, and an evhttp client on the
 * same event loop sends each request of a table; each case checks status,
 * Content-Type and body substrings. Then the JSON documents are parsed with
 * jansson and checked field by field, the metrics text is checked, and the
 * readiness callback is flipped.
 *
 * Probe status: a second store holds pods with exec probes (sh -c, run
 * locally as nobody; no network), a real probe manager runs them on the
 * loop, and /api/probes and the "probes" member of /api/pods items are
 * checked against what the probes did (ready / failing with its output as
 * the reason / liveness restart needed), with and without a manager.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "svcd/admin.h"
#include "svcd/config.h"
#include "svcd/manifest.h"
#include "svcd/metrics.h"
#include "svcd/probe.h"
#include "svcd/store.h"

static int test_passed, test_failed;

#define CHECK(cond, ...) do { \
    if (cond) { test_passed++; } \
    else { test_failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

static const char *const test_yaml =
    "---\napiVersion: v1\nkind: Service\n"
    "metadata: {name: web, namespace: default}\n"
    "spec:\n  type: NodePort\n  clusterIP: 10.96.0.10\n  selector: {app: web}\n"
    "  ports:\n  - {name: http, port: 80, targetPort: http, nodePort: 30080}\n"
    "  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}\n"
    "---\napiVersion: v1\nkind: Service\n"
    "metadata: {name: db, namespace: prod}\n"
    "spec:\n  clusterIP: None\n  selector: {app: db}\n  ports: [{port: 5432}]\n"
    "---\napiVersion: v1\nkind: Service\n"
    "metadata: {name: ext, namespace: default}\n"
    "spec: {type: ExternalName, externalName: example.org}\n"
    "---\napiVersion: v1\nkind: Pod\n"
    "metadata: {name: web-1, namespace: default, labels: {app: web}}\n"
    "spec:\n  nodeName: node-a\n  containers:\n  - name: c\n"
    "    ports: [{name: http, containerPort: 8080}]\n"
    "    readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}\n"
    "status:\n  phase: Running\n  podIP: 10.244.0.11\n"
    "  conditions: [{type: Ready, status: \"True\"}]\n"
    "---\napiVersion: v1\nkind: Pod\n"
    "metadata: {name: web-2, namespace: default, labels: {app: web}}\n"
    "spec:\n  containers:\n  - name: c\n    ports: [{name: http, containerPort: 8081}]\n"
    "status:\n  phase: Running\n  podIP: 10.244.0.12\n"
    "  conditions: [{type: Ready, status: \"False\"}]\n"
    "---\napiVersion: v1\nkind: Pod\n"
    "metadata: {name: db-0, namespace: prod, labels: {app: db}}\n"
    "spec: {hostname: db-0, subdomain: db, containers: [{name: pg}]}\n"
    "status: {phase: Running, podIP: 10.244.1.5}\n";

/* Pods whose probes run locally (exec); the IPs are never contacted. */
#define TEST_EXEC(type, script) \
    "    " type ": {exec: {command: [/bin/sh, -c, '" script "']}, periodSeconds: 1, " \
    "failureThreshold: 1}\n"
#define TEST_POD(ns, name, probes) \
    "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns "}\n" \
    "spec:\n  containers:\n  - name: c\n" probes \
    "status: {phase: Running, podIP: 10.244.9.1}\n"
static const char *const test_probe_yaml =
    TEST_POD("default", "p-ok", TEST_EXEC("readinessProbe", "exit 0"))
    TEST_POD("default", "p-bad", TEST_EXEC("readinessProbe", "echo not healthy; exit 1"))
    TEST_POD("prod", "p-live", TEST_EXEC("livenessProbe", "echo dead; exit 1"))
    TEST_POD("default", "p-none", "");

/* ---- a tiny synchronous HTTP client on the shared loop ------------------- */

static struct event_base *test_base;
static uint16_t test_port;

struct test_resp {
    int done;
    int code;
    char ctype[128];
    char allow[64];
    char *body;
};

static void test_resp_cb(struct evhttp_request *req, void *arg)
{
    struct test_resp *r = arg;
    r->done = 1;
    if (!req) {
        r->code = -1;
        goto out;
    }
    r->code = evhttp_request_get_response_code(req);
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    const char *al = evhttp_find_header(evhttp_request_get_input_headers(req), "Allow");
    snprintf(r->allow, sizeof(r->allow), "%s", al ? al : "");
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(b);
    r->body = malloc(n + 1);
    evbuffer_remove(b, r->body, n);
    r->body[n] = '\0';
out:
    event_base_loopbreak(test_base);
}

/* Sends one request; fills r (body malloc'd or NULL). Bounded at 5 s. */
static void test_request(enum evhttp_cmd_type cmd, const char *path, struct test_resp *r)
{
    memset(r, 0, sizeof(*r));
    struct evhttp_connection *conn = evhttp_connection_base_new(test_base, NULL, "127.0.0.1",
                                                                test_port);
    evhttp_connection_set_timeout(conn, 5);
    struct evhttp_request *req = evhttp_request_new(test_resp_cb, r);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "localhost");
    evhttp_make_request(conn, req, cmd, path);
    struct timeval tv = { 5, 0 };
    for (int i = 0; i < 10 && !r->done; i++) {
        event_base_loopexit(test_base, &tv);
        event_base_dispatch(test_base);
    }
    evhttp_connection_free(conn);
}

/* ---- table of requests --------------------------------------------------- */

struct test_case {
    enum evhttp_cmd_type cmd;
    const char *path;
    int code;
    const char *ctype;      /* prefix */
    const char *body[4];    /* substrings that must be present */
    const char *absent;     /* substring that must not be present */
};

static const struct test_case test_cases[] = {
    { EVHTTP_REQ_GET, "/healthz", 200, "text/plain", { "ok" }, NULL },
    { EVHTTP_REQ_HEAD, "/api/pods", 200, "application/json", { NULL }, "web-1" },
    { EVHTTP_REQ_GET, "/livez", 200, "text/plain", { "ok" }, NULL },
    { EVHTTP_REQ_GET, "/readyz", 503, "text/plain", { "initial manifest load pending" }, NULL },
    { EVHTTP_REQ_GET, "/nope", 404, "application/json", { "\"error\"", "\"code\":404" }, NULL },
    { EVHTTP_REQ_GET, "/api/nope", 404, "application/json", { "\"code\":404" }, NULL },
    { EVHTTP_REQ_POST, "/api/services", 405, "application/json", { "\"code\":405" }, NULL },
    { EVHTTP_REQ_DELETE, "/healthz", 405, "application/json", { "\"code\":405" }, NULL },
    { EVHTTP_REQ_GET, "/api/services", 200, "application/json",
      { "\"generation\":1", "\"name\":\"web\"", "\"name\":\"db\"", "\"name\":\"ext\"" }, NULL },
    { EVHTTP_REQ_GET, "/api/services/", 200, "application/json", { "\"name\":\"web\"" }, NULL },
    { EVHTTP_REQ_GET, "/api/services?namespace=prod", 200, "application/json",
      { "\"name\":\"db\"" }, "\"name\":\"web\"" },
    { EVHTTP_REQ_GET, "/api/services?namespace=none", 200, "application/json",
      { "\"items\":[]" }, NULL },
    { EVHTTP_REQ_GET, "/api/services?name=ext", 200, "application/json",
      { "\"externalName\":\"example.org\"" }, "\"name\":\"web\"" },
    { EVHTTP_REQ_GET, "/api/pods?namespace=default", 200, "application/json",
      { "\"name\":\"web-1\"", "\"name\":\"web-2\"" }, "db-0" },
    { EVHTTP_REQ_GET, "/api/endpoints", 200, "application/json",
      { "\"name\":\"web\"", "\"podName\":\"web-1\"", "\"podName\":\"db-0\"" },
      "\"name\":\"ext\"" },
    { EVHTTP_REQ_GET, "/metrics", 200, "text/plain; version=0.0.4",
      { "# TYPE svcd_services gauge\nsvcd_services 3\n", "svcd_pods 3\n",
        "svcd_store_generation 1\n", "# TYPE svcd_store_commits_total counter\n" }, NULL },
    { EVHTTP_REQ_GET, "/metrics", 200, "text/plain",
      { "svcd_endpoints{condition=\"ready\"} 2\n", "svcd_endpoints{condition=\"serving\"} 2\n",
        "svcd_endpoints{condition=\"terminating\"} 0\n", "svcd_store_commits_total 1\n" }, NULL },
    { EVHTTP_REQ_GET, "/", 200, "application/json", { "/api/services" }, NULL },
};

static const char *test_ready_reason = "initial manifest load pending";
static const char *test_ready(void *ctx)
{
    (void)ctx;
    return test_ready_reason;
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(test_cases) / sizeof(test_cases[0]); i++) {
        const struct test_case *tc = &test_cases[i];
        struct test_resp r;
        test_request(tc->cmd, tc->path, &r);
        CHECK(r.code == tc->code, "%s: status %d, want %d", tc->path, r.code, tc->code);
        CHECK(strncmp(r.ctype, tc->ctype, strlen(tc->ctype)) == 0, "%s: Content-Type '%s'",
              tc->path, r.ctype);
        for (size_t j = 0; j < 4 && tc->body[j]; j++)
            CHECK(r.body && strstr(r.body, tc->body[j]), "%s: body lacks %s:\n%s", tc->path,
                  tc->body[j], r.body ? r.body : "(null)");
        if (tc->absent)
            CHECK(r.body && !strstr(r.body, tc->absent), "%s: body has %s", tc->path,
                  tc->absent);
        if (tc->code == 405)
            CHECK(strcmp(r.allow, "GET, HEAD") == 0, "%s: Allow '%s'", tc->path, r.allow);
        free(r.body);
    }
}

/* GET path, parse JSON; returns the document (caller decrefs) or NULL. */
static json_t *test_get_json(const char *path)
{
    struct test_resp r;
    test_request(EVHTTP_REQ_GET, path, &r);
    json_error_t err;
    json_t *doc = r.body ? json_loads(r.body, 0, &err) : NULL;
    CHECK(r.code == 200 && doc, "%s: status %d, parse %s", path, r.code,
          doc ? "ok" : (r.body ? err.text : "no body"));
    free(r.body);
    return doc;
}

static json_t *test_find(json_t *items, const char *ns, const char *name)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "namespace")), ns) == 0 &&
            strcmp(json_string_value(json_object_get(it, "name")), name) == 0)
            return it;
    }
    return NULL;
}

static const char *test_jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(null)";
}

static void test_services_json(void)
{
    json_t *doc = test_get_json("/api/services");
    if (!doc)
        return;
    json_t *items = json_object_get(doc, "items");
    CHECK(json_integer_value(json_object_get(doc, "generation")) == 1, "generation");
    CHECK(json_array_size(items) == 3, "3 services, got %zu", json_array_size(items));
    /* sorted by namespace then name: default/ext, default/web, prod/db */
    CHECK(strcmp(test_jstr(json_array_get(items, 0), "name"), "ext") == 0 &&
          strcmp(test_jstr(json_array_get(items, 1), "name"), "web") == 0 &&
          strcmp(test_jstr(json_array_get(items, 2), "name"), "db") == 0, "sort order");

    json_t *web = test_find(items, "default", "web");
    CHECK(web != NULL, "web present");
    if (web) {
        CHECK(strcmp(test_jstr(web, "type"), "NodePort") == 0, "type %s", test_jstr(web, "type"));
        CHECK(strcmp(json_string_value(json_array_get(json_object_get(web, "clusterIPs"), 0)),
                     "10.96.0.10") == 0, "clusterIPs");
        CHECK(json_is_false(json_object_get(web, "headless")), "web not headless");
        json_t *p0 = json_array_get(json_object_get(web, "ports"), 0);
        CHECK(strcmp(test_jstr(p0, "name"), "http") == 0 &&
              strcmp(test_jstr(p0, "protocol"), "TCP") == 0 &&
              json_integer_value(json_object_get(p0, "port")) == 80 &&
              strcmp(test_jstr(p0, "targetPort"), "http") == 0 &&
              json_integer_value(json_object_get(p0, "nodePort")) == 30080, "port 0 fields");
        json_t *p1 = json_array_get(json_object_get(web, "ports"), 1);
        CHECK(json_integer_value(json_object_get(p1, "targetPort")) == 5353 &&
              strcmp(test_jstr(p1, "protocol"), "UDP") == 0, "port 1 numeric targetPort");
        CHECK(strcmp(test_jstr(json_object_get(web, "selector"), "app"), "web") == 0,
              "selector");
        CHECK(strcmp(test_jstr(web, "sessionAffinity"), "None") == 0, "sessionAffinity");
        CHECK(json_is_array(json_object_get(web, "externalIPs")), "externalIPs array");
        CHECK(strcmp(test_jstr(web, "creationTimestamp"), "2023-11-14T22:13:20Z") == 0,
              "creationTimestamp %s", test_jstr(web, "creationTimestamp"));
    }
    json_t *db = test_find(items, "prod", "db");
    CHECK(db && json_is_true(json_object_get(db, "headless")) &&
          json_array_size(json_object_get(db, "clusterIPs")) == 0, "db headless");
    json_t *ext = test_find(items, "default", "ext");
    CHECK(ext && strcmp(test_jstr(ext, "type"), "ExternalName") == 0 &&
          json_is_null(json_object_get(ext, "selector")), "ext");
    json_decref(doc);
}

static void test_pods_json(void)
{
    json_t *doc = test_get_json("/api/pods");
    if (!doc)
        return;
    json_t *items = json_object_get(doc, "items");
    CHECK(json_array_size(items) == 3, "3 pods");
    json_t *w1 = test_find(items, "default", "web-1");
    json_t *w2 = test_find(items, "default", "web-2");
    json_t *db = test_find(items, "prod", "db-0");
    CHECK(w1 && w2 && db, "pods present");
    if (!w1 || !w2 || !db)
        goto out;
    CHECK(json_is_true(json_object_get(w1, "ready")), "web-1 ready");
    CHECK(json_is_false(json_object_get(w2, "ready")), "web-2 not ready");
    CHECK(strcmp(test_jstr(w2, "readyCondition"), "False") == 0, "web-2 condition");
    CHECK(strcmp(test_jstr(w1, "phase"), "Running") == 0, "phase");
    CHECK(strcmp(test_jstr(w1, "nodeName"), "node-a") == 0, "nodeName");
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(w1, "podIPs"), 0)),
                 "10.244.0.11") == 0, "podIPs");
    CHECK(strcmp(test_jstr(json_object_get(w1, "labels"), "app"), "web") == 0, "labels");
    json_t *c = json_array_get(json_object_get(w1, "containers"), 0);
    json_t *cp = json_array_get(json_object_get(c, "ports"), 0);
    CHECK(json_integer_value(json_object_get(cp, "containerPort")) == 8080 &&
          strcmp(test_jstr(cp, "name"), "http") == 0, "container port");
    json_t *rp = json_object_get(json_object_get(c, "probes"), "readiness");
    CHECK(strcmp(test_jstr(rp, "kind"), "httpGet") == 0 &&
          strcmp(test_jstr(rp, "path"), "/healthz") == 0 &&
          strcmp(test_jstr(rp, "port"), "http") == 0 &&
          json_integer_value(json_object_get(rp, "periodSeconds")) == 5, "readiness probe");
    CHECK(json_is_null(json_object_get(json_object_get(c, "probes"), "liveness")),
          "no liveness probe");
    CHECK(strcmp(test_jstr(db, "hostname"), "db-0") == 0 &&
          strcmp(test_jstr(db, "subdomain"), "db") == 0, "hostname/subdomain");
out:
    json_decref(doc);
}

static void test_endpoints_json(void)
{
    json_t *doc = test_get_json("/api/endpoints?namespace=default");
    if (!doc)
        return;
    json_t *items = json_object_get(doc, "items");
    CHECK(json_array_size(items) == 1, "1 endpoints object in default (ext has none)");
    json_t *web = test_find(items, "default", "web");
    json_t *eps = json_object_get(web, "endpoints");
    CHECK(json_array_size(eps) == 2, "web has 2 endpoints");
    json_t *e0 = json_array_get(eps, 0), *e1 = json_array_get(eps, 1);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(e0, "addresses"), 0)),
                 "10.244.0.11") == 0, "e0 address");
    CHECK(json_is_true(json_object_get(e0, "ready")) &&
          json_is_true(json_object_get(e0, "serving")) &&
          json_is_false(json_object_get(e0, "terminating")), "e0 conditions");
    CHECK(json_is_false(json_object_get(e1, "ready")), "e1 not ready");
    CHECK(strcmp(test_jstr(e0, "podName"), "web-1") == 0 &&
          strcmp(test_jstr(e0, "nodeName"), "node-a") == 0, "e0 pod/node");
    json_t *ports = json_object_get(e0, "ports");
    CHECK(json_array_size(ports) == 2, "e0 has 2 ports");
    json_t *p0 = json_array_get(ports, 0);
    CHECK(strcmp(test_jstr(p0, "name"), "http") == 0 &&
          json_integer_value(json_object_get(p0, "port")) == 8080 &&
          strcmp(test_jstr(p0, "protocol"), "TCP") == 0, "e0 http resolved to 8080");
    json_t *p1e1 = json_array_get(json_object_get(e1, "ports"), 0);
    CHECK(json_integer_value(json_object_get(p1e1, "port")) == 8081, "e1 http resolved to 8081");
    json_decref(doc);

    doc = test_get_json("/api/endpoints?namespace=prod");
    if (!doc)
        return;
    json_t *db = json_array_get(json_object_get(doc, "items"), 0);
    json_t *d0 = json_array_get(json_object_get(db, "endpoints"), 0);
    CHECK(strcmp(test_jstr(d0, "hostname"), "db-0") == 0, "headless endpoint hostname");
    json_decref(doc);
}

/* After a change the API and metrics show the new generation. */
static void test_change(struct store *st)
{
    store_begin(st);
    CHECK(store_pod_delete(st, "default", "web-1") == 0, "delete web-1");
    store_commit(st);
    test_ready_reason = NULL;

    struct test_resp r;
    test_request(EVHTTP_REQ_GET, "/readyz", &r);
    CHECK(r.code == 200 && r.body && strcmp(r.body, "ok") == 0, "readyz now ok: %d", r.code);
    free(r.body);
    test_request(EVHTTP_REQ_GET, "/metrics", &r);
    CHECK(r.body && strstr(r.body, "svcd_pods 2\n") && strstr(r.body, "svcd_store_generation 2\n")
          && strstr(r.body, "svcd_endpoints{condition=\"ready\"} 1\n")
          && strstr(r.body, "svcd_store_commits_total 2\n")
          && strstr(r.body, "svcd_admin_requests_total{code=\"2xx\"}"),
          "metrics after change:\n%s", r.body ? r.body : "");
    free(r.body);
    json_t *doc = test_get_json("/api/pods");
    CHECK(doc && json_integer_value(json_object_get(doc, "generation")) == 2 &&
          json_array_size(json_object_get(doc, "items")) == 2, "pods after delete");
    json_decref(doc);
}

static int test_load_yaml(struct store *st, const char *yaml)
{
    struct manifest_objs o;
    memset(&o, 0, sizeof(o));
    char err[512];
    if (manifest_parse(yaml, strlen(yaml), 1700000000, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "manifest: %s\n", err);
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
    /* web-1 has a readinessProbe: without a probe verdict it is not ready */
    if (yaml == test_yaml)
        store_pod_set_probe_ready(st, "default", "web-1", SVCD_TRUE);
    store_commit(st);
    manifest_objs_free(&o);
    return 0;
}

static int test_load(struct store *st)
{
    return test_load_yaml(st, test_yaml);
}

/* ---- probe status --------------------------------------------------------- */

/* True once the manager has seen what the checks below rely on. */
static int test_probes_settled(struct probe_mgr *mgr)
{
    const struct probe_pod_status *ok = probe_status_get(mgr, "default", "p-ok");
    if (!ok || ok->ready != SVCD_TRUE)
        return 0;
    const struct probe_pod_status *bad = probe_status_get(mgr, "default", "p-bad");
    if (!bad || bad->last_result != PROBE_RESULT_FAILURE || bad->ready != SVCD_FALSE)
        return 0;
    const struct probe_pod_status *live = probe_status_get(mgr, "prod", "p-live");
    return live && live->restarts_needed >= 1;
}

static json_t *test_item_get(json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "items"), i);
}

static void test_probes(void)
{
    struct store *st = store_new();
    struct probe_mgr *mgr = NULL;
    struct svcd_hostport hp;
    json_t *doc = NULL;
    CHECK(config_parse_hostport("127.0.0.1:0", 0, &hp) == 0, "hostport");
    CHECK(st && test_load_yaml(st, test_probe_yaml) == 0, "load probe manifests");
    struct admin *a = admin_new(test_base, st, &hp, NULL, NULL);
    CHECK(a != NULL, "admin_new (probes)");
    if (!a)
        goto out;
    test_port = admin_port(a);

    /* without a manager: no probe status anywhere, /api/probes empty */
    admin_set_probes(a, NULL);
    doc = test_get_json("/api/probes");
    CHECK(doc && json_is_array(json_object_get(doc, "items")) &&
          json_array_size(json_object_get(doc, "items")) == 0 &&
          json_integer_value(json_object_get(doc, "generation")) == 1,
          "/api/probes without a manager is an empty list");
    json_decref(doc);
    doc = test_get_json("/api/pods?name=p-ok");
    CHECK(doc && test_item_get(doc, 0) && !json_object_get(test_item_get(doc, 0), "probes"),
          "no \"probes\" member without a manager");
    json_decref(doc);
    doc = NULL;

    struct probe_options opts = { .no_jitter = true };
    mgr = probe_mgr_new_opts(test_base, st, &opts);
    CHECK(mgr != NULL, "probe_mgr_new");
    if (!mgr)
        goto out;
    admin_set_probes(a, mgr);
    /* bounded: 40 x 100 ms */
    for (int i = 0; i < 40 && !test_probes_settled(mgr); i++) {
        struct timeval tv = { 0, 100000 };
        event_base_loopexit(test_base, &tv);
        event_base_dispatch(test_base);
    }
    CHECK(test_probes_settled(mgr), "probes ran (ok ready, bad failing, live restarted)");

    doc = test_get_json("/api/probes");
    if (!doc)
        goto out;
    json_t *items = json_object_get(doc, "items");
    CHECK(json_array_size(items) == 3, "3 probed pods (p-none has no probes), got %zu",
          json_array_size(items));
    /* sorted by namespace, then name */
    CHECK(strcmp(test_jstr(test_item_get(doc, 0), "name"), "p-bad") == 0 &&
          strcmp(test_jstr(test_item_get(doc, 1), "name"), "p-ok") == 0 &&
          strcmp(test_jstr(test_item_get(doc, 2), "name"), "p-live") == 0, "probes sort order");
    json_t *bad = test_find(items, "default", "p-bad");
    json_t *ok = test_find(items, "default", "p-ok");
    json_t *live = test_find(items, "prod", "p-live");
    CHECK(bad && ok && live, "probed pods present");
    if (!bad || !ok || !live)
        goto out;
    CHECK(strcmp(test_jstr(bad, "phase"), "Running") == 0, "phase in probe status");
    CHECK(json_is_false(json_object_get(bad, "ready")), "p-bad not ready");
    json_t *cond = json_array_get(json_object_get(bad, "conditions"), 0);
    CHECK(strcmp(test_jstr(cond, "type"), "Ready") == 0 &&
          strcmp(test_jstr(cond, "status"), "False") == 0 &&
          strcmp(test_jstr(cond, "reason"), "ContainersNotReady") == 0 &&
          strstr(test_jstr(cond, "message"), "not healthy") != NULL,
          "p-bad Ready condition: %s / %s", test_jstr(cond, "reason"),
          test_jstr(cond, "message"));
    json_t *last = json_object_get(bad, "lastProbe");
    CHECK(strcmp(test_jstr(last, "type"), "readiness") == 0 &&
          strcmp(test_jstr(last, "kind"), "exec") == 0 &&
          strcmp(test_jstr(last, "result"), "failure") == 0 &&
          strcmp(test_jstr(last, "reason"), "not healthy") == 0,
          "p-bad lastProbe %s %s %s '%s'", test_jstr(last, "type"), test_jstr(last, "kind"),
          test_jstr(last, "result"), test_jstr(last, "reason"));
    const char *t = test_jstr(last, "time");
    CHECK(strlen(t) == 24 && t[4] == '-' && t[10] == 'T' && t[23] == 'Z',
          "lastProbe.time RFC 3339 with ms: %s", t);
    CHECK(json_is_true(json_object_get(ok, "ready")) &&
          strcmp(test_jstr(json_object_get(ok, "lastProbe"), "result"), "success") == 0 &&
          json_integer_value(json_object_get(ok, "restartsNeeded")) == 0, "p-ok ready, success");
    CHECK(json_integer_value(json_object_get(live, "restartsNeeded")) >= 1 &&
          strcmp(test_jstr(json_object_get(live, "lastProbe"), "type"), "liveness") == 0,
          "p-live restartsNeeded %lld",
          json_integer_value(json_object_get(live, "restartsNeeded")));
    json_decref(doc);

    doc = test_get_json("/api/probes?namespace=prod");
    CHECK(doc && json_array_size(json_object_get(doc, "items")) == 1 &&
          strcmp(test_jstr(test_item_get(doc, 0), "name"), "p-live") == 0,
          "/api/probes?namespace=prod");
    json_decref(doc);
    doc = test_get_json("/api/probes?namespace=default&name=p-ok");
    CHECK(doc && json_array_size(json_object_get(doc, "items")) == 1, "/api/probes?name=p-ok");
    json_decref(doc);

    /* /api/pods: "probes" on probed pods, without namespace/name; none on p-none */
    doc = test_get_json("/api/pods?namespace=default");
    if (!doc)
        goto out;
    items = json_object_get(doc, "items");
    json_t *pbad = json_object_get(test_find(items, "default", "p-bad"), "probes");
    json_t *pnone = test_find(items, "default", "p-none");
    CHECK(json_is_object(pbad) && !json_object_get(pbad, "name") &&
          strcmp(test_jstr(json_object_get(pbad, "lastProbe"), "reason"), "not healthy") == 0 &&
          strcmp(test_jstr(json_array_get(json_object_get(pbad, "conditions"), 0), "reason"),
                 "ContainersNotReady") == 0, "pod item probes of p-bad");
    CHECK(pnone && !json_object_get(pnone, "probes"), "p-none has no probes member");
    CHECK(json_is_false(json_object_get(test_find(items, "default", "p-bad"), "ready")),
          "p-bad pod not ready in /api/pods");
    json_decref(doc);
    doc = NULL;

    struct test_resp r;
    test_request(EVHTTP_REQ_GET, "/", &r);
    CHECK(r.body && strstr(r.body, "\"/api/probes\""), "/ lists /api/probes");
    free(r.body);
    test_request(EVHTTP_REQ_POST, "/api/probes", &r);
    CHECK(r.code == 405, "POST /api/probes: %d", r.code);
    free(r.body);
out:
    json_decref(doc);
    admin_set_probes(a, NULL);
    admin_free(a);
    probe_mgr_free(mgr);
    metrics_reset();
    store_free(st);
}

int main(void)
{
    test_base = event_base_new();
    struct store *st = store_new();
    struct svcd_hostport hp;
    CHECK(config_parse_hostport("127.0.0.1:0", 0, &hp) == 0, "hostport");
    CHECK(test_load(st) == 0, "load manifests");
    struct admin *a = admin_new(test_base, st, &hp, test_ready, NULL);
    CHECK(a != NULL, "admin_new");
    if (a) {
        test_port = admin_port(a);
        CHECK(test_port != 0, "bound port");
        test_table();
        test_services_json();
        test_pods_json();
        test_endpoints_json();
        test_change(st);

        /* a second admin on the same port fails cleanly */
        struct svcd_hostport same = hp;
        same.port = test_port;
        struct admin *b = admin_new(test_base, st, &same, NULL, NULL);
        CHECK(b == NULL, "second bind on port %u must fail", test_port);
        admin_free(b);
    }
    admin_free(a);
    /* the store gauges read 0 once the admin is gone (no dangling ctx) */
    struct evbuffer *out = evbuffer_new();
    metrics_render(out);
    size_t n = evbuffer_get_length(out);
    char *text = malloc(n + 1);
    evbuffer_remove(out, text, n);
    text[n] = '\0';
    CHECK(strstr(text, "svcd_services 0\n") != NULL, "gauges after admin_free:\n%s", text);
    free(text);
    evbuffer_free(out);
    metrics_reset();
    store_free(st);
    test_probes();
    event_base_free(test_base);
    libevent_global_shutdown();
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
