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
 * manifest_parse(): a file with any error yields no objects at all.
 * manifest_parse_each(): an object that fails validation is left out and
 * listed in rejects (with its kind and name when they can be read); the
 * other objects are returned. Only a YAML syntax error, a limit of the
 * whole file (size, depth, aliases, duplicate keys) or ENOMEM fails it.
 */
#ifndef SVCD_MANIFEST_H
#define SVCD_MANIFEST_H

#include <stddef.h>
#include "svcd/model.h"

/* An object left out by manifest_parse_each(). */
struct manifest_reject {
    char *kind;          /* "Service"..., or NULL when unreadable */
    char *ns;            /* metadata.namespace ("default"), or NULL */
    char *name;          /* metadata.name, or NULL when unreadable */
    char *error;         /* "document 2: spec.ports[0].port: must be 1-65535" */
};

struct manifest_objs {
    struct svcd_service **services;
    size_t n_services;
    struct svcd_pod **pods;
    size_t n_pods;
    struct svcd_endpoint_slice **slices;
    size_t n_slices;
    char **warnings;     /* e.g. "document 3: kind Deployment ignored" */
    size_t n_warnings;
    struct manifest_reject *rejects;   /* manifest_parse_each() only */
    size_t n_rejects;
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

/* As manifest_parse, but per object (see above): 0 with the valid objects
 * in out and the invalid ones in out->rejects; -1 only for errors of the
 * whole file. */
int manifest_parse_each(const char *data, size_t len, int64_t now_unix,
                        struct manifest_objs *out, char *err, size_t errlen);

/* Frees every object still in out and the arrays. Accepts a zeroed struct. */
void manifest_objs_free(struct manifest_objs *out);

#endif
