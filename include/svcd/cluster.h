/*
 * cluster: svcd nodes sharing Services and Pods through etcd.
 *
 * Key layout (docs/CLUSTER.md):
 *   /svcd/services/<ns>/<name>            Service JSON (Kubernetes shape), written by svcctl
 *   /svcd/pods/<node>/<ns>/<name>         Pod JSON with readiness, under <node>'s lease
 *   /svcd/nodes/<node>                    {"name","ip"} under <node>'s lease
 *   /svcd/alloc/clusterip/<ip>            "<ns>/<name>" owning the ClusterIP
 *   /svcd/alloc/nodeport/<proto>/<port>   "<ns>/<name>" owning the nodePort
 *
 * Values are Kubernetes-shaped JSON read back through manifest_parse, so
 * objects from etcd are validated and defaulted exactly as manifests are.
 *
 * The pure part (keys, serialisation) is unit-tested and fuzzed; the
 * member (cluster_new) runs on the daemon's loop.
 */
#ifndef SVCD_CLUSTER_H
#define SVCD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "svcd/model.h"

#define CLUSTER_PREFIX "/svcd/"

enum cluster_key_kind {
    CLUSTER_KEY_OTHER = 0,      /* under /svcd/ but not understood: ignored */
    CLUSTER_KEY_SERVICE,
    CLUSTER_KEY_POD,
    CLUSTER_KEY_NODE,
    CLUSTER_KEY_ALLOC_IP,
    CLUSTER_KEY_ALLOC_NODEPORT,
};

/* A parsed key. The strings point into buf. */
struct cluster_key {
    enum cluster_key_kind kind;
    const char *node, *ns, *name;   /* as the kind has them, else NULL */
    const char *ip;                 /* ALLOC_IP */
    const char *proto;              /* ALLOC_NODEPORT */
    uint16_t port;                  /* ALLOC_NODEPORT */
    char buf[512];
};

/* Keys: write into buf (len bytes); return buf, or NULL when it does not fit
 * or a part is empty or holds '/'. */
char *cluster_key_service(char *buf, size_t len, const char *ns, const char *name);
char *cluster_key_pod(char *buf, size_t len, const char *node, const char *ns, const char *name);
char *cluster_key_pod_prefix(char *buf, size_t len, const char *node);   /* "/svcd/pods/N/" */
char *cluster_key_node(char *buf, size_t len, const char *node);
char *cluster_key_alloc_ip(char *buf, size_t len, const struct svcd_ip *ip);
char *cluster_key_alloc_nodeport(char *buf, size_t len, enum svcd_proto proto, uint16_t port);

/* Parses key. 0 (kind may be OTHER for unknown keys under /svcd/), or -1
 * when it is not under /svcd/ or too long. */
int cluster_key_parse(const char *key, struct cluster_key *out);

/* Serialisation: Kubernetes-shaped JSON that manifest_parse reads back
 * into an equal object. The Pod is written with its readiness as decided
 * on this node (status.conditions Ready = svcd_pod_is_ready), without
 * probes, and with spec.nodeName = node_name when it has none. NULL on
 * ENOMEM. */
json_t *cluster_service_to_json(const struct svcd_service *svc);
json_t *cluster_pod_to_json(const struct svcd_pod *pod, const char *node_name);

/* Parses one value from etcd (a single Service or Pod document). Returns
 * 0 with *svc or *pod set (the other NULL; caller owns), or -1 with err. */
int cluster_value_parse(const char *val, size_t len, struct svcd_service **svc,
                        struct svcd_pod **pod, char *err, size_t errlen);

/* Allocation candidates (svcctl tries them in order inside etcd txns that
 * create /svcd/alloc/... only if absent). The attempt-th ClusterIP
 * candidate in cidr for seed, skipping the network address and the IPv4
 * broadcast address: 0, or -1 when cidr has no such address. */
int cluster_alloc_ip_candidate(const struct svcd_cidr *cidr, uint64_t seed, uint32_t attempt,
                               struct svcd_ip *out);
/* The attempt-th nodePort candidate in [lo, hi] for seed. */
uint16_t cluster_alloc_port_candidate(uint16_t lo, uint16_t hi, uint64_t seed, uint32_t attempt);

/* ---- the member on the daemon's loop ------------------------------------- */

struct event_base;
struct store;
struct cluster;

struct cluster_config {
    const char *endpoints;       /* comma-separated URLs */
    const char *node_name;
    const char *node_ip;         /* or "" */
    uint32_t lease_ttl_s;        /* default 10 */
    const char *cafile, *certfile, *keyfile;   /* or NULL */
};

/* Starts joining: grant a lease, list /svcd/, watch, publish this node's
 * pods. Failures are retried with backoff; NULL only on bad configuration
 * or ENOMEM (logged). */
struct cluster *cluster_new(struct event_base *base, struct store *st,
                            const struct cluster_config *cfg);
/* Leaves without revoking the lease (the node's pods expire with the TTL;
 * a restart within it republishes them). Accepts NULL. */
void cluster_free(struct cluster *cl);

/* 0 when synced and connected; 1 while the first connection attempt runs
 * (reason "initial etcd list pending"); 2 when degraded: etcd unreachable
 * or the watch/lease lost, reason says why ("etcd degraded: ...; serving
 * the last known state, reconnecting"). */
int cluster_health(const struct cluster *cl, char *reason, size_t len);

/* Counters for metrics and the benchmark. */
struct cluster_stats {
    uint64_t watch_events, relists, publishes, lease_grants;
    uint64_t rx_bytes, tx_bytes;
    size_t remote_pods, services;
    bool connected;
};
void cluster_get_stats(const struct cluster *cl, struct cluster_stats *out);

#endif
