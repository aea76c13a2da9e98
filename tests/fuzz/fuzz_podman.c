/*
 * fuzz_podman: podman's API answers on arbitrary bytes. The input is tried
 * as one events-stream line (podman_event_parse), and as a pod list entry
 * plus container inspects: a JSON array whose first element is the entry
 * and the rest inspects (podman_pod_build). Built pods must have a
 * fingerprint, a name and at most two IPs.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "svcd/podman.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct podman_event ev;
    json_t *arr;
    const json_t *ins[16];
    size_t n = 0, i;
    char err[256];

    if (podman_event_parse((const char *)data, size, &ev) == 0)
        (void)podman_event_relevant(&ev);

    arr = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_array(arr) && json_array_size(arr) > 0) {
        for (i = 1; i < json_array_size(arr) && n < 16; i++)
            ins[n++] = json_array_get(arr, i);
        struct svcd_pod *p = podman_pod_build(json_array_get(arr, 0), ins, n, "node", err,
                                              sizeof(err));
        if (p) {
            if (!p->meta.name || !p->meta.ns || p->n_ips > 2)
                abort();
            model_pod_free(p);
        }
    }
    json_decref(arr);
    return 0;
}
