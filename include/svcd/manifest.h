/*
 * manifest: parse Kubernetes manifests (YAML or JSON, several documents per
 * file, kind: List) into model objects, with validation.
 *
 * Pure: no I/O besides the bytes given. Uses libyaml's document loader; no
 * hand-written YAML/JSON parsing. Supported kinds: v1 Service, v1 Pod,
 * discovery.k8s.io/v1 EndpointSlice. Other kinds (Deployment, ConfigMap...)
 * are skipped with a warning entry, not an error.
 *
 * Errors name the document (1-based, counting '---' documents; items of a
 * List count as "document N item M") and the field path, as in
 *   document 2: spec.ports[0].port: must be 1-65535
 * A file with any error yields no objects at all (the caller keeps the
 * file's previous objects).
 */
#ifndef SVCD_MANIFEST_H
#define SVCD_MANIFEST_H

#include <stddef.h>
#include "svcd/model.h"

struct manifest_objs {
    struct svcd_service **services;
    size_t n_services;
    struct svcd_pod **pods;
    size_t n_pods;
    struct svcd_endpoint_slice **slices;
    size_t n_slices;
    char **warnings;     /* e.g. "document 3: kind Deployment ignored" */
    size_t n_warnings;
};

/* Parses len bytes. On success returns 0 and fills out (caller frees with
 * manifest_objs_free, or takes objects out by setting slots to NULL).
 * On failure returns -1, out is empty, and err (size errlen) holds one
 * line without the file name, e.g. "document 2: spec.ports[0].port: must
 * be 1-65535" or "line 4 column 3: mapping values are not allowed here".
 * Every object gets meta.fingerprint (hash of its document's content) and
 * meta.created (metadata.creationTimestamp, or now_unix). */
int manifest_parse(const char *data, size_t len, int64_t now_unix,
                   struct manifest_objs *out, char *err, size_t errlen);

/* Frees every object still in out and the arrays. Accepts a zeroed struct. */
void manifest_objs_free(struct manifest_objs *out);

#endif
