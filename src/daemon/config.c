/*
 * config: defaults, then the YAML file named by --config, then flags.
 *
 * One table (config_opts) lists every setting once: its flag/key name, the
 * argument it takes and its help line. The YAML file uses the same names as
 * keys (a list for repeatable ones); `svcd --help` prints the table. A
 * repeatable flag given on the command line replaces the file's list.
 */
#include "svcd/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

enum config_id {
    OPT_CONFIG = 1, OPT_MANIFESTS, OPT_NODE_NAME, OPT_DNS_LISTEN, OPT_CLUSTER_DOMAIN,
    OPT_UPSTREAM, OPT_STUB_DOMAIN, OPT_DNS_TTL, OPT_DNS_UDP_MAX, OPT_DNS_POD_RECORDS,
    OPT_DNS_AUTOPATH, OPT_DNS_CACHE_SIZE, OPT_DNS_CACHE_MIN_TTL, OPT_DNS_CACHE_MAX_TTL,
    OPT_DNS_TCP_IDLE_MS, OPT_DNS_TCP_MAX_CONNS, OPT_DNS_ALLOW, OPT_SERVICE_CIDR, OPT_POD_CIDR,
    OPT_MASQUERADE_ALL, OPT_NODEPORT_ADDRESSES, OPT_NODE_IP,
    OPT_NFT_TABLE, OPT_NO_NFT, OPT_SYNC_MIN_INTERVAL_MS, OPT_ADMIN_LISTEN,
    OPT_ADMIN_MAX_CONNS, OPT_ADMIN_IDLE_MS, OPT_ADMIN_HEADER_TIMEOUT_MS, OPT_LOG_LEVEL,
    OPT_LOG_FORMAT, OPT_SOURCE, OPT_ETCD_ENDPOINTS, OPT_ETCD_LEASE_TTL,
    OPT_ETCD_CAFILE, OPT_ETCD_CERTFILE, OPT_ETCD_KEYFILE, OPT_STATE_DIR, OPT_NODE_PORT_RANGE,
    OPT_CLEANUP, OPT_VERSION, OPT_HELP,
};

struct config_opt {
    const char *name;
    enum config_id id;
    const char *arg;     /* NULL: a switch */
    bool repeatable;
    bool file_key;       /* also a config file key */
    const char *help;
};

static const struct config_opt config_opts[] = {
    { "config", OPT_CONFIG, "FILE", false, false, "read settings from a YAML file (flags win)" },
    { "manifests", OPT_MANIFESTS, "DIR", false, true,
      "directory of Kubernetes manifests (*.yaml, *.yml, *.json), watched" },
    { "source", OPT_SOURCE, "manifests=DIR|podman[=unix://PATH]", true, true,
      "where pods and services come from (repeatable; podman default socket "
      "unix:///run/podman/podman.sock)" },
    { "state-dir", OPT_STATE_DIR, "DIR", false, true,
      "where svcd keeps its clusterIP/nodePort allocations (default /var/lib/svcd, created "
      "if missing)" },
    { "node-port-range", OPT_NODE_PORT_RANGE, "MIN-MAX", false, true,
      "nodePorts are allocated from and must lie in this range (default 30000-32767)" },
    { "node-name", OPT_NODE_NAME, "NAME", false, true,
      "this node's name, for traffic policy Local (default: hostname)" },
    { "dns-listen", OPT_DNS_LISTEN, "ADDR:PORT", true, true,
      "serve DNS over UDP and TCP here (repeatable; none = DNS off)" },
    { "cluster-domain", OPT_CLUSTER_DOMAIN, "DOMAIN", false, true,
      "cluster DNS domain (default cluster.local)" },
    { "upstream", OPT_UPSTREAM, "ADDR[:PORT]", true, true,
      "upstream resolver (repeatable; default: nameservers of /etc/resolv.conf)" },
    { "stub-domain", OPT_STUB_DOMAIN, "DOMAIN=ADDR[:PORT][,ADDR...]", true, true,
      "forward DOMAIN to these servers instead (repeatable)" },
    { "dns-ttl", OPT_DNS_TTL, "SECONDS", false, true, "TTL of cluster records (default 5)" },
    { "dns-udp-max", OPT_DNS_UDP_MAX, "BYTES", false, true,
      "largest UDP answer, caps EDNS0 (512-65535, default 1232)" },
    { "dns-pod-records", OPT_DNS_POD_RECORDS, "true|false", false, true,
      "answer <a-b-c-d>.<ns>.pod.<domain> for existing pods (default true)" },
    { "dns-autopath", OPT_DNS_AUTOPATH, "true|false", false, true,
      "answer search-path queries of known pods in one step (default true)" },
    { "dns-cache-size", OPT_DNS_CACHE_SIZE, "ENTRIES", false, true,
      "upstream answer cache entries (default 10000, 0 = off)" },
    { "dns-cache-min-ttl", OPT_DNS_CACHE_MIN_TTL, "SECONDS", false, true,
      "cache answers at least this long (default 0)" },
    { "dns-cache-max-ttl", OPT_DNS_CACHE_MAX_TTL, "SECONDS", false, true,
      "cache answers at most this long (default 3600)" },
    { "dns-tcp-idle-ms", OPT_DNS_TCP_IDLE_MS, "MS", false, true,
      "close idle DNS TCP connections after this (default 10000)" },
    { "dns-tcp-max-conns", OPT_DNS_TCP_MAX_CONNS, "N", false, true,
      "most DNS TCP connections; the oldest idle is closed first (default 256)" },
    { "dns-allow", OPT_DNS_ALLOW, "CIDR", true, true,
      "also allow these clients to use forwarding (repeatable; loopback, service and pod "
      "ranges always are)" },
    { "service-cidr", OPT_SERVICE_CIDR, "CIDR", true, true,
      "service IP range (repeatable; reverse zone answered locally)" },
    { "pod-cidr", OPT_POD_CIDR, "CIDR", true, true,
      "pod IP range (repeatable; reverse zone answered locally, may forward)" },
    { "masquerade-all", OPT_MASQUERADE_ALL, NULL, false, true,
      "masquerade all traffic to Services (default: only traffic from outside --pod-cidr to "
      "ClusterIPs, and external traffic under externalTrafficPolicy Cluster)" },
    { "nodeport-addresses", OPT_NODEPORT_ADDRESSES, "CIDR|primary", true, true,
      "node addresses that accept NodePort traffic (repeatable; default primary: the node's "
      "primary addresses, from --node-ip or the interface of the default route)" },
    { "node-ip", OPT_NODE_IP, "ADDR", true, true,
      "this node's primary address (repeatable, one per family; default: the addresses of the "
      "interface holding the default route); in cluster mode the first is published with the "
      "node" },
    { "nft-table", OPT_NFT_TABLE, "NAME", false, true, "nftables table svcd owns (default svcd)" },
    { "no-nft", OPT_NO_NFT, NULL, false, true, "do not program nftables (DNS only)" },
    { "sync-min-interval-ms", OPT_SYNC_MIN_INTERVAL_MS, "MS", false, true,
      "coalesce changes for this long before an nftables sync (default 5)" },
    { "admin-listen", OPT_ADMIN_LISTEN, "ADDR:PORT|off", false, true,
      "admin HTTP API (default 127.0.0.1:9180)" },
    { "admin-max-conns", OPT_ADMIN_MAX_CONNS, "N", false, true,
      "most admin API connections; the least recently active is closed first (default 256)" },
    { "admin-idle-ms", OPT_ADMIN_IDLE_MS, "MS", false, true,
      "close admin connections idle this long (default 10000)" },
    { "admin-header-timeout-ms", OPT_ADMIN_HEADER_TIMEOUT_MS, "MS", false, true,
      "close a new admin connection that has not sent a request head by then (default 5000)" },
    { "log-level", OPT_LOG_LEVEL, "LEVEL", false, true, "error, warn, info or debug (default info)" },
    { "log-format", OPT_LOG_FORMAT, "FORMAT", false, true, "text or json (default text)" },
    { "etcd-endpoints", OPT_ETCD_ENDPOINTS, "URL[,URL...]", false, true,
      "join the cluster kept in etcd (v3 JSON gateway); docs/CLUSTER.md" },
    { "etcd-lease-ttl", OPT_ETCD_LEASE_TTL, "SECONDS", false, true,
      "TTL of this node's etcd lease: its pods vanish this long after it dies (default 10)" },
    { "etcd-cafile", OPT_ETCD_CAFILE, "FILE", false, true, "CA bundle to verify etcd (https)" },
    { "etcd-certfile", OPT_ETCD_CERTFILE, "FILE", false, true, "client certificate for etcd" },
    { "etcd-keyfile", OPT_ETCD_KEYFILE, "FILE", false, true, "key of the client certificate" },
    { "cleanup", OPT_CLEANUP, NULL, false, false, "remove svcd's nftables table and exit" },
    { "version", OPT_VERSION, NULL, false, false, "print the version and exit" },
    { "help", OPT_HELP, NULL, false, false, "print this help and exit" },
};
#define CONFIG_N_OPTS (sizeof(config_opts) / sizeof(config_opts[0]))

/* Where a value came from, for messages: "--dns-ttl" or "svcd.yaml: dns-ttl". */
struct config_origin {
    char text[4200];
};

static int config_err(const struct config_origin *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int config_err(const struct config_origin *o, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "svcd: %s: ", o->text);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

void config_defaults(struct svcd_config *c)
{
    memset(c, 0, sizeof(*c));
    if (gethostname(c->node_name, sizeof(c->node_name) - 1) < 0)
        snprintf(c->node_name, sizeof(c->node_name), "localhost");
    snprintf(c->cluster_domain, sizeof(c->cluster_domain), "cluster.local");
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/svcd");
    c->node_port_min = 30000;
    c->node_port_max = 32767;
    c->dns_ttl = 5;
    c->dns_udp_max = 1232;
    c->dns_pod_records = true;
    c->dns_autopath = true;
    c->dns_cache_size = 10000;
    c->dns_cache_min_ttl = 0;
    c->dns_cache_max_ttl = 3600;
    c->dns_tcp_idle_ms = 10000;
    c->dns_tcp_max_conns = 256;
    snprintf(c->nft_table, sizeof(c->nft_table), "svcd");
    c->etcd_lease_ttl = 10;
    c->sync_min_interval_ms = 5;
    config_parse_hostport("127.0.0.1:9180", 0, &c->admin_listen);
    c->admin_enabled = true;
    c->admin_max_conns = 256;
    c->admin_idle_ms = 10000;
    c->admin_header_ms = 5000;
    c->log_level = LOG_LVL_INFO;
    c->log_format = LOG_FMT_TEXT;
}

int config_parse_hostport(const char *s, uint16_t default_port, struct svcd_hostport *out)
{
    char host[64];
    const char *port = NULL;
    memset(out, 0, sizeof(*out));
    if (strlen(s) >= sizeof(out->text))
        return -1;
    snprintf(out->text, sizeof(out->text), "%s", s);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || (size_t)(end - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return -1;
    } else {
        const char *colon = strrchr(s, ':');
        /* A bare IPv6 address has several colons and no port. */
        if (colon && strchr(s, ':') == colon) {
            if ((size_t)(colon - s) >= sizeof(host))
                return -1;
            memcpy(host, s, (size_t)(colon - s));
            host[colon - s] = '\0';
            port = colon + 1;
        } else {
            snprintf(host, sizeof(host), "%s", s);
        }
    }
    if (svcd_ip_parse(host, &out->ip) < 0)
        return -1;
    if (port) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(port, &end, 10);
        if (errno || *end || end == port || p > 65535 || !isdigit((unsigned char)port[0]))
            return -1;
        out->port = (uint16_t)p;
    } else {
        if (!default_port)
            return -1;
        out->port = default_port;
    }
    return 0;
}

static int config_uint(const struct config_origin *o, const char *v, unsigned long min,
                       unsigned long max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || end == v || !isdigit((unsigned char)v[0]) || n < min || n > max)
        return config_err(o, "must be a whole number from %lu to %lu (got \"%s\")", min, max, v);
    *out = (uint32_t)n;
    return 0;
}

static int config_bool(const struct config_origin *o, const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) {
        *out = false;
        return 0;
    }
    return config_err(o, "must be true or false (got \"%s\")", v);
}

/* DNS name: labels of 1-63 of [a-z0-9-], not starting/ending with '-'. */
static bool config_dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    const char *label = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t l = (size_t)(p - label);
            if (l == 0 || l > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            return false;
        }
    }
}

static void config_lower_trim(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
    while (i > 0 && dst[i - 1] == '.')
        dst[--i] = '\0';
}

static int config_cidr(const struct config_origin *o, const char *v, struct svcd_cidr *list,
                       size_t *n)
{
    if (*n == SVCD_MAX_CIDR)
        return config_err(o, "at most %d ranges", SVCD_MAX_CIDR);
    if (svcd_cidr_parse(v, &list[*n]) < 0)
        return config_err(o, "must be a CIDR such as 10.96.0.0/16 or fd00::/108, with host "
                          "bits zero (got \"%s\")", v);
    (*n)++;
    return 0;
}

/* Applies one value. Repeatable options append. */
static int config_set(struct svcd_config *c, enum config_id id, const char *v,
                      const struct config_origin *o, bool *cleanup)
{
    uint32_t u;
    switch (id) {
    case OPT_CONFIG:
        snprintf(c->config_file, sizeof(c->config_file), "%s", v);
        return 0;
    case OPT_MANIFESTS:
        if (!*v)
            return config_err(o, "must name a directory");
        if (strlen(v) >= sizeof(c->manifests))
            return config_err(o, "path too long");
        snprintf(c->manifests, sizeof(c->manifests), "%s", v);
        return 0;
    case OPT_SOURCE:
        if (!strncmp(v, "manifests=", 10))
            return config_set(c, OPT_MANIFESTS, v + 10, o, cleanup);
        if (!strcmp(v, "podman")) {
            c->podman = true;
            snprintf(c->podman_socket, sizeof(c->podman_socket), "/run/podman/podman.sock");
            return 0;
        }
        if (!strncmp(v, "podman=unix://", 14) && v[14] == '/' &&
            strlen(v + 14) < sizeof(c->podman_socket)) {
            c->podman = true;
            snprintf(c->podman_socket, sizeof(c->podman_socket), "%s", v + 14);
            return 0;
        }
        return config_err(o, "must be manifests=DIR, podman or podman=unix:///PATH (got \"%s\")",
                          v);
    case OPT_NODE_NAME:
        if (!config_dns_name_ok(v) || strlen(v) >= sizeof(c->node_name))
            return config_err(o, "must be a DNS name (got \"%s\")", v);
        snprintf(c->node_name, sizeof(c->node_name), "%s", v);
        return 0;
    case OPT_DNS_LISTEN:
        if (c->n_dns_listen == SVCD_MAX_LISTEN)
            return config_err(o, "at most %d addresses", SVCD_MAX_LISTEN);
        if (config_parse_hostport(v, 53, &c->dns_listen[c->n_dns_listen]) < 0 ||
            c->dns_listen[c->n_dns_listen].port == 0)
            return config_err(o, "must be ADDR:PORT, [V6ADDR]:PORT or ADDR, port 1-65535 "
                              "(got \"%s\")", v);
        c->n_dns_listen++;
        return 0;
    case OPT_CLUSTER_DOMAIN: {
        char d[256];
        config_lower_trim(d, sizeof(d), v);          /* "cluster.local." too */
        if (!config_dns_name_ok(d) || strlen(v) >= sizeof(d))
            return config_err(o, "must be a DNS name such as cluster.local (got \"%s\")", v);
        snprintf(c->cluster_domain, sizeof(c->cluster_domain), "%s", d);
        return 0;
    }
    case OPT_UPSTREAM:
        if (c->n_upstream == SVCD_MAX_UPSTREAM)
            return config_err(o, "at most %d upstreams", SVCD_MAX_UPSTREAM);
        if (config_parse_hostport(v, 53, &c->upstream[c->n_upstream]) < 0)
            return config_err(o, "must be ADDR, ADDR:PORT or [V6ADDR]:PORT (got \"%s\")", v);
        c->n_upstream++;
        return 0;
    case OPT_STUB_DOMAIN: {
        if (c->n_stub == SVCD_MAX_STUB)
            return config_err(o, "at most %d stub domains", SVCD_MAX_STUB);
        const char *eq = strchr(v, '=');
        char dom[256];
        if (!eq || (size_t)(eq - v) >= sizeof(dom))
            return config_err(o, "must be DOMAIN=ADDR[:PORT][,ADDR[:PORT]...] (got \"%s\")", v);
        memcpy(dom, v, (size_t)(eq - v));
        dom[eq - v] = '\0';
        struct svcd_stub_domain *sd = &c->stub[c->n_stub];
        memset(sd, 0, sizeof(*sd));
        config_lower_trim(sd->domain, sizeof(sd->domain), dom);  /* "corp.example." too */
        if (!config_dns_name_ok(sd->domain))
            return config_err(o, "\"%s\" is not a DNS name", dom);
        char list[1024];
        snprintf(list, sizeof(list), "%s", eq + 1);
        char *save = NULL;
        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (sd->n_servers == SVCD_MAX_UPSTREAM)
                return config_err(o, "at most %d servers per stub domain", SVCD_MAX_UPSTREAM);
            if (config_parse_hostport(tok, 53, &sd->servers[sd->n_servers]) < 0)
                return config_err(o, "\"%s\" is not ADDR[:PORT]", tok);
            sd->n_servers++;
        }
        if (sd->n_servers == 0)
            return config_err(o, "stub domain %s has no servers", dom);
        c->n_stub++;
        return 0;
    }
    case OPT_DNS_TTL:
        return config_uint(o, v, 0, 604800, &c->dns_ttl);
    case OPT_DNS_UDP_MAX:
        if (config_uint(o, v, 512, 65535, &u) < 0)
            return -1;
        c->dns_udp_max = (uint16_t)u;
        return 0;
    case OPT_DNS_POD_RECORDS:
        return config_bool(o, v, &c->dns_pod_records);
    case OPT_DNS_AUTOPATH:
        return config_bool(o, v, &c->dns_autopath);
    case OPT_DNS_CACHE_SIZE:
        return config_uint(o, v, 0, 10000000, &c->dns_cache_size);
    case OPT_DNS_CACHE_MIN_TTL:
        return config_uint(o, v, 0, 604800, &c->dns_cache_min_ttl);
    case OPT_DNS_CACHE_MAX_TTL:
        return config_uint(o, v, 0, 604800, &c->dns_cache_max_ttl);
    case OPT_DNS_TCP_IDLE_MS:
        return config_uint(o, v, 100, 3600000, &c->dns_tcp_idle_ms);
    case OPT_DNS_TCP_MAX_CONNS:
        return config_uint(o, v, 1, 100000, &c->dns_tcp_max_conns);
    case OPT_DNS_ALLOW:
        return config_cidr(o, v, c->dns_allow, &c->n_dns_allow);
    case OPT_SERVICE_CIDR:
        return config_cidr(o, v, c->service_cidr, &c->n_service_cidr);
    case OPT_STATE_DIR:
        if (!*v || strlen(v) >= sizeof(c->state_dir))
            return config_err(o, "must be a directory path (got \"%s\")", v);
        snprintf(c->state_dir, sizeof(c->state_dir), "%s", v);
        return 0;
    case OPT_NODE_PORT_RANGE: {
        unsigned lo, hi;
        int end = 0;
        if (sscanf(v, "%u-%u%n", &lo, &hi, &end) != 2 || v[end] || !isdigit((unsigned char)v[0]) ||
            lo < 1 || hi > 65535 || lo > hi)
            return config_err(o, "must be MIN-MAX with 1 <= MIN <= MAX <= 65535 (got \"%s\")", v);
        c->node_port_min = (uint16_t)lo;
        c->node_port_max = (uint16_t)hi;
        return 0;
    }
    case OPT_POD_CIDR:
        return config_cidr(o, v, c->pod_cidr, &c->n_pod_cidr);
    case OPT_MASQUERADE_ALL:
        if (v)
            return config_bool(o, v, &c->masquerade_all);
        c->masquerade_all = true;
        return 0;
    case OPT_NODEPORT_ADDRESSES:
        if (!strcmp(v, "primary")) {
            c->nodeport_primary = true;
            return 0;
        }
        if (config_cidr(o, v, c->nodeport_cidr, &c->n_nodeport_cidr) < 0)
            return -1;
        return 0;
    case OPT_NODE_IP: {
        struct svcd_ip ip;
        if (svcd_ip_parse(v, &ip) < 0)
            return config_err(o, "must be an IPv4 or IPv6 address (got \"%s\")", v);
        for (size_t i = 0; i < c->n_node_ip; i++)
            if (c->node_ip[i].family == ip.family)
                return config_err(o, "at most one address per family (got \"%s\")", v);
        c->node_ip[c->n_node_ip++] = ip;
        return 0;
    }
    case OPT_NFT_TABLE: {
        size_t n = strlen(v);
        bool ok = n > 0 && n < 32;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '-';
        if (!ok)
            return config_err(o, "must be 1-31 characters of letters, digits, '_' or '-' "
                              "(got \"%s\")", v);
        snprintf(c->nft_table, sizeof(c->nft_table), "%s", v);
        return 0;
    }
    case OPT_NO_NFT:
        if (v)
            return config_bool(o, v, &c->no_nft);
        c->no_nft = true;
        return 0;
    case OPT_SYNC_MIN_INTERVAL_MS:
        return config_uint(o, v, 0, 60000, &c->sync_min_interval_ms);
    case OPT_ADMIN_LISTEN:
        if (!strcmp(v, "off") || !strcmp(v, "")) {
            c->admin_enabled = false;
            return 0;
        }
        if (config_parse_hostport(v, 0, &c->admin_listen) < 0)
            return config_err(o, "must be ADDR:PORT, [V6ADDR]:PORT or off (got \"%s\")", v);
        c->admin_enabled = true;
        return 0;
    case OPT_ADMIN_MAX_CONNS:
        return config_uint(o, v, 1, 100000, &c->admin_max_conns);
    case OPT_ADMIN_IDLE_MS:
        return config_uint(o, v, 100, 3600000, &c->admin_idle_ms);
    case OPT_ADMIN_HEADER_TIMEOUT_MS:
        return config_uint(o, v, 100, 600000, &c->admin_header_ms);
    case OPT_LOG_LEVEL:
        if (log_level_parse(v, &c->log_level) < 0)
            return config_err(o, "must be error, warn, info or debug (got \"%s\")", v);
        return 0;
    case OPT_LOG_FORMAT:
        if (log_format_parse(v, &c->log_format) < 0)
            return config_err(o, "must be text or json (got \"%s\")", v);
        return 0;
    case OPT_ETCD_ENDPOINTS:
        if (strlen(v) >= sizeof(c->etcd_endpoints))
            return config_err(o, "too long");
        if (*v && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
            return config_err(o, "must be a comma-separated list of http:// or https:// URLs "
                              "(got \"%s\")", v);
        snprintf(c->etcd_endpoints, sizeof(c->etcd_endpoints), "%s", v);
        return 0;
    case OPT_ETCD_LEASE_TTL:
        return config_uint(o, v, 2, 3600, &c->etcd_lease_ttl);
    case OPT_ETCD_CAFILE:
    case OPT_ETCD_CERTFILE:
    case OPT_ETCD_KEYFILE: {
        char *dst = id == OPT_ETCD_CAFILE ? c->etcd_cafile
                  : id == OPT_ETCD_CERTFILE ? c->etcd_certfile : c->etcd_keyfile;
        if (!*v || strlen(v) >= sizeof(c->etcd_cafile))
            return config_err(o, "must name a file");
        snprintf(dst, sizeof(c->etcd_cafile), "%s", v);
        return 0;
    }
    case OPT_CLEANUP:
        if (cleanup)
            *cleanup = true;
        return 0;
    case OPT_VERSION:
    case OPT_HELP:
        return 0;
    }
    return 0;
}

/* Empties a repeatable list before the command line replaces it. */
static void config_clear_list(struct svcd_config *c, enum config_id id)
{
    switch (id) {
    case OPT_DNS_LISTEN: c->n_dns_listen = 0; break;
    case OPT_SOURCE: c->podman = false; break;
    case OPT_UPSTREAM: c->n_upstream = 0; break;
    case OPT_STUB_DOMAIN: c->n_stub = 0; break;
    case OPT_DNS_ALLOW: c->n_dns_allow = 0; break;
    case OPT_SERVICE_CIDR: c->n_service_cidr = 0; break;
    case OPT_POD_CIDR: c->n_pod_cidr = 0; break;
    case OPT_NODEPORT_ADDRESSES: c->n_nodeport_cidr = 0; c->nodeport_primary = false; break;
    case OPT_NODE_IP: c->n_node_ip = 0; break;
    default: break;
    }
}

static const struct config_opt *config_find(const char *name)
{
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        if (strcmp(config_opts[i].name, name) == 0)
            return &config_opts[i];
    return NULL;
}

static const char *config_scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Loads the YAML config file: a mapping of option names to values. */
static int config_load_file(struct svcd_config *c, const char *path)
{
    struct config_origin o;
    snprintf(o.text, sizeof(o.text), "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return config_err(&o, "cannot open: %s", strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        config_err(&o, "line %zu column %zu: %s", parser.problem_mark.line + 1,
                   parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {              /* empty file: nothing to set */
        rc = 0;
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        config_err(&o, "must be a mapping of settings (key: value)");
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
        const char *key = config_scalar(kn);
        if (!key) {
            config_err(&o, "keys must be plain names");
            goto out;
        }
        snprintf(o.text, sizeof(o.text), "%s: %s", path, key);
        const struct config_opt *opt = config_find(key);
        if (!opt || !opt->file_key) {
            config_err(&o, "unknown setting (see svcd --help)");
            goto out;
        }
        if (opt->id == OPT_STUB_DOMAIN && vn && vn->type == YAML_MAPPING_NODE) {
            /* stub-domain: {corp.example: [10.0.0.53, ...]} */
            config_clear_list(c, opt->id);
            for (yaml_node_pair_t *q = vn->data.mapping.pairs.start;
                 q < vn->data.mapping.pairs.top; q++) {
                const char *dom = config_scalar(yaml_document_get_node(&doc, q->key));
                yaml_node_t *sv = yaml_document_get_node(&doc, q->value);
                char buf[1024] = "";
                if (!dom) {
                    config_err(&o, "domain names must be scalars");
                    goto out;
                }
                int k0 = snprintf(buf, sizeof(buf), "%s=", dom);
                if (k0 < 0 || (size_t)k0 >= sizeof(buf)) {
                    config_err(&o, "domain name too long");
                    goto out;
                }
                size_t used = (size_t)k0;
                if (sv && sv->type == YAML_SEQUENCE_NODE) {
                    for (yaml_node_item_t *it = sv->data.sequence.items.start;
                         it < sv->data.sequence.items.top && used < sizeof(buf); it++) {
                        const char *s = config_scalar(yaml_document_get_node(&doc, *it));
                        if (!s) {
                            config_err(&o, "servers must be scalars");
                            goto out;
                        }
                        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
                                                 it == sv->data.sequence.items.start ? "" : ",",
                                                 s);
                    }
                } else if (config_scalar(sv)) {
                    snprintf(buf + used, sizeof(buf) - used, "%s", config_scalar(sv));
                }
                if (config_set(c, opt->id, buf, &o, NULL) < 0)
                    goto out;
            }
            continue;
        }
        if (vn && vn->type == YAML_SEQUENCE_NODE) {
            if (!opt->repeatable) {
                config_err(&o, "takes one value, not a list");
                goto out;
            }
            config_clear_list(c, opt->id);
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++) {
                const char *s = config_scalar(yaml_document_get_node(&doc, *it));
                if (!s) {
                    config_err(&o, "list items must be scalars");
                    goto out;
                }
                if (config_set(c, opt->id, s, &o, NULL) < 0)
                    goto out;
            }
            continue;
        }
        const char *v = config_scalar(vn);
        if (!v) {
            config_err(&o, "must be a scalar%s", opt->repeatable ? " or a list" : "");
            goto out;
        }
        if (opt->repeatable)
            config_clear_list(c, opt->id);
        if (config_set(c, opt->id, v, &o, NULL) < 0)
            goto out;
    }
    rc = 0;
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

static void config_usage(FILE *out)
{
    fprintf(out, "Usage: svcd [OPTIONS]\n"
                 "Node-local Kubernetes Service proxy: nftables VIPs and cluster DNS.\n\n");
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        const struct config_opt *o = &config_opts[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        fprintf(out, "  %-34s %s\n", left, o->help);
    }
    fprintf(out, "\nEvery option but --config, --cleanup, --version and --help is also a key of "
                 "the YAML config file\n(see conf/svcd.yaml). Signals: SIGTERM/SIGINT stop, "
                 "SIGHUP reloads the config and rescans manifests.\n");
}

static int config_parse(struct svcd_config *c, int argc, char **argv, bool *cleanup,
                        bool quiet_exit)
{
    struct option longopts[CONFIG_N_OPTS + 1];
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        longopts[i].name = config_opts[i].name;
        longopts[i].has_arg = config_opts[i].arg ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = config_opts[i].id;
    }
    memset(&longopts[CONFIG_N_OPTS], 0, sizeof(longopts[0]));

    /* Pass 1: --config, --help, --version. */
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (ch == OPT_CONFIG) {
            snprintf(c->config_file, sizeof(c->config_file), "%s", optarg);
        } else if (ch == OPT_HELP || ch == 'h') {
            if (!quiet_exit)
                config_usage(stdout);
            return 1;
        } else if (ch == OPT_VERSION) {
            if (!quiet_exit)
                printf("svcd %s\n", SVCD_VERSION);
            return 1;
        }
    }
    if (c->config_file[0] && config_load_file(c, c->config_file) < 0)
        return -1;

    /* Pass 2: every flag, over the file. */
    bool cleared[OPT_HELP + 1] = { false };
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        struct config_origin o;
        if (ch == '?' || ch == ':') {
            const char *bad = argv[optind - 1];
            if (optopt == 0)
                fprintf(stderr, "svcd: unknown option %s (see svcd --help)\n", bad);
            else if (optopt > 0 && optopt <= OPT_HELP && strchr(bad, '='))
                fprintf(stderr, "svcd: %s: --%.*s takes no value (see svcd --help)\n", bad,
                        (int)(strchr(bad, '=') - bad - 2), bad + 2);
            else if (optopt > 0 && optopt <= OPT_HELP)
                fprintf(stderr, "svcd: %s needs a value (see svcd --help)\n", bad);
            else
                fprintf(stderr, "svcd: unknown option -%c (see svcd --help)\n", optopt);
            return -1;
        }
        const struct config_opt *opt = NULL;
        for (size_t i = 0; i < CONFIG_N_OPTS; i++)
            if ((int)config_opts[i].id == ch)
                opt = &config_opts[i];
        if (!opt || opt->id == OPT_CONFIG)
            continue;
        snprintf(o.text, sizeof(o.text), "--%s", opt->name);
        if (opt->repeatable && !cleared[opt->id]) {
            config_clear_list(c, opt->id);
            cleared[opt->id] = true;
        }
        if (config_set(c, opt->id, opt->arg ? optarg : NULL, &o, cleanup) < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "svcd: unexpected argument \"%s\" (see svcd --help)\n", argv[optind]);
        return -1;
    }
    if (c->dns_cache_min_ttl > c->dns_cache_max_ttl) {
        fprintf(stderr, "svcd: --dns-cache-min-ttl (%u) is larger than --dns-cache-max-ttl "
                "(%u)\n", c->dns_cache_min_ttl, c->dns_cache_max_ttl);
        return -1;
    }
    return 0;
}

int config_load(struct svcd_config *c, int argc, char **argv, bool *cleanup)
{
    config_defaults(c);
    if (cleanup)
        *cleanup = false;
    return config_parse(c, argc, argv, cleanup, false);
}

int config_reload(struct svcd_config *c, int argc, char **argv)
{
    struct svcd_config *n = malloc(sizeof(*n));
    if (!n)
        return -1;
    config_defaults(n);
    int rc = config_parse(n, argc, argv, NULL, true);
    if (rc == 0)
        *c = *n;
    free(n);
    return rc == 0 ? 0 : -1;
}
