/*
 * fuzz_alloc_state: the allocation state file (alloc_load_json) on
 * arbitrary bytes. A state that loads must dump to JSON that loads again to
 * the same dump, and allocating one Service on top of it must not break.
 */
#include <stdlib.h>
#include <string.h>

#include "svcd/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct svcd_cidr c[2];
    char err[256];
    svcd_cidr_parse("10.96.0.0/28", &c[0]);
    svcd_cidr_parse("fd00::/120", &c[1]);
    struct alloc *a = alloc_new(c, 2, 30000, 30010);
    if (!a)
        return 0;
    if (alloc_load_json(a, (const char *)data, size, err, sizeof(err)) == 0) {
        char *d1 = alloc_dump_json(a);
        struct alloc *b = alloc_new(c, 2, 30000, 30010);
        if (d1 && b && alloc_load_json(b, d1, strlen(d1), err, sizeof(err)) == 0) {
            char *d2 = alloc_dump_json(b);
            if (d2 && strcmp(d1, d2) != 0)
                abort();
            free(d2);
        } else if (d1 && b) {
            abort();               /* our own dump must load */
        }
        struct svcd_service s;
        struct svcd_service_port p = { .protocol = SVCD_PROTO_TCP, .port = 80 };
        memset(&s, 0, sizeof(s));
        s.meta.ns = (char *)"default";
        s.meta.name = (char *)"web";
        s.type = SVCD_SVC_NODE_PORT;
        s.ip_family_policy = SVCD_IPFP_PREFER_DUAL;
        s.ports = &p;
        s.n_ports = 1;
        (void)alloc_service(a, &s, err, sizeof(err));
        alloc_rollback(a);
        free(d1);
        alloc_free(b);
    }
    alloc_free(a);
    return 0;
}
