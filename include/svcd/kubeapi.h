/*
 * kubeapi: a read-only Kubernetes API on svcd's admin listener, so that the
 * stock kubectl (and client libraries) can read what svcd knows:
 *
 *   GET /version, /api, /apis, /api/v1, /apis/discovery.k8s.io/v1   discovery
 *   GET /api/v1/{services,pods,namespaces}                           list
 *   GET /api/v1/namespaces/NS/{services,pods}[/NAME]                 list / get
 *   GET /api/v1/namespaces/NAME                                      get
 *   GET /apis/discovery.k8s.io/v1[/namespaces/NS]/endpointslices[/NAME]
 *
 * Lists take labelSelector (equality and existence: a=b, a==b, a!=b, a, !a)
 * and fieldSelector (metadata.name, metadata.namespace with = == !=), and
 * watch=1 (a chunked stream of WatchEvent JSON lines fed by the store's
 * commits: ADDED/MODIFIED/DELETED computed against what the watcher was last
 * sent). Accept: application/json;as=Table;v=v1;g=meta.k8s.io answers with
 * the meta.k8s.io/v1 Table kubectl prints (lists, gets and watches).
 * resourceVersion is the store generation. EndpointSlices are the ones svcd
 * computes (one per Service and address family, as the EndpointSlice
 * controller would make them) plus those read from manifests.
 * Anything else under these prefixes is a 404 Status; writes are 405.
 */
#ifndef SVCD_KUBEAPI_H
#define SVCD_KUBEAPI_H

#include <stdbool.h>
#include <stddef.h>

struct evhttp_request;
struct store;
struct svcd_kvmap;
struct kubeapi;

/* Subscribes to st for watches. NULL on ENOMEM (logged). */
struct kubeapi *kubeapi_new(struct store *st);
/* Ends every watch stream and frees. Accepts NULL. */
void kubeapi_free(struct kubeapi *k);
/* Whether path belongs to the Kubernetes API (/version, /api, /api/v1...,
 * /apis...). */
bool kubeapi_owns(const char *path);
/* Answers req (path without query, the raw query or NULL). */
void kubeapi_handle(struct kubeapi *k, struct evhttp_request *req, const char *path,
                    const char *query);

/* ---- pure parts (unit-tested, fuzzed) ---- */

/* Whether labels match a label selector string ("" matches everything).
 * Returns 1 (match), 0 (no match) or -1 (the selector cannot be parsed:
 * set-based "in"/"notin" and anything else are rejected). */
int kubeapi_label_match(const char *selector, const struct svcd_kvmap *labels);
/* Same for a field selector over metadata.name and metadata.namespace;
 * -1 for other fields or syntax errors. */
int kubeapi_field_match(const char *selector, const char *ns, const char *name);

#endif
