/*
 * store: the one in-memory owner of Services, Pods, EndpointSlices and the
 * endpoints computed from them.
 *
 * Sources write objects in batches (store_begin .. store_commit). Each
 * commit that changed anything advances the generation by one and tells
 * every subscriber which Services changed (spec, endpoints, or deleted),
 * so the VIP rules and the DNS zone apply the same generation.
 *
 * Endpoints are computed as the EndpointSlice controller does: pods in the
 * Service's namespace whose labels match its selector, that have an IP and
 * are not Succeeded/Failed; named targetPorts are resolved per pod; ready /
 * serving / terminating per pod; publishNotReadyAddresses makes every such
 * endpoint ready. Services without a selector take their endpoints from
 * EndpointSlices labelled kubernetes.io/service-name.
 *
 * A pod change costs work proportional to the Services that select (or
 * selected) that pod: services are indexed by namespace and selector pair.
 *
 * Everything returned as const is owned by the store and valid until the
 * next store mutation; subscribers copy what they keep. Single-threaded.
 */
#ifndef SVCD_STORE_H
#define SVCD_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include "svcd/model.h"

struct store;

/* What changed about one Service in one commit (flags may combine). */
enum store_change_flags {
    STORE_SVC_SPEC      = 1 << 0,  /* added or its spec changed */
    STORE_SVC_ENDPOINTS = 1 << 1,  /* its endpoint list changed */
    STORE_SVC_DELETED   = 1 << 2,  /* gone; store_service_get() is NULL */
};

struct store_change {
    const char *ns;      /* valid during the callback only */
    const char *name;
    unsigned flags;
};

/* A subscriber is told once per commit. changes lists each changed Service
 * once. pods_changed is true when any pod was added/changed/removed (for
 * pod DNS records); store_changed_pods() tells which, during the callback.
 * The callback must not mutate the store. */
struct store_subscriber {
    void (*on_commit)(void *ctx, struct store *st, uint64_t generation,
                      const struct store_change *changes, size_t n_changes,
                      bool pods_changed);
    void *ctx;
};

/* One pod that changed in the commit being notified: upserted with new
 * content, deleted, marked terminating, or given a new probe verdict by
 * store_pod_set_probe_ready(). Strings are owned by the store. */
struct store_pod_ref {
    const char *ns;
    const char *name;
    bool deleted;        /* absent after the commit (store_pod_get() is NULL) */
};

/* The pods that changed in the commit being notified, each key listed once
 * (a pod deleted and added again in one batch is listed once, not deleted).
 * Only meaningful inside on_commit: *out and its strings are valid during
 * the callback only. Returns the count (0 outside a callback, or when no
 * pod changed, with *out NULL), or SIZE_MAX with *out NULL when the store
 * could not record the list (ENOMEM): the subscriber must then rescan
 * every pod with store_foreach_pod(). */
size_t store_changed_pods(const struct store *st, const struct store_pod_ref **out);

/* Returns a new empty store at generation 0, or NULL on ENOMEM. */
struct store *store_new(void);
/* Frees the store and every object in it. Accepts NULL. */
void store_free(struct store *st);

/* Subscribers are called in the order they were added. 0 or -1. */
int store_subscribe(struct store *st, const struct store_subscriber *sub);

/* Removes the subscriber whose ctx is ctx (a module freed before the store
 * calls this). 0, or -1 when none has that ctx. */
int store_unsubscribe(struct store *st, void *ctx);

/* Batching: every upsert/delete must be inside begin..commit (nesting is
 * counted; the outermost commit notifies). */
void store_begin(struct store *st);
/* Ends a batch; returns the generation now current (unchanged when the
 * batch changed nothing). */
uint64_t store_commit(struct store *st);
uint64_t store_generation(const struct store *st);

/* Upserts take ownership of the object (also on failure, when they free it).
 * An object with the same fingerprint as the stored one is a no-op.
 * Return 0, or -1 on ENOMEM. */
int store_service_upsert(struct store *st, struct svcd_service *svc);
int store_pod_upsert(struct store *st, struct svcd_pod *pod);
int store_slice_upsert(struct store *st, struct svcd_endpoint_slice *sl);
/* Deletes return 0, or -1 when no such object exists. */
int store_service_delete(struct store *st, const char *ns, const char *name);
int store_pod_delete(struct store *st, const char *ns, const char *name);
int store_slice_delete(struct store *st, const char *ns, const char *name);

/* Readiness decided by svcd's probes for a pod (SVCD_UNKNOWN = no opinion).
 * 0, or -1 if the pod is unknown. Must be inside a batch. */
int store_pod_set_probe_ready(struct store *st, const char *ns, const char *name,
                              enum svcd_tristate ready);

/* Marks a pod terminating (sets metadata.deletionTimestamp to rfc3339 if it
 * has none), as when its source removed it with a grace period. 0, or -1 if
 * the pod is unknown. Must be inside a batch. */
int store_pod_mark_terminating(struct store *st, const char *ns, const char *name,
                               const char *rfc3339);

/* Look-ups. NULL when absent. */
const struct svcd_service *store_service_get(const struct store *st, const char *ns,
                                             const char *name);
const struct svcd_pod *store_pod_get(const struct store *st, const char *ns,
                                     const char *name);
/* The pod that has this IP (any namespace), or NULL. */
const struct svcd_pod *store_pod_by_ip(const struct store *st, const struct svcd_ip *ip);

/* The Service's endpoints, sorted by first IP. *n is set; the array is
 * NULL when n == 0. */
const struct svcd_endpoint *store_endpoints_get(const struct store *st, const char *ns,
                                                const char *name, size_t *n);

/* Iteration in unspecified order; stop early by returning non-zero from cb
 * (which is then returned). */
int store_foreach_service(const struct store *st,
                          int (*cb)(void *ctx, const struct svcd_service *svc), void *ctx);
int store_foreach_pod(const struct store *st,
                      int (*cb)(void *ctx, const struct svcd_pod *pod), void *ctx);
int store_foreach_slice(const struct store *st,
                        int (*cb)(void *ctx, const struct svcd_endpoint_slice *sl), void *ctx);

/* Counts for metrics. */
struct store_stats {
    size_t services, pods, slices;
    size_t endpoints_ready;        /* ready (and not terminating) */
    size_t endpoints_not_ready;    /* not ready, not terminating */
    size_t endpoints_terminating;  /* terminating (serving or not) */
    uint64_t commits;
};
void store_get_stats(const struct store *st, struct store_stats *out);

#endif
