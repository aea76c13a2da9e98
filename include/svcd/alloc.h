/*
 * alloc: the API server's allocators for what svcd reads without an API
 * server in front of it: Service clusterIPs from --service-cidr (per
 * family) and nodePorts / healthCheckNodePorts from --node-port-range.
 *
 * One record per Service, keyed "namespace/name", holds what it was given.
 * alloc_service() fills in what a Service lacks from its record (so the
 * same Service keeps its addresses across edits of other fields and across
 * restarts) or from the free pool, and checks what it specifies itself:
 *  - an address outside every --service-cidr is rejected;
 *  - an address or (protocol, nodePort) that another Service holds is
 *    rejected (the first holder keeps it);
 *  - a free address is taken from the part of the range never handed out
 *    yet, in ascending order; only when that is used up are addresses of
 *    deleted Services reused, the longest-released first.
 *  - IPv4 ranges never hand out their network and broadcast addresses,
 *    IPv6 ranges never their network (subnet-router anycast) address.
 * Nothing changes when alloc_service() fails: either the whole Service is
 * allocated or none of it.
 *
 * Persistence: alloc_save() writes the whole state as JSON (format in
 * docs/CONFIG.md) to a temporary file, fsyncs it, renames it over the
 * state file and fsyncs the directory. The caller saves before it serves a
 * new allocation, and calls alloc_rollback() when saving failed, which
 * returns the allocator to the state last saved (or loaded).
 *
 * Pure apart from alloc_load()/alloc_save(); single-threaded.
 */
#ifndef SVCD_ALLOC_H
#define SVCD_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/model.h"

struct alloc;

#define ALLOC_STATE_FILE "allocations.json"

/* New empty allocator over n service ranges (any mix of families; none =
 * clusterIPs are neither allocated nor checked) and the nodePort range
 * [np_min, np_max]. NULL on ENOMEM. */
struct alloc *alloc_new(const struct svcd_cidr *cidrs, size_t n, uint16_t np_min,
                        uint16_t np_max);
/* Frees everything. Accepts NULL. */
void alloc_free(struct alloc *a);

/* Replaces the state with the JSON text (len bytes) of a state file.
 * Records whose addresses lie outside the current ranges are kept; they
 * are re-allocated when their Service is next seen. 0, or -1 with a reason
 * in err (the state is then empty). */
int alloc_load_json(struct alloc *a, const char *data, size_t len, char *err, size_t errlen);

/* Loads DIR/allocations.json. A missing file is an empty state (0). A file
 * that cannot be parsed is renamed to DIR/allocations.json.corrupt, the
 * state starts empty and 1 is returned with the reason in err. -1 with err
 * when the file cannot be read. */
int alloc_load(struct alloc *a, const char *dir, char *err, size_t errlen);

/* The whole state as JSON text (caller frees), or NULL on ENOMEM. */
char *alloc_dump_json(const struct alloc *a);

/* Writes DIR/allocations.json atomically (see above). 0, or -1 with err.
 * On success the current state becomes the rollback point. */
int alloc_save(struct alloc *a, const char *dir, char *err, size_t errlen);

/* True when the state changed since the last load or save. */
bool alloc_dirty(const struct alloc *a);

/* Back to the state of the last successful load or save. */
void alloc_rollback(struct alloc *a);

/* Calls cb with the key ("ns/name") of each Service that got an address or
 * port since the last save. */
void alloc_foreach_unsaved(const struct alloc *a, void (*cb)(void *ctx, const char *key),
                           void *ctx);

/* Allocates what svc lacks and checks what it has (see above); writes the
 * result into svc (cluster_ips, ip_families, ports[].node_port,
 * health_check_node_port) and mixes it into svc->meta.fingerprint.
 * 0, or -1 with err = "FIELD: PROBLEM", e.g.
 * "spec.clusterIP: 10.0.0.1 is not in --service-cidr 10.96.0.0/16".
 * On failure neither svc nor the state changed. */
int alloc_service(struct alloc *a, struct svcd_service *svc, char *err, size_t errlen);

/* The Service is gone: its addresses and ports go back to the pool (last
 * in the reuse order). No-op for an unknown Service. */
void alloc_release(struct alloc *a, const char *ns, const char *name);

/* Marks every record unseen; alloc_service() marks its Service seen.
 * alloc_release_unseen() then releases the Services not seen since (those
 * whose manifests went away while svcd was down). Returns the count. */
void alloc_mark_unseen(struct alloc *a);
size_t alloc_release_unseen(struct alloc *a);
/* Marks a Service seen without allocating (its manifest defines it, but
 * the object was rejected): its record survives alloc_release_unseen(). */
void alloc_keep(struct alloc *a, const char *ns, const char *name);

/* Counts for metrics and tests. */
struct alloc_stats {
    size_t services;          /* records */
    size_t cluster_ips;       /* addresses held */
    size_t node_ports;        /* (protocol, port) pairs held, health checks included */
    size_t released_ips;      /* waiting in the reuse queue */
    size_t released_ports;
};
void alloc_get_stats(const struct alloc *a, struct alloc_stats *out);

#endif
