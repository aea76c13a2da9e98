/*
 * test_podman: the podman source, without podman.
 *
 * Part 1 (pure, table-driven): event lines, the svcd.io/ports and
 * svcd.io/readiness-probe labels, healthcheck intervals, and the pod
 * mapping from libpod JSON shaped as podman 4.3 returns it (captured with
 * curl --unix-socket on this machine).
 *
 * Part 1 also covers the HTTP response reader (podman_resp): Content-Length,
 * chunked and read-to-EOF bodies, stream lines, malformed input and the
 * size caps, each fed whole, in two pieces at every offset and byte by byte.
 *
 * Part 2 (I/O): a fake libpod API (evhttp on a unix socket, same loop)
 * serves pods/json, containers/{id}/json, healthcheck and an events stream.
 * It answers the source's HTTP/1.1 requests as podman does: the events
 * stream and the full pod list chunked (events split across chunks), the
 * rest with Content-Length. The source must sync, follow an event, keep its
 * pods when the API goes away or ends the stream, reconnect and converge (a
 * pod removed meanwhile is deleted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/podman.h"
#include "svcd/probe.h"
#include "svcd/store.h"

static int test_passed, test_failed;

#define CHECK(cond, ...) do { \
    if (cond) { test_passed++; } \
    else { test_failed++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
           fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

/* ---- part 1: events ------------------------------------------------------ */

static void test_events(void)
{
    static const struct {
        const char *line;
        int rc;
        enum podman_event_type type;
        const char *action, *id, *pod_id, *health;
        bool relevant;
    } cases[] = {
        { "{\"status\":\"stop\",\"id\":\"1f1c\",\"Type\":\"pod\",\"Action\":\"stop\","
          "\"Actor\":{\"ID\":\"1f1c\",\"Attributes\":{\"name\":\"web1\",\"podId\":\"\"}}}",
          0, PODMAN_EV_POD, "stop", "1f1c", "1f1c", "", true },
        { "{\"status\":\"died\",\"id\":\"073f\",\"Type\":\"container\",\"Action\":\"died\","
          "\"Actor\":{\"ID\":\"073f\",\"Attributes\":{\"podId\":\"\"}}}",
          0, PODMAN_EV_CONTAINER, "died", "073f", "", "", true },
        { "{\"Type\":\"container\",\"Action\":\"health_status\",\"Actor\":{\"ID\":\"073f\","
          "\"Attributes\":{\"podId\":\"1f1c\"}},\"HealthStatus\":\"healthy\"}",
          0, PODMAN_EV_CONTAINER, "health_status", "073f", "1f1c", "healthy", true },
        { "{\"Type\":\"container\",\"Action\":\"exec_died\",\"Actor\":{\"ID\":\"073f\"}}",
          0, PODMAN_EV_CONTAINER, "exec_died", "073f", "", "", false },
        { "{\"Type\":\"image\",\"Action\":\"pull\",\"Actor\":{\"ID\":\"abc\"}}",
          0, PODMAN_EV_OTHER, "pull", "abc", "", "", false },
        { "{\"Type\":\"pod\"}", -1, PODMAN_EV_OTHER, "", "", "", "", false },
        { "not json", -1, PODMAN_EV_OTHER, "", "", "", "", false },
        { "[1,2]", -1, PODMAN_EV_OTHER, "", "", "", "", false },
        { "{\"Type\":7,\"Action\":\"start\"}", -1, PODMAN_EV_OTHER, "", "", "", "", false },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct podman_event ev;
        int rc = podman_event_parse(cases[i].line, strlen(cases[i].line), &ev);
        CHECK(rc == cases[i].rc, "event %zu: rc %d", i, rc);
        if (rc)
            continue;
        CHECK(ev.type == cases[i].type, "event %zu: type %d", i, ev.type);
        CHECK(!strcmp(ev.action, cases[i].action), "event %zu: action %s", i, ev.action);
        CHECK(!strcmp(ev.id, cases[i].id), "event %zu: id %s", i, ev.id);
        CHECK(!strcmp(ev.pod_id, cases[i].pod_id), "event %zu: pod_id %s", i, ev.pod_id);
        CHECK(!strcmp(ev.health, cases[i].health), "event %zu: health %s", i, ev.health);
        CHECK(podman_event_relevant(&ev) == cases[i].relevant, "event %zu: relevant", i);
    }
}

/* ---- part 1: labels ------------------------------------------------------- */

static void test_ports(void)
{
    static const struct {
        const char *text;
        int rc;
        size_t n;
        const char *name0;
        uint16_t port0;
        enum svcd_proto proto0;
    } cases[] = {
        { "http=8080", 0, 1, "http", 8080, SVCD_PROTO_TCP },
        { "http=8080/TCP,dns=53/UDP", 0, 2, "http", 8080, SVCD_PROTO_TCP },
        { "9090", 0, 1, NULL, 9090, SVCD_PROTO_TCP },
        { "53/udp, 53/tcp", 0, 2, NULL, 53, SVCD_PROTO_UDP },
        { "http=8080,http2=8080", 0, 1, "http", 8080, SVCD_PROTO_TCP },  /* dedup */
        { "", 0, 0, NULL, 0, 0 },
        { "http=0", -1, 0, NULL, 0, 0 },
        { "http=70000", -1, 0, NULL, 0, 0 },
        { "Bad_Name=80", -1, 0, NULL, 0, 0 },
        { "waytoolongportname=80", -1, 0, NULL, 0, 0 },
        { "80/icmp", -1, 0, NULL, 0, 0 },
        { "x=80x", -1, 0, NULL, 0, 0 },
    };
    size_t i, j;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct svcd_container_port *ports = NULL;
        size_t n = 0;
        char err[128] = "";
        int rc = podman_ports_parse(cases[i].text, &ports, &n, err, sizeof(err));

        CHECK(rc == cases[i].rc, "ports '%s': rc %d (%s)", cases[i].text, rc, err);
        if (rc == 0) {
            CHECK(n == cases[i].n, "ports '%s': n %zu", cases[i].text, n);
            if (n && n == cases[i].n) {
                CHECK(ports[0].container_port == cases[i].port0, "ports '%s': port", cases[i].text);
                CHECK(ports[0].protocol == cases[i].proto0, "ports '%s': proto", cases[i].text);
                CHECK((!cases[i].name0 && !ports[0].name) ||
                      (cases[i].name0 && ports[0].name && !strcmp(ports[0].name, cases[i].name0)),
                      "ports '%s': name", cases[i].text);
            }
        } else {
            CHECK(err[0] != '\0', "ports '%s': error message", cases[i].text);
        }
        for (j = 0; j < n; j++)
            free(ports[j].name);
        free(ports);
    }
}

static void test_probes(void)
{
    static const struct {
        const char *text;
        uint32_t period;
        int rc;
        enum svcd_probe_kind kind;
        uint16_t port;
        const char *path_or_cmd;
        uint32_t want_period;
    } cases[] = {
        { "tcp:8080", 0, 0, SVCD_PROBE_TCP, 8080, NULL, 10 },
        { "http:8080/healthz", 2, 0, SVCD_PROBE_HTTP, 8080, "/healthz", 2 },
        { "http:80", 0, 0, SVCD_PROBE_HTTP, 80, "/", 10 },
        { "exec:test -f /tmp/ready", 5, 0, SVCD_PROBE_EXEC, 0, "test -f /tmp/ready", 5 },
        { "exec:", 0, -1, SVCD_PROBE_NONE, 0, NULL, 0 },
        { "tcp:80/x", 0, -1, SVCD_PROBE_NONE, 0, NULL, 0 },
        { "tcp:0", 0, -1, SVCD_PROBE_NONE, 0, NULL, 0 },
        { "http:x", 0, -1, SVCD_PROBE_NONE, 0, NULL, 0 },
        { "grpc:80", 0, -1, SVCD_PROBE_NONE, 0, NULL, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct svcd_probe pr;
        char err[160] = "";
        int rc = podman_probe_parse(cases[i].text, cases[i].period, &pr, err, sizeof(err));

        CHECK(rc == cases[i].rc, "probe '%s': rc %d", cases[i].text, rc);
        CHECK(pr.kind == cases[i].kind, "probe '%s': kind %d", cases[i].text, pr.kind);
        if (rc == 0) {
            CHECK(pr.port == cases[i].port, "probe '%s': port", cases[i].text);
            CHECK(pr.period_s == cases[i].want_period, "probe '%s': period %u", cases[i].text,
                  pr.period_s);
            if (pr.kind == SVCD_PROBE_HTTP)
                CHECK(pr.path && !strcmp(pr.path, cases[i].path_or_cmd), "probe '%s': path",
                      cases[i].text);
            if (pr.kind == SVCD_PROBE_EXEC)
                CHECK(pr.exec_argv && !strcmp(pr.exec_argv[0], "/bin/sh") &&
                      !strcmp(pr.exec_argv[2], cases[i].path_or_cmd) && !pr.exec_argv[3],
                      "probe '%s': argv", cases[i].text);
        } else {
            CHECK(err[0] != '\0', "probe '%s': message", cases[i].text);
        }
        model_probe_free(&pr);
    }
}

/* ---- part 1: pod mapping --------------------------------------------------- */

#define POD_ID "1f1cc3cc68cd13ecb4df78e6007bbb3b7349568c197a2b8b9b3b05bc9a7b7a78"
#define INFRA_ID "6f042c6dbd29874dab94de728f47fb89a614e624bf475f01269b85577b8c106f"
#define APP_ID "073f2c8b1f50e9eeebf31ffa21027fb6dbabc2efec354526841ecd94ef0bb594"

/* Fixture text with placeholders: %STATUS% pod status, %RUN% running,
 * %HEALTH% health status, %LABELS% extra labels. */
static json_t *fx_entry(const char *status, const char *labels)
{
    char buf[2048];
    json_error_t e;
    json_t *j;

    snprintf(buf, sizeof(buf),
             "{\"Cgroup\":\"/libpod_parent\",\"Containers\":["
             "{\"Id\":\"" APP_ID "\",\"Names\":\"web1-c\",\"Status\":\"running\"},"
             "{\"Id\":\"" INFRA_ID "\",\"Names\":\"1f1cc3cc68cd-infra\",\"Status\":\"running\"}],"
             "\"Created\":\"2026-11-27T03:03:01.705479739Z\",\"Id\":\"" POD_ID "\","
             "\"InfraId\":\"" INFRA_ID "\",\"Name\":\"web1\",\"Namespace\":\"\","
             "\"Networks\":[\"podman\"],\"Status\":\"%s\","
             "\"Labels\":{\"app\":\"web\"%s}}", status, labels);
    j = json_loads(buf, 0, &e);
    if (!j)
        fprintf(stderr, "fixture: %s\n", e.text);
    return j;
}

static json_t *fx_infra(bool running, const char *hostname)
{
    char buf[2048];

    snprintf(buf, sizeof(buf),
             "{\"Id\":\"" INFRA_ID "\",\"Name\":\"1f1cc3cc68cd-infra\",\"IsInfra\":true,"
             "\"State\":{\"Status\":\"%s\",\"Running\":%s,\"Paused\":false,\"ExitCode\":0},"
             "\"Config\":{\"Hostname\":\"%s\",\"ExposedPorts\":null,\"Healthcheck\":null},"
             "\"HostConfig\":{\"PortBindings\":{\"9090/tcp\":[{\"HostPort\":\"19090\"}]}},"
             "\"NetworkSettings\":{\"IPAddress\":\"10.88.0.2\","
             "\"SandboxKey\":\"/run/netns/netns-1e7c\",\"Networks\":{"
             "\"zeta\":{\"IPAddress\":\"10.89.0.7\",\"GlobalIPv6Address\":\"fd00::7\"},"
             "\"podman\":{\"IPAddress\":\"10.88.0.2\",\"GlobalIPv6Address\":\"\"}}}}",
             running ? "running" : "exited", running ? "true" : "false", hostname);
    return json_loads(buf, 0, NULL);
}

static json_t *fx_app(bool running, int exit_code, const char *health, bool healthcheck)
{
    char buf[2048];

    snprintf(buf, sizeof(buf),
             "{\"Id\":\"" APP_ID "\",\"Name\":\"web1-c\",\"IsInfra\":false,"
             "\"State\":{\"Status\":\"%s\",\"Running\":%s,\"Paused\":false,\"ExitCode\":%d,"
             "\"Health\":{\"Status\":\"%s\",\"FailingStreak\":0,\"Log\":null}},"
             "\"Config\":{\"Hostname\":\"web1\",\"ExposedPorts\":{\"8080/tcp\":{}},"
             "\"Healthcheck\":%s},"
             "\"NetworkSettings\":{\"Networks\":{}}}",
             running ? "running" : "exited", running ? "true" : "false", exit_code, health,
             healthcheck ? "{\"Test\":[\"CMD-SHELL\",\"wget -q -O- http://127.0.0.1:8080/\"],"
                           "\"Interval\":5000000000,\"Timeout\":30000000000,\"Retries\":3}"
                         : "null");
    return json_loads(buf, 0, NULL);
}

static void test_pod_build(void)
{
    static const struct {
        const char *desc;
        const char *status;     /* pod status */
        const char *labels;     /* extra labels */
        bool infra_running, app_running;
        int exit_code;
        bool healthcheck;
        const char *health;
        bool with_app;          /* app inspect present */
        const char *hostname;
        /* expectations */
        enum svcd_pod_phase phase;
        enum svcd_tristate ready;
        size_t n_ips;
        const char *ns;
    } cases[] = {
        { "running, no healthcheck", "Running", "", true, true, 0, false, "", true, "web1",
          SVCD_PHASE_RUNNING, SVCD_TRUE, 2, "default" },
        { "healthcheck healthy", "Running", "", true, true, 0, true, "healthy", true, "web1",
          SVCD_PHASE_RUNNING, SVCD_TRUE, 2, "default" },
        { "healthcheck starting", "Running", "", true, true, 0, true, "starting", true, "web1",
          SVCD_PHASE_RUNNING, SVCD_FALSE, 2, "default" },
        { "healthcheck unhealthy", "Running", "", true, true, 0, true, "unhealthy", true, "web1",
          SVCD_PHASE_RUNNING, SVCD_FALSE, 2, "default" },
        { "degraded", "Degraded", "", true, false, 1, false, "", true, "web1",
          SVCD_PHASE_RUNNING, SVCD_FALSE, 2, "default" },
        { "exited 137", "Exited", "", false, false, 137, false, "", true, "web1",
          SVCD_PHASE_FAILED, SVCD_FALSE, 0, "default" },
        { "exited 0", "Exited", "", false, false, 0, false, "", true, "web1",
          SVCD_PHASE_SUCCEEDED, SVCD_FALSE, 0, "default" },
        { "created", "Created", "", false, false, 0, false, "", true, "web1",
          SVCD_PHASE_PENDING, SVCD_FALSE, 0, "default" },
        { "namespace label", "Running", ",\"svcd.io/namespace\":\"prod\"", true, true, 0,
          false, "", true, "web1", SVCD_PHASE_RUNNING, SVCD_TRUE, 2, "prod" },
        { "app inspect missing", "Running", "", true, true, 0, false, "", false, "web1",
          SVCD_PHASE_RUNNING, SVCD_FALSE, 2, "default" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *entry = fx_entry(cases[i].status, cases[i].labels);
        json_t *ins[2] = { fx_app(cases[i].app_running, cases[i].exit_code, cases[i].health,
                                  cases[i].healthcheck),
                           fx_infra(cases[i].infra_running, cases[i].hostname) };
        const json_t *arr[2];
        size_t n = 0;
        char err[256] = "";
        struct svcd_pod *p;
        char b[64];

        if (cases[i].with_app)
            arr[n++] = ins[0];
        arr[n++] = ins[1];
        p = podman_pod_build(entry, arr, n, "node-a", err, sizeof(err));
        CHECK(p != NULL, "%s: built (%s)", cases[i].desc, err);
        if (!p)
            goto next;
        CHECK(!strcmp(p->meta.name, "web1"), "%s: name", cases[i].desc);
        CHECK(!strcmp(p->meta.ns, cases[i].ns), "%s: ns %s", cases[i].desc, p->meta.ns);
        CHECK(p->phase == cases[i].phase, "%s: phase %s", cases[i].desc,
              svcd_pod_phase_name(p->phase));
        CHECK(p->ready_condition == cases[i].ready, "%s: ready %d", cases[i].desc,
              p->ready_condition);
        CHECK(p->n_ips == cases[i].n_ips, "%s: n_ips %zu", cases[i].desc, p->n_ips);
        if (p->n_ips == 2) {
            /* networks in name order: podman (10.88.0.2) before zeta; v6 from zeta */
            CHECK(!strcmp(svcd_ip_format(&p->ips[0], b, sizeof(b)), "10.88.0.2"),
                  "%s: ip0 %s", cases[i].desc, b);
            CHECK(!strcmp(svcd_ip_format(&p->ips[1], b, sizeof(b)), "fd00::7"),
                  "%s: ip1 %s", cases[i].desc, b);
        }
        CHECK(p->meta.uid && !strcmp(p->meta.uid, POD_ID), "%s: uid", cases[i].desc);
        CHECK(p->node_name && !strcmp(p->node_name, "node-a"), "%s: node", cases[i].desc);
        CHECK(svcd_kvmap_get(&p->meta.labels, "app") &&
              !strcmp(svcd_kvmap_get(&p->meta.labels, "app"), "web"), "%s: labels", cases[i].desc);
        CHECK(svcd_kvmap_get(&p->meta.annotations, PROBE_NETNS_ANNOTATION) &&
              !strcmp(svcd_kvmap_get(&p->meta.annotations, PROBE_NETNS_ANNOTATION),
                      "/run/netns/netns-1e7c"), "%s: netns annotation", cases[i].desc);
        CHECK(p->meta.created == 1795748581, "%s: created %lld", cases[i].desc,
              (long long)p->meta.created);
        CHECK(p->hostname == NULL, "%s: hostname = name -> none", cases[i].desc);
        if (cases[i].with_app) {
            CHECK(p->n_containers == 1 && !strcmp(p->containers[0].name, "web1-c"),
                  "%s: containers", cases[i].desc);
            /* 8080 exposed by the container, 9090 published on the pod */
            CHECK(p->n_containers == 1 && p->containers[0].n_ports == 2 &&
                  p->containers[0].ports[0].container_port == 8080 &&
                  p->containers[0].ports[1].container_port == 9090, "%s: ports", cases[i].desc);
        }
        CHECK(p->meta.fingerprint != 0, "%s: fingerprint", cases[i].desc);
        model_pod_free(p);
next:
        json_decref(entry);
        json_decref(ins[0]);
        json_decref(ins[1]);
    }
}

/* Equal input -> equal fingerprint; any mapped change -> a new one. */
static void test_fingerprint_and_labels(void)
{
    json_t *e1 = fx_entry("Running", ""), *e2 = fx_entry("Running", "");
    json_t *e3 = fx_entry("Running", ",\"tier\":\"x\"");
    json_t *e4 = fx_entry("Running",
                          ",\"svcd.io/ports\":\"http=8080,metrics=9100/TCP\","
                          "\"svcd.io/readiness-probe\":\"http:8080/ready\","
                          "\"svcd.io/readiness-period\":\"3\",\"svcd.io/subdomain\":\"web\"");
    json_t *e5 = fx_entry("Running", ",\"svcd.io/ports\":\"bad=port=x\"");
    json_t *app = fx_app(true, 0, "", false), *infra = fx_infra(true, "web1");
    json_t *infra_h = fx_infra(true, "other-host");
    const json_t *arr[2] = { app, infra }, *arr_h[2] = { app, infra_h };
    struct svcd_pod *a, *b, *c, *d, *e, *h;
    char err[256] = "";

    a = podman_pod_build(e1, arr, 2, NULL, err, sizeof(err));
    b = podman_pod_build(e2, arr, 2, NULL, err, sizeof(err));
    c = podman_pod_build(e3, arr, 2, NULL, err, sizeof(err));
    d = podman_pod_build(e4, arr, 2, NULL, err, sizeof(err));
    h = podman_pod_build(e1, arr_h, 2, NULL, err, sizeof(err));
    CHECK(a && b && c && d && h, "built");
    if (a && b && c && d && h) {
        CHECK(a->meta.fingerprint == b->meta.fingerprint, "same input, same fingerprint");
        CHECK(a->meta.fingerprint != c->meta.fingerprint, "label change, new fingerprint");
        CHECK(a->meta.fingerprint != h->meta.fingerprint, "hostname change, new fingerprint");
        CHECK(h->hostname && !strcmp(h->hostname, "other-host"), "hostname kept when not name");
        CHECK(d->subdomain && !strcmp(d->subdomain, "web"), "subdomain label");
        CHECK(svcd_pod_named_port(d, "http", SVCD_PROTO_TCP) == 8080, "named port http");
        CHECK(svcd_pod_named_port(d, "metrics", SVCD_PROTO_TCP) == 9100, "named port metrics");
        CHECK(d->containers[0].readiness.kind == SVCD_PROBE_HTTP &&
              d->containers[0].readiness.port == 8080 &&
              d->containers[0].readiness.period_s == 3 &&
              !strcmp(d->containers[0].readiness.path, "/ready"), "probe label");
    }
    err[0] = '\0';
    e = podman_pod_build(e5, arr, 2, NULL, err, sizeof(err));
    CHECK(e != NULL && strstr(err, "svcd.io/ports"), "bad ports label: pod kept, warning '%s'",
          err);
    CHECK(podman_healthcheck_interval(app) == 0, "no healthcheck -> 0");
    {
        json_t *hc = fx_app(true, 0, "healthy", true);
        CHECK(podman_healthcheck_interval(hc) == 5, "interval 5 s");
        json_decref(hc);
    }
    /* no name -> NULL with a reason */
    {
        json_t *bad = json_pack("{s:s}", "Id", POD_ID);
        err[0] = '\0';
        CHECK(podman_pod_build(bad, NULL, 0, NULL, err, sizeof(err)) == NULL && err[0],
              "nameless pod refused");
        json_decref(bad);
    }
    model_pod_free(a);
    model_pod_free(b);
    model_pod_free(c);
    model_pod_free(d);
    model_pod_free(e);
    model_pod_free(h);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
    json_decref(e4);
    json_decref(e5);
    json_decref(app);
    json_decref(infra);
    json_decref(infra_h);
}

/* ---- part 1: HTTP responses (podman_resp) ----------------------------------- */

struct hr_seen {
    int heads;              /* line callbacks with NULL */
    int lines;
    bool bad_order;         /* a line before the headers, or with a '\n' */
    char text[512];         /* lines joined with '|' */
};

static void hr_line(void *ctx, const char *line, size_t len)
{
    struct hr_seen *s = ctx;
    size_t have = strlen(s->text);

    if (!line) {
        s->heads++;
        return;
    }
    if (!s->heads || memchr(line, '\n', len) || strlen(line) != len)
        s->bad_order = true;
    s->lines++;
    snprintf(s->text + have, sizeof(s->text) - have, "%.*s|", (int)len, line);
}

/* Feeds in as pieces of at most step bytes (0: all at once, or split in
 * two at split when split > 0), then EOF when eof. */
static int hr_run(const char *in, size_t len, bool stream, bool eof, size_t step, size_t split,
                  struct hr_seen *seen, int *status, char *body, size_t bodylen)
{
    struct podman_resp *r = podman_resp_new(stream, hr_line, seen);
    int rc = PODMAN_RESP_MORE;
    size_t off = 0, n, blen;
    const char *b;

    memset(seen, 0, sizeof(*seen));
    if (!r)
        return -2;
    while (off < len && rc == PODMAN_RESP_MORE) {
        n = len - off;
        if (step && n > step)
            n = step;
        if (!step && split && off == 0)
            n = split;
        rc = podman_resp_feed(r, in + off, n);
        off += n;
    }
    if (eof)
        rc = podman_resp_feed(r, NULL, 0);
    *status = podman_resp_status(r);
    b = podman_resp_body(r, &blen);
    snprintf(body, bodylen, "%.*s", (int)blen, b);
    if ((rc == PODMAN_RESP_ERROR) != (podman_resp_error(r)[0] != '\0'))
        rc = -3;   /* an error without a reason, or a reason without error */
    podman_resp_free(r);
    return rc;
}

static char *hr_repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);

    if (!s)
        abort();
    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static char *hr_headers(int n)
{
    size_t cap = 64 + (size_t)n * 16, i;
    char *s = malloc(cap), *p = s;

    if (!s)
        abort();
    p += sprintf(p, "HTTP/1.1 200 OK\r\n");
    for (i = 0; i < (size_t)n - 1; i++)
        p += sprintf(p, "X-H%zu: v\r\n", i);
    sprintf(p, "Content-Length: 2\r\n\r\n{}");
    return s;
}

static void test_http_resp(void)
{
    char *many_ok = hr_headers(PODMAN_HTTP_MAX_HEADERS);
    char *many_bad = hr_headers(PODMAN_HTTP_MAX_HEADERS + 1);
    char *long_ok = hr_repeat("HTTP/1.1 200 OK\r\nX-Long: ", 'x', PODMAN_HTTP_MAX_HEADER - 16,
                              "\r\nContent-Length: 2\r\n\r\n{}");
    char *long_bad = hr_repeat("HTTP/1.1 200 OK\r\nX-Long: ", 'x', PODMAN_HTTP_MAX_HEADER,
                               "\r\nContent-Length: 2\r\n\r\n{}");
    /* one stream line of 1 MiB + 1 in a single chunk (100001 hex) */
    char *line_bad = hr_repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n",
                               'x', PODMAN_HTTP_MAX_LINE + 1, "\r\n");
    /* the same with its '\n' in the same chunk (0x100002 bytes) */
    char *line_bad_nl = hr_repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100002\r\n",
                                  'x', PODMAN_HTTP_MAX_LINE + 1, "\n\r\n");
    /* a line at the cap is fine */
    char *line_ok = hr_repeat("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n",
                              'x', PODMAN_HTTP_MAX_LINE, "\n\r\n0\r\n\r\n");
    const struct {
        const char *desc;
        const char *in;
        bool stream, eof, big;
        int rc, status;
        const char *body;    /* expected collected body */
        const char *lines;   /* expected stream lines, '|' after each (NULL: one line) */
    } cases[] = {
        { "content-length",
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1,2,3]",
          false, false, false, PODMAN_RESP_DONE, 200, "[1,2,3]", "" },
        { "bytes after the response are ignored",
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}GARBAGE\r\n",
          false, true, false, PODMAN_RESP_DONE, 200, "{}", "" },
        { "chunked",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
          false, false, false, PODMAN_RESP_DONE, 200, "[1,2]", "" },
        { "chunked: extension, upper-case hex, trailer",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n"
          "A\r\n:123456789\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n",
          false, false, false, PODMAN_RESP_DONE, 200, "{\"a\":123456789}", "" },
        { "HTTP/1.0 body to EOF",
          "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"x\":1}",
          false, true, false, PODMAN_RESP_DONE, 200, "{\"x\":1}", "" },
        { "body to EOF, EOF not yet seen",
          "HTTP/1.0 200 OK\r\n\r\n{\"x\":1}",
          false, false, false, PODMAN_RESP_MORE, 200, "{\"x\":1}", "" },
        { "404 with a body",
          "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n{\"c\":\"n\"}",
          false, false, false, PODMAN_RESP_DONE, 404, "{\"c\":\"n\"}", "" },
        { "status line without a reason phrase",
          "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}",
          false, false, false, PODMAN_RESP_DONE, 200, "{}", "" },
        { "204 without a body",
          "HTTP/1.1 204 No Content\r\n\r\n",
          false, false, false, PODMAN_RESP_DONE, 204, "", "" },
        { "stream: lines across chunks, empty lines skipped",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\n{\"a\":\r\nC\r\n1}\n{\"b\":2}\n\n\r\n4\r\n{\"c\"\r\n4\r\n:3}\n\r\n0\r\n\r\n",
          true, false, false, PODMAN_RESP_DONE, 200, "", "{\"a\":1}|{\"b\":2}|{\"c\":3}|" },
        { "stream: still open",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n3\r\n{\"b",
          true, false, false, PODMAN_RESP_MORE, 200, "", "{\"a\":1}|" },
        { "stream: cut inside a chunk",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n9\r\n{\"b",
          true, true, false, PODMAN_RESP_ERROR, 200, "", "{\"a\":1}|" },
        { "stream: HTTP/1.0 to EOF",
          "HTTP/1.0 200 OK\r\n\r\n{\"a\":1}\n{\"b\":2}\n",
          true, true, false, PODMAN_RESP_DONE, 200, "", "{\"a\":1}|{\"b\":2}|" },
        { "stream: an error status is collected, not split",
          "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n\r\nerr\nx\n",
          true, false, false, PODMAN_RESP_DONE, 500, "err\nx\n", "" },
        { "status not a number", "HTTP/1.1 2x0 OK\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 0, "", "" },
        { "status below 100", "HTTP/1.1 00 OK\r\nContent-Length: 0\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 0, "", "" },
        { "not HTTP", "hello world\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 0, "", "" },
        { "a request, not a response", "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 0, "", "" },
        { "bad chunk size",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 200, "", "" },
        { "chunk longer than announced",
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
          false, false, false, PODMAN_RESP_ERROR, 200, "ab", "" },
        { "EOF before any byte", "", false, true, false, PODMAN_RESP_ERROR, 0, "", "" },
        { "EOF inside the headers", "HTTP/1.1 200 OK\r\nContent-Le",
          false, true, false, PODMAN_RESP_ERROR, 200, "", "" },
        { "EOF before Content-Length bytes",
          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
          false, true, false, PODMAN_RESP_ERROR, 200, "abc", "" },
        { "Content-Length over the body cap",
          "HTTP/1.1 200 OK\r\nContent-Length: 67108865\r\n\r\nabc",
          false, false, false, PODMAN_RESP_ERROR, 200, "", "" },
        { "two Content-Length headers",
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
          false, false, false, PODMAN_RESP_ERROR, 200, "", "" },
        { "128 headers", many_ok, false, false, true, PODMAN_RESP_DONE, 200, "{}", "" },
        { "129 headers", many_bad, false, false, true, PODMAN_RESP_ERROR, 200, "", "" },
        { "header just under the cap", long_ok, false, false, true, PODMAN_RESP_DONE, 200,
          "{}", "" },
        { "header over the cap", long_bad, false, false, true, PODMAN_RESP_ERROR, 200, "", "" },
        { "stream line over the cap", line_bad, true, false, true, PODMAN_RESP_ERROR, 200, "",
          "" },
        { "stream line over the cap, whole", line_bad_nl, true, false, true, PODMAN_RESP_ERROR,
          200, "", "" },
        { "stream line at the cap", line_ok, true, false, true, PODMAN_RESP_DONE, 200, "",
          NULL },
    };
    size_t i, m;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        /* modes: whole; in two at every offset (or the middle when big);
         * byte by byte (not when big) */
        size_t n_modes = cases[i].big ? 3 : len + 2;

        for (m = 0; m < n_modes; m++) {
            struct hr_seen seen;
            char body[256], how[48];
            int status = 0, rc;
            size_t step = 0, split = 0;

            if (m == 1)
                step = cases[i].big ? 0 : 1;
            if (m == 1 && cases[i].big)
                split = len / 2;
            if (m >= 2)
                split = cases[i].big ? len - 1 : m - 1;
            snprintf(how, sizeof(how), step ? "byte by byte" : split ? "split at %zu" : "whole",
                     split);
            rc = hr_run(cases[i].in, len, cases[i].stream, cases[i].eof, step, split, &seen,
                        &status, body, sizeof(body));
            CHECK(rc == cases[i].rc, "http '%s' (%s): rc %d, want %d", cases[i].desc, how, rc,
                  cases[i].rc);
            CHECK(status == cases[i].status, "http '%s' (%s): status %d", cases[i].desc, how,
                  status);
            if (rc != PODMAN_RESP_ERROR || cases[i].rc != PODMAN_RESP_ERROR)
                CHECK(!strcmp(body, cases[i].body), "http '%s' (%s): body '%s'", cases[i].desc,
                      how, body);
            CHECK((cases[i].lines ? !strcmp(seen.text, cases[i].lines) : seen.lines == 1) &&
                  !seen.bad_order,
                  "http '%s' (%s): lines '%s'", cases[i].desc, how, seen.text);
            CHECK(seen.heads == (status && rc != PODMAN_RESP_ERROR ? 1 : seen.heads) &&
                  seen.heads <= 1, "http '%s' (%s): headers-done callbacks %d", cases[i].desc,
                  how, seen.heads);
        }
    }
    /* feeding after DONE or ERROR changes nothing */
    {
        struct hr_seen seen = { 0 };
        struct podman_resp *r = podman_resp_new(false, hr_line, &seen);
        const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        size_t blen = 0;

        CHECK(r && podman_resp_feed(r, ok, strlen(ok)) == PODMAN_RESP_DONE, "done");
        CHECK(r && podman_resp_feed(r, "junk", 4) == PODMAN_RESP_DONE, "done stays done");
        CHECK(r && podman_resp_feed(r, NULL, 0) == PODMAN_RESP_DONE, "EOF after done");
        CHECK(r && podman_resp_headers_done(r), "headers done");
        CHECK(r && !strncmp(podman_resp_body(r, &blen), "{}", 2) && blen == 2, "body kept");
        podman_resp_free(r);
        podman_resp_free(NULL);
    }
    free(many_ok);
    free(many_bad);
    free(long_ok);
    free(long_bad);
    free(line_bad);
    free(line_bad_nl);
    free(line_ok);
}

/* ---- part 2: a fake libpod API --------------------------------------------- */

struct fake {
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *lis;
    char path[108];
    bool pod2;                   /* second pod exists */
    bool app_running;
    struct evhttp_request *events;  /* open events stream */
    int healthchecks;
    int requests;
    int bad_requests;            /* not HTTP/1.1, or no Host / Connection: close */
    int events_chunked;          /* events streams answered chunked */
    int lists_chunked;           /* full pod lists answered chunked */
};

static const char *fake_pod_entry(const struct fake *f, int which, char *buf, size_t len)
{
    if (which == 1)
        snprintf(buf, len,
                 "{\"Id\":\"aa01\",\"Name\":\"web1\",\"InfraId\":\"bb01\",\"Status\":\"%s\","
                 "\"Created\":\"2026-11-27T03:03:01Z\",\"Labels\":{\"app\":\"web\"},"
                 "\"Containers\":[{\"Id\":\"bb01\"},{\"Id\":\"cc01\"}]}",
                 f->app_running ? "Running" : "Degraded");
    else
        snprintf(buf, len,
                 "{\"Id\":\"aa02\",\"Name\":\"web2\",\"InfraId\":\"bb02\",\"Status\":\"Running\","
                 "\"Labels\":{\"app\":\"web\"},\"Containers\":[{\"Id\":\"bb02\"}]}");
    return buf;
}

static void fake_reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Not Found", b);
    evbuffer_free(b);
}

static void fake_events_closed(struct evhttp_connection *c, void *arg)
{
    (void)c;
    ((struct fake *)arg)->events = NULL;
}

static void fake_cb(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    char b1[1024], b2[1024], body[4096];
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *conn = evhttp_find_header(in, "Connection");

    f->requests++;
    if (req->major != 1 || req->minor != 1 || !evhttp_find_header(in, "Host") || !conn ||
        evutil_ascii_strcasecmp(conn, "close"))
        f->bad_requests++;
    if (!strncmp(uri, "/v4.0.0/libpod/events", 21)) {
        const char *te;

        if (f->events) {
            fake_reply(req, 409, "{}");
            return;
        }
        f->events = req;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), fake_events_closed, f);
        evhttp_send_reply_start(req, 200, "OK");
        te = evhttp_find_header(evhttp_request_get_output_headers(req), "Transfer-Encoding");
        if (te && !strcmp(te, "chunked"))
            f->events_chunked++;
        return;
    }
    if (!strcmp(uri, "/v4.0.0/libpod/pods/json")) {
        /* chunked, in three pieces, as podman sends long lists */
        struct evbuffer *b = evbuffer_new();
        const char *te;
        size_t len, third;

        snprintf(body, sizeof(body), "[%s%s%s]", fake_pod_entry(f, 1, b1, sizeof(b1)),
                 f->pod2 ? "," : "", f->pod2 ? fake_pod_entry(f, 2, b2, sizeof(b2)) : "");
        len = strlen(body);
        third = len / 3;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        evhttp_send_reply_start(req, 200, "OK");
        te = evhttp_find_header(evhttp_request_get_output_headers(req), "Transfer-Encoding");
        if (te && !strcmp(te, "chunked"))
            f->lists_chunked++;
        evbuffer_add(b, body, third);
        evhttp_send_reply_chunk(req, b);
        evbuffer_add(b, body + third, third);
        evhttp_send_reply_chunk(req, b);
        evbuffer_add(b, body + 2 * third, len - 2 * third);
        evhttp_send_reply_chunk(req, b);
        evhttp_send_reply_end(req);
        evbuffer_free(b);
        return;
    }
    if (!strncmp(uri, "/v4.0.0/libpod/pods/json?filters=", 33)) {
        /* filtered by id: answer with the pods the filter names */
        bool want1 = strstr(uri, "aa01") != NULL, want2 = strstr(uri, "aa02") != NULL;
        snprintf(body, sizeof(body), "[%s%s%s]",
                 want1 ? fake_pod_entry(f, 1, b1, sizeof(b1)) : "",
                 want1 && want2 && f->pod2 ? "," : "",
                 want2 && f->pod2 ? fake_pod_entry(f, 2, b2, sizeof(b2)) : "");
        fake_reply(req, 200, body);
        return;
    }
    if (!strcmp(uri, "/v4.0.0/libpod/containers/bb01/json") ||
        !strcmp(uri, "/v4.0.0/libpod/containers/bb02/json")) {
        bool one = strstr(uri, "bb01") != NULL;
        snprintf(body, sizeof(body),
                 "{\"Id\":\"%s\",\"Name\":\"infra\",\"IsInfra\":true,"
                 "\"State\":{\"Running\":true},\"Config\":{\"Hostname\":\"%s\"},"
                 "\"NetworkSettings\":{\"Networks\":{\"podman\":{\"IPAddress\":\"%s\"}}}}",
                 one ? "bb01" : "bb02", one ? "web1" : "web2",
                 one ? "10.88.0.11" : "10.88.0.12");
        fake_reply(req, 200, body);
        return;
    }
    if (!strcmp(uri, "/v4.0.0/libpod/containers/cc01/json")) {
        snprintf(body, sizeof(body),
                 "{\"Id\":\"cc01\",\"Name\":\"web1-c\",\"State\":{\"Running\":%s,"
                 "\"Health\":{\"Status\":\"healthy\"}},\"Config\":{\"ExposedPorts\":"
                 "{\"8080/tcp\":{}},\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"true\"],"
                 "\"Interval\":1000000000}}}",
                 f->app_running ? "true" : "false");
        fake_reply(req, 200, body);
        return;
    }
    if (!strcmp(uri, "/v4.0.0/libpod/containers/cc01/healthcheck")) {
        f->healthchecks++;
        fake_reply(req, 200, "{\"Status\":\"healthy\",\"FailingStreak\":0,\"Log\":null}");
        return;
    }
    fake_reply(req, 404, "{\"cause\":\"no such container\"}");
}

static int fake_start(struct fake *f)
{
    struct sockaddr_un sa;
    struct evhttp_bound_socket *bs;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    unlink(f->path);
    f->lis = evconnlistener_new_bind(f->base, NULL, NULL,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                     (struct sockaddr *)&sa, sizeof(sa));
    if (!f->lis)
        return -1;
    f->http = evhttp_new(f->base);
    if (!f->http)
        return -1;
    evhttp_set_gencb(f->http, fake_cb, f);
    bs = evhttp_bind_listener(f->http, f->lis);
    return bs ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
    if (f->http)
        evhttp_free(f->http);   /* frees the listener and open connections */
    f->http = NULL;
    f->lis = NULL;
    f->events = NULL;
    unlink(f->path);
}

/* Sends an event line on the stream as two chunks, cut in the middle of
 * the JSON; the second chunk also carries an unrelated event (an image
 * pull, which the source must parse and ignore). */
static void fake_event(struct fake *f, const char *line)
{
    struct evbuffer *b;
    size_t half = strlen(line) / 2;

    if (!f->events)
        return;
    b = evbuffer_new();
    evbuffer_add(b, line, half);
    evhttp_send_reply_chunk(f->events, b);
    evbuffer_add_printf(b, "%s\n{\"Type\":\"image\",\"Action\":\"pull\","
                        "\"Actor\":{\"ID\":\"ee01\"}}\n", line + half);
    evhttp_send_reply_chunk(f->events, b);
    evbuffer_free(b);
}

/* Ends the events stream cleanly (the terminating chunk). */
static void fake_events_end(struct fake *f)
{
    if (!f->events)
        return;
    evhttp_send_reply_end(f->events);
    f->events = NULL;
}

/* Runs the loop until cond(ctx) or ms pass. */
static bool run_until(struct event_base *base, bool (*cond)(void *), void *ctx, int ms)
{
    struct timeval tv = { 0, 10000 };
    int i;

    for (i = 0; i < ms / 10; i++) {
        if (cond(ctx))
            return true;
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return cond(ctx);
}

struct wctx {
    struct store *st;
    struct podman_src *ps;
    struct fake *f;
    uint64_t full0, rec0, err0;  /* stats before a clean end of the stream */
};

static bool w_synced(void *c)
{
    struct wctx *w = c;
    return podman_src_synced(w->ps) && store_pod_get(w->st, "default", "web2");
}

static bool w_web1_ready(void *c)
{
    const struct svcd_pod *p = store_pod_get(((struct wctx *)c)->st, "default", "web1");
    return p && p->ready_condition == SVCD_TRUE;
}

static bool w_web1_not_ready(void *c)
{
    const struct svcd_pod *p = store_pod_get(((struct wctx *)c)->st, "default", "web1");
    return p && p->ready_condition == SVCD_FALSE;
}

static bool w_disconnected(void *c)
{
    struct podman_stats s;
    podman_src_get_stats(((struct wctx *)c)->ps, &s);
    return !s.connected && s.reconnects > 0;
}

static bool w_web2_gone(void *c)
{
    return store_pod_get(((struct wctx *)c)->st, "default", "web2") == NULL;
}

static bool w_relisted(void *c)
{
    struct wctx *w = c;
    struct podman_stats s;

    podman_src_get_stats(w->ps, &s);
    return s.connected && s.reconnects > w->rec0 && s.full_lists > w->full0 &&
           w->f->events != NULL;
}

static bool w_health(void *c)
{
    return ((struct wctx *)c)->f->healthchecks >= 1;
}

static void test_source(void)
{
    struct fake f = { 0 };
    struct wctx w;
    struct podman_stats s;
    const struct svcd_pod *p;
    char b[64];

    f.base = event_base_new();
    snprintf(f.path, sizeof(f.path), "/tmp/svcd-test-podman-%d.sock", (int)getpid());
    f.pod2 = true;
    f.app_running = true;
    w.st = store_new();
    w.f = &f;
    CHECK(fake_start(&f) == 0, "fake API listening on %s", f.path);
    w.ps = podman_src_new(f.base, w.st, f.path);
    podman_src_set_node_name(w.ps, "node-x");
    CHECK(w.ps != NULL, "source created");
    if (!w.ps)
        goto out;

    CHECK(run_until(f.base, w_synced, &w, 3000), "initial full list applied");
    p = store_pod_get(w.st, "default", "web1");
    CHECK(p && p->n_ips == 1 && !strcmp(svcd_ip_format(&p->ips[0], b, sizeof(b)), "10.88.0.11"),
          "web1 has its IP");
    CHECK(p && p->node_name && !strcmp(p->node_name, "node-x"), "node name set");
    CHECK(run_until(f.base, w_web1_ready, &w, 2000), "web1 ready (healthy)");
    CHECK(run_until(f.base, w_health, &w, 3000), "svcd ran the healthcheck (%d)", f.healthchecks);

    /* an event: the app container died -> web1 not ready */
    f.app_running = false;
    fake_event(&f, "{\"Type\":\"container\",\"Action\":\"died\",\"Actor\":{\"ID\":\"cc01\","
                   "\"Attributes\":{\"podId\":\"\"}}}");
    CHECK(run_until(f.base, w_web1_not_ready, &w, 2000), "died event -> web1 not ready");
    podman_src_get_stats(w.ps, &s);
    CHECK(s.events >= 2, "both event lines read from the split chunks (%llu)",
          (unsigned long long)s.events);

    /* podman goes away: pods stay; web2 removed while away; back: converge */
    fake_stop(&f);
    CHECK(run_until(f.base, w_disconnected, &w, 2000), "stream loss noticed");
    CHECK(store_pod_get(w.st, "default", "web2") != NULL, "last known pods kept while away");
    f.pod2 = false;
    f.app_running = true;
    CHECK(fake_start(&f) == 0, "fake API back");
    CHECK(run_until(f.base, w_web2_gone, &w, 5000), "web2 removed after reconnect");
    CHECK(run_until(f.base, w_web1_ready, &w, 2000), "web1 ready again after reconnect");
    podman_src_get_stats(w.ps, &s);
    CHECK(s.connected && s.full_lists >= 2 && s.reconnects >= 1 && s.pods == 1,
          "stats: connected %d full %llu reconnects %llu pods %zu", s.connected,
          (unsigned long long)s.full_lists, (unsigned long long)s.reconnects, s.pods);

    /* the stream ends cleanly (terminating chunk): reconnect, relist */
    w.full0 = s.full_lists;
    w.rec0 = s.reconnects;
    w.err0 = s.errors;
    fake_events_end(&f);
    CHECK(run_until(f.base, w_relisted, &w, 3000), "clean end of the stream: reconnected, "
          "relisted");
    CHECK(store_pod_get(w.st, "default", "web1") != NULL, "web1 kept across the stream end");
    podman_src_get_stats(w.ps, &s);
    CHECK(s.errors == w.err0, "a stream end is not a request error (%llu, was %llu)",
          (unsigned long long)s.errors, (unsigned long long)w.err0);
    CHECK(f.events_chunked >= 3, "events streams served chunked (%d)", f.events_chunked);
    CHECK(f.lists_chunked >= 3, "full pod lists served chunked (%d)", f.lists_chunked);
    CHECK(f.requests > 8 && f.bad_requests == 0,
          "requests are HTTP/1.1 with Host and Connection: close (%d of %d not)",
          f.bad_requests, f.requests);

    /* unreachable socket: never synced, no crash, retries */
    {
        struct store *st2 = store_new();
        struct podman_src *ps2 = podman_src_new(f.base, st2, "/tmp/svcd-test-no-such.sock");
        struct timeval tv = { 0, 300000 };
        event_base_loopexit(f.base, &tv);
        event_base_dispatch(f.base);
        CHECK(ps2 && !podman_src_synced(ps2), "no socket: not synced");
        podman_src_free(ps2);
        store_free(st2);
    }
    {
        char longp[200];
        memset(longp, 'x', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = '\0';
        CHECK(podman_src_new(f.base, w.st, longp) == NULL, "over-long socket path refused");
    }
out:
    podman_src_free(w.ps);
    fake_stop(&f);
    store_free(w.st);
    event_base_free(f.base);
}

int main(void)
{
    log_set_level(LOG_LVL_WARN);
    test_events();
    test_ports();
    test_probes();
    test_pod_build();
    test_fingerprint_and_labels();
    test_http_resp();
    test_source();
    metrics_reset();
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
