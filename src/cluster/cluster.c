/*
 * cluster: one svcd node as a member of an etcd-backed cluster.
 *
 *   connect:  lease/grant (once per lease) -> kv/range /svcd/ (consistent
 *             list) -> converge the store -> watch /svcd/ from revision+1
 *   publish:  this node's pods (every pod in the store that did not come
 *             from etcd) go to /svcd/pods/<node>/<ns>/<name> under the
 *             lease, in txns of up to CLUSTER_TXN_OPS puts/deletes; a store
 *             commit that changes a local pod marks it dirty
 *   keepalive: lease/keepalive every TTL/3; a lease found expired is
 *             granted anew and everything republished
 *   failure:  a lost watch or failed call marks the member degraded (kept
 *             in /readyz), keeps the store as it is (no flush), and retries
 *             with backoff; the retry relists and converges: objects gone
 *             from etcd are deleted from the store, the rest upserted (an
 *             unchanged object is a no-op thanks to its fingerprint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "svcd/cluster.h"
#include "svcd/etcd.h"
#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/store.h"

#define CLUSTER_TXN_OPS 100          /* etcd's default --max-txn-ops is 128 */
#define CLUSTER_BACKOFF_MIN_MS 200
#define CLUSTER_BACKOFF_MAX_MS 5000
#define CLUSTER_SET ((void *)1)

struct cluster {
    struct event_base *base;
    struct store *st;
    struct etcd_client *etcd;
    char *node, *node_ip;
    uint32_t ttl;
    int64_t lease;                   /* 0 = none granted */
    int64_t rev;                     /* last revision applied */
    bool synced;                     /* a list was applied once */
    bool watch_ok, lease_ok;
    bool connecting;                 /* a grant/list call is in flight */
    bool ka_inflight, flush_inflight;
    bool publish_all;
    bool applying;                   /* our own store commit runs */
    struct etcd_watch *watch;
    struct event *ev_retry, *ev_keepalive, *ev_flush;
    uint32_t backoff_ms;
    struct hmap *remote_pods;        /* "ns/name" -> node (strdup): pods from etcd */
    struct hmap *services;           /* "ns/name" -> SET: Services from etcd */
    struct hmap *published;          /* "ns/name" -> SET: our pod keys in etcd */
    struct hmap *dirty;              /* "ns/name" -> SET: local pods to publish */
    json_t *pending_ops;             /* txn ops not yet sent */
    char last_err[400];
    uint64_t failures;               /* failed calls and lost watches */
    struct cluster_stats stats;
};

static void cluster_connect(struct cluster *cl);
static void cluster_schedule_flush(struct cluster *cl);

/* ---- helpers ----------------------------------------------------------------- */

static void cluster_nsname(char *buf, size_t len, const char *ns, const char *name)
{
    snprintf(buf, len, "%s/%s", ns, name);
}

static json_t *cluster_b64(const char *s, size_t len)
{
    char *b = etcd_b64_encode(s, len);
    json_t *j = b ? json_string(b) : NULL;
    free(b);
    return j;
}

/* {"key": b64(prefix), "range_end": b64(prefix+1)} plus extra fields. */
static json_t *cluster_prefix_req(const char *prefix)
{
    char *end = etcd_prefix_end_b64(prefix);
    json_t *j = end ? json_pack("{s:o,s:s}", "key", cluster_b64(prefix, strlen(prefix)),
                                "range_end", end) : NULL;
    free(end);
    return j;
}

static void cluster_fail(struct cluster *cl, const char *what, const char *err)
{
    snprintf(cl->last_err, sizeof(cl->last_err), "%s: %s", what, err ? err : "failed");
    cl->failures++;
    log_warn("cluster", "%s", cl->last_err);
}

static void cluster_retry_later(struct cluster *cl)
{
    if (evtimer_pending(cl->ev_retry, NULL))
        return;
    struct timeval tv = { cl->backoff_ms / 1000, (cl->backoff_ms % 1000) * 1000 };
    evtimer_add(cl->ev_retry, &tv);
    cl->backoff_ms *= 2;
    if (cl->backoff_ms > CLUSTER_BACKOFF_MAX_MS)
        cl->backoff_ms = CLUSTER_BACKOFF_MAX_MS;
}

/* ---- applying etcd objects to the store ----------------------------------------- */

/* Applies one put or delete (inside a store batch). */
static void cluster_apply_kv(struct cluster *cl, const struct etcd_kv *kv)
{
    struct cluster_key k;
    char nn[600], err[300];
    if (cluster_key_parse(kv->key, &k) != 0)
        return;
    if (k.kind != CLUSTER_KEY_SERVICE && k.kind != CLUSTER_KEY_POD)
        return;
    cluster_nsname(nn, sizeof(nn), k.ns, k.name);
    if (k.kind == CLUSTER_KEY_POD && strcmp(k.node, cl->node) == 0) {
        /* Our own key: our puts echo back; a key for a pod we do not have
         * (left from an earlier run) is deleted by the next flush. */
        if (!kv->deleted) {
            hmap_set(cl->published, nn, CLUSTER_SET);
            const struct svcd_pod *p = store_pod_get(cl->st, k.ns, k.name);
            if (!p || hmap_get(cl->remote_pods, nn)) {
                hmap_set(cl->dirty, nn, CLUSTER_SET);
                cluster_schedule_flush(cl);
            }
        }
        return;
    }
    if (kv->deleted) {
        if (k.kind == CLUSTER_KEY_SERVICE && hmap_del(cl->services, nn)) {
            store_service_delete(cl->st, k.ns, k.name);
        } else if (k.kind == CLUSTER_KEY_POD) {
            char *node = hmap_get(cl->remote_pods, nn);
            if (node && strcmp(node, k.node) == 0) {
                free(hmap_del(cl->remote_pods, nn));
                store_pod_delete(cl->st, k.ns, k.name);
            }
        }
        return;
    }
    struct svcd_service *svc = NULL;
    struct svcd_pod *pod = NULL;
    if (cluster_value_parse(kv->value, kv->value_len, &svc, &pod, err, sizeof(err)) != 0) {
        log_warn("cluster", "%s: ignored: %s", kv->key, err);
        return;
    }
    if (k.kind == CLUSTER_KEY_SERVICE && svc && !strcmp(svc->meta.ns, k.ns) &&
        !strcmp(svc->meta.name, k.name)) {
        hmap_set(cl->services, nn, CLUSTER_SET);
        store_service_upsert(cl->st, svc);
        return;
    }
    if (k.kind == CLUSTER_KEY_POD && pod && !strcmp(pod->meta.ns, k.ns) &&
        !strcmp(pod->meta.name, k.name)) {
        char *owner = hmap_get(cl->remote_pods, nn);
        if (!owner && store_pod_get(cl->st, k.ns, k.name)) {
            log_warn("cluster", "%s: pod %s also exists on this node; the local one is kept",
                     kv->key, nn);
            model_pod_free(pod);
            return;
        }
        if (!owner || strcmp(owner, k.node) != 0) {
            char *dup = strdup(k.node);
            if (!dup) {
                model_pod_free(pod);
                return;
            }
            free(owner);
            hmap_set(cl->remote_pods, nn, dup);
        }
        if (!pod->node_name)
            pod->node_name = strdup(k.node);
        store_pod_upsert(cl->st, pod);
        return;
    }
    log_warn("cluster", "%s: value does not match its key; ignored", kv->key);
    model_service_free(svc);
    model_pod_free(pod);
}

struct cluster_gc {
    struct hmap *seen;
    char **keys;
    size_t n, cap;
};

static int cluster_gc_collect(void *ctx, const char *key, void *value)
{
    struct cluster_gc *g = ctx;
    (void)value;
    if (hmap_get(g->seen, key))
        return 0;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        char **k = realloc(g->keys, cap * sizeof(*k));
        if (!k)
            return 1;
        g->keys = k;
        g->cap = cap;
    }
    g->keys[g->n] = strdup(key);
    if (g->keys[g->n])
        g->n++;
    return 0;
}

/* Deletes from the store (and from map) what map has and seen has not. */
static void cluster_gc(struct cluster *cl, struct hmap *map, struct hmap *seen, bool pods)
{
    struct cluster_gc g = { .seen = seen };
    hmap_foreach(map, cluster_gc_collect, &g);
    for (size_t i = 0; i < g.n; i++) {
        char *sl = strchr(g.keys[i], '/');
        if (sl) {
            *sl = '\0';
            if (pods)
                store_pod_delete(cl->st, g.keys[i], sl + 1);
            else
                store_service_delete(cl->st, g.keys[i], sl + 1);
            *sl = '/';
        }
        void *v = hmap_del(map, g.keys[i]);
        if (pods)
            free(v);
        free(g.keys[i]);
    }
    free(g.keys);
}

/* Converges the store to a full list of /svcd/. */
static void cluster_converge(struct cluster *cl, const struct etcd_msg *m)
{
    struct hmap *seen_svc = hmap_new(), *seen_pod = hmap_new();
    if (!seen_svc || !seen_pod)
        goto out;
    cl->applying = true;
    store_begin(cl->st);
    for (size_t i = 0; i < m->n_kvs; i++) {
        struct cluster_key k;
        char nn[600];
        cluster_apply_kv(cl, &m->kvs[i]);
        if (cluster_key_parse(m->kvs[i].key, &k) != 0)
            continue;
        if (k.kind != CLUSTER_KEY_SERVICE && k.kind != CLUSTER_KEY_POD)
            continue;
        cluster_nsname(nn, sizeof(nn), k.ns, k.name);
        if (k.kind == CLUSTER_KEY_SERVICE)
            hmap_set(seen_svc, nn, CLUSTER_SET);
        else if (strcmp(k.node, cl->node) != 0)
            hmap_set(seen_pod, nn, CLUSTER_SET);
    }
    cluster_gc(cl, cl->services, seen_svc, false);
    cluster_gc(cl, cl->remote_pods, seen_pod, true);
    store_commit(cl->st);
    cl->applying = false;
out:
    hmap_free(seen_svc);
    hmap_free(seen_pod);
}

/* ---- watch -------------------------------------------------------------------- */

static void cluster_watch_end(void *ctx, const char *err)
{
    struct cluster *cl = ctx;
    cl->watch = NULL;
    cl->watch_ok = false;
    cluster_fail(cl, "watch lost", err);
    cluster_retry_later(cl);
}

static void cluster_watch_msg(void *ctx, json_t *result)
{
    struct cluster *cl = ctx;
    struct etcd_msg m;
    if (etcd_parse_watch(result, &m) != 0) {
        log_warn("cluster", "undecodable watch message; relisting");
        goto relist;
    }
    if (m.compact_revision > 0 || m.canceled) {
        log_warn("cluster", "watch %s (compact revision %lld): relisting",
                 m.canceled ? "cancelled" : "compacted", (long long)m.compact_revision);
        etcd_msg_free(&m);
        goto relist;
    }
    if (m.created) {
        cl->watch_ok = true;
        cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
        log_info("cluster", "watching /svcd/ from revision %lld on %s", (long long)cl->rev + 1,
                 etcd_client_endpoint(cl->etcd));
    }
    if (m.n_kvs) {
        cl->applying = true;
        store_begin(cl->st);
        for (size_t i = 0; i < m.n_kvs; i++)
            cluster_apply_kv(cl, &m.kvs[i]);
        store_commit(cl->st);
        cl->applying = false;
        cl->stats.watch_events += m.n_kvs;
    }
    if (m.revision > cl->rev)
        cl->rev = m.revision;
    etcd_msg_free(&m);
    return;
relist:
    etcd_watch_cancel(cl->watch);
    cl->watch = NULL;
    cl->watch_ok = false;
    cluster_connect(cl);
}

static void cluster_start_watch(struct cluster *cl)
{
    json_t *req = cluster_prefix_req(CLUSTER_PREFIX);
    if (req)
        json_object_set_new(req, "start_revision", json_integer(cl->rev + 1));
    cl->watch = req ? etcd_watch_start(cl->etcd, req, cluster_watch_msg, cluster_watch_end, cl)
                    : NULL;
    if (!cl->watch) {
        cluster_fail(cl, "watch", "out of memory");
        cluster_retry_later(cl);
    }
}

/* ---- connect: grant, list, watch ------------------------------------------------- */

static void cluster_list_done(void *ctx, bool ok, json_t *resp, const char *err)
{
    struct cluster *cl = ctx;
    struct etcd_msg m;
    cl->connecting = false;
    if (!ok || etcd_parse_range(resp, &m) != 0) {
        cluster_fail(cl, "list /svcd/", ok ? "undecodable answer" : err);
        cluster_retry_later(cl);
        return;
    }
    cluster_converge(cl, &m);
    cl->rev = m.revision;
    cl->stats.relists++;
    if (!cl->synced)
        log_info("cluster", "initial list: %zu keys at revision %lld", m.n_kvs,
                 (long long)m.revision);
    cl->synced = true;
    etcd_msg_free(&m);
    cluster_start_watch(cl);
    cluster_schedule_flush(cl);
}

static void cluster_list(struct cluster *cl)
{
    json_t *req = cluster_prefix_req(CLUSTER_PREFIX);
    cl->connecting = true;
    if (!req || etcd_call(cl->etcd, "kv/range", req, cluster_list_done, cl) != 0) {
        cl->connecting = false;
        cluster_fail(cl, "list", "out of memory");
        cluster_retry_later(cl);
    }
}

static void cluster_grant_done(void *ctx, bool ok, json_t *resp, const char *err)
{
    struct cluster *cl = ctx;
    cl->connecting = false;
    int64_t id = ok ? etcd_json_int(resp, "ID", 0) : 0;
    if (!id) {
        cluster_fail(cl, "lease grant", ok ? "no lease ID in the answer" : err);
        cluster_retry_later(cl);
        return;
    }
    cl->lease = id;
    cl->lease_ok = true;
    cl->publish_all = true;
    cl->stats.lease_grants++;
    log_info("cluster", "node %s: lease %llx granted, TTL %u s", cl->node,
             (unsigned long long)id, cl->ttl);
    cluster_schedule_flush(cl);
    cluster_connect(cl);
}

/* The next step of joining: grant a lease if there is none, then list and
 * watch. Idempotent while a step is in flight. */
static void cluster_connect(struct cluster *cl)
{
    if (cl->connecting || cl->watch)
        return;
    if (!cl->lease) {
        json_t *req = json_pack("{s:I}", "TTL", (json_int_t)cl->ttl);
        cl->connecting = true;
        if (!req || etcd_call(cl->etcd, "lease/grant", req, cluster_grant_done, cl) != 0) {
            cl->connecting = false;
            cluster_retry_later(cl);
        }
        return;
    }
    cluster_list(cl);
}

static void cluster_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    cluster_connect(arg);
}

/* ---- keepalive --------------------------------------------------------------------- */

static void cluster_keepalive_done(void *ctx, bool ok, json_t *resp, const char *err)
{
    struct cluster *cl = ctx;
    cl->ka_inflight = false;
    if (!ok) {
        cl->lease_ok = false;
        cluster_fail(cl, "lease keepalive", err);
        return;
    }
    json_t *res = json_object_get(resp, "result");
    if (etcd_json_int(res ? res : resp, "TTL", 0) <= 0) {
        log_warn("cluster", "lease %llx expired: granting a new one and republishing",
                 (unsigned long long)cl->lease);
        cl->lease = 0;
        cl->lease_ok = false;
        if (!cl->connecting) {
            /* Grant without dropping the watch. */
            json_t *req = json_pack("{s:I}", "TTL", (json_int_t)cl->ttl);
            cl->connecting = true;
            if (!req || etcd_call(cl->etcd, "lease/grant", req, cluster_grant_done, cl) != 0)
                cl->connecting = false;
        }
        return;
    }
    cl->lease_ok = true;
}

static void cluster_on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    struct cluster *cl = arg;
    (void)fd; (void)what;
    if (!cl->lease || cl->ka_inflight)
        return;
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)cl->lease);
    cl->ka_inflight = true;
    if (!req || etcd_call(cl->etcd, "lease/keepalive", req, cluster_keepalive_done, cl) != 0)
        cl->ka_inflight = false;
}

/* ---- publishing this node's pods --------------------------------------------------- */

static int cluster_add_put(struct cluster *cl, const struct svcd_pod *p)
{
    char key[600], nn[600];
    if (!cluster_key_pod(key, sizeof(key), cl->node, p->meta.ns, p->meta.name))
        return 0;
    json_t *obj = cluster_pod_to_json(p, cl->node);
    char *val = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    if (!val)
        return -1;
    json_t *op = json_pack("{s:{s:o,s:o,s:I}}", "request_put", "key",
                           cluster_b64(key, strlen(key)), "value", cluster_b64(val, strlen(val)),
                           "lease", (json_int_t)cl->lease);
    free(val);
    if (!op || json_array_append_new(cl->pending_ops, op) != 0)
        return -1;
    cluster_nsname(nn, sizeof(nn), p->meta.ns, p->meta.name);
    hmap_set(cl->published, nn, CLUSTER_SET);
    return 0;
}

static int cluster_add_delete(struct cluster *cl, const char *nn)
{
    char key[600];
    int n = snprintf(key, sizeof(key), CLUSTER_PREFIX "pods/%s/%s", cl->node, nn);
    if (n <= 0 || (size_t)n >= sizeof(key))
        return 0;
    json_t *op = json_pack("{s:{s:o}}", "request_delete_range", "key",
                           cluster_b64(key, strlen(key)));
    if (!op || json_array_append_new(cl->pending_ops, op) != 0)
        return -1;
    hmap_del(cl->published, nn);
    return 0;
}

/* Queues the publication of one local pod by its "ns/name". */
static void cluster_queue_one(struct cluster *cl, const char *nn)
{
    char buf[600];
    snprintf(buf, sizeof(buf), "%s", nn);
    char *sl = strchr(buf, '/');
    if (!sl)
        return;
    *sl = '\0';
    const struct svcd_pod *p = store_pod_get(cl->st, buf, sl + 1);
    if (p && !hmap_get(cl->remote_pods, nn))
        cluster_add_put(cl, p);
    else if (hmap_get(cl->published, nn))
        cluster_add_delete(cl, nn);
}

static int cluster_queue_local(void *ctx, const struct svcd_pod *p)
{
    struct cluster *cl = ctx;
    char nn[600];
    cluster_nsname(nn, sizeof(nn), p->meta.ns, p->meta.name);
    if (!hmap_get(cl->remote_pods, nn))
        cluster_add_put(cl, p);
    return 0;
}

struct cluster_keys {
    char **keys;
    size_t n, cap;
};

static int cluster_keys_collect(void *ctx, const char *key, void *value)
{
    struct cluster_keys *k = ctx;
    (void)value;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        char **p = realloc(k->keys, cap * sizeof(*p));
        if (!p)
            return 1;
        k->keys = p;
        k->cap = cap;
    }
    if ((k->keys[k->n] = strdup(key)))
        k->n++;
    return 0;
}

static void cluster_keys_free(struct cluster_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
}

static void cluster_send_ops(struct cluster *cl);

static void cluster_txn_done(void *ctx, bool ok, json_t *resp, const char *err)
{
    struct cluster *cl = ctx;
    cl->flush_inflight = false;
    if (!ok) {
        cluster_fail(cl, "publish", err);
        json_array_clear(cl->pending_ops);
        cl->publish_all = true;      /* simplest correct recovery: all again */
        struct timeval tv = { 1, 0 };
        evtimer_add(cl->ev_flush, &tv);
        return;
    }
    cl->stats.publishes++;
    log_debug("cluster", "published (txn at revision %lld)",
              (long long)etcd_json_int(json_object_get(resp, "header"), "revision", 0));
    cluster_send_ops(cl);
}

/* Sends the next txn of pending ops, or, when none is left, looks for
 * more work. */
static void cluster_send_ops(struct cluster *cl)
{
    size_t n = json_array_size(cl->pending_ops);
    if (!n) {
        if (cl->publish_all || hmap_count(cl->dirty))
            cluster_schedule_flush(cl);
        return;
    }
    size_t take = n < CLUSTER_TXN_OPS ? n : CLUSTER_TXN_OPS;
    json_t *ops = json_array();
    for (size_t i = 0; ops && i < take; i++)
        json_array_append(ops, json_array_get(cl->pending_ops, i));
    for (size_t i = 0; i < take; i++)
        json_array_remove(cl->pending_ops, 0);
    json_t *req = ops ? json_pack("{s:o}", "success", ops) : NULL;
    cl->flush_inflight = true;
    log_debug("cluster", "publishing %zu puts/deletes", take);
    if (!req || etcd_call(cl->etcd, "kv/txn", req, cluster_txn_done, cl) != 0)
        cluster_txn_done(cl, false, NULL, "out of memory");
}

static void cluster_on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct cluster *cl = arg;
    (void)fd; (void)what;
    if (!cl->lease || cl->flush_inflight)
        return;                      /* the grant or the running txn calls us again */
    if (cl->publish_all) {
        cl->publish_all = false;
        hmap_free(cl->dirty);
        cl->dirty = hmap_new();
        char key[600];
        json_t *node = json_pack("{s:s,s:s}", "name", cl->node, "ip", cl->node_ip);
        char *val = node ? json_dumps(node, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(node);
        if (val && cluster_key_node(key, sizeof(key), cl->node))
            json_array_append_new(cl->pending_ops,
                                  json_pack("{s:{s:o,s:o,s:I}}", "request_put", "key",
                                            cluster_b64(key, strlen(key)), "value",
                                            cluster_b64(val, strlen(val)), "lease",
                                            (json_int_t)cl->lease));
        free(val);
        store_foreach_pod(cl->st, cluster_queue_local, cl);
        /* Keys we published for pods that are gone. */
        struct cluster_keys k = { 0 };
        hmap_foreach(cl->published, cluster_keys_collect, &k);
        for (size_t i = 0; i < k.n; i++) {
            char *sl = strchr(k.keys[i], '/');
            if (!sl)
                continue;
            *sl = '\0';
            bool gone = !store_pod_get(cl->st, k.keys[i], sl + 1);
            *sl = '/';
            if (gone || hmap_get(cl->remote_pods, k.keys[i]))
                cluster_add_delete(cl, k.keys[i]);
        }
        cluster_keys_free(&k);
    } else {
        struct cluster_keys k = { 0 };
        hmap_foreach(cl->dirty, cluster_keys_collect, &k);
        hmap_free(cl->dirty);
        cl->dirty = hmap_new();
        for (size_t i = 0; i < k.n; i++)
            cluster_queue_one(cl, k.keys[i]);
        cluster_keys_free(&k);
    }
    if (!cl->dirty) {
        log_err("cluster", "out of memory");
        cl->dirty = hmap_new();
    }
    cluster_send_ops(cl);
}

static void cluster_schedule_flush(struct cluster *cl)
{
    if (!evtimer_pending(cl->ev_flush, NULL)) {
        struct timeval tv = { 0, 0 };
        evtimer_add(cl->ev_flush, &tv);
    }
}

/* Store subscriber: local pods that changed become dirty. */
static void cluster_on_commit(void *ctx, struct store *st, uint64_t generation,
                              const struct store_change *changes, size_t n_changes,
                              bool pods_changed)
{
    struct cluster *cl = ctx;
    (void)generation; (void)changes; (void)n_changes;
    if (cl->applying || !pods_changed)
        return;
    const struct store_pod_ref *refs;
    size_t n = store_changed_pods(st, &refs);
    if (n == SIZE_MAX) {
        cl->publish_all = true;
    } else {
        for (size_t i = 0; i < n; i++) {
            char nn[600];
            cluster_nsname(nn, sizeof(nn), refs[i].ns, refs[i].name);
            if (!hmap_get(cl->remote_pods, nn))
                hmap_set(cl->dirty, nn, CLUSTER_SET);
        }
    }
    cluster_schedule_flush(cl);
}

/* ---- metrics ------------------------------------------------------------------------- */

static double cluster_m_rx(void *ctx)
{
    uint64_t rx, tx;
    etcd_client_traffic(((struct cluster *)ctx)->etcd, &rx, &tx);
    return (double)rx;
}

static double cluster_m_tx(void *ctx)
{
    uint64_t rx, tx;
    etcd_client_traffic(((struct cluster *)ctx)->etcd, &rx, &tx);
    return (double)tx;
}

static double cluster_m_connected(void *ctx)
{
    struct cluster *cl = ctx;
    return cl->watch_ok && cl->lease_ok ? 1 : 0;
}

static double cluster_m_remote(void *ctx)
{
    return (double)hmap_count(((struct cluster *)ctx)->remote_pods);
}

static double cluster_m_events(void *ctx)
{
    return (double)((struct cluster *)ctx)->stats.watch_events;
}

static double cluster_m_relists(void *ctx)
{
    return (double)((struct cluster *)ctx)->stats.relists;
}

static double cluster_m_publishes(void *ctx)
{
    return (double)((struct cluster *)ctx)->stats.publishes;
}

static void cluster_metrics_init(struct cluster *cl)
{
    metric_gauge_fn("svcd_etcd_received_bytes", NULL, "Body bytes received from etcd.",
                    cluster_m_rx, cl);
    metric_gauge_fn("svcd_etcd_sent_bytes", NULL, "Body bytes sent to etcd.", cluster_m_tx, cl);
    metric_gauge_fn("svcd_etcd_connected", NULL,
                    "1 while the watch and the lease are healthy, else 0 (degraded).",
                    cluster_m_connected, cl);
    metric_gauge_fn("svcd_cluster_remote_pods", NULL, "Pods of other nodes in the store.",
                    cluster_m_remote, cl);
    metric_gauge_fn("svcd_cluster_watch_events", NULL, "etcd watch events applied.",
                    cluster_m_events, cl);
    metric_gauge_fn("svcd_cluster_relists", NULL, "Full lists of /svcd/ applied (start, "
                    "lost watch, compaction).", cluster_m_relists, cl);
    metric_gauge_fn("svcd_cluster_publish_txns", NULL, "Txns that published this node's pods.",
                    cluster_m_publishes, cl);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

struct cluster *cluster_new(struct event_base *base, struct store *st,
                            const struct cluster_config *cfg)
{
    char err[300];
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return NULL;
    cl->base = base;
    cl->st = st;
    cl->ttl = cfg->lease_ttl_s ? cfg->lease_ttl_s : 10;
    cl->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
    cl->node = strdup(cfg->node_name);
    cl->node_ip = strdup(cfg->node_ip ? cfg->node_ip : "");
    cl->remote_pods = hmap_new();
    cl->services = hmap_new();
    cl->published = hmap_new();
    cl->dirty = hmap_new();
    cl->pending_ops = json_array();
    cl->ev_retry = evtimer_new(base, cluster_on_retry, cl);
    cl->ev_keepalive = event_new(base, -1, EV_PERSIST, cluster_on_keepalive, cl);
    cl->ev_flush = evtimer_new(base, cluster_on_flush, cl);
    if (!cl->node || !cl->node_ip || !cl->remote_pods || !cl->services || !cl->published ||
        !cl->dirty || !cl->pending_ops || !cl->ev_retry || !cl->ev_keepalive || !cl->ev_flush) {
        log_err("cluster", "out of memory");
        goto fail;
    }
    if (!*cl->node || strchr(cl->node, '/')) {
        log_err("cluster", "--node-name \"%s\" cannot be used as an etcd key part", cl->node);
        goto fail;
    }
    struct etcd_tls tls = { cfg->cafile, cfg->certfile, cfg->keyfile };
    cl->etcd = etcd_client_new(base, cfg->endpoints, &tls, err, sizeof(err));
    if (!cl->etcd) {
        log_err("cluster", "%s", err);
        goto fail;
    }
    struct store_subscriber sub = { cluster_on_commit, cl };
    if (store_subscribe(st, &sub) != 0)
        goto fail;
    cluster_metrics_init(cl);
    uint32_t ka_ms = cl->ttl * 1000 / 3;
    struct timeval tv = { ka_ms / 1000, (ka_ms % 1000) * 1000 };
    event_add(cl->ev_keepalive, &tv);
    log_info("cluster", "node %s joining through etcd %s (lease TTL %u s)", cl->node,
             cfg->endpoints, cl->ttl);
    cluster_connect(cl);
    return cl;
fail:
    cluster_free(cl);
    return NULL;
}

static int cluster_free_value(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    free(value);
    return 0;
}

void cluster_free(struct cluster *cl)
{
    if (!cl)
        return;
    store_unsubscribe(cl->st, cl);
    etcd_watch_cancel(cl->watch);
    etcd_client_free(cl->etcd);
    if (cl->ev_retry) event_free(cl->ev_retry);
    if (cl->ev_keepalive) event_free(cl->ev_keepalive);
    if (cl->ev_flush) event_free(cl->ev_flush);
    if (cl->remote_pods)
        hmap_foreach(cl->remote_pods, cluster_free_value, NULL);
    hmap_free(cl->remote_pods);
    hmap_free(cl->services);
    hmap_free(cl->published);
    hmap_free(cl->dirty);
    json_decref(cl->pending_ops);
    free(cl->node);
    free(cl->node_ip);
    free(cl);
}

int cluster_health(const struct cluster *cl, char *reason, size_t len)
{
    if (!cl->synced && !cl->failures) {
        snprintf(reason, len, "initial etcd list pending");
        return 1;
    }
    if (!cl->synced) {
        snprintf(reason, len, "etcd unreachable: %s; retrying", cl->last_err);
        return 2;
    }
    if (!cl->watch_ok || !cl->lease_ok) {
        snprintf(reason, len, "etcd degraded: %s; serving the last known state, reconnecting",
                 cl->last_err);
        return 2;
    }
    return 0;
}

void cluster_get_stats(const struct cluster *cl, struct cluster_stats *out)
{
    *out = cl->stats;
    etcd_client_traffic(cl->etcd, &out->rx_bytes, &out->tx_bytes);
    out->remote_pods = hmap_count(cl->remote_pods);
    out->services = hmap_count(cl->services);
    out->connected = cl->watch_ok && cl->lease_ok;
}
