/*
 * podman_map: libpod JSON -> model objects, with no I/O.
 *
 * podman_src.c fetches the JSON (pod list entries, container inspects,
 * event lines); this file decides what they mean for a Kubernetes Pod:
 * name, namespace, labels, IPs, ports, phase, Ready, and the probes
 * declared in labels. Every accessor checks the JSON type it reads, so a
 * podman version that changes a field's shape leaves the field unset
 * rather than crashing. The fingerprint hashes exactly the fields set, so
 * a re-read that changes nothing is a no-op in the store.
 */
#include "svcd/podman.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "svcd/hmap.h"
#include "svcd/probe.h"

#define PM_MAX_PORTS 256          /* per container, from all sources */

__attribute__((format(printf, 3, 4)))
static void pm_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- typed JSON accessors ------------------------------------------------ */

static const char *pm_str(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *pm_obj(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_object(v) ? v : NULL;
}

static bool pm_bool(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_true(v);
}

static int64_t pm_int(const json_t *obj, const char *key, int64_t dflt)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void pm_copy(char *dst, size_t len, const char *src)
{
    if (!src)
        src = "";
    snprintf(dst, len, "%s", src);
}

/* ---- events -------------------------------------------------------------- */

int podman_event_parse(const char *line, size_t len, struct podman_event *out)
{
    json_error_t jerr;
    json_t *root;
    const char *type, *action, *id, *health;
    const json_t *attrs;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root))
        goto out;
    type = pm_str(root, "Type");
    action = pm_str(root, "Action");
    if (!action)
        action = pm_str(root, "status");
    if (!type || !action)
        goto out;
    if (strcmp(type, "pod") == 0)
        out->type = PODMAN_EV_POD;
    else if (strcmp(type, "container") == 0)
        out->type = PODMAN_EV_CONTAINER;
    else
        out->type = PODMAN_EV_OTHER;
    pm_copy(out->action, sizeof(out->action), action);
    id = pm_str(pm_obj(root, "Actor"), "ID");
    if (!id)
        id = pm_str(root, "id");
    pm_copy(out->id, sizeof(out->id), id);
    attrs = pm_obj(pm_obj(root, "Actor"), "Attributes");
    pm_copy(out->pod_id, sizeof(out->pod_id), pm_str(attrs, "podId"));
    health = pm_str(root, "HealthStatus");
    pm_copy(out->health, sizeof(out->health), health);
    if (out->type == PODMAN_EV_POD && !out->pod_id[0])
        pm_copy(out->pod_id, sizeof(out->pod_id), out->id);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

bool podman_event_relevant(const struct podman_event *ev)
{
    static const char *const actions[] = {
        "create", "init", "start", "restart", "died", "stop", "kill", "remove",
        "pause", "unpause", "health_status", "cleanup", "rename",
    };
    size_t i;

    if (ev->type == PODMAN_EV_OTHER)
        return false;
    for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(ev->action, actions[i]) == 0)
            return true;
    return false;
}

/* ---- ports and probes from labels --------------------------------------- */

/* Adds a port unless (port, protocol) is there already; a name given later
 * fills an unnamed one. 0 or -1 (ENOMEM / too many). */
static int pm_port_add(struct svcd_container_port **ports, size_t *n, const char *name,
                       uint16_t port, enum svcd_proto proto)
{
    struct svcd_container_port *np;
    size_t i;

    for (i = 0; i < *n; i++) {
        if ((*ports)[i].container_port == port && (*ports)[i].protocol == proto) {
            if (name && !(*ports)[i].name && !((*ports)[i].name = strdup(name)))
                return -1;
            return 0;
        }
    }
    if (*n >= PM_MAX_PORTS)
        return -1;
    np = realloc(*ports, (*n + 1) * sizeof(*np));
    if (!np)
        return -1;
    *ports = np;
    memset(&np[*n], 0, sizeof(np[*n]));
    np[*n].container_port = port;
    np[*n].protocol = proto;
    if (name && !(np[*n].name = strdup(name)))
        return -1;
    (*n)++;
    return 0;
}

/* "8080", "8080/tcp", "53/UDP" -> port, proto. 0 or -1. */
static int pm_port_spec(const char *s, uint16_t *port, enum svcd_proto *proto)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    *proto = SVCD_PROTO_TCP;
    if (*end == '\0')
        return 0;
    if (*end != '/')
        return -1;
    end++;
    if (strcasecmp(end, "tcp") == 0)
        *proto = SVCD_PROTO_TCP;
    else if (strcasecmp(end, "udp") == 0)
        *proto = SVCD_PROTO_UDP;
    else if (strcasecmp(end, "sctp") == 0)
        *proto = SVCD_PROTO_SCTP;
    else
        return -1;
    return 0;
}

/* An IANA_SVC_NAME as Kubernetes checks it: 1-15 of [a-z0-9-], a letter,
 * no leading/trailing/double '-'. */
static bool pm_port_name_ok(const char *s)
{
    size_t len = strlen(s), i;
    bool letter = false;

    if (len < 1 || len > 15 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            letter = true;
        else if (!(c >= '0' && c <= '9') && !(c == '-' && s[i + 1] != '-'))
            return false;
    }
    return letter;
}

int podman_ports_parse(const char *text, struct svcd_container_port **ports, size_t *n,
                       char *err, size_t errlen)
{
    char *copy, *save = NULL, *item;
    int rc = 0;

    copy = strdup(text ? text : "");
    if (!copy) {
        pm_err(err, errlen, "out of memory");
        return -1;
    }
    for (item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(item, '='), *name = NULL, *spec = item;
        uint16_t port;
        enum svcd_proto proto;

        if (eq) {
            *eq = '\0';
            name = item;
            spec = eq + 1;
            if (!pm_port_name_ok(name)) {
                pm_err(err, errlen, "port name \"%s\" is not a valid IANA_SVC_NAME", name);
                rc = -1;
                break;
            }
        }
        if (pm_port_spec(spec, &port, &proto)) {
            pm_err(err, errlen, "\"%s\" is not PORT[/TCP|UDP|SCTP]", spec);
            rc = -1;
            break;
        }
        if (pm_port_add(ports, n, name, port, proto)) {
            pm_err(err, errlen, "too many ports or out of memory");
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

int podman_probe_parse(const char *text, uint32_t period_s, struct svcd_probe *out,
                       char *err, size_t errlen)
{
    const char *rest;
    char *end;
    long v;

    memset(out, 0, sizeof(*out));
    out->period_s = period_s ? period_s : 10;
    out->timeout_s = 1;
    out->success_threshold = 1;
    out->failure_threshold = 3;
    if (!text)
        goto bad;
    if (strncmp(text, "exec:", 5) == 0) {
        rest = text + 5;
        while (*rest == ' ')
            rest++;
        if (!*rest)
            goto bad;
        out->exec_argv = calloc(4, sizeof(char *));
        if (!out->exec_argv || !(out->exec_argv[0] = strdup("/bin/sh")) ||
            !(out->exec_argv[1] = strdup("-c")) || !(out->exec_argv[2] = strdup(rest)))
            goto nomem;
        out->kind = SVCD_PROBE_EXEC;
        return 0;
    }
    if (strncmp(text, "tcp:", 4) == 0) {
        out->kind = SVCD_PROBE_TCP;
        rest = text + 4;
    } else if (strncmp(text, "http:", 5) == 0) {
        out->kind = SVCD_PROBE_HTTP;
        rest = text + 5;
    } else {
        goto bad;
    }
    errno = 0;
    v = strtol(rest, &end, 10);
    if (errno || end == rest || v < 1 || v > 65535)
        goto bad;
    out->port = (uint16_t)v;
    if (out->kind == SVCD_PROBE_TCP) {
        if (*end)
            goto bad;
        return 0;
    }
    if (*end && *end != '/')
        goto bad;
    if (!(out->path = strdup(*end ? end : "/")) || !(out->scheme = strdup("HTTP")))
        goto nomem;
    return 0;
nomem:
    model_probe_free(out);
    memset(out, 0, sizeof(*out));
    pm_err(err, errlen, "out of memory");
    return -1;
bad:
    model_probe_free(out);
    memset(out, 0, sizeof(*out));
    pm_err(err, errlen, "\"%s\" is not tcp:PORT, http:PORT[/PATH] or exec:COMMAND",
           text ? text : "");
    return -1;
}

/* ---- healthchecks -------------------------------------------------------- */

static bool pm_has_healthcheck(const json_t *inspect)
{
    const json_t *hc = pm_obj(pm_obj(inspect, "Config"), "Healthcheck");
    const json_t *test = hc ? json_object_get(hc, "Test") : NULL;
    const char *t0;

    if (!json_is_array(test) || json_array_size(test) == 0)
        return false;
    t0 = json_string_value(json_array_get(test, 0));
    if (t0 && strcmp(t0, "NONE") == 0)
        return false;
    return true;
}

uint32_t podman_healthcheck_interval(const json_t *inspect)
{
    const json_t *hc = pm_obj(pm_obj(inspect, "Config"), "Healthcheck");
    int64_t ns;

    if (!pm_has_healthcheck(inspect))
        return 0;
    ns = pm_int(hc, "Interval", 0);
    if (ns <= 0)
        return 30;
    ns /= 1000000000LL;
    if (ns < 1)
        return 1;
    if (ns > 300)
        return 300;
    return (uint32_t)ns;
}

/* State.Health (podman 4) or State.Healthcheck (older) status, or NULL. */
static const char *pm_health_status(const json_t *inspect)
{
    const json_t *state = pm_obj(inspect, "State");
    const json_t *h = pm_obj(state, "Health");

    if (!h)
        h = pm_obj(state, "Healthcheck");
    return pm_str(h, "Status");
}

/* ---- fingerprint --------------------------------------------------------- */

static void fp_bytes(uint64_t *h, const void *p, size_t len)
{
    *h = hmap_hash(p, len, *h);
    *h = hmap_hash("\x1f", 1, *h);
}

static void fp_str(uint64_t *h, const char *s)
{
    if (s)
        fp_bytes(h, s, strlen(s));
    else
        fp_bytes(h, "\x00\x01", 2);
}

static void fp_u64(uint64_t *h, uint64_t v)
{
    fp_bytes(h, &v, sizeof(v));
}

static void fp_kvmap(uint64_t *h, const struct svcd_kvmap *m)
{
    size_t i;

    fp_u64(h, m->n);
    for (i = 0; i < m->n; i++) {
        fp_str(h, m->items[i].key);
        fp_str(h, m->items[i].value);
    }
}

static void fp_probe(uint64_t *h, const struct svcd_probe *p)
{
    size_t i;

    fp_u64(h, (uint64_t)p->kind);
    if (p->exec_argv)
        for (i = 0; p->exec_argv[i]; i++)
            fp_str(h, p->exec_argv[i]);
    fp_u64(h, p->port);
    fp_str(h, p->path);
    fp_str(h, p->scheme);
    fp_u64(h, p->period_s);
}

static uint64_t pm_pod_fingerprint(const struct svcd_pod *p)
{
    uint64_t h = HMAP_HASH_SEED;
    size_t i, j;

    fp_str(&h, p->meta.name);
    fp_str(&h, p->meta.ns);
    fp_str(&h, p->meta.uid);
    fp_u64(&h, (uint64_t)p->meta.created);
    fp_kvmap(&h, &p->meta.labels);
    fp_kvmap(&h, &p->meta.annotations);
    fp_str(&h, p->hostname);
    fp_str(&h, p->subdomain);
    fp_str(&h, p->node_name);
    fp_u64(&h, (uint64_t)p->phase);
    fp_u64(&h, (uint64_t)p->ready_condition);
    fp_u64(&h, p->n_ips);
    for (i = 0; i < p->n_ips; i++) {
        fp_u64(&h, (uint64_t)p->ips[i].family);
        fp_bytes(&h, p->ips[i].u.bytes, 16);
    }
    fp_u64(&h, p->n_containers);
    for (i = 0; i < p->n_containers; i++) {
        const struct svcd_container *c = &p->containers[i];
        fp_str(&h, c->name);
        fp_u64(&h, c->n_ports);
        for (j = 0; j < c->n_ports; j++) {
            fp_str(&h, c->ports[j].name);
            fp_u64(&h, c->ports[j].container_port);
            fp_u64(&h, (uint64_t)c->ports[j].protocol);
        }
        fp_probe(&h, &c->readiness);
    }
    return h;
}

/* ---- pod ------------------------------------------------------------------ */

/* RFC 3339 ("2026-11-27T03:03:01.705479739Z") -> unix seconds; 0 if bad. */
static int64_t pm_time(const char *s)
{
    struct tm tm;
    const char *end;

    if (!s)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return (int64_t)timegm(&tm);
}

static enum svcd_pod_phase pm_phase(const char *status, const json_t *const *ins, size_t n,
                                    const char *infra_id)
{
    size_t i;

    if (!status)
        return SVCD_PHASE_UNKNOWN;
    if (!strcmp(status, "Running") || !strcmp(status, "Degraded") || !strcmp(status, "Paused"))
        return SVCD_PHASE_RUNNING;
    if (!strcmp(status, "Created"))
        return SVCD_PHASE_PENDING;
    if (!strcmp(status, "Exited") || !strcmp(status, "Stopped")) {
        for (i = 0; i < n; i++) {
            const char *id = pm_str(ins[i], "Id");
            if (infra_id && id && !strcmp(id, infra_id))
                continue;
            if (pm_int(pm_obj(ins[i], "State"), "ExitCode", 0) != 0)
                return SVCD_PHASE_FAILED;
        }
        return SVCD_PHASE_SUCCEEDED;
    }
    if (!strcmp(status, "Dead") || !strcmp(status, "Error"))
        return SVCD_PHASE_FAILED;
    return SVCD_PHASE_UNKNOWN;
}

static int pm_name_cmp(const void *a, const void *b)
{
    const char *x = pm_str(*(const json_t *const *)a, "Name");
    const char *y = pm_str(*(const json_t *const *)b, "Name");
    return strcmp(x ? x : "", y ? y : "");
}

static int pm_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pod's IPs from a container's NetworkSettings: first IPv4 and first
 * IPv6 over the networks in name order (podman's own order is a map's). */
static void pm_ips(struct svcd_pod *p, const json_t *net_ctr)
{
    const json_t *ns = pm_obj(net_ctr, "NetworkSettings");
    const json_t *nets = pm_obj(ns, "Networks");
    const char *keys[64];
    const char *key;
    json_t *val;
    size_t nk = 0, i;
    bool have4 = false, have6 = false;
    struct svcd_ip ip4, ip6;

    json_object_foreach((json_t *)nets, key, val) {
        (void)val;
        if (nk < sizeof(keys) / sizeof(keys[0]))
            keys[nk++] = key;
    }
    qsort(keys, nk, sizeof(keys[0]), pm_key_cmp);
    for (i = 0; i < nk + 1; i++) {
        const json_t *n = i < nk ? pm_obj(nets, keys[i]) : ns;  /* then the top level */
        const char *a4 = pm_str(n, "IPAddress"), *a6 = pm_str(n, "GlobalIPv6Address");
        struct svcd_ip tmp;

        if (!have4 && a4 && *a4 && svcd_ip_parse(a4, &tmp) == 0 && tmp.family == AF_INET) {
            ip4 = tmp;
            have4 = true;
        }
        if (!have6 && a6 && *a6 && svcd_ip_parse(a6, &tmp) == 0 && tmp.family == AF_INET6) {
            ip6 = tmp;
            have6 = true;
        }
    }
    p->n_ips = 0;
    if (have4)
        p->ips[p->n_ips++] = ip4;
    if (have6)
        p->ips[p->n_ips++] = ip6;
}

/* Ports a container declares: Config.ExposedPorts {"8080/tcp":{}}. */
static int pm_exposed_ports(struct svcd_container *c, const json_t *obj)
{
    const char *key;
    json_t *val;
    uint16_t port;
    enum svcd_proto proto;

    json_object_foreach((json_t *)obj, key, val) {
        (void)val;
        if (pm_port_spec(key, &port, &proto) == 0 &&
            pm_port_add(&c->ports, &c->n_ports, NULL, port, proto))
            return -1;
    }
    return 0;
}

static int pm_ports_sort_cmp(const void *a, const void *b)
{
    const struct svcd_container_port *x = a, *y = b;
    if (x->container_port != y->container_port)
        return x->container_port < y->container_port ? -1 : 1;
    return (int)x->protocol - (int)y->protocol;
}

struct svcd_pod *podman_pod_build(const json_t *entry, const json_t *const *inspects,
                                  size_t n_inspects, const char *node_name, char *err,
                                  size_t errlen)
{
    struct svcd_pod *p = NULL;
    const json_t *labels = pm_obj(entry, "Labels"), *infra = NULL, *net_ctr = NULL;
    const json_t **apps = NULL;
    const char *name = pm_str(entry, "Name"), *id = pm_str(entry, "Id");
    const char *infra_id = pm_str(entry, "InfraId"), *ns, *key, *s;
    json_t *val;
    size_t n_apps = 0, i, n_listed = 0;
    bool ready = true;
    char perr[160];

    if (!name || !*name) {
        pm_err(err, errlen, "pod %s has no name", id ? id : "?");
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    apps = calloc(n_inspects + 1, sizeof(*apps));
    if (!p || !apps)
        goto nomem;

    /* metadata */
    ns = pm_str(labels, PODMAN_NAMESPACE_LABEL);
    if (!(p->meta.name = strdup(name)) || !(p->meta.ns = strdup(ns && *ns ? ns : "default")))
        goto nomem;
    if (id && !(p->meta.uid = strdup(id)))
        goto nomem;
    json_object_foreach((json_t *)labels, key, val) {
        if (json_is_string(val) && svcd_kvmap_set(&p->meta.labels, key, json_string_value(val)))
            goto nomem;
    }
    if (id && svcd_kvmap_set(&p->meta.annotations, PODMAN_ID_ANNOTATION, id))
        goto nomem;
    p->meta.created = pm_time(pm_str(entry, "Created"));
    if (node_name && !(p->node_name = strdup(node_name)))
        goto nomem;
    s = pm_str(labels, PODMAN_SUBDOMAIN_LABEL);
    if (s && *s && !(p->subdomain = strdup(s)))
        goto nomem;

    /* containers: the infra one carries the network; the others are the
     * pod's containers, in name order */
    for (i = 0; i < n_inspects; i++) {
        const char *cid = pm_str(inspects[i], "Id");
        if (!json_is_object(inspects[i]))
            continue;
        if ((infra_id && cid && !strcmp(cid, infra_id)) || pm_bool(inspects[i], "IsInfra"))
            infra = inspects[i];
        else
            apps[n_apps++] = inspects[i];
    }
    qsort(apps, n_apps, sizeof(apps[0]), pm_name_cmp);
    net_ctr = infra ? infra : (n_apps ? apps[0] : NULL);

    p->phase = pm_phase(pm_str(entry, "Status"), inspects, n_inspects, infra_id);
    if (p->phase == SVCD_PHASE_RUNNING && net_ctr &&
        pm_bool(pm_obj(net_ctr, "State"), "Running"))
        pm_ips(p, net_ctr);
    s = pm_str(pm_obj(net_ctr, "Config"), "Hostname");
    if (s && *s && strcmp(s, name) != 0 && !(p->hostname = strdup(s)))
        goto nomem;
    s = pm_str(pm_obj(net_ctr, "NetworkSettings"), "SandboxKey");
    if (s && *s && svcd_kvmap_set(&p->meta.annotations, PROBE_NETNS_ANNOTATION, s))
        goto nomem;

    if (n_apps) {
        p->containers = calloc(n_apps, sizeof(*p->containers));
        if (!p->containers)
            goto nomem;
    }
    for (i = 0; i < n_apps; i++) {
        struct svcd_container *c = &p->containers[i];
        const json_t *st = pm_obj(apps[i], "State");
        const char *hs;

        p->n_containers++;
        s = pm_str(apps[i], "Name");
        if (!(c->name = strdup(s ? s : "")))
            goto nomem;
        if (pm_exposed_ports(c, pm_obj(pm_obj(apps[i], "Config"), "ExposedPorts")))
            goto nomem;
        if (!pm_bool(st, "Running") || pm_bool(st, "Paused"))
            ready = false;
        if (pm_has_healthcheck(apps[i])) {
            hs = pm_health_status(apps[i]);
            if (!hs || strcmp(hs, "healthy") != 0)
                ready = false;
        }
    }
    /* pod-level ports (published on the infra container, declared in the
     * label) and the label probe go to the first container */
    if (n_apps) {
        struct svcd_container *c0 = &p->containers[0];
        const json_t *pb = pm_obj(pm_obj(infra, "HostConfig"), "PortBindings");

        if (pm_exposed_ports(c0, pb))
            goto nomem;
        if (pm_exposed_ports(c0, pm_obj(pm_obj(infra, "Config"), "ExposedPorts")))
            goto nomem;
        s = pm_str(labels, PODMAN_PORTS_LABEL);
        if (s && podman_ports_parse(s, &c0->ports, &c0->n_ports, perr, sizeof(perr)))
            pm_err(err, errlen, "pod %s: label %s: %s (ignored)", name, PODMAN_PORTS_LABEL, perr);
        s = pm_str(labels, PODMAN_PROBE_LABEL);
        if (s) {
            const char *ps = pm_str(labels, PODMAN_PROBE_PERIOD_LABEL);
            long period = ps ? strtol(ps, NULL, 10) : 0;
            if (period < 0 || period > 3600)
                period = 0;
            if (podman_probe_parse(s, (uint32_t)period, &c0->readiness, perr, sizeof(perr)))
                pm_err(err, errlen, "pod %s: label %s: %s (ignored)", name, PODMAN_PROBE_LABEL,
                       perr);
        }
    }
    for (i = 0; i < p->n_containers; i++)
        if (p->containers[i].n_ports > 1)
            qsort(p->containers[i].ports, p->containers[i].n_ports,
                  sizeof(p->containers[i].ports[0]), pm_ports_sort_cmp);

    /* containers the list names that could not be inspected (removed in
     * between): not ready until the next read */
    {
        const json_t *listed = json_object_get(entry, "Containers");
        if (json_is_array(listed))
            n_listed = json_array_size(listed);
        if (n_listed > n_inspects)
            ready = false;
    }
    if (!pm_str(entry, "Status") || strcmp(pm_str(entry, "Status"), "Running") != 0)
        ready = false;   /* Degraded, Paused, not running */
    if (p->phase != SVCD_PHASE_RUNNING || p->n_ips == 0)
        ready = false;
    p->ready_condition = ready ? SVCD_TRUE : SVCD_FALSE;
    p->probe_ready = SVCD_UNKNOWN;
    p->meta.fingerprint = pm_pod_fingerprint(p);
    free(apps);
    return p;
nomem:
    pm_err(err, errlen, "out of memory");
    free(apps);
    model_pod_free(p);
    return NULL;
}
