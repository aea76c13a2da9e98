/*
 * svcctl: kubectl-like command-line client for svcd's admin API.
 *
 *   svcctl [--server ADDR:PORT] get services|svc|pods|po|endpoints|ep [NAME]
 *          [-n NS | -A] [-o wide|json|yaml|name]
 *   svcctl [--server ADDR:PORT] status [-o json]
 *   svcctl [--server ADDR:PORT] version
 *
 * It fetches /api/<resource> over HTTP with libevent's client, then prints
 * the JSON as kubectl-style tables (upper-case headers, columns padded with
 * three spaces, AGE like kubectl's HumanDuration). It links libevent
 * and jansson: everything it knows about svcd comes over the API.
 *
 * In cluster mode, `svcctl --etcd-endpoints LIST apply|delete -f FILE`
 * writes Services to etcd instead (svcctl_etcd.c); that part links svcd's
 * core for the manifest parser and the etcd client.
 *
 * Exit status: 0 ok, 1 server unreachable or an error answer, 2 bad usage.
 * SVCCTL_NOW=<unix seconds> fixes "now" for AGE (used by tests).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <yaml.h>

#include "svcctl_etcd.h"

#define SVCCTL_DEFAULT_SERVER "127.0.0.1:9180"
#define SVCCTL_TIMEOUT_S 10

enum svcctl_output { OUT_TABLE, OUT_WIDE, OUT_JSON, OUT_YAML, OUT_NAME };
enum svcctl_resource { RES_SERVICES, RES_PODS, RES_ENDPOINTS };

struct svcctl_opts {
    const char *server;       /* as given, for messages */
    char host[256];
    uint16_t port;
    enum svcctl_resource res;
    const char *name;         /* or NULL */
    const char *ns;           /* "default" unless -n */
    bool all_ns;
    enum svcctl_output out;
    time_t now;
};

/* ---- YAML output (libyaml's emitter) ------------------------------------ */

/* Whether a string would read back as something else when written plain
 * (a number, bool or null), so it must be quoted. */
static bool svcctl_yaml_needs_quotes(const char *v)
{
    static const char *const words[] = { "", "~", "null", "Null", "NULL", "true", "True", "TRUE",
                                         "false", "False", "FALSE", "yes", "no", "on", "off",
                                         "y", "n", "Yes", "No", "On", "Off" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v, words[i]) == 0)
            return true;
    }
    /* YAML 1.1 readers take 2026-01-02... for a timestamp */
    if (strlen(v) >= 10 && isdigit((unsigned char)v[0]) && v[4] == '-' && v[7] == '-')
        return true;
    char *end;
    (void)strtod(v, &end);
    return *end == '\0';
}

static int svcctl_yaml_scalar(yaml_emitter_t *em, const char *v, bool quoted)
{
    yaml_event_t ev;
    return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v),
                                        !quoted, quoted,
                                        quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                               : YAML_ANY_SCALAR_STYLE) &&
                   yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int svcctl_yaml_node(yaml_emitter_t *em, json_t *j)
{
    yaml_event_t ev;
    char buf[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        json_object_foreach(j, k, v) {
            if (svcctl_yaml_scalar(em, k, svcctl_yaml_needs_quotes(k)) < 0 ||
                svcctl_yaml_node(em, v) < 0)
                return -1;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        json_array_foreach(j, i, v) {
            if (svcctl_yaml_node(em, v) < 0)
                return -1;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_STRING:
        return svcctl_yaml_scalar(em, json_string_value(j),
                                  svcctl_yaml_needs_quotes(json_string_value(j)));
    case JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return svcctl_yaml_scalar(em, buf, false);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(j));
        return svcctl_yaml_scalar(em, buf, false);
    case JSON_TRUE:
        return svcctl_yaml_scalar(em, "true", false);
    case JSON_FALSE:
        return svcctl_yaml_scalar(em, "false", false);
    case JSON_NULL:
        break;
    }
    return svcctl_yaml_scalar(em, "null", false);
}

/* Prints j as one YAML document on stdout. 0 or -1. */
static int svcctl_print_yaml(json_t *j)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    int rc = -1;
    if (!yaml_emitter_initialize(&em))
        return -1;
    yaml_emitter_set_output_file(&em, stdout);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
        yaml_emitter_emit(&em, &ev) &&
        yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
        yaml_emitter_emit(&em, &ev) && svcctl_yaml_node(&em, j) == 0 &&
        yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
        yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev))
        rc = 0;
    yaml_emitter_delete(&em);
    fflush(stdout);
    return rc;
}

/* ---- usage --------------------------------------------------------------- */

static void svcctl_usage(FILE *f)
{
    fputs("svcctl: inspect a running svcd through its admin API.\n"
          "\n"
          "Usage:\n"
          "  svcctl [--server ADDR:PORT] get RESOURCE [NAME] [-n NAMESPACE | -A] [-o FORMAT]\n"
          "  svcctl [--server ADDR:PORT] status [-o json]\n"
          "  svcctl [--server ADDR:PORT] version\n"
          "  svcctl --etcd-endpoints URL[,URL] apply|delete -f FILE   (cluster mode)\n"
          "  svcctl --help\n"
          "\n"
          "Resources:\n"
          "  services (svc), pods (po), endpoints (ep)\n"
          "\n"
          "Options:\n"
          "  -s, --server ADDR:PORT   admin API address (default " SVCCTL_DEFAULT_SERVER
          ", or $SVCD_SERVER)\n"
          "  -n, --namespace NS       namespace (default \"default\")\n"
          "  -A, --all-namespaces     list across all namespaces\n"
          "  -o, --output FORMAT      wide | json | yaml | name\n"
          "  -f, --filename FILE      manifest with Services for apply/delete (- = stdin)\n"
          "  --etcd-endpoints LIST    etcd URLs (or $SVCD_ETCD_ENDPOINTS); docs/CLUSTER.md\n"
          "  --etcd-cafile FILE       CA bundle for https:// etcd endpoints\n"
          "  --etcd-certfile FILE     client certificate for etcd\n"
          "  --etcd-keyfile FILE      its key\n"
          "  --service-cidr CIDR      ClusterIPs are allocated here (default 10.96.0.0/16)\n"
          "  --node-port-range LO-HI  nodePorts are allocated here (default 30000-32767)\n"
          "  -h, --help               show this help\n"
          "\n"
          "Examples:\n"
          "  svcctl get svc -A\n"
          "  svcctl get pods -n prod -o wide\n"
          "  svcctl get ep web -o json\n", f);
}

/* Prints "svcctl: <msg>" and a hint; returns 2 (usage error). */
static int svcctl_usage_error(const char *fmt, const char *arg)
{
    fputs("svcctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nSee 'svcctl --help' for usage.\n", stderr);
    return 2;
}

/* ---- server address ------------------------------------------------------ */

/* Parses "HOST:PORT", "[V6]:PORT" or "HOST" (port 9180). 0 or -1. */
static int svcctl_parse_server(const char *s, struct svcctl_opts *o)
{
    const char *host = s, *port = NULL;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end)
            return -1;
        host = s + 1;
        hlen = (size_t)(end - host);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            return -1;   /* bare IPv6 needs brackets */
        hlen = colon ? (size_t)(colon - s) : strlen(s);
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen >= sizeof(o->host))
        return -1;
    memcpy(o->host, host, hlen);
    o->host[hlen] = '\0';
    o->port = 9180;
    if (port) {
        char *end;
        errno = 0;
        long p = strtol(port, &end, 10);
        if (errno || *port == '\0' || *end != '\0' || p < 1 || p > 65535)
            return -1;
        o->port = (uint16_t)p;
    }
    o->server = s;
    return 0;
}

/* Finds why a TCP connect to the server fails (for the error message);
 * returns an errno, or 0 when it connects now. Bounded by 2 s. */
static int svcctl_connect_errno(const struct svcctl_opts *o)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int err = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", (unsigned)o->port);
    if (getaddrinfo(o->host, port, &hints, &res) != 0 || !res)
        return EHOSTUNREACH;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
            goto out;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (poll(&pfd, 1, 2000) <= 0) {
            err = ETIMEDOUT;
            goto out;
        }
        socklen_t l = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0)
            err = errno;
    }
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return err;
}

/* ---- HTTP ---------------------------------------------------------------- */

struct svcctl_http {
    struct event_base *base;
    bool done;
    int code;                 /* 0 = no response */
    enum evhttp_request_error error;
    bool have_error;
    struct evbuffer *body;
};

static void svcctl_http_error_cb(enum evhttp_request_error err, void *arg)
{
    struct svcctl_http *h = arg;
    h->error = err;
    h->have_error = true;
}

static void svcctl_http_done(struct evhttp_request *req, void *arg)
{
    struct svcctl_http *h = arg;
    h->done = true;
    if (req && evhttp_request_get_response_code(req) != 0) {
        h->code = evhttp_request_get_response_code(req);
        evbuffer_add_buffer(h->body, evhttp_request_get_input_buffer(req));
    }
    event_base_loopexit(h->base, NULL);
}

/* GETs path; on success returns 0 with *body (NUL-terminated, malloc'd) and
 * *code. On failure prints the reason and returns 1. */
static int svcctl_http_get(const struct svcctl_opts *o, const char *path, int *code,
                           char **body)
{
    struct svcctl_http h;
    struct evhttp_connection *conn = NULL;
    int rc = 1;
    memset(&h, 0, sizeof(h));
    h.base = event_base_new();
    h.body = evbuffer_new();
    if (!h.base || !h.body) {
        fprintf(stderr, "svcctl: out of memory\n");
        goto out;
    }
    conn = evhttp_connection_base_new(h.base, NULL, o->host, o->port);
    if (!conn) {
        fprintf(stderr, "svcctl: cannot reach svcd at %s: cannot create connection\n", o->server);
        goto out;
    }
    evhttp_connection_set_timeout(conn, SVCCTL_TIMEOUT_S);
    evhttp_connection_set_retries(conn, 0);
    struct evhttp_request *req = evhttp_request_new(svcctl_http_done, &h);
    if (!req)
        goto out;
    evhttp_request_set_error_cb(req, svcctl_http_error_cb);
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
    evhttp_add_header(hdrs, "Host", o->host);
    evhttp_add_header(hdrs, "Accept", "application/json");
    evhttp_add_header(hdrs, "User-Agent", "svcctl/" SVCD_VERSION);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_GET, path) != 0) {
        fprintf(stderr, "svcctl: cannot reach svcd at %s: request failed\n", o->server);
        goto out;
    }
    /* bounded: the connection times out after SVCCTL_TIMEOUT_S */
    struct timeval guard = { SVCCTL_TIMEOUT_S + 2, 0 };
    event_base_loopexit(h.base, &guard);
    event_base_dispatch(h.base);

    if (!h.done || h.code == 0) {
        const char *why;
        if (h.have_error && h.error == EVREQ_HTTP_TIMEOUT) {
            why = strerror(ETIMEDOUT);
        } else {
            int e = svcctl_connect_errno(o);
            why = e ? strerror(e) : "connection closed without a response";
        }
        fprintf(stderr, "svcctl: cannot reach svcd at %s: %s\n", o->server, why);
        goto out;
    }
    size_t n = evbuffer_get_length(h.body);
    *body = malloc(n + 1);
    if (!*body) {
        fprintf(stderr, "svcctl: out of memory\n");
        goto out;
    }
    evbuffer_remove(h.body, *body, n);
    (*body)[n] = '\0';
    *code = h.code;
    rc = 0;
out:
    if (conn)
        evhttp_connection_free(conn);
    if (h.body)
        evbuffer_free(h.body);
    if (h.base)
        event_base_free(h.base);
    return rc;
}

/* GETs a JSON document; returns 0 with *doc, or 1 (message printed). */
static int svcctl_get_json(const struct svcctl_opts *o, const char *path, json_t **doc)
{
    char *body = NULL;
    int code = 0;
    if (svcctl_http_get(o, path, &code, &body) != 0)
        return 1;
    json_error_t err;
    json_t *d = json_loads(body, 0, &err);
    if (code != 200) {
        const char *msg = d ? json_string_value(json_object_get(d, "error")) : NULL;
        fprintf(stderr, "svcctl: svcd at %s answered %d: %s\n", o->server, code,
                msg ? msg : body);
        json_decref(d);
        free(body);
        return 1;
    }
    free(body);
    if (!d) {
        fprintf(stderr, "svcctl: bad JSON from svcd at %s: %s\n", o->server, err.text);
        return 1;
    }
    *doc = d;
    return 0;
}

/* ---- tables -------------------------------------------------------------- */

#define SVCCTL_MAX_COLS 12

struct svcctl_table {
    size_t ncols;
    char **cells;             /* rows * ncols, row-major; row 0 = header */
    size_t nrows, cap;
};

static void svcctl_oom(void)
{
    fprintf(stderr, "svcctl: out of memory\n");
    exit(1);
}

static char *svcctl_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        svcctl_oom();
    return d;
}

/* Appends a row of ncols strings (copied). */
static void svcctl_table_add(struct svcctl_table *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
        if (!nc)
            svcctl_oom();
        t->cells = nc;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = svcctl_strdup(row[c]);
    t->nrows++;
}

/* Prints like kubectl's tabwriter: columns padded to the widest cell plus
 * three spaces, the last column unpadded. Frees the table. */
static void svcctl_table_print(struct svcctl_table *t)
{
    size_t width[SVCCTL_MAX_COLS] = { 0 };
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > width[c])
                width[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 < t->ncols)
                printf("%-*s   ", (int)width[c], cell);
            else
                printf("%s\n", cell);
        }
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* ---- cell formatting ----------------------------------------------------- */

/* kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration). */
static void svcctl_human_duration(long long secs, char *buf, size_t len)
{
    if (secs < -1) {
        snprintf(buf, len, "<invalid>");
        return;
    }
    if (secs < 0)
        secs = 0;
    long long m = secs / 60, h = secs / 3600, d = h / 24;
    if (secs < 120)
        snprintf(buf, len, "%llds", secs);
    else if (m < 10)
        (secs % 60) ? snprintf(buf, len, "%lldm%llds", m, secs % 60)
                    : snprintf(buf, len, "%lldm", m);
    else if (m < 180)
        snprintf(buf, len, "%lldm", m);
    else if (h < 8)
        (m % 60) ? snprintf(buf, len, "%lldh%lldm", h, m % 60) : snprintf(buf, len, "%lldh", h);
    else if (h < 48)
        snprintf(buf, len, "%lldh", h);
    else if (h < 24 * 8)
        (h % 24) ? snprintf(buf, len, "%lldd%lldh", d, h % 24) : snprintf(buf, len, "%lldd", d);
    else if (h < 24 * 365 * 2)
        snprintf(buf, len, "%lldd", d);
    else if (h < 24 * 365 * 8)
        (d % 365) ? snprintf(buf, len, "%lldy%lldd", d / 365, d % 365)
                  : snprintf(buf, len, "%lldy", d / 365);
    else
        snprintf(buf, len, "%lldy", d / 365);
}

static void svcctl_age(const struct svcctl_opts *o, json_t *item, char *buf, size_t len)
{
    const char *ts = json_string_value(json_object_get(item, "creationTimestamp"));
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = ts ? strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!end) {
        snprintf(buf, len, "<unknown>");
        return;
    }
    svcctl_human_duration((long long)(o->now - timegm(&tm)), buf, len);
}

/* Growable string for joined cells. */
struct svcctl_str {
    char *s;
    size_t len, cap;
};

static void svcctl_str_add(struct svcctl_str *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void svcctl_str_add(struct svcctl_str *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = b->s ? vsnprintf(b->s + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 128;
        while (n >= 0 && cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            svcctl_oom();
        b->s = ns;
        b->cap = cap;
    }
}

static const char *svcctl_str_or(struct svcctl_str *b, const char *dflt)
{
    return (b->s && b->len) ? b->s : dflt;
}

/* Joins the strings of a JSON array with sep into b. */
static void svcctl_join(struct svcctl_str *b, json_t *arr, const char *sep)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (json_is_string(v))
            svcctl_str_add(b, "%s%s", b->len ? sep : "", json_string_value(v));
    }
}

static const char *svcctl_jstr(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return (s && *s) ? s : dflt;
}

/* ---- resources ----------------------------------------------------------- */

static void svcctl_services(const struct svcctl_opts *o, json_t *items, struct svcctl_table *t)
{
    const char *hdr[SVCCTL_MAX_COLS];
    size_t nc = 0;
    if (o->all_ns)
        hdr[nc++] = "NAMESPACE";
    hdr[nc++] = "NAME";
    hdr[nc++] = "TYPE";
    hdr[nc++] = "CLUSTER-IP";
    hdr[nc++] = "EXTERNAL-IP";
    hdr[nc++] = "PORT(S)";
    hdr[nc++] = "AGE";
    if (o->out == OUT_WIDE)
        hdr[nc++] = "SELECTOR";
    t->ncols = nc;
    svcctl_table_add(t, hdr);

    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *type = svcctl_jstr(it, "type", "ClusterIP");
        const char *cip;
        json_t *cips = json_object_get(it, "clusterIPs");
        if (json_is_true(json_object_get(it, "headless")))
            cip = "None";
        else
            cip = json_array_size(cips) ? json_string_value(json_array_get(cips, 0)) : "<none>";

        struct svcctl_str ext = { 0 }, ports = { 0 }, sel = { 0 };
        if (strcmp(type, "ExternalName") == 0) {
            svcctl_str_add(&ext, "%s", svcctl_jstr(it, "externalName", ""));
        } else {
            svcctl_join(&ext, json_object_get(it, "loadBalancerIngress"), ",");
            svcctl_join(&ext, json_object_get(it, "externalIPs"), ",");
        }
        const char *ext_dflt = strcmp(type, "LoadBalancer") == 0 ? "<pending>" : "<none>";

        size_t j;
        json_t *p;
        json_array_foreach(json_object_get(it, "ports"), j, p) {
            long long port = json_integer_value(json_object_get(p, "port"));
            long long np = json_integer_value(json_object_get(p, "nodePort"));
            const char *proto = svcctl_jstr(p, "protocol", "TCP");
            if (np)
                svcctl_str_add(&ports, "%s%lld:%lld/%s", ports.len ? "," : "", port, np, proto);
            else
                svcctl_str_add(&ports, "%s%lld/%s", ports.len ? "," : "", port, proto);
        }
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(it, "selector"), key, v) {
            svcctl_str_add(&sel, "%s%s=%s", sel.len ? "," : "", key,
                           json_string_value(v) ? json_string_value(v) : "");
        }
        char age[32];
        svcctl_age(o, it, age, sizeof(age));

        const char *row[SVCCTL_MAX_COLS];
        nc = 0;
        if (o->all_ns)
            row[nc++] = svcctl_jstr(it, "namespace", "");
        row[nc++] = svcctl_jstr(it, "name", "");
        row[nc++] = type;
        row[nc++] = cip;
        row[nc++] = svcctl_str_or(&ext, ext_dflt);
        row[nc++] = svcctl_str_or(&ports, "<none>");
        row[nc++] = age;
        if (o->out == OUT_WIDE)
            row[nc++] = svcctl_str_or(&sel, "<none>");
        svcctl_table_add(t, row);
        free(ext.s);
        free(ports.s);
        free(sel.s);
    }
}

/* Seconds since an RFC 3339 UTC time ("2026-01-04T03:59:15.123Z", the
 * fraction ignored), or -1 when t is missing or malformed. */
static long long svcctl_since(const struct svcctl_opts *o, const char *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || !strptime(t, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    long long d = (long long)(o->now - timegm(&tm));
    return d < 0 ? 0 : d;
}

/* READY: "n/n" when svcd counts the pod ready. Otherwise the containers the
 * probes find ready (started, ready and not awaiting a restart) out of n,
 * never n/n: a pod svcd does not count ready shows at most (n-1)/n, and 0/n
 * when it has no probe status. */
static void svcctl_pod_ready(json_t *it, char *buf, size_t len)
{
    size_t n = json_array_size(json_object_get(it, "containers"));
    size_t r = 0;
    if (json_is_true(json_object_get(it, "ready"))) {
        r = n;
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(it, "probes"), "containers"), i, c) {
            if (json_is_true(json_object_get(c, "ready")) &&
                json_is_true(json_object_get(c, "started")) &&
                json_is_true(json_object_get(c, "live")))
                r++;
        }
        if (r >= n)
            r = 0;
    }
    snprintf(buf, len, "%zu/%zu", r, n);
}

/* LAST-PROBE: "readiness http failure 3s ago", or "<none>" before the first
 * result (or for pods svcd does not probe). */
static void svcctl_pod_last_probe(const struct svcctl_opts *o, json_t *last, char *buf,
                                  size_t len)
{
    if (!json_is_object(last)) {
        snprintf(buf, len, "<none>");
        return;
    }
    char ago[32];
    long long secs = svcctl_since(o, svcctl_jstr(last, "time", NULL));
    if (secs < 0)
        snprintf(ago, sizeof(ago), "<unknown>");
    else
        svcctl_human_duration(secs, ago, sizeof(ago));
    snprintf(buf, len, "%s %s %s %s ago", svcctl_jstr(last, "type", "?"),
             svcctl_jstr(last, "kind", "?"), svcctl_jstr(last, "result", "?"), ago);
}

static void svcctl_pods(const struct svcctl_opts *o, json_t *items, struct svcctl_table *t)
{
    const char *hdr[SVCCTL_MAX_COLS];
    size_t nc = 0;
    if (o->all_ns)
        hdr[nc++] = "NAMESPACE";
    hdr[nc++] = "NAME";
    hdr[nc++] = "READY";
    hdr[nc++] = "STATUS";
    hdr[nc++] = "RESTARTS-NEEDED";
    hdr[nc++] = "LAST-PROBE";
    hdr[nc++] = "AGE";
    if (o->out == OUT_WIDE) {
        hdr[nc++] = "IP";
        hdr[nc++] = "NODE";
        hdr[nc++] = "IPS";
        hdr[nc++] = "PROBE-REASON";
    }
    t->ncols = nc;
    svcctl_table_add(t, hdr);

    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *probes = json_object_get(it, "probes");
        json_t *last = json_object_get(probes, "lastProbe");
        char rd[48], restarts[24], lp[160];
        svcctl_pod_ready(it, rd, sizeof(rd));
        snprintf(restarts, sizeof(restarts), "%lld",
                 json_integer_value(json_object_get(probes, "restartsNeeded")));
        svcctl_pod_last_probe(o, last, lp, sizeof(lp));
        const char *status = svcctl_jstr(it, "phase", "Unknown");
        json_t *ips = json_object_get(it, "podIPs");
        if (svcctl_jstr(it, "deletionTimestamp", NULL))
            status = "Terminating";
        else if (!json_array_size(ips) && strcmp(status, "Succeeded") && strcmp(status, "Failed"))
            status = "NoPodIP";   /* why it is no endpoint: see -o wide / -o json */
        const char *ip = json_array_size(ips) ? json_string_value(json_array_get(ips, 0)) : NULL;
        struct svcctl_str all = { 0 };
        svcctl_join(&all, ips, ",");
        char age[32];
        svcctl_age(o, it, age, sizeof(age));

        const char *row[SVCCTL_MAX_COLS];
        nc = 0;
        if (o->all_ns)
            row[nc++] = svcctl_jstr(it, "namespace", "");
        row[nc++] = svcctl_jstr(it, "name", "");
        row[nc++] = rd;
        row[nc++] = status;
        row[nc++] = restarts;
        row[nc++] = lp;
        row[nc++] = age;
        if (o->out == OUT_WIDE) {
            row[nc++] = ip ? ip : "<none>";
            row[nc++] = svcctl_jstr(it, "nodeName", "<none>");
            row[nc++] = svcctl_str_or(&all, "<none>");
            row[nc++] = svcctl_jstr(last, "reason", svcctl_jstr(it, "endpointReason", "<none>"));
        }
        svcctl_table_add(t, row);
        free(all.s);
    }
}

/* Appends "ip:port" (or "[ip]:port") or a bare ip when port is 0. */
static void svcctl_hostport(struct svcctl_str *b, const char *ip, long long port)
{
    const char *sep = b->len ? "," : "";
    if (port == 0)
        svcctl_str_add(b, "%s%s", sep, ip);
    else if (strchr(ip, ':'))
        svcctl_str_add(b, "%s[%s]:%lld", sep, ip, port);
    else
        svcctl_str_add(b, "%s%s:%lld", sep, ip, port);
}

/* The ENDPOINTS cell as kubectl prints it: ready addresses per port, at most
 * three, then " + N more...". */
static void svcctl_endpoints_cell(json_t *eps, struct svcctl_str *b)
{
    const size_t max = 3;
    size_t count = 0, shown = 0;
    /* Port keys in order of first appearance (name + protocol). */
    const char *names[64];
    const char *protos[64];
    size_t nkeys = 0;
    size_t i, j;
    json_t *e, *p;
    json_array_foreach(eps, i, e) {
        json_array_foreach(json_object_get(e, "ports"), j, p) {
            const char *nm = svcctl_jstr(p, "name", "");
            const char *pr = svcctl_jstr(p, "protocol", "TCP");
            size_t k;
            for (k = 0; k < nkeys; k++)
                if (strcmp(names[k], nm) == 0 && strcmp(protos[k], pr) == 0)
                    break;
            if (k == nkeys && nkeys < 64) {
                names[nkeys] = nm;
                protos[nkeys] = pr;
                nkeys++;
            }
        }
    }
    for (size_t k = 0; k < (nkeys ? nkeys : 1); k++) {
        json_array_foreach(eps, i, e) {
            if (!json_is_true(json_object_get(e, "ready")))
                continue;
            const char *ip = json_string_value(json_array_get(json_object_get(e, "addresses"), 0));
            if (!ip)
                continue;
            long long port = 0;
            if (nkeys) {
                bool found = false;
                json_array_foreach(json_object_get(e, "ports"), j, p) {
                    if (strcmp(svcctl_jstr(p, "name", ""), names[k]) == 0 &&
                        strcmp(svcctl_jstr(p, "protocol", "TCP"), protos[k]) == 0) {
                        port = json_integer_value(json_object_get(p, "port"));
                        found = true;
                        break;
                    }
                }
                if (!found)
                    continue;
            }
            count++;
            if (shown < max) {
                svcctl_hostport(b, ip, port);
                shown++;
            }
        }
    }
    if (count > max)
        svcctl_str_add(b, " + %zu more...", count - max);
}

static void svcctl_endpoints(const struct svcctl_opts *o, json_t *items, struct svcctl_table *t)
{
    const char *hdr[SVCCTL_MAX_COLS];
    size_t nc = 0;
    if (o->all_ns)
        hdr[nc++] = "NAMESPACE";
    hdr[nc++] = "NAME";
    hdr[nc++] = "ENDPOINTS";
    hdr[nc++] = "AGE";
    t->ncols = nc;
    svcctl_table_add(t, hdr);

    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        struct svcctl_str cell = { 0 };
        svcctl_endpoints_cell(json_object_get(it, "endpoints"), &cell);
        char age[32];
        svcctl_age(o, it, age, sizeof(age));
        const char *row[SVCCTL_MAX_COLS];
        nc = 0;
        if (o->all_ns)
            row[nc++] = svcctl_jstr(it, "namespace", "");
        row[nc++] = svcctl_jstr(it, "name", "");
        row[nc++] = svcctl_str_or(&cell, "<none>");
        row[nc++] = age;
        svcctl_table_add(t, row);
        free(cell.s);
    }
}

/* ---- commands ------------------------------------------------------------ */

static const char *const svcctl_res_path[] = { "services", "pods", "endpoints" };
static const char *const svcctl_res_kind[] = { "service", "pod", "endpoints" };

static int svcctl_parse_resource(const char *s, enum svcctl_resource *out)
{
    static const struct { const char *name; enum svcctl_resource r; } names[] = {
        { "services", RES_SERVICES }, { "service", RES_SERVICES }, { "svc", RES_SERVICES },
        { "pods", RES_PODS }, { "pod", RES_PODS }, { "po", RES_PODS },
        { "endpoints", RES_ENDPOINTS }, { "endpoint", RES_ENDPOINTS }, { "ep", RES_ENDPOINTS },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].r;
            return 0;
        }
    }
    return -1;
}

/* Percent-encodes a query value into buf (names are DNS labels, but be safe). */
static void svcctl_query_escape(const char *s, char *buf, size_t len)
{
    char *enc = evhttp_uriencode(s, -1, 0);
    snprintf(buf, len, "%s", enc ? enc : "");
    free(enc);
}

static int svcctl_cmd_get(const struct svcctl_opts *o)
{
    char path[1024], ns[512], name[512];
    size_t used = (size_t)snprintf(path, sizeof(path), "/api/%s", svcctl_res_path[o->res]);
    char sep = '?';
    if (!o->all_ns) {
        svcctl_query_escape(o->ns, ns, sizeof(ns));
        used += (size_t)snprintf(path + used, sizeof(path) - used, "%cnamespace=%s", sep, ns);
        sep = '&';
    }
    if (o->name) {
        svcctl_query_escape(o->name, name, sizeof(name));
        snprintf(path + used, sizeof(path) - used, "%cname=%s", sep, name);
    }
    json_t *doc = NULL;
    if (svcctl_get_json(o, path, &doc) != 0)
        return 1;
    json_t *items = json_object_get(doc, "items");
    int rc = 0;
    if (!json_is_array(items)) {
        fprintf(stderr, "svcctl: unexpected answer from svcd (no items)\n");
        rc = 1;
        goto out;
    }
    if (o->name && json_array_size(items) == 0) {
        fprintf(stderr, "Error from server (NotFound): %s \"%s\" not found\n",
                svcctl_res_path[o->res], o->name);
        rc = 1;
        goto out;
    }
    if (o->out == OUT_YAML) {
        if (svcctl_print_yaml(o->name ? json_array_get(items, 0) : doc) < 0) {
            fprintf(stderr, "svcctl: cannot write YAML\n");
            rc = 1;
        }
        goto out;
    }
    if (o->out == OUT_JSON) {
        json_t *what = o->name ? json_array_get(items, 0) : doc;
        char *s = json_dumps(what, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        if (!s)
            svcctl_oom();
        printf("%s\n", s);
        free(s);
        goto out;
    }
    if (json_array_size(items) == 0) {
        if (o->all_ns)
            fprintf(stderr, "No resources found\n");
        else
            fprintf(stderr, "No resources found in %s namespace.\n", o->ns);
        goto out;
    }
    if (o->out == OUT_NAME) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
            printf("%s/%s\n", svcctl_res_kind[o->res], svcctl_jstr(it, "name", ""));
        goto out;
    }
    struct svcctl_table t = { 0 };
    if (o->res == RES_SERVICES)
        svcctl_services(o, items, &t);
    else if (o->res == RES_PODS)
        svcctl_pods(o, items, &t);
    else
        svcctl_endpoints(o, items, &t);
    svcctl_table_print(&t);
out:
    json_decref(doc);
    return rc;
}

/* svcctl status: generation, readiness and the manifests' problems. */
static int svcctl_cmd_status(const struct svcctl_opts *o)
{
    json_t *doc = NULL;
    if (svcctl_get_json(o, "/api/status", &doc) != 0)
        return 1;
    if (o->out == OUT_JSON) {
        char *txt = json_dumps(doc, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        if (txt)
            puts(txt);
        free(txt);
        json_decref(doc);
        return 0;
    }
    json_t *probs = json_object_get(doc, "problems");
    bool ready = json_is_true(json_object_get(doc, "ready"));
    printf("Generation:  %lld\n", json_integer_value(json_object_get(doc, "generation")));
    printf("Ready:       %s%s%s\n", ready ? "yes" : "no", ready ? "" : " - ",
           ready ? "" : svcctl_jstr(doc, "readyReason", ""));
    printf("Problems:    %zu\n", json_array_size(probs));
    if (json_array_size(probs)) {
        struct svcctl_table t = { 0 };
        static const char *const hdr[] = { "FILE", "OBJECT", "REASON", "PROBLEM" };
        t.ncols = 4;
        putchar('\n');
        svcctl_table_add(&t, hdr);
        size_t i;
        json_t *it;
        json_array_foreach(probs, i, it) {
            const char *row[4] = { svcctl_jstr(it, "file", ""), svcctl_jstr(it, "object", "-"),
                                   svcctl_jstr(it, "reason", ""),
                                   svcctl_jstr(it, "message", "") };
            svcctl_table_add(&t, row);
        }
        svcctl_table_print(&t);
    }
    json_decref(doc);
    return 0;
}

static int svcctl_cmd_version(const struct svcctl_opts *o)
{
    printf("Client Version: %s\n", SVCD_VERSION);
    json_t *doc = NULL;
    if (svcctl_get_json(o, "/", &doc) != 0)
        return 1;
    printf("Server Version: %s\n", svcctl_jstr(doc, "version", "unknown"));
    json_decref(doc);
    return 0;
}

int main(int argc, char **argv)
{
    struct svcctl_opts o;
    memset(&o, 0, sizeof(o));
    o.ns = "default";
    o.out = OUT_TABLE;
    const char *server = getenv("SVCD_SERVER");
    if (!server || !*server)
        server = SVCCTL_DEFAULT_SERVER;
    const char *now = getenv("SVCCTL_NOW");
    o.now = (now && *now) ? (time_t)strtoll(now, NULL, 10) : time(NULL);

    struct svcctl_etcd_opts eo = { .np_lo = 30000, .np_hi = 32767 };
    svcd_cidr_parse("10.96.0.0/16", &eo.service_cidr);
    eo.endpoints = getenv("SVCD_ETCD_ENDPOINTS");
    static const struct option longopts[] = {
        { "server", required_argument, NULL, 's' },
        { "etcd-endpoints", required_argument, NULL, 'E' },
        { "etcd-cafile", required_argument, NULL, 'C' },
        { "etcd-certfile", required_argument, NULL, 'T' },
        { "etcd-keyfile", required_argument, NULL, 'K' },
        { "service-cidr", required_argument, NULL, 'S' },
        { "node-port-range", required_argument, NULL, 'P' },
        { "filename", required_argument, NULL, 'f' },
        { "namespace", required_argument, NULL, 'n' },
        { "all-namespaces", no_argument, NULL, 'A' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    /* Options may appear anywhere (kubectl style): getopt permutes argv. */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:n:Ao:hf:", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'E': eo.endpoints = optarg; break;
        case 'C': eo.cafile = optarg; break;
        case 'T': eo.certfile = optarg; break;
        case 'K': eo.keyfile = optarg; break;
        case 'f': eo.file = optarg; break;
        case 'S':
            if (svcd_cidr_parse(optarg, &eo.service_cidr) != 0)
                return svcctl_usage_error("bad --service-cidr \"%s\"", optarg);
            break;
        case 'P': {
            unsigned lo, hi;
            if (sscanf(optarg, "%u-%u", &lo, &hi) != 2 || lo < 1 || hi > 65535 || lo > hi)
                return svcctl_usage_error("bad --node-port-range \"%s\" (want LO-HI)", optarg);
            eo.np_lo = (uint16_t)lo;
            eo.np_hi = (uint16_t)hi;
            break;
        }
        case 'n':
            if (!*optarg)
                return svcctl_usage_error("%sa namespace must not be empty", "");
            o.ns = optarg;
            break;
        case 'A':
            o.all_ns = true;
            break;
        case 'o':
            if (strcmp(optarg, "wide") == 0)
                o.out = OUT_WIDE;
            else if (strcmp(optarg, "json") == 0)
                o.out = OUT_JSON;
            else if (strcmp(optarg, "yaml") == 0)
                o.out = OUT_YAML;
            else if (strcmp(optarg, "name") == 0)
                o.out = OUT_NAME;
            else
                return svcctl_usage_error("unknown output format \"%s\" (use wide, json, yaml "
                                          "or name)",
                                          optarg);
            break;
        case 'h':
            svcctl_usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "svcctl: option %s needs a value\n", argv[optind - 1]);
            fputs("See 'svcctl --help' for usage.\n", stderr);
            return 2;
        case '?':
        default:
            if (optopt)
                fprintf(stderr, "svcctl: unknown option -%c\n", optopt);
            else
                fprintf(stderr, "svcctl: unknown option %s\n", argv[optind - 1]);
            fputs("See 'svcctl --help' for usage.\n", stderr);
            return 2;
        }
    }
    if (svcctl_parse_server(server, &o) != 0)
        return svcctl_usage_error("bad server address \"%s\" (want ADDR:PORT)", server);

    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs == 0) {
        svcctl_usage(stderr);
        return 2;
    }
    if (strcmp(args[0], "help") == 0) {
        svcctl_usage(stdout);
        return 0;
    }
    if (strcmp(args[0], "version") == 0) {
        if (nargs != 1)
            return svcctl_usage_error("%sversion takes no arguments", "");
        return svcctl_cmd_version(&o);
    }
    if (strcmp(args[0], "status") == 0) {
        if (nargs != 1)
            return svcctl_usage_error("%sstatus takes no arguments", "");
        return svcctl_cmd_status(&o);
    }
    if (strcmp(args[0], "apply") == 0 || strcmp(args[0], "delete") == 0) {
        if (nargs != 1 || !eo.file)
            return svcctl_usage_error("%s needs -f FILE (and no other argument)", args[0]);
        if (!eo.endpoints || !*eo.endpoints)
            return svcctl_usage_error("%s needs --etcd-endpoints or SVCD_ETCD_ENDPOINTS",
                                      args[0]);
        return svcctl_etcd_run(&eo, args[0][0] == 'd');
    }
    if (strcmp(args[0], "get") != 0)
        return svcctl_usage_error("unknown command \"%s\"", args[0]);
    if (nargs < 2)
        return svcctl_usage_error("%sget needs a resource type: services, pods or endpoints", "");
    if (nargs > 3)
        return svcctl_usage_error("too many arguments after \"%s\"", args[2]);
    if (svcctl_parse_resource(args[1], &o.res) != 0)
        return svcctl_usage_error("the server doesn't have a resource type \"%s\"", args[1]);
    if (nargs == 3)
        o.name = args[2];
    return svcctl_cmd_get(&o);
}
