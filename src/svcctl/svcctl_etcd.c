/*
 * svcctl_etcd: `svcctl --etcd-endpoints LIST apply|delete -f FILE`, the
 * cluster-mode writer of Services (docs/CLUSTER.md).
 *
 * The file is parsed and validated by svcd's manifest code; each Service is
 * then stored at /svcd/services/<ns>/<name> as Kubernetes-shaped JSON with
 * its ClusterIP and nodePorts filled in. Allocation is one etcd txn per
 * Service that succeeds only if
 *   - the Service key is still at the revision we read (or still absent), and
 *   - every newly taken /svcd/alloc/clusterip/<ip> and
 *     /svcd/alloc/nodeport/<proto>/<port> key is still absent,
 * and then writes the allocation keys and the Service together. A lost race
 * reads again and tries the next candidate, so two concurrent applies (from
 * any nodes) never hand out the same address. A re-applied Service keeps
 * its addresses (spec.clusterIP is immutable, as in Kubernetes); ports it
 * no longer has release their nodePorts in the same txn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "svcd/cluster.h"
#include "svcd/etcd.h"
#include "svcd/hmap.h"
#include "svcd/manifest.h"
#include "svcctl_etcd.h"

#define SVCCTL_ALLOC_ATTEMPTS 256

struct svcctl_old {
    bool exists;
    int64_t mod_revision;
    char *value;
    struct svcd_service *svc;
};

static void svcctl_old_free(struct svcctl_old *o)
{
    free(o->value);
    model_service_free(o->svc);
    memset(o, 0, sizeof(*o));
}

static json_t *svcctl_b64(const char *s)
{
    char *b = etcd_b64_encode(s, strlen(s));
    json_t *j = b ? json_string(b) : NULL;
    free(b);
    return j;
}

/* Reads key. 0 (o->exists says whether it was there), or -1 with err. */
static int svcctl_get(struct etcd_client *c, const char *key, struct svcctl_old *o, char *err,
                      size_t errlen)
{
    json_t *resp = NULL;
    struct etcd_msg m;
    memset(o, 0, sizeof(*o));
    if (etcd_call_sync(c, "kv/range", json_pack("{s:o}", "key", svcctl_b64(key)), &resp, err,
                       errlen) != 0)
        return -1;
    int rc = etcd_parse_range(resp, &m);
    json_decref(resp);
    if (rc != 0) {
        snprintf(err, errlen, "undecodable answer from etcd");
        return -1;
    }
    if (m.n_kvs) {
        o->exists = true;
        o->mod_revision = m.kvs[0].mod_revision;
        o->value = m.kvs[0].value;
        m.kvs[0].value = NULL;
    }
    etcd_msg_free(&m);
    return 0;
}

/* The allocation keys a Service holds. */
struct svcctl_keys {
    char keys[2 + 64][128];
    bool user[2 + 64];            /* the manifest named it (not a candidate) */
    size_t n;
};

static void svcctl_svc_keys(const struct svcd_service *s, struct svcctl_keys *k)
{
    k->n = 0;
    for (size_t i = 0; i < s->n_cluster_ips && k->n < 66; i++)
        if (cluster_key_alloc_ip(k->keys[k->n], sizeof(k->keys[0]), &s->cluster_ips[i]))
            k->user[k->n++] = false;
    for (size_t i = 0; i < s->n_ports && k->n < 66; i++)
        if (s->ports[i].node_port &&
            cluster_key_alloc_nodeport(k->keys[k->n], sizeof(k->keys[0]), s->ports[i].protocol,
                                       s->ports[i].node_port))
            k->user[k->n++] = false;
}

static bool svcctl_keys_has(const struct svcctl_keys *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->keys[i], key))
            return true;
    return false;
}

static bool svcctl_wants_ip(const struct svcd_service *s)
{
    return !s->headless && s->type != SVCD_SVC_EXTERNAL_NAME;
}

static bool svcctl_wants_nodeports(const struct svcd_service *s)
{
    return s->type == SVCD_SVC_NODE_PORT || s->type == SVCD_SVC_LOAD_BALANCER;
}

/* The old port that a new port continues (same protocol and name, or same
 * protocol and port when unnamed). */
static const struct svcd_service_port *svcctl_old_port(const struct svcd_service *old,
                                                       const struct svcd_service_port *p)
{
    for (size_t i = 0; old && i < old->n_ports; i++) {
        const struct svcd_service_port *o = &old->ports[i];
        if (o->protocol != p->protocol)
            continue;
        if ((p->name && o->name && !strcmp(p->name, o->name)) ||
            (!p->name && !o->name && o->port == p->port))
            return o;
    }
    return NULL;
}

static uint64_t svcctl_seed(const struct svcd_service *s)
{
    char nn[600];
    snprintf(nn, sizeof(nn), "%s/%s", s->meta.ns, s->meta.name);
    return hmap_hash(nn, strlen(nn), HMAP_HASH_SEED);
}

/* Applies one Service. 0, or -1 with err. */
static int svcctl_apply_one(struct etcd_client *c, const struct svcctl_etcd_opts *o,
                            struct svcd_service *svc, char *err, size_t errlen)
{
    char key[600], owner[600];
    const size_t n_user_ips = svc->n_cluster_ips, n_user_fams = svc->n_ip_families;
    uint16_t user_np[64] = { 0 };
    for (size_t i = 0; i < svc->n_ports && i < 64; i++)
        user_np[i] = svc->ports[i].node_port;
    if (!cluster_key_service(key, sizeof(key), svc->meta.ns, svc->meta.name)) {
        snprintf(err, errlen, "bad namespace or name");
        return -1;
    }
    snprintf(owner, sizeof(owner), "%s/%s", svc->meta.ns, svc->meta.name);
    uint64_t seed = svcctl_seed(svc);
    uint32_t attempt = 0;
    for (int round = 0; round < SVCCTL_ALLOC_ATTEMPTS; round++) {
        struct svcctl_old old;
        struct svcd_pod *pod = NULL;
        char perr[300];
        if (svcctl_get(c, key, &old, err, errlen) != 0)
            return -1;
        if (old.exists &&
            cluster_value_parse(old.value, strlen(old.value), &old.svc, &pod, perr,
                                sizeof(perr)) != 0) {
            model_pod_free(pod);
            old.svc = NULL;     /* unreadable old value: overwrite it */
        }
        /* Start from the manifest's own values each round. */
        svc->n_cluster_ips = n_user_ips;
        svc->n_ip_families = n_user_fams;
        for (size_t i = 0; i < svc->n_ports && i < 64; i++)
            svc->ports[i].node_port = user_np[i];
        if (old.svc) {
            svc->meta.created = old.svc->meta.created;
            if (svcctl_wants_ip(svc) && old.svc->n_cluster_ips && !old.svc->headless) {
                if (!n_user_ips) {
                    svc->n_cluster_ips = old.svc->n_cluster_ips;
                    memcpy(svc->cluster_ips, old.svc->cluster_ips, sizeof(svc->cluster_ips));
                } else if (!svcd_ip_equal(&svc->cluster_ips[0], &old.svc->cluster_ips[0])) {
                    char a[INET6_ADDRSTRLEN];
                    snprintf(err, errlen, "spec.clusterIP: field is immutable (is %s)",
                             svcd_ip_format(&old.svc->cluster_ips[0], a, sizeof(a)));
                    svcctl_old_free(&old);
                    return -1;
                }
            }
        }
        if (svcctl_wants_ip(svc) && !svc->n_cluster_ips) {
            if (cluster_alloc_ip_candidate(&o->service_cidr, seed, attempt, &svc->cluster_ips[0])) {
                snprintf(err, errlen, "service CIDR too small");
                svcctl_old_free(&old);
                return -1;
            }
            svc->n_cluster_ips = 1;
        }
        if (svcctl_wants_nodeports(svc)) {
            for (size_t i = 0; i < svc->n_ports && i < 64; i++) {
                struct svcd_service_port *p = &svc->ports[i];
                const struct svcd_service_port *op = svcctl_old_port(old.svc, p);
                if (!p->node_port && op && op->node_port)
                    p->node_port = op->node_port;
                if (!p->node_port)
                    p->node_port = cluster_alloc_port_candidate(o->np_lo, o->np_hi, seed,
                                                                attempt + (uint32_t)i * 7919);
            }
        }
        /* ipFamilies as manifest_parse defaults them from the addresses, so
         * that a re-apply of the same file compares equal. */
        if (!svc->n_ip_families)
            for (size_t i = 0; i < svc->n_cluster_ips; i++)
                svc->ip_families[svc->n_ip_families++] = svc->cluster_ips[i].family;
        json_t *obj = cluster_service_to_json(svc);
        char *val = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(obj);
        if (!val) {
            snprintf(err, errlen, "out of memory");
            svcctl_old_free(&old);
            return -1;
        }
        if (old.exists && !strcmp(old.value, val)) {
            printf("service/%s unchanged\n", svc->meta.name);
            free(val);
            svcctl_old_free(&old);
            return 0;
        }
        struct svcctl_keys nk, ok = { .n = 0 };
        svcctl_svc_keys(svc, &nk);
        if (old.svc)
            svcctl_svc_keys(old.svc, &ok);
        for (size_t i = 0; i < nk.n; i++)
            nk.user[i] = strstr(nk.keys[i], "/clusterip/") ? n_user_ips > 0 : false;
        json_t *cmp = json_array(), *ops = json_array();
        if (old.exists)
            json_array_append_new(cmp, json_pack("{s:o,s:s,s:s,s:I}", "key", svcctl_b64(key),
                                                 "target", "MOD", "result", "EQUAL",
                                                 "mod_revision", (json_int_t)old.mod_revision));
        else
            json_array_append_new(cmp, json_pack("{s:o,s:s,s:s,s:I}", "key", svcctl_b64(key),
                                                 "target", "CREATE", "result", "EQUAL",
                                                 "create_revision", (json_int_t)0));
        for (size_t i = 0; i < nk.n; i++) {
            if (svcctl_keys_has(&ok, nk.keys[i]))
                continue;
            json_array_append_new(cmp, json_pack("{s:o,s:s,s:s,s:I}", "key",
                                                 svcctl_b64(nk.keys[i]), "target", "CREATE",
                                                 "result", "EQUAL", "create_revision",
                                                 (json_int_t)0));
            json_array_append_new(ops, json_pack("{s:{s:o,s:o}}", "request_put", "key",
                                                 svcctl_b64(nk.keys[i]), "value",
                                                 svcctl_b64(owner)));
        }
        for (size_t i = 0; i < ok.n; i++)
            if (!svcctl_keys_has(&nk, ok.keys[i]))
                json_array_append_new(ops, json_pack("{s:{s:o}}", "request_delete_range", "key",
                                                     svcctl_b64(ok.keys[i])));
        json_array_append_new(ops, json_pack("{s:{s:o,s:o}}", "request_put", "key",
                                             svcctl_b64(key), "value", svcctl_b64(val)));
        free(val);
        json_t *resp = NULL;
        if (etcd_call_sync(c, "kv/txn", json_pack("{s:o,s:o}", "compare", cmp, "success", ops),
                           &resp, err, errlen) != 0) {
            svcctl_old_free(&old);
            return -1;
        }
        bool done = json_is_true(json_object_get(resp, "succeeded"));
        json_decref(resp);
        if (done) {
            printf("service/%s %s\n", svc->meta.name, old.exists ? "configured" : "created");
            svcctl_old_free(&old);
            return 0;
        }
        /* Lost a race: a user-given address taken by another Service is an
         * error; otherwise read again and try the next candidates. */
        for (size_t i = 0; i < nk.n; i++) {
            struct svcctl_old a;
            bool user = nk.user[i];
            if (!user && strstr(nk.keys[i], "/nodeport/")) {
                for (size_t p = 0; p < svc->n_ports && p < 64; p++) {
                    char k2[128];
                    if (user_np[p] && cluster_key_alloc_nodeport(k2, sizeof(k2),
                                                                 svc->ports[p].protocol,
                                                                 user_np[p]) &&
                        !strcmp(k2, nk.keys[i]))
                        user = true;
                }
            }
            if (!user || svcctl_keys_has(&ok, nk.keys[i]))
                continue;
            if (svcctl_get(c, nk.keys[i], &a, err, errlen) != 0) {
                svcctl_old_free(&old);
                return -1;
            }
            if (a.exists && strcmp(a.value, owner) != 0) {
                snprintf(err, errlen, "%s is already allocated to %s",
                         strrchr(nk.keys[i], '/') + 1, a.value);
                svcctl_old_free(&a);
                svcctl_old_free(&old);
                return -1;
            }
            svcctl_old_free(&a);
        }
        svcctl_old_free(&old);
        attempt++;
    }
    snprintf(err, errlen, "no free address after %d attempts", SVCCTL_ALLOC_ATTEMPTS);
    return -1;
}

/* Deletes one Service and its allocation keys. 0, 1 when absent, -1. */
static int svcctl_delete_one(struct etcd_client *c, const struct svcd_service *svc, char *err,
                             size_t errlen)
{
    char key[600];
    if (!cluster_key_service(key, sizeof(key), svc->meta.ns, svc->meta.name)) {
        snprintf(err, errlen, "bad namespace or name");
        return -1;
    }
    for (int round = 0; round < 16; round++) {
        struct svcctl_old old;
        struct svcd_pod *pod = NULL;
        char perr[300];
        if (svcctl_get(c, key, &old, err, errlen) != 0)
            return -1;
        if (!old.exists)
            return 1;
        if (cluster_value_parse(old.value, strlen(old.value), &old.svc, &pod, perr,
                                sizeof(perr)) != 0) {
            model_pod_free(pod);
            old.svc = NULL;
        }
        struct svcctl_keys k = { .n = 0 };
        if (old.svc)
            svcctl_svc_keys(old.svc, &k);
        json_t *ops = json_array();
        json_array_append_new(ops, json_pack("{s:{s:o}}", "request_delete_range", "key",
                                             svcctl_b64(key)));
        for (size_t i = 0; i < k.n; i++)
            json_array_append_new(ops, json_pack("{s:{s:o}}", "request_delete_range", "key",
                                                 svcctl_b64(k.keys[i])));
        json_t *body = json_pack("{s:[{s:o,s:s,s:s,s:I}],s:o}", "compare", "key",
                                 svcctl_b64(key), "target", "MOD", "result", "EQUAL",
                                 "mod_revision", (json_int_t)old.mod_revision, "success", ops);
        svcctl_old_free(&old);
        json_t *resp = NULL;
        if (etcd_call_sync(c, "kv/txn", body, &resp, err, errlen) != 0)
            return -1;
        bool done = json_is_true(json_object_get(resp, "succeeded"));
        json_decref(resp);
        if (done)
            return 0;
    }
    snprintf(err, errlen, "the Service keeps changing; try again");
    return -1;
}

int svcctl_etcd_run(const struct svcctl_etcd_opts *o, bool del)
{
    char err[600];
    FILE *f = strcmp(o->file, "-") ? fopen(o->file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "svcctl: cannot open %s: %m\n", o->file);
        return 1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!buf) {
        fprintf(stderr, "svcctl: out of memory\n");
        return 1;
    }
    struct manifest_objs objs;
    int rc = manifest_parse(buf, len, (int64_t)time(NULL), &objs, err, sizeof(err));
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "error: %s: %s\n", o->file, err);
        return 1;
    }
    if (objs.n_pods || objs.n_slices) {
        fprintf(stderr, "error: %s: svcctl %s stores Services only; Pods come from each node's "
                "own source\n", o->file, del ? "delete" : "apply");
        manifest_objs_free(&objs);
        return 1;
    }
    struct event_base *base = event_base_new();
    struct etcd_tls tls = { o->cafile, o->certfile, o->keyfile };
    struct etcd_client *c = base ? etcd_client_new(base, o->endpoints, &tls, err, sizeof(err))
                                 : NULL;
    int status = 0;
    if (!c) {
        fprintf(stderr, "svcctl: %s\n", base ? err : "out of memory");
        status = 1;
        goto out;
    }
    for (size_t i = 0; i < objs.n_services; i++) {
        struct svcd_service *s = objs.services[i];
        if (del) {
            int r = svcctl_delete_one(c, s, err, sizeof(err));
            if (r == 0) {
                printf("service \"%s\" deleted\n", s->meta.name);
            } else if (r == 1) {
                fprintf(stderr, "Error from server (NotFound): services \"%s\" not found\n",
                        s->meta.name);
                status = 1;
            } else {
                fprintf(stderr, "error: service \"%s\": %s\n", s->meta.name, err);
                status = 1;
            }
        } else if (svcctl_apply_one(c, o, s, err, sizeof(err)) != 0) {
            fprintf(stderr, "error: service \"%s\": %s\n", s->meta.name, err);
            status = 1;
        }
    }
out:
    etcd_client_free(c);
    if (base)
        event_base_free(base);
    manifest_objs_free(&objs);
    return status;
}
