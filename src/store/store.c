/*
 * store: owner of Services, Pods, EndpointSlices and computed endpoints.
 *
 * Tables (all hmap, keyed "ns/name" unless said):
 *   services  -> struct svc_entry   (Service + its endpoint array)
 *   pods      -> struct pod_entry   (Pod + the Services it is an endpoint of)
 *   slices    -> struct svcd_endpoint_slice
 *   svc_sel   "ns\x1fkey=value" -> ptrvec of svc_entry, indexed under the
 *             FIRST pair of each Service's selector
 *   pod_lbl   "ns\x1fkey=value" -> ptrvec of pod_entry, under every label
 *   pod_ip    16+1 address bytes -> pod_entry
 *
 * A pod change visits: the Services it belonged to, plus the Services
 * indexed under each of its labels. A Service change visits the pods
 * indexed under its first selector pair. Neither walks the whole cluster.
 *
 * Changes in a batch collect per Service (flags OR-ed); store_commit()
 * hands the list to subscribers with the new generation.
 */
#include "svcd/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/hmap.h"
#include "svcd/log.h"

#define STORE_KEY_MAX 512
#define STORE_MAX_SUBS 8

/* ---- a vector of pointers ------------------------------------------------ */

struct ptrvec {
    void **items;
    size_t n, cap;
};

static int ptrvec_push(struct ptrvec *v, void *p)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **items = realloc(v->items, cap * sizeof(*items));
        if (!items)
            return -1;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = p;
    return 0;
}

static bool ptrvec_contains(const struct ptrvec *v, const void *p)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i] == p)
            return true;
    return false;
}

/* Removes p (order not kept); returns true when it was there. */
static bool ptrvec_remove(struct ptrvec *v, const void *p)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i] == p) {
            v->items[i] = v->items[--v->n];
            return true;
        }
    }
    return false;
}

static void ptrvec_free(struct ptrvec *v)
{
    free(v->items);
    v->items = NULL;
    v->n = v->cap = 0;
}

/* ---- entries ------------------------------------------------------------- */

struct svc_entry {
    struct svcd_service *svc;
    char *key;                        /* ns/name */
    char *sel_key;                    /* index key of its first selector pair, or NULL */
    struct svcd_endpoint *eps;
    size_t n_eps, cap_eps;
    unsigned change_flags;            /* pending in this batch */
    bool in_changes;
    bool deleted;
};

struct pod_entry {
    struct svcd_pod *pod;
    char *key;                        /* ns/name */
    struct ptrvec member_of;          /* svc_entry* this pod is an endpoint of */
};

struct store {
    struct hmap *services, *pods, *slices, *svc_sel, *pod_lbl, *pod_ip;
    struct hmap *graveyard;           /* ns/name -> svc_entry deleted in this batch */
    struct store_subscriber subs[STORE_MAX_SUBS];
    size_t n_subs;
    int depth;
    uint64_t generation;
    uint64_t commits;
    struct ptrvec changed;            /* svc_entry* with pending flags */
    bool pods_changed;
};

static void store_key(char *buf, const char *ns, const char *name)
{
    snprintf(buf, STORE_KEY_MAX, "%s/%s", ns, name);
}

static void store_pair_key(char *buf, const char *ns, const struct svcd_kv *kv)
{
    snprintf(buf, STORE_KEY_MAX, "%s\x1f%s=%s", ns, kv->key, kv->value);
}

static void store_mark(struct store *st, struct svc_entry *se, unsigned flags)
{
    se->change_flags |= flags;
    if (!se->in_changes) {
        if (ptrvec_push(&st->changed, se) < 0) {
            log_err("store", "out of memory recording a change");
            return;
        }
        se->in_changes = true;
    }
}

/* ---- index helpers ------------------------------------------------------- */

static int index_add(struct hmap *idx, const char *key, void *p)
{
    struct ptrvec *v = hmap_get(idx, key);
    if (!v) {
        v = calloc(1, sizeof(*v));
        if (!v || hmap_set(idx, key, v) < 0) {
            free(v);
            return -1;
        }
    }
    return ptrvec_push(v, p);
}

static void index_remove(struct hmap *idx, const char *key, void *p)
{
    struct ptrvec *v = hmap_get(idx, key);
    if (!v)
        return;
    ptrvec_remove(v, p);
    if (v->n == 0) {
        hmap_del(idx, key);
        ptrvec_free(v);
        free(v);
    }
}


/* ---- endpoints ----------------------------------------------------------- */

static void endpoint_clear(struct svcd_endpoint *e)
{
    model_endpoint_free_contents(e);
    memset(e, 0, sizeof(*e));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool endpoint_equal(const struct svcd_endpoint *a, const struct svcd_endpoint *b,
                           size_t n_ports)
{
    if (a->n_ips != b->n_ips || a->ready != b->ready || a->serving != b->serving ||
        a->terminating != b->terminating)
        return false;
    for (size_t i = 0; i < a->n_ips; i++)
        if (!svcd_ip_equal(&a->ips[i], &b->ips[i]))
            return false;
    if (!str_eq(a->hostname, b->hostname) || !str_eq(a->node_name, b->node_name) ||
        !str_eq(a->pod_name, b->pod_name))
        return false;
    for (size_t i = 0; i < n_ports; i++)
        if (a->target_ports[i] != b->target_ports[i])
            return false;
    return true;
}

static int endpoint_cmp(const void *pa, const void *pb)
{
    const struct svcd_endpoint *a = pa, *b = pb;
    if (a->n_ips && b->n_ips) {
        int c = svcd_ip_cmp(&a->ips[0], &b->ips[0]);
        if (c)
            return c;
    } else if (a->n_ips != b->n_ips) {
        return a->n_ips ? -1 : 1;
    }
    return strcmp(a->pod_name ? a->pod_name : "", b->pod_name ? b->pod_name : "");
}

static void svc_entry_sort(struct svc_entry *se)
{
    if (se->n_eps > 1)
        qsort(se->eps, se->n_eps, sizeof(*se->eps), endpoint_cmp);
}

static void svc_entry_clear_eps(struct svc_entry *se)
{
    for (size_t i = 0; i < se->n_eps; i++)
        endpoint_clear(&se->eps[i]);
    se->n_eps = 0;
}

static struct svcd_endpoint *svc_entry_find_pod(struct svc_entry *se, const char *pod_name)
{
    for (size_t i = 0; i < se->n_eps; i++)
        if (se->eps[i].pod_name && strcmp(se->eps[i].pod_name, pod_name) == 0)
            return &se->eps[i];
    return NULL;
}

/* Appends a zeroed endpoint; NULL on ENOMEM. */
static struct svcd_endpoint *svc_entry_append(struct svc_entry *se)
{
    if (se->n_eps == se->cap_eps) {
        size_t cap = se->cap_eps ? se->cap_eps * 2 : 4;
        struct svcd_endpoint *eps = realloc(se->eps, cap * sizeof(*eps));
        if (!eps)
            return NULL;
        se->eps = eps;
        se->cap_eps = cap;
    }
    struct svcd_endpoint *e = &se->eps[se->n_eps++];
    memset(e, 0, sizeof(*e));
    return e;
}

/*
 * Builds the endpoint the EndpointSlice controller would make for pod in
 * svc. Returns 1 when the pod is an endpoint (out filled), 0 when it is not,
 * -1 on ENOMEM.
 */
static int endpoint_from_pod(const struct svcd_service *svc, const struct svcd_pod *pod,
                             struct svcd_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (!svc->has_selector || svc->type == SVCD_SVC_EXTERNAL_NAME)
        return 0;
    if (strcmp(svc->meta.ns, pod->meta.ns) != 0)
        return 0;
    if (!svcd_selector_matches(&svc->selector, &pod->meta.labels))
        return 0;
    if (pod->n_ips == 0)
        return 0;
    if (pod->phase == SVCD_PHASE_SUCCEEDED || pod->phase == SVCD_PHASE_FAILED)
        return 0;

    uint16_t *tp = NULL;
    if (svc->n_ports) {
        tp = calloc(svc->n_ports, sizeof(*tp));
        if (!tp)
            return -1;
        bool any = false;
        for (size_t i = 0; i < svc->n_ports; i++) {
            const struct svcd_service_port *sp = &svc->ports[i];
            if (sp->target_port_name)
                tp[i] = svcd_pod_named_port(pod, sp->target_port_name, sp->protocol);
            else
                tp[i] = sp->target_port ? sp->target_port : sp->port;
            any |= tp[i] != 0;
        }
        if (!any) {          /* serves none of the Service's ports */
            free(tp);
            return 0;
        }
    }

    bool terminating = pod->meta.deletion_timestamp != NULL;
    bool pod_ready = svcd_pod_is_ready(pod);
    out->target_ports = tp;
    out->n_ips = pod->n_ips;
    memcpy(out->ips, pod->ips, sizeof(out->ips));
    out->ready = svc->publish_not_ready || (pod_ready && !terminating);
    out->serving = pod_ready;
    out->terminating = terminating;
    out->pod_name = strdup(pod->meta.name);
    if (pod->hostname && pod->subdomain && strcmp(pod->subdomain, svc->meta.name) == 0)
        out->hostname = strdup(pod->hostname);
    out->node_name = dup_or_null(pod->node_name);
    if (!out->pod_name || (pod->hostname && pod->subdomain &&
                           strcmp(pod->subdomain, svc->meta.name) == 0 && !out->hostname) ||
        (pod->node_name && !out->node_name)) {
        endpoint_clear(out);
        return -1;
    }
    return 1;
}

/*
 * Recomputes pod's endpoint in se. Updates the pod's membership and marks
 * the Service when its endpoints changed. pod NULL (with pod_name) removes.
 */
static void store_sync_pair(struct store *st, struct svc_entry *se, struct pod_entry *pe,
                            const char *pod_name)
{
    struct svcd_endpoint ne;
    int is_ep = 0;
    if (pe && !se->deleted) {
        is_ep = endpoint_from_pod(se->svc, pe->pod, &ne);
        if (is_ep < 0) {
            log_err("store", "out of memory computing endpoints of %s", se->key);
            return;
        }
    }
    struct svcd_endpoint *cur = svc_entry_find_pod(se, pod_name);
    if (is_ep) {
        if (cur && endpoint_equal(cur, &ne, se->svc->n_ports)) {
            endpoint_clear(&ne);
        } else {
            if (cur) {
                endpoint_clear(cur);
                *cur = ne;
            } else {
                struct svcd_endpoint *slot = svc_entry_append(se);
                if (!slot) {
                    endpoint_clear(&ne);
                    log_err("store", "out of memory adding an endpoint to %s", se->key);
                    return;
                }
                *slot = ne;
            }
            svc_entry_sort(se);
            store_mark(st, se, STORE_SVC_ENDPOINTS);
        }
        if (pe && !ptrvec_contains(&pe->member_of, se))
            ptrvec_push(&pe->member_of, se);
    } else {
        if (cur) {
            endpoint_clear(cur);
            *cur = se->eps[--se->n_eps];
            svc_entry_sort(se);
            store_mark(st, se, STORE_SVC_ENDPOINTS);
        }
        if (pe)
            ptrvec_remove(&pe->member_of, se);
    }
}

/* Endpoints of a selector-less Service from its EndpointSlices. */
struct slice_collect {
    struct svc_entry *se;
    int err;
};

static int slice_collect_cb(void *ctx, const char *key, void *value)
{
    struct slice_collect *c = ctx;
    const struct svcd_endpoint_slice *sl = value;
    const struct svcd_service *svc = c->se->svc;
    (void)key;
    if (strcmp(sl->meta.ns, svc->meta.ns) != 0 || !sl->service_name ||
        strcmp(sl->service_name, svc->meta.name) != 0)
        return 0;
    for (size_t i = 0; i < sl->n_endpoints; i++) {
        const struct svcd_slice_endpoint *se = &sl->endpoints[i];
        if (se->n_addresses == 0)
            continue;
        struct svcd_endpoint *e = svc_entry_append(c->se);
        if (!e)
            goto enomem;
        e->n_ips = 1;
        e->ips[0] = se->addresses[0];
        e->ready = svc->publish_not_ready || se->ready;
        e->serving = se->serving;
        e->terminating = se->terminating;
        e->hostname = dup_or_null(se->hostname);
        e->node_name = dup_or_null(se->node_name);
        if (svc->n_ports) {
            e->target_ports = calloc(svc->n_ports, sizeof(uint16_t));
            if (!e->target_ports)
                goto enomem;
            /* A slice port matches a Service port by name (and protocol). */
            for (size_t p = 0; p < svc->n_ports; p++) {
                const struct svcd_service_port *sp = &svc->ports[p];
                for (size_t q = 0; q < sl->n_ports; q++) {
                    const struct svcd_slice_port *lp = &sl->ports[q];
                    if (lp->protocol == sp->protocol &&
                        str_eq(lp->name && *lp->name ? lp->name : NULL,
                               sp->name && *sp->name ? sp->name : NULL)) {
                        e->target_ports[p] = lp->port;
                        break;
                    }
                }
            }
        }
    }
    return 0;
enomem:
    c->err = -1;
    return 1;
}

/* Recomputes all endpoints of one Service from scratch, comparing with the
 * old list to decide whether they changed. */
static void store_recompute_service(struct store *st, struct svc_entry *se,
                                    size_t n_ports_old)
{
    /* Keep the old list to compare. */
    struct svcd_endpoint *old = se->eps;
    size_t n_old = se->n_eps;
    se->eps = NULL;
    se->n_eps = se->cap_eps = 0;

    const struct svcd_service *svc = se->svc;
    if (svc->type == SVCD_SVC_EXTERNAL_NAME) {
        /* no endpoints */
    } else if (svc->has_selector) {
        char k[STORE_KEY_MAX];
        store_pair_key(k, svc->meta.ns, &svc->selector.items[0]);
        struct ptrvec *pods = hmap_get(st->pod_lbl, k);
        for (size_t i = 0; pods && i < pods->n; i++) {
            struct pod_entry *pe = pods->items[i];
            struct svcd_endpoint ne;
            int r = endpoint_from_pod(svc, pe->pod, &ne);
            if (r < 0)
                log_err("store", "out of memory computing endpoints of %s", se->key);
            if (r <= 0)
                continue;
            struct svcd_endpoint *slot = svc_entry_append(se);
            if (!slot) {
                endpoint_clear(&ne);
                continue;
            }
            *slot = ne;
            if (!ptrvec_contains(&pe->member_of, se))
                ptrvec_push(&pe->member_of, se);
        }
    } else {
        struct slice_collect c = { se, 0 };
        hmap_foreach(st->slices, slice_collect_cb, &c);
        if (c.err)
            log_err("store", "out of memory computing endpoints of %s", se->key);
    }
    svc_entry_sort(se);

    bool changed = n_old != se->n_eps || (n_old > 0 && n_ports_old != svc->n_ports);
    for (size_t i = 0; !changed && i < n_old; i++)
        changed = !endpoint_equal(&old[i], &se->eps[i], n_ports_old);
    for (size_t i = 0; i < n_old; i++)
        endpoint_clear(&old[i]);
    free(old);
    if (changed)
        store_mark(st, se, STORE_SVC_ENDPOINTS);
}

/* ---- lifecycle ------------------------------------------------------------ */

struct store *store_new(void)
{
    struct store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->services = hmap_new();
    st->pods = hmap_new();
    st->slices = hmap_new();
    st->svc_sel = hmap_new();
    st->pod_lbl = hmap_new();
    st->pod_ip = hmap_new();
    st->graveyard = hmap_new();
    if (!st->services || !st->pods || !st->slices || !st->svc_sel || !st->pod_lbl ||
        !st->pod_ip || !st->graveyard) {
        store_free(st);
        return NULL;
    }
    return st;
}

static void svc_entry_free(struct svc_entry *se)
{
    if (!se)
        return;
    svc_entry_clear_eps(se);
    free(se->eps);
    model_service_free(se->svc);
    free(se->key);
    free(se->sel_key);
    free(se);
}

static int free_svc_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    svc_entry_free(value);
    return 0;
}

static int free_pod_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    struct pod_entry *pe = value;
    ptrvec_free(&pe->member_of);
    model_pod_free(pe->pod);
    free(pe->key);
    free(pe);
    return 0;
}

static int free_slice_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    model_slice_free(value);
    return 0;
}

static int free_vec_cb(void *ctx, const char *key, void *value)
{
    (void)ctx; (void)key;
    ptrvec_free(value);
    free(value);
    return 0;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    /* Deleted entries still waiting for a commit live only in changed. */
    for (size_t i = 0; i < st->changed.n; i++) {
        struct svc_entry *se = st->changed.items[i];
        if (se->deleted)
            svc_entry_free(se);
    }
    ptrvec_free(&st->changed);
    if (st->services) { hmap_foreach(st->services, free_svc_cb, NULL); hmap_free(st->services); }
    if (st->pods) { hmap_foreach(st->pods, free_pod_cb, NULL); hmap_free(st->pods); }
    if (st->slices) { hmap_foreach(st->slices, free_slice_cb, NULL); hmap_free(st->slices); }
    if (st->svc_sel) { hmap_foreach(st->svc_sel, free_vec_cb, NULL); hmap_free(st->svc_sel); }
    if (st->pod_lbl) { hmap_foreach(st->pod_lbl, free_vec_cb, NULL); hmap_free(st->pod_lbl); }
    if (st->pod_ip) { hmap_foreach(st->pod_ip, free_vec_cb, NULL); hmap_free(st->pod_ip); }
    hmap_free(st->graveyard);
    free(st);
}

int store_subscribe(struct store *st, const struct store_subscriber *sub)
{
    if (st->n_subs == STORE_MAX_SUBS)
        return -1;
    st->subs[st->n_subs++] = *sub;
    return 0;
}

int store_unsubscribe(struct store *st, void *ctx)
{
    for (size_t i = 0; i < st->n_subs; i++) {
        if (st->subs[i].ctx == ctx) {
            memmove(&st->subs[i], &st->subs[i + 1], (st->n_subs - i - 1) * sizeof(st->subs[0]));
            st->n_subs--;
            return 0;
        }
    }
    return -1;
}

void store_begin(struct store *st)
{
    st->depth++;
}

uint64_t store_commit(struct store *st)
{
    if (st->depth <= 0) {
        log_err("store", "store_commit without store_begin");
        return st->generation;
    }
    if (--st->depth > 0)
        return st->generation;
    if (st->changed.n == 0 && !st->pods_changed)
        return st->generation;

    st->generation++;
    st->commits++;
    size_t n = st->changed.n;
    struct store_change *ch = calloc(n ? n : 1, sizeof(*ch));
    if (!ch) {
        log_err("store", "out of memory notifying generation %llu",
                (unsigned long long)st->generation);
        n = 0;
    }
    for (size_t i = 0; ch && i < n; i++) {
        struct svc_entry *se = st->changed.items[i];
        ch[i].ns = se->svc->meta.ns;
        ch[i].name = se->svc->meta.name;
        ch[i].flags = se->deleted ? STORE_SVC_DELETED : se->change_flags;
    }
    bool pods_changed = st->pods_changed;
    /* Reset before notifying: subscribers must not mutate, but a clean
     * state makes a stray mutation start a fresh batch instead. */
    struct ptrvec changed = st->changed;
    memset(&st->changed, 0, sizeof(st->changed));
    st->pods_changed = false;
    for (size_t i = 0; i < changed.n; i++) {
        struct svc_entry *se = changed.items[i];
        se->in_changes = false;
        se->change_flags = 0;
    }
    log_debug("store", "generation %llu: %zu services changed%s",
              (unsigned long long)st->generation, n, pods_changed ? ", pods changed" : "");
    for (size_t s = 0; s < st->n_subs; s++)
        st->subs[s].on_commit(st->subs[s].ctx, st, st->generation, ch, n, pods_changed);
    free(ch);
    for (size_t i = 0; i < changed.n; i++) {
        struct svc_entry *se = changed.items[i];
        if (se->deleted) {
            if (hmap_get(st->graveyard, se->key) == se)
                hmap_del(st->graveyard, se->key);
            svc_entry_free(se);
        }
    }
    ptrvec_free(&changed);
    return st->generation;
}

uint64_t store_generation(const struct store *st)
{
    return st->generation;
}

/* ---- services ------------------------------------------------------------- */

static void svc_index_update(struct store *st, struct svc_entry *se)
{
    char k[STORE_KEY_MAX] = "";
    if (se->svc && !se->deleted && se->svc->has_selector && se->svc->selector.n > 0 &&
        se->svc->type != SVCD_SVC_EXTERNAL_NAME)
        store_pair_key(k, se->svc->meta.ns, &se->svc->selector.items[0]);
    if (strcmp(k, se->sel_key ? se->sel_key : "") == 0)
        return;
    if (se->sel_key)
        index_remove(st->svc_sel, se->sel_key, se);
    free(se->sel_key);
    se->sel_key = NULL;
    if (k[0] && (index_add(st->svc_sel, k, se) < 0 || !(se->sel_key = strdup(k)))) {
        log_err("store", "out of memory indexing %s", se->key);
        index_remove(st->svc_sel, k, se);
    }
}

/* Drops se from the member lists of every pod it has as an endpoint. */
static void svc_forget_members(struct store *st, struct svc_entry *se)
{
    for (size_t i = 0; i < se->n_eps; i++) {
        if (!se->eps[i].pod_name)
            continue;
        char k[STORE_KEY_MAX];
        store_key(k, se->svc->meta.ns, se->eps[i].pod_name);
        struct pod_entry *pe = hmap_get(st->pods, k);
        if (pe)
            ptrvec_remove(&pe->member_of, se);
    }
}

int store_service_upsert(struct store *st, struct svcd_service *svc)
{
    char k[STORE_KEY_MAX];
    store_key(k, svc->meta.ns, svc->meta.name);
    struct svc_entry *se = hmap_get(st->services, k);
    size_t n_ports_old = 0;
    struct svc_entry *revived = se ? NULL : hmap_get(st->graveyard, k);
    if (revived) {
        /* Deleted earlier in this batch: it comes back as one change. */
        if (hmap_set(st->services, k, revived) < 0) {
            model_service_free(svc);
            return -1;
        }
        hmap_del(st->graveyard, k);
        revived->deleted = false;
        revived->change_flags &= ~(unsigned)STORE_SVC_DELETED;
        se = revived;
    }
    if (se) {
        if (!revived && se->svc->meta.fingerprint == svc->meta.fingerprint &&
            svc->meta.fingerprint) {
            model_service_free(svc);
            return 0;
        }
        n_ports_old = se->svc->n_ports;
        svc_forget_members(st, se);
        model_service_free(se->svc);
        se->svc = svc;
    } else {
        se = calloc(1, sizeof(*se));
        if (!se) {
            model_service_free(svc);
            return -1;
        }
        se->svc = svc;
        if (!(se->key = strdup(k)) || hmap_set(st->services, k, se) < 0) {
            se->svc = NULL;
            svc_entry_free(se);
            model_service_free(svc);
            return -1;
        }
    }
    svc_index_update(st, se);
    store_mark(st, se, STORE_SVC_SPEC);
    /* Spec changes (ports, selector) can change every endpoint: rebuild the
     * list from the pods under the selector index. */
    store_recompute_service(st, se, n_ports_old);
    return 0;
}

int store_service_delete(struct store *st, const char *ns, const char *name)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    struct svc_entry *se = hmap_del(st->services, k);
    if (!se)
        return -1;
    svc_forget_members(st, se);
    se->deleted = true;
    svc_index_update(st, se);
    hmap_set(st->graveyard, k, se);
    /* Freed after the commit has told the subscribers. */
    store_mark(st, se, STORE_SVC_DELETED);
    return 0;
}

/* ---- pods ------------------------------------------------------------------- */

static void pod_index(struct store *st, struct pod_entry *pe, bool add)
{
    const struct svcd_pod *pod = pe->pod;
    char k[STORE_KEY_MAX];
    for (size_t i = 0; i < pod->meta.labels.n; i++) {
        store_pair_key(k, pod->meta.ns, &pod->meta.labels.items[i]);
        if (add) {
            if (index_add(st->pod_lbl, k, pe) < 0)
                log_err("store", "out of memory indexing pod %s", pe->key);
        } else {
            index_remove(st->pod_lbl, k, pe);
        }
    }
    for (size_t i = 0; i < pod->n_ips; i++) {
        char ik[64];
        svcd_ip_format(&pod->ips[i], ik, sizeof(ik));
        if (add) {
            if (index_add(st->pod_ip, ik, pe) < 0)
                log_err("store", "out of memory indexing pod %s", pe->key);
        } else {
            index_remove(st->pod_ip, ik, pe);
        }
    }
}

/* Re-evaluates pe against every Service that had it or may select it. */
static void pod_reconcile(struct store *st, struct pod_entry *pe)
{
    struct ptrvec cand = { 0 };
    for (size_t i = 0; i < pe->member_of.n; i++)
        ptrvec_push(&cand, pe->member_of.items[i]);
    const struct svcd_pod *pod = pe->pod;
    char k[STORE_KEY_MAX];
    for (size_t i = 0; i < pod->meta.labels.n; i++) {
        store_pair_key(k, pod->meta.ns, &pod->meta.labels.items[i]);
        struct ptrvec *v = hmap_get(st->svc_sel, k);
        for (size_t j = 0; v && j < v->n; j++)
            if (!ptrvec_contains(&cand, v->items[j]))
                ptrvec_push(&cand, v->items[j]);
    }
    for (size_t i = 0; i < cand.n; i++)
        store_sync_pair(st, cand.items[i], pe, pod->meta.name);
    ptrvec_free(&cand);
}

int store_pod_upsert(struct store *st, struct svcd_pod *pod)
{
    char k[STORE_KEY_MAX];
    store_key(k, pod->meta.ns, pod->meta.name);
    struct pod_entry *pe = hmap_get(st->pods, k);
    if (pe) {
        if (pe->pod->meta.fingerprint == pod->meta.fingerprint && pod->meta.fingerprint) {
            model_pod_free(pod);
            return 0;
        }
        pod->probe_ready = pe->pod->probe_ready;   /* svcd's own verdict stays */
        pod_index(st, pe, false);
        model_pod_free(pe->pod);
        pe->pod = pod;
    } else {
        pe = calloc(1, sizeof(*pe));
        if (!pe) {
            model_pod_free(pod);
            return -1;
        }
        pe->pod = pod;
        if (!(pe->key = strdup(k)) || hmap_set(st->pods, k, pe) < 0) {
            free(pe->key);
            free(pe);
            model_pod_free(pod);
            return -1;
        }
    }
    pod_index(st, pe, true);
    st->pods_changed = true;
    pod_reconcile(st, pe);
    return 0;
}

int store_pod_delete(struct store *st, const char *ns, const char *name)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    struct pod_entry *pe = hmap_del(st->pods, k);
    if (!pe)
        return -1;
    pod_index(st, pe, false);
    while (pe->member_of.n) {
        struct svc_entry *se = pe->member_of.items[0];
        store_sync_pair(st, se, NULL, pe->pod->meta.name);
        ptrvec_remove(&pe->member_of, se);
    }
    st->pods_changed = true;
    ptrvec_free(&pe->member_of);
    model_pod_free(pe->pod);
    free(pe->key);
    free(pe);
    return 0;
}

int store_pod_set_probe_ready(struct store *st, const char *ns, const char *name,
                              enum svcd_tristate ready)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    struct pod_entry *pe = hmap_get(st->pods, k);
    if (!pe)
        return -1;
    if (pe->pod->probe_ready == ready)
        return 0;
    pe->pod->probe_ready = ready;
    st->pods_changed = true;
    pod_reconcile(st, pe);
    return 0;
}

int store_pod_mark_terminating(struct store *st, const char *ns, const char *name,
                               const char *rfc3339)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    struct pod_entry *pe = hmap_get(st->pods, k);
    if (!pe)
        return -1;
    if (pe->pod->meta.deletion_timestamp)
        return 0;
    char *ts = strdup(rfc3339);
    if (!ts)
        return -1;
    pe->pod->meta.deletion_timestamp = ts;
    pe->pod->meta.fingerprint ^= 0x9e3779b97f4a7c15ULL;   /* content differs now */
    st->pods_changed = true;
    pod_reconcile(st, pe);
    return 0;
}

/* ---- slices --------------------------------------------------------------- */

static void slice_touch_service(struct store *st, const char *ns, const char *svc_name)
{
    if (!svc_name)
        return;
    char k[STORE_KEY_MAX];
    store_key(k, ns, svc_name);
    struct svc_entry *se = hmap_get(st->services, k);
    if (se && !se->svc->has_selector)
        store_recompute_service(st, se, se->svc->n_ports);
}

int store_slice_upsert(struct store *st, struct svcd_endpoint_slice *sl)
{
    char k[STORE_KEY_MAX];
    store_key(k, sl->meta.ns, sl->meta.name);
    struct svcd_endpoint_slice *old = hmap_get(st->slices, k);
    if (old && old->meta.fingerprint == sl->meta.fingerprint && sl->meta.fingerprint) {
        model_slice_free(sl);
        return 0;
    }
    if (hmap_set(st->slices, k, sl) < 0) {
        model_slice_free(sl);
        return -1;
    }
    if (old) {
        if (!str_eq(old->service_name, sl->service_name))
            slice_touch_service(st, old->meta.ns, old->service_name);
        model_slice_free(old);
    }
    slice_touch_service(st, sl->meta.ns, sl->service_name);
    return 0;
}

int store_slice_delete(struct store *st, const char *ns, const char *name)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    struct svcd_endpoint_slice *old = hmap_del(st->slices, k);
    if (!old)
        return -1;
    slice_touch_service(st, old->meta.ns, old->service_name);
    model_slice_free(old);
    return 0;
}

/* ---- look-ups ------------------------------------------------------------- */

const struct svcd_service *store_service_get(const struct store *st, const char *ns,
                                             const char *name)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    const struct svc_entry *se = hmap_get(st->services, k);
    return se ? se->svc : NULL;
}

const struct svcd_pod *store_pod_get(const struct store *st, const char *ns, const char *name)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    const struct pod_entry *pe = hmap_get(st->pods, k);
    return pe ? pe->pod : NULL;
}

const struct svcd_pod *store_pod_by_ip(const struct store *st, const struct svcd_ip *ip)
{
    char ik[64];
    svcd_ip_format(ip, ik, sizeof(ik));
    const struct ptrvec *v = hmap_get(st->pod_ip, ik);
    const struct svcd_pod *best = NULL;
    for (size_t i = 0; v && i < v->n; i++) {
        const struct svcd_pod *p = ((const struct pod_entry *)v->items[i])->pod;
        bool live = p->phase != SVCD_PHASE_SUCCEEDED && p->phase != SVCD_PHASE_FAILED &&
                    !p->meta.deletion_timestamp;
        if (!best || (live && (best->phase == SVCD_PHASE_SUCCEEDED ||
                               best->phase == SVCD_PHASE_FAILED || best->meta.deletion_timestamp)))
            best = p;
    }
    return best;
}

const struct svcd_endpoint *store_endpoints_get(const struct store *st, const char *ns,
                                                const char *name, size_t *n)
{
    char k[STORE_KEY_MAX];
    store_key(k, ns, name);
    const struct svc_entry *se = hmap_get(st->services, k);
    if (!se || se->n_eps == 0) {
        *n = 0;
        return NULL;
    }
    *n = se->n_eps;
    return se->eps;
}

struct foreach_ctx {
    void *cb;
    void *ctx;
};

static int foreach_svc_cb(void *ctx, const char *key, void *value)
{
    struct foreach_ctx *f = ctx;
    int (*cb)(void *, const struct svcd_service *) = f->cb;
    (void)key;
    return cb(f->ctx, ((struct svc_entry *)value)->svc);
}

static int foreach_pod_cb(void *ctx, const char *key, void *value)
{
    struct foreach_ctx *f = ctx;
    int (*cb)(void *, const struct svcd_pod *) = f->cb;
    (void)key;
    return cb(f->ctx, ((struct pod_entry *)value)->pod);
}

static int foreach_slice_cb(void *ctx, const char *key, void *value)
{
    struct foreach_ctx *f = ctx;
    int (*cb)(void *, const struct svcd_endpoint_slice *) = f->cb;
    (void)key;
    return cb(f->ctx, value);
}

int store_foreach_service(const struct store *st,
                          int (*cb)(void *ctx, const struct svcd_service *svc), void *ctx)
{
    struct foreach_ctx f = { (void *)cb, ctx };
    return hmap_foreach(st->services, foreach_svc_cb, &f);
}

int store_foreach_pod(const struct store *st,
                      int (*cb)(void *ctx, const struct svcd_pod *pod), void *ctx)
{
    struct foreach_ctx f = { (void *)cb, ctx };
    return hmap_foreach(st->pods, foreach_pod_cb, &f);
}

int store_foreach_slice(const struct store *st,
                        int (*cb)(void *ctx, const struct svcd_endpoint_slice *sl), void *ctx)
{
    struct foreach_ctx f = { (void *)cb, ctx };
    return hmap_foreach(st->slices, foreach_slice_cb, &f);
}

static int stats_cb(void *ctx, const char *key, void *value)
{
    struct store_stats *s = ctx;
    const struct svc_entry *se = value;
    (void)key;
    for (size_t i = 0; i < se->n_eps; i++) {
        const struct svcd_endpoint *e = &se->eps[i];
        if (e->terminating)
            s->endpoints_terminating++;
        else if (e->ready)
            s->endpoints_ready++;
        else
            s->endpoints_not_ready++;
    }
    return 0;
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->services = hmap_count(st->services);
    out->pods = hmap_count(st->pods);
    out->slices = hmap_count(st->slices);
    out->commits = st->commits;
    hmap_foreach(st->services, stats_cb, out);
}
