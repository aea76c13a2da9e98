/*
 * dns_zone: the cluster DNS zone (Kubernetes DNS schema 1.1.0) as an
 * in-memory name index, kept in step with the store.
 *
 * Every owner name the zone serves is a node in one hash keyed by the
 * lower-case wire name; empty non-terminals (<ns>.svc.<zone>,
 * _tcp.<svc>...) are nodes too, reference-counted by the names below them,
 * so a query is one hash look-up and NXDOMAIN vs NODATA falls out of
 * whether the node exists. Records are pre-encoded at build time and
 * answers are written straight into a dns_builder: no allocation per query.
 *
 * The zone subscribes to the store: each commit rebuilds only the names of
 * the Services it lists. Pod records (<a-b-c-d>.<ns>.pod.<zone>) are not
 * stored: they are checked against store_pod_by_ip() at query time.
 *
 * Served: dns-version TXT, Service A/AAAA (ClusterIP or ready headless
 * endpoints), endpoint hostnames, SRV for named ports and at the Service
 * name (targets' addresses in additional), PTR for ClusterIPs and headless
 * endpoint IPs (in-addr.arpa and ip6.arpa), ExternalName CNAME (followed in
 * the same answer when it points into the zone), SOA/NS (with glue) at the
 * apex, SOA in the authority section of NXDOMAIN/NODATA (TTL = MINIMUM =
 * cfg->dns_ttl). Each (name, type, data) of a Service is stored once, so an
 * address in two EndpointSlices answers once. <ns>.svc.<zone> and
 * <ns>.pod.<zone> exist while the namespace has a Service or Pod.
 * Each cfg->service_cidr / pod_cidr has a reverse zone (prefix rounded down
 * to octets / nibbles) with SOA/NS at its apex, owning negative answers
 * below it; reverse names inside the CIDRs are authoritative here (NXDOMAIN
 * when unknown); other names are not (DNS_ZONE_NOT_AUTH).
 *
 * Single-threaded, like the store.
 */
#ifndef SVCD_DNS_ZONE_H
#define SVCD_DNS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/config.h"
#include "svcd/dns_wire.h"
#include "svcd/store.h"

struct dns_zone;

/* Creates a zone for cfg->cluster_domain (cfg is copied), builds it from
 * st's current contents and subscribes to st. st must outlive the zone's
 * use, but the zone may be freed first (its subscription then does
 * nothing). Returns NULL on failure (logged). */
struct dns_zone *dns_zone_new(struct store *st, const struct svcd_config *cfg);
/* Frees the zone. Accepts NULL. */
void dns_zone_free(struct dns_zone *z);

/* The store generation the zone reflects. */
uint64_t dns_zone_generation(const struct dns_zone *z);
/* Number of owner names (nodes, empty non-terminals included). */
size_t dns_zone_names(const struct dns_zone *z);

enum dns_zone_status {
    DNS_ZONE_ANSWERED = 0,  /* answer written; rcode/AA set in the builder */
    DNS_ZONE_NOT_AUTH,      /* not ours: forward (nothing written) */
};

/* Details of an answer, for the server (metrics, TC, CNAME chasing). */
struct dns_zone_result {
    int rcode;               /* DNS_R_NOERROR / NXDOMAIN / ... */
    bool truncated;          /* an answer record did not fit */
    bool external_cname;     /* answer is a CNAME to a name outside the zone */
    uint8_t cname_target[DNS_NAME_MAX];
    size_t cname_len;
};

/* Answers q (class IN) into b, which holds the header and the question
 * already (and has any OPT space reserved). Sets AA and the rcode in b's
 * flags; NXDOMAIN/NODATA get the SOA in authority. On truncation the
 * answer section ends at a whole record and res->truncated is set (the
 * caller sets TC). client (may be NULL) is only used for autopath
 * (cfg->dns_autopath): a pod known by that address asking
 * <name>.<its-ns>.svc.<zone> for a name that does not exist gets a CNAME
 * to the first existing of <name>.svc.<zone>, <name>.<zone>, <name>. (a
 * cluster name) with their records, or a CNAME to <name>. outside the zone
 * flagged external_cname for the server to resolve upstream. Pass NULL for
 * clients that may not recurse. */
enum dns_zone_status dns_zone_answer(struct dns_zone *z, const struct dns_question *q,
                                     const struct svcd_ip *client, struct dns_builder *b,
                                     struct dns_zone_result *res);

/* Whether name (any case) is at or below the cluster zone apex. */
bool dns_zone_is_cluster_name(const struct dns_zone *z, const uint8_t *name, size_t len);
/* The cluster zone apex as a wire name (lower case). */
const uint8_t *dns_zone_apex(const struct dns_zone *z, size_t *len);

#endif
