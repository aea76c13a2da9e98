/*
 * model: the Kubernetes objects svcd understands, as plain C structs.
 *
 * Sources (manifest directory, podman, ...) build these objects; the store
 * takes ownership of them and computes endpoints; the data plane (nft) and
 * the DNS zone read them. Every string is a heap copy owned by the object;
 * model_*_free() frees an object and everything inside it and accepts NULL
 * and half-built objects.
 *
 * Fields follow the Kubernetes API names (core/v1, discovery.k8s.io/v1).
 */
#ifndef SVCD_MODEL_H
#define SVCD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

/* ---- small value types ------------------------------------------------- */

/* An IPv4 or IPv6 address. family is AF_INET or AF_INET6. */
struct svcd_ip {
    int family;
    union {
        struct in_addr v4;
        struct in6_addr v6;
        uint8_t bytes[16];
    } u;
};

/* Parse "10.0.0.1" or "fd00::1"; returns 0, or -1 if not an address. */
int svcd_ip_parse(const char *s, struct svcd_ip *out);
/* Format into buf (INET6_ADDRSTRLEN bytes suffice); returns buf. */
const char *svcd_ip_format(const struct svcd_ip *ip, char *buf, size_t len);
int svcd_ip_equal(const struct svcd_ip *a, const struct svcd_ip *b);
/* Total order (family first, then bytes), for sorting. */
int svcd_ip_cmp(const struct svcd_ip *a, const struct svcd_ip *b);

/* A CIDR prefix such as 10.96.0.0/12. */
struct svcd_cidr {
    struct svcd_ip addr;
    int prefix;
};
/* Parse "10.96.0.0/12" (host bits must be zero); 0 or -1. */
int svcd_cidr_parse(const char *s, struct svcd_cidr *out);
bool svcd_cidr_contains(const struct svcd_cidr *c, const struct svcd_ip *ip);

enum svcd_proto { SVCD_PROTO_TCP = 0, SVCD_PROTO_UDP, SVCD_PROTO_SCTP };
/* "TCP"/"UDP"/"SCTP" (case as in Kubernetes); 0 or -1. */
int svcd_proto_parse(const char *s, enum svcd_proto *out);
const char *svcd_proto_name(enum svcd_proto p);   /* "TCP" ... */
int svcd_proto_ipproto(enum svcd_proto p);        /* IPPROTO_TCP ... */

/* One key=value pair (labels, annotations, selectors). */
struct svcd_kv {
    char *key;
    char *value;
};

/* A map of string pairs kept sorted by key (so equality is memcmp-like). */
struct svcd_kvmap {
    struct svcd_kv *items;
    size_t n;
};
const char *svcd_kvmap_get(const struct svcd_kvmap *m, const char *key);
/* Adds or replaces; copies both strings. 0 or -1 (ENOMEM). */
int svcd_kvmap_set(struct svcd_kvmap *m, const char *key, const char *value);
bool svcd_kvmap_equal(const struct svcd_kvmap *a, const struct svcd_kvmap *b);
void svcd_kvmap_free(struct svcd_kvmap *m);
/* True when every pair of sel is in labels (an empty sel matches all). */
bool svcd_selector_matches(const struct svcd_kvmap *sel, const struct svcd_kvmap *labels);

/* Common object metadata. */
struct svcd_meta {
    char *name;
    char *ns;                 /* "default" when the manifest has none */
    struct svcd_kvmap labels;
    struct svcd_kvmap annotations;
    char *deletion_timestamp; /* NULL unless terminating (RFC 3339 text) */
    char *uid;                /* metadata.uid or NULL */
    uint64_t fingerprint;     /* hash of the object's source text/fields,
                                 set by the source; equal fingerprints mean
                                 an update is a no-op */
    int64_t created;          /* creation time, unix seconds (source sets
                                 metadata.creationTimestamp or load time) */
};

/* ---- Service ----------------------------------------------------------- */

enum svcd_svc_type {
    SVCD_SVC_CLUSTER_IP = 0,
    SVCD_SVC_NODE_PORT,
    SVCD_SVC_LOAD_BALANCER,
    SVCD_SVC_EXTERNAL_NAME,
};
const char *svcd_svc_type_name(enum svcd_svc_type t); /* "ClusterIP" ... */

enum svcd_traffic_policy { SVCD_POLICY_CLUSTER = 0, SVCD_POLICY_LOCAL };

/* spec.ipFamilyPolicy; the parser defaults it as the API server does:
 * RequireDualStack when two families or addresses are given, else
 * SingleStack. */
enum svcd_ip_family_policy { SVCD_IPFP_SINGLE = 0, SVCD_IPFP_PREFER_DUAL,
                             SVCD_IPFP_REQUIRE_DUAL };
const char *svcd_ip_family_policy_name(enum svcd_ip_family_policy p);

struct svcd_service_port {
    char *name;                /* may be NULL for a single unnamed port */
    enum svcd_proto protocol;
    uint16_t port;
    uint16_t target_port;      /* numeric targetPort, 0 when named */
    char *target_port_name;    /* named targetPort, or NULL */
    uint16_t node_port;        /* 0 when none */
};

struct svcd_service {
    struct svcd_meta meta;
    enum svcd_svc_type type;
    bool headless;                  /* clusterIP: None */
    struct svcd_ip cluster_ips[2];  /* primary first */
    size_t n_cluster_ips;
    int ip_families[2];             /* AF_INET / AF_INET6 as listed */
    size_t n_ip_families;
    enum svcd_ip_family_policy ip_family_policy;
    struct svcd_service_port *ports;
    size_t n_ports;
    bool has_selector;              /* spec.selector present and non-empty */
    struct svcd_kvmap selector;
    bool affinity_client_ip;        /* sessionAffinity: ClientIP */
    uint32_t affinity_timeout;      /* seconds; default 10800 */
    bool publish_not_ready;
    char *external_name;            /* ExternalName only */
    struct svcd_ip *external_ips;
    size_t n_external_ips;
    struct svcd_ip *lb_ingress_ips; /* status.loadBalancer.ingress[].ip */
    size_t n_lb_ingress_ips;
    enum svcd_traffic_policy internal_policy;
    enum svcd_traffic_policy external_policy;
    uint16_t health_check_node_port; /* LoadBalancer with eTP Local; 0 = none */
};

/* ---- Pod --------------------------------------------------------------- */

enum svcd_probe_kind { SVCD_PROBE_NONE = 0, SVCD_PROBE_EXEC, SVCD_PROBE_TCP,
                       SVCD_PROBE_HTTP, SVCD_PROBE_GRPC };

struct svcd_probe {
    enum svcd_probe_kind kind;
    char **exec_argv;          /* NULL-terminated, exec only */
    uint16_t port;             /* numeric port, 0 when named */
    char *port_name;           /* named port (tcpSocket/httpGet), or NULL */
    char *host;                /* httpGet/tcpSocket host, NULL = pod IP */
    char *path;                /* httpGet path, default "/" */
    char *scheme;              /* httpGet scheme, default "HTTP" */
    struct svcd_kvmap http_headers;
    char *grpc_service;        /* grpc.service, may be NULL */
    uint32_t initial_delay_s;  /* default 0 */
    uint32_t period_s;         /* default 10 */
    uint32_t timeout_s;        /* default 1 */
    uint32_t success_threshold;/* default 1 */
    uint32_t failure_threshold;/* default 3 */
};

struct svcd_container_port {
    char *name;                /* may be NULL */
    uint16_t container_port;
    enum svcd_proto protocol;
};

struct svcd_container {
    char *name;
    struct svcd_container_port *ports;
    size_t n_ports;
    struct svcd_probe readiness;   /* kind NONE when absent */
    struct svcd_probe liveness;
    struct svcd_probe startup;
};

enum svcd_pod_phase { SVCD_PHASE_PENDING = 0, SVCD_PHASE_RUNNING, SVCD_PHASE_SUCCEEDED,
                      SVCD_PHASE_FAILED, SVCD_PHASE_UNKNOWN };
const char *svcd_pod_phase_name(enum svcd_pod_phase p); /* "Running" ... */

/* Ready as reported by the source: status.conditions[type=Ready]. */
enum svcd_tristate { SVCD_UNKNOWN = 0, SVCD_TRUE, SVCD_FALSE };

struct svcd_pod {
    struct svcd_meta meta;
    char *hostname;            /* spec.hostname or NULL */
    char *subdomain;           /* spec.subdomain or NULL */
    char *node_name;           /* spec.nodeName or NULL */
    struct svcd_container *containers;
    size_t n_containers;
    enum svcd_pod_phase phase;
    struct svcd_ip ips[2];     /* status.podIPs (podIP first) */
    size_t n_ips;
    enum svcd_tristate ready_condition;
    /* Readiness as decided by svcd (probes); SVCD_UNKNOWN = not decided,
     * use ready_condition / phase. Set by the store, not by sources. */
    enum svcd_tristate probe_ready;
};

/* Resolve a named container port on a pod for a protocol; 0 if absent. */
uint16_t svcd_pod_named_port(const struct svcd_pod *pod, const char *name,
                             enum svcd_proto proto);
/* Whether a pod counts as ready: phase Running, and then svcd's probe
 * verdict if there is one; else not ready while it has a readiness or
 * startup probe without a verdict yet; else status.conditions[Ready] if
 * reported; else true. */
bool svcd_pod_is_ready(const struct svcd_pod *pod);

/* ---- EndpointSlice (for Services without a selector) -------------------- */

struct svcd_slice_endpoint {
    struct svcd_ip *addresses;
    size_t n_addresses;
    bool ready, serving, terminating;
    char *hostname;            /* or NULL */
    char *node_name;           /* or NULL */
};

struct svcd_slice_port {
    char *name;                /* may be NULL */
    enum svcd_proto protocol;
    uint16_t port;
};

struct svcd_endpoint_slice {
    struct svcd_meta meta;
    char *service_name;        /* label kubernetes.io/service-name */
    int address_family;        /* AF_INET / AF_INET6 (addressType) */
    struct svcd_slice_endpoint *endpoints;
    size_t n_endpoints;
    struct svcd_slice_port *ports;
    size_t n_ports;
};

/* ---- Computed endpoints ------------------------------------------------- */

/* One endpoint of a Service: one pod (or one slice endpoint) with its
 * addresses, conditions and, per Service port, the resolved target port
 * (0 = this endpoint does not serve that Service port). */
struct svcd_endpoint {
    struct svcd_ip ips[2];
    size_t n_ips;
    char *hostname;            /* DNS hostname (pod hostname when its
                                  subdomain names the Service), or NULL */
    char *node_name;           /* or NULL */
    char *pod_name;            /* or NULL for slice endpoints */
    bool ready, serving, terminating;
    uint16_t *target_ports;    /* n = service->n_ports */
};

/* ---- freeing ------------------------------------------------------------ */
void model_meta_free(struct svcd_meta *m);          /* frees contents only */
void model_probe_free(struct svcd_probe *p);        /* frees contents only */
void model_service_free(struct svcd_service *s);
void model_pod_free(struct svcd_pod *p);
void model_slice_free(struct svcd_endpoint_slice *s);
void model_endpoint_free_contents(struct svcd_endpoint *e);


#endif
