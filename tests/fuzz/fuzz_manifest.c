/*
 * fuzz_manifest: libFuzzer entry point for manifest_parse, the parser of
 * untrusted manifest files. Each input is parsed and freed; on success every
 * object is touched (names, ports, addresses) so that the sanitizers see
 * reads of everything the parser built, and the error line must be empty
 * on success and non-empty, NUL-terminated on failure.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fuzz_touch(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Per-object mode: every reject has an error line; when strict parsing
 * succeeds, nothing is rejected. */
static void fuzz_each(const uint8_t *data, size_t size, int strict_rc)
{
    struct manifest_objs out;
    char err[256];
    volatile size_t sink = 0;

    if (manifest_parse_each((const char *)data, size, 1700000000, &out, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || out.n_services || out.n_rejects)
            abort();
        return;
    }
    if (strict_rc == 0 && out.n_rejects)
        abort();
    for (size_t i = 0; i < out.n_rejects; i++) {
        if (!out.rejects[i].error || !out.rejects[i].error[0])
            abort();
        sink += fuzz_touch(out.rejects[i].kind) + fuzz_touch(out.rejects[i].ns) +
                fuzz_touch(out.rejects[i].name);
    }
    (void)sink;
    manifest_objs_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct manifest_objs out;
    char err[256];
    volatile size_t sink = 0;
    int strict_rc = manifest_parse((const char *)data, size, 1700000000, &out, err, sizeof(err));

    manifest_objs_free(&out);
    fuzz_each(data, size, strict_rc);

    if (manifest_parse((const char *)data, size, 1700000000, &out, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || strlen(err) >= sizeof(err))
            abort();
        if (out.n_services || out.n_pods || out.n_slices || out.n_warnings)
            abort();
        return 0;
    }
    for (size_t i = 0; i < out.n_services; i++) {
        const struct svcd_service *s = out.services[i];
        sink += fuzz_touch(s->meta.name) + fuzz_touch(s->meta.ns) + fuzz_touch(s->external_name);
        for (size_t j = 0; j < s->n_ports; j++)
            sink += fuzz_touch(s->ports[j].name) + fuzz_touch(s->ports[j].target_port_name) +
                    s->ports[j].port;
        for (size_t j = 0; j < s->n_external_ips; j++)
            sink += (size_t)s->external_ips[j].family;
        for (size_t j = 0; j < s->selector.n; j++)
            sink += fuzz_touch(s->selector.items[j].key) + fuzz_touch(s->selector.items[j].value);
    }
    for (size_t i = 0; i < out.n_pods; i++) {
        const struct svcd_pod *p = out.pods[i];
        sink += fuzz_touch(p->meta.name) + fuzz_touch(p->hostname) + p->n_ips;
        for (size_t j = 0; j < p->n_containers; j++) {
            const struct svcd_container *c = &p->containers[j];
            sink += fuzz_touch(c->name) + fuzz_touch(c->readiness.path);
            for (size_t k = 0; k < c->n_ports; k++)
                sink += fuzz_touch(c->ports[k].name) + c->ports[k].container_port;
            for (char **a = c->readiness.exec_argv; a && *a; a++)
                sink += fuzz_touch(*a);
        }
    }
    for (size_t i = 0; i < out.n_slices; i++) {
        const struct svcd_endpoint_slice *s = out.slices[i];
        sink += fuzz_touch(s->service_name);
        for (size_t j = 0; j < s->n_endpoints; j++)
            sink += s->endpoints[j].n_addresses + fuzz_touch(s->endpoints[j].hostname);
    }
    for (size_t i = 0; i < out.n_warnings; i++)
        sink += fuzz_touch(out.warnings[i]);
    (void)sink;
    manifest_objs_free(&out);
    return 0;
}
