/*
 * testutil: what the unit tests share. CHECK counts a passed or failed
 * assertion in `passed` / `failed` and prints the failing ones with file
 * and line; a test's main() ends by printing "N passed, N failed" (the
 * closing line CI reads) and returning non-zero when anything failed.
 *
 * testutil_load_yaml() parses Kubernetes YAML with the real manifest parser
 * and writes every object into the store as one batch (one generation).
 */
#ifndef SVCD_TESTUTIL_H
#define SVCD_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "svcd/manifest.h"
#include "svcd/store.h"

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* Loads yaml into st as one batch; 0, or -1 with the parse error printed. */
static inline int testutil_load_yaml(struct store *st, const char *yaml)
{
    struct manifest_objs o = { 0 };
    char err[512];
    if (manifest_parse(yaml, strlen(yaml), 1700000000, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "parse error: %s\n", err);
        return -1;
    }
    store_begin(st);
    for (size_t i = 0; i < o.n_services; i++) {
        store_service_upsert(st, o.services[i]);
        o.services[i] = NULL;
    }
    for (size_t i = 0; i < o.n_pods; i++) {
        store_pod_upsert(st, o.pods[i]);
        o.pods[i] = NULL;
    }
    for (size_t i = 0; i < o.n_slices; i++) {
        store_slice_upsert(st, o.slices[i]);
        o.slices[i] = NULL;
    }
    store_commit(st);
    manifest_objs_free(&o);
    return 0;
}

#endif
