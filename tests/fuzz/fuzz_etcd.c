/*
 * fuzz_etcd: etcd's answers on arbitrary bytes. The input is tried as one
 * watch-stream line (etcd_parse_watch_line) and as a range answer
 * (etcd_parse_range); every decoded key goes through cluster_key_parse and
 * every value through cluster_value_parse, as the cluster member does.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "svcd/cluster.h"
#include "svcd/etcd.h"

static void fuzz_kvs(const struct etcd_msg *m)
{
    for (size_t i = 0; i < m->n_kvs; i++) {
        struct cluster_key k;
        struct svcd_service *s = NULL;
        struct svcd_pod *p = NULL;
        char err[256];
        if (cluster_key_parse(m->kvs[i].key, &k) == 0 && k.kind == CLUSTER_KEY_POD &&
            (!k.node || !k.ns || !k.name))
            abort();
        if (cluster_value_parse(m->kvs[i].value, m->kvs[i].value_len, &s, &p, err,
                                sizeof(err)) == 0) {
            if (!s == !p)
                abort();
            if (s) {
                json_t *j = cluster_service_to_json(s);
                json_decref(j);
            }
        }
        model_service_free(s);
        model_pod_free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct etcd_msg m;
    if (etcd_parse_watch_line((const char *)data, size, &m) == 0)
        fuzz_kvs(&m);
    etcd_msg_free(&m);
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (j && etcd_parse_range(j, &m) == 0) {
        fuzz_kvs(&m);
        etcd_msg_free(&m);
    }
    json_decref(j);
    return 0;
}
