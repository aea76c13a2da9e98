/*
 * config: svcd's settings, from defaults, then a YAML file (--config), then
 * command-line flags (flags win). Every key is also a flag; docs/CONFIG.md
 * and conf/svcd.yaml list them all.
 *
 * config_load() validates everything: a bad value is one clear message
 * naming the flag or the file and key, and the caller exits with status 2.
 */
#ifndef SVCD_CONFIG_H
#define SVCD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/log.h"
#include "svcd/model.h"

#define SVCD_MAX_LISTEN 8
#define SVCD_MAX_UPSTREAM 8
#define SVCD_MAX_CIDR 8
#define SVCD_MAX_STUB 16

/* host:port as given ("127.0.0.1:53", "[::1]:53"), parsed. */
struct svcd_hostport {
    struct svcd_ip ip;
    uint16_t port;
    char text[64];      /* as the user wrote it, for messages */
};

/* A per-domain upstream (CoreDNS "forward" per zone). */
struct svcd_stub_domain {
    char domain[256];   /* lower case, no trailing dot, e.g. "corp.example" */
    struct svcd_hostport servers[SVCD_MAX_UPSTREAM];
    size_t n_servers;
};

struct svcd_config {
    char config_file[4096];          /* "" when none */
    /* sources */
    char manifests[4096];            /* manifest directory, "" = none */
    bool podman;                     /* --source podman[=URL] given */
    char podman_socket[4096];        /* unix socket path of podman's API service,
                                        default /run/podman/podman.sock */
    char node_name[256];             /* default: hostname */
    char state_dir[4096];            /* allocations, default /var/lib/svcd */
    uint16_t node_port_min;          /* --node-port-range, default 30000-32767 */
    uint16_t node_port_max;
    /* dns */
    struct svcd_hostport dns_listen[SVCD_MAX_LISTEN];
    size_t n_dns_listen;             /* 0 = DNS off */
    char cluster_domain[256];        /* default cluster.local */
    struct svcd_hostport upstream[SVCD_MAX_UPSTREAM];
    size_t n_upstream;               /* 0 = from /etc/resolv.conf */
    struct svcd_stub_domain stub[SVCD_MAX_STUB];
    size_t n_stub;
    uint32_t dns_ttl;                /* default 5 */
    uint16_t dns_udp_max;            /* EDNS cap, default 1232 */
    bool dns_pod_records;            /* default true (pods verified) */
    bool dns_autopath;               /* default true */
    uint32_t dns_cache_size;         /* entries, default 10000 */
    uint32_t dns_cache_min_ttl;      /* default 0 */
    uint32_t dns_cache_max_ttl;      /* default 3600 */
    uint32_t dns_tcp_idle_ms;        /* default 10000 */
    uint32_t dns_tcp_max_conns;      /* default 256 */
    struct svcd_cidr dns_allow[SVCD_MAX_CIDR];  /* forwarding ACL extra nets */
    size_t n_dns_allow;
    /* data plane */
    struct svcd_cidr service_cidr[SVCD_MAX_CIDR];
    size_t n_service_cidr;
    struct svcd_cidr pod_cidr[SVCD_MAX_CIDR];
    size_t n_pod_cidr;
    bool masquerade_all;             /* --masquerade-all */
    struct svcd_cidr nodeport_cidr[SVCD_MAX_CIDR];  /* --nodeport-addresses CIDRs */
    size_t n_nodeport_cidr;
    bool nodeport_primary;           /* "primary" given (also the default when no CIDR) */
    struct svcd_ip node_ip[2];       /* --node-ip, one per family */
    size_t n_node_ip;
    char nft_table[64];              /* default "svcd" */
    bool no_nft;
    uint32_t sync_min_interval_ms;   /* default 5 */
    /* admin */
    struct svcd_hostport admin_listen; /* default 127.0.0.1:9180 */
    bool admin_enabled;                /* default true */
    uint32_t admin_max_conns;          /* default 256 */
    uint32_t admin_idle_ms;            /* default 10000 */
    uint32_t admin_header_ms;          /* default 5000 */
    /* cluster mode (docs/CLUSTER.md) */
    char etcd_endpoints[2048];       /* "" = single node */
    uint32_t etcd_lease_ttl;         /* seconds, default 10 */
    char etcd_cafile[1024], etcd_certfile[1024], etcd_keyfile[1024];  /* "" = none */
    /* logging */
    enum log_level log_level;
    enum log_format log_format;
};

/* Fills defaults. */
void config_defaults(struct svcd_config *c);

/* Parses argv (getopt_long), reading --config FILE first if given. Returns
 * 0 to run, 1 when the program should exit 0 (--help/--version printed),
 * -1 on error (message already printed to stderr). Sets *cleanup when
 * --cleanup was given. */
int config_load(struct svcd_config *c, int argc, char **argv, bool *cleanup);

/* Re-reads the config file (SIGHUP) over defaults + the original argv.
 * 0, or -1 with an error logged (the old config stays). */
int config_reload(struct svcd_config *c, int argc, char **argv);

/* Parses "ADDR:PORT", "[V6]:PORT", or "ADDR" with default_port (0 = port
 * required). 0 or -1. */
int config_parse_hostport(const char *s, uint16_t default_port, struct svcd_hostport *out);

#endif
