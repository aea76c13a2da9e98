/*
 * store: owner of Services, Pods, EndpointSlices and computed endpoints.
 *
 * Tables (hmap keyed "ns/name" unless said):
 *   services  -> struct svc_entry   (Service + its endpoint array)
 *   pods      pod_table: pod_entry chained intrusively, by ns + name
 *   pod_ip    ip_table: the same pod_entry chained by each of its IPs
 *   slices    -> struct svcd_endpoint_slice
 *   slice_svc "ns/service-name" -> ptrvec of slices labelled for it
 *   svc_sel   "ns\x1fkey=value" -> ptrvec of svc_entry, indexed under the
 *             FIRST pair of each Service's selector
 *   pod_lbl   "ns\x1fkey=value" -> ptrvec of pod_entry, under every label
 *
 * A pod change visits: the Services it belonged to, plus the Services
 * indexed under each of its labels. A Service change visits the pods
 * indexed under its first selector pair (or, without a selector, the
 * slices indexed under its name). Nothing walks the whole cluster.
 *
 * Memory: at 100k pods the store is dominated by per-pod overhead, so
 * strings that repeat across objects (namespaces, names, node names, label
 * keys and values, whole label maps, per-endpoint target port lists) are
 * interned in refcounted tables. A stored Pod or Service has its name, ns,
 * node/host names and labels (selector) replaced by interned copies when
 * it is adopted, and is released through store_pod_release() /
 * store_svc_release() (never model_*_free() directly). Every pointer field
 * of a computed svcd_endpoint is an interned reference.
 *
 * Changes in a batch collect per Service (flags OR-ed); store_commit()
 * hands the list to subscribers with the new generation. Changed pods
 * collect too, once per key: a live pod's entry remembers its slot in the
 * list (pod_entry.chg); a deleted pod's slot keeps interned references to
 * its ns and name, and pod_gone finds the slot again if the same key comes
 * back in the batch. Subscribers read the list with store_changed_pods().
 */
#include "svcd/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/hmap.h"
#include "svcd/log.h"
#include "svcd/vec.h"

#define STORE_KEY_MAX 512
#define STORE_MAX_SUBS 8

/* ---- a vector of pointers (the first one stored inline) ------------------ */

struct ptrvec {
    union {
        void **items;      /* cap > 1 */
        void *one;         /* cap <= 1 */
    } u;
    uint32_t n, cap;
};

static void **ptrvec_data(struct ptrvec *v)
{
    return v->cap <= 1 ? &v->u.one : v->u.items;
}

static void *ptrvec_at(const struct ptrvec *v, size_t i)
{
    return v->cap <= 1 ? v->u.one : v->u.items[i];
}

static int ptrvec_push(struct ptrvec *v, void *p)
{
    if (v->cap == 0) {
        v->cap = 1;
        v->u.one = p;
        v->n = 1;
        return 0;
    }
    if (v->n == v->cap) {
        if (v->cap >= UINT32_MAX / 2)
            return -1;
        uint32_t cap = v->cap == 1 ? 4 : v->cap * 2;
        void **items;
        if (v->cap == 1) {
            items = malloc(cap * sizeof(*items));
            if (!items)
                return -1;
            items[0] = v->u.one;
        } else {
            items = realloc(v->u.items, cap * sizeof(*items));
            if (!items)
                return -1;
        }
        v->u.items = items;
        v->cap = cap;
    }
    ptrvec_data(v)[v->n++] = p;
    return 0;
}

static bool ptrvec_contains(const struct ptrvec *v, const void *p)
{
    for (size_t i = 0; i < v->n; i++)
        if (ptrvec_at(v, i) == p)
            return true;
    return false;
}

/* Removes p (order not kept); returns true when it was there. */
static bool ptrvec_remove(struct ptrvec *v, const void *p)
{
    void **d = ptrvec_data(v);
    for (size_t i = 0; i < v->n; i++) {
        if (d[i] == p) {
            d[i] = d[--v->n];
            return true;
        }
    }
    return false;
}

static void ptrvec_free(struct ptrvec *v)
{
    if (v->cap > 1)
        free(v->u.items);
    memset(v, 0, sizeof(*v));
}

/* ---- interned values -------------------------------------------------------
 *
 * An open-addressing table (linear probing, backward-shift deletion) of
 * refcounted byte blobs. intern_get() returns the blob's bytes (a new
 * reference); intern_put() drops one. Strings are interned with their NUL.
 */

struct ival {
    uint32_t refs;
    uint32_t len;
    unsigned char data[];     /* 8-aligned: may hold pointers */
};

struct itab {
    struct ival **slots;
    size_t cap, n;            /* cap: power of two or 0 */
};

static struct ival *ival_of(const void *p)
{
    return (struct ival *)(void *)((char *)(uintptr_t)p - offsetof(struct ival, data));
}

static size_t ival_home(const struct itab *t, const void *d, size_t len)
{
    return (size_t)hmap_hash(d, len, HMAP_HASH_SEED) & (t->cap - 1);
}

static int itab_grow(struct itab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct ival **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    struct itab nt = { slots, cap, t->n };
    for (size_t i = 0; i < t->cap; i++) {
        struct ival *v = t->slots[i];
        if (!v)
            continue;
        size_t j = ival_home(&nt, v->data, v->len);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = v;
    }
    free(t->slots);
    *t = nt;
    return 0;
}

/* A reference to the interned copy of d[0..len); NULL on ENOMEM. */
static const void *intern_get(struct itab *t, const void *d, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    if ((t->n + 1) * 4 > t->cap * 3 && itab_grow(t) < 0)
        return NULL;
    size_t i = ival_home(t, d, len);
    for (struct ival *v; (v = t->slots[i]); i = (i + 1) & (t->cap - 1)) {
        if (v->len == len && memcmp(v->data, d, len) == 0) {
            v->refs++;
            return v->data;
        }
    }
    struct ival *v = malloc(sizeof(*v) + len);
    if (!v)
        return NULL;
    v->refs = 1;
    v->len = (uint32_t)len;
    memcpy(v->data, d, len);
    t->slots[i] = v;
    t->n++;
    return v->data;
}

/* One more reference to an interned value (NULL passes through). */
static void *intern_ref(const void *p)
{
    if (p)
        ival_of(p)->refs++;
    return (void *)(uintptr_t)p;
}

/* Drops a reference (NULL is ignored); frees on the last one. */
static void intern_put(struct itab *t, const void *p)
{
    if (!p)
        return;
    struct ival *v = ival_of(p);
    if (--v->refs > 0)
        return;
    size_t mask = t->cap - 1;
    size_t i = ival_home(t, v->data, v->len);
    while (t->slots[i] != v)
        i = (i + 1) & mask;
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot is not cyclically in (hole, j]. */
    for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t k = ival_home(t, t->slots[j]->data, t->slots[j]->len);
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i] = NULL;
    t->n--;
    free(v);
}

static void itab_free(struct itab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i]);
    free(t->slots);
    memset(t, 0, sizeof(*t));
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

/* A stored pod. Chained intrusively into the pod tables; an ip_next link
 * is a tagged pointer (pod_entry address | index into pod->ips). */
struct pod_entry {
    struct svcd_pod *pod;
    struct pod_entry *next;           /* pods table chain */
    uintptr_t ip_next[2];             /* pod_ip table chains, per pod->ips[i] */
    struct ptrvec member_of;          /* svc_entry* this pod is an endpoint of */
    uint32_t chg;                     /* 1 + its slot in store.pod_chg, 0 = none */
};

struct pod_table {
    struct pod_entry **b;
    size_t nb, n;
};

struct ip_table {
    uintptr_t *b;
    size_t nb, n;
};

struct store {
    struct hmap *services, *slices, *slice_svc, *svc_sel, *pod_lbl;
    struct pod_table pods;
    struct ip_table pod_ip;
    struct itab strs;                 /* interned strings */
    struct itab kvs;                  /* interned label/selector item arrays */
    struct itab tps;                  /* interned endpoint target port lists */
    struct hmap *graveyard;           /* ns/name -> svc_entry deleted in this batch */
    struct store_subscriber subs[STORE_MAX_SUBS];
    size_t n_subs;
    int depth;
    uint64_t generation;
    uint64_t commits;
    struct ptrvec changed;            /* svc_entry* with pending flags */
    bool pods_changed;
    /* Pods changed in this batch: ns/name are interned references held by
     * the list; pod_chg_pe[i] is the live entry, NULL once deleted. */
    struct store_pod_ref *pod_chg;
    struct pod_entry **pod_chg_pe;
    size_t n_pod_chg, cap_pod_chg;
    bool pod_chg_lost;                /* ENOMEM: the list is incomplete */
    struct hmap *pod_gone;            /* {ns,name} interned pointers -> 1 + slot */
    /* The list being notified (store_changed_pods()). */
    const struct store_pod_ref *notify_pods;
    size_t n_notify_pods;
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

/* ---- interning objects ---------------------------------------------------- */

static char *intern_str(struct store *st, const char *s)
{
    return s ? (char *)(uintptr_t)intern_get(&st->strs, s, strlen(s) + 1) : NULL;
}

/* Drops a reference to an interned item array (and, with the last one,
 * to its keys and values). */
static void intern_put_kvs(struct store *st, const struct svcd_kv *items, size_t n)
{
    if (!items)
        return;
    if (ival_of(items)->refs == 1) {
        for (size_t i = 0; i < n; i++) {
            intern_put(&st->strs, items[i].key);
            intern_put(&st->strs, items[i].value);
        }
    }
    intern_put(&st->kvs, items);
}

/* An interned copy of m's item array (keys and values interned too);
 * NULL with *err set on ENOMEM, NULL without for an empty map. */
static struct svcd_kv *intern_kvs(struct store *st, const struct svcd_kvmap *m, bool *err)
{
    if (m->n == 0)
        return NULL;
    struct svcd_kv *tmp = calloc(m->n, sizeof(*tmp));
    struct svcd_kv *out = NULL;
    size_t i = 0;
    if (!tmp)
        goto out;
    for (; i < m->n; i++) {
        tmp[i].key = intern_str(st, m->items[i].key);
        tmp[i].value = intern_str(st, m->items[i].value);
        if (!tmp[i].key || !tmp[i].value) {
            i++;
            goto out;
        }
    }
    out = (struct svcd_kv *)(uintptr_t)intern_get(&st->kvs, tmp, m->n * sizeof(*tmp));
    if (out && ival_of(out)->refs == 1)
        i = 0;             /* the new array keeps the references */
out:
    for (size_t j = 0; tmp && j < i; j++) {
        intern_put(&st->strs, tmp[j].key);
        intern_put(&st->strs, tmp[j].value);
    }
    free(tmp);
    if (!out)
        *err = true;
    return out;
}

/*
 * Replaces the listed string fields and the kvmap's items by interned
 * copies (freeing the originals). All or nothing: 0, or -1 on ENOMEM with
 * the object untouched.
 */
static int intern_fields(struct store *st, char **fields[], size_t n_fields,
                         struct svcd_kvmap *kv)
{
    char *nv[8] = { 0 };
    bool err = false;
    size_t i;
    for (i = 0; i < n_fields; i++) {
        if (*fields[i] && !(nv[i] = intern_str(st, *fields[i])))
            goto fail;
    }
    struct svcd_kv *items = intern_kvs(st, kv, &err);
    if (err)
        goto fail;
    for (i = 0; i < n_fields; i++) {
        free(*fields[i]);
        *fields[i] = nv[i];
    }
    size_t n = kv->n;
    svcd_kvmap_free(kv);
    kv->items = items;
    kv->n = n;
    return 0;
fail:
    for (size_t j = 0; j < n_fields; j++)
        intern_put(&st->strs, nv[j]);
    return -1;
}

static void release_fields(struct store *st, char **fields[], size_t n_fields,
                           struct svcd_kvmap *kv)
{
    for (size_t i = 0; i < n_fields; i++) {
        intern_put(&st->strs, *fields[i]);
        *fields[i] = NULL;
    }
    intern_put_kvs(st, kv->items, kv->n);
    kv->items = NULL;
    kv->n = 0;
}

#define POD_FIELDS(p) { &(p)->meta.name, &(p)->meta.ns, &(p)->node_name, \
                        &(p)->hostname, &(p)->subdomain }
#define SVC_FIELDS(s) { &(s)->meta.name, &(s)->meta.ns }

/* Interns a pod's repeated strings; 0 or -1 (ENOMEM, pod untouched). */
static int store_pod_adopt(struct store *st, struct svcd_pod *pod)
{
    char **f[] = POD_FIELDS(pod);
    return intern_fields(st, f, sizeof(f) / sizeof(f[0]), &pod->meta.labels);
}

/* Frees a pod adopted by store_pod_adopt(). Accepts NULL. */
static void store_pod_release(struct store *st, struct svcd_pod *pod)
{
    if (!pod)
        return;
    char **f[] = POD_FIELDS(pod);
    release_fields(st, f, sizeof(f) / sizeof(f[0]), &pod->meta.labels);
    model_pod_free(pod);
}

static int store_svc_adopt(struct store *st, struct svcd_service *svc)
{
    char **f[] = SVC_FIELDS(svc);
    return intern_fields(st, f, sizeof(f) / sizeof(f[0]), &svc->selector);
}

static void store_svc_release(struct store *st, struct svcd_service *svc)
{
    if (!svc)
        return;
    char **f[] = SVC_FIELDS(svc);
    release_fields(st, f, sizeof(f) / sizeof(f[0]), &svc->selector);
    model_service_free(svc);
}

/* ---- pod tables ------------------------------------------------------------ */

static size_t pod_hash(const char *ns, const char *name)
{
    uint64_t h = hmap_hash(ns, strlen(ns), HMAP_HASH_SEED);
    h = hmap_hash("/", 1, h);
    return (size_t)hmap_hash(name, strlen(name), h);
}

static struct pod_entry *pod_table_find(const struct pod_table *t, const char *ns,
                                        const char *name)
{
    if (!t->nb)
        return NULL;
    for (struct pod_entry *pe = t->b[pod_hash(ns, name) & (t->nb - 1)]; pe; pe = pe->next)
        if (strcmp(pe->pod->meta.name, name) == 0 && strcmp(pe->pod->meta.ns, ns) == 0)
            return pe;
    return NULL;
}

static int pod_table_insert(struct pod_table *t, struct pod_entry *pe)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct pod_entry **b = calloc(nb, sizeof(*b));
        if (!b)
            return -1;
        for (size_t i = 0; i < t->nb; i++) {
            for (struct pod_entry *p = t->b[i], *next; p; p = next) {
                next = p->next;
                size_t h = pod_hash(p->pod->meta.ns, p->pod->meta.name) & (nb - 1);
                p->next = b[h];
                b[h] = p;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    size_t h = pod_hash(pe->pod->meta.ns, pe->pod->meta.name) & (t->nb - 1);
    pe->next = t->b[h];
    t->b[h] = pe;
    t->n++;
    return 0;
}

static void pod_table_remove(struct pod_table *t, struct pod_entry *pe)
{
    size_t h = pod_hash(pe->pod->meta.ns, pe->pod->meta.name) & (t->nb - 1);
    for (struct pod_entry **pp = &t->b[h]; *pp; pp = &(*pp)->next) {
        if (*pp == pe) {
            *pp = pe->next;
            t->n--;
            return;
        }
    }
}

static size_t ip_hash(const struct svcd_ip *ip)
{
    size_t len = ip->family == AF_INET ? 4 : ip->family == AF_INET6 ? 16 : 0;
    uint64_t h = hmap_hash(&ip->family, sizeof(ip->family), HMAP_HASH_SEED);
    return (size_t)hmap_hash(ip->u.bytes, len, h);
}

static struct pod_entry *ip_link_pe(uintptr_t l)
{
    return (struct pod_entry *)(l & ~(uintptr_t)1);
}

static unsigned ip_link_idx(uintptr_t l)
{
    return (unsigned)(l & 1);
}

static const struct svcd_ip *ip_link_ip(uintptr_t l)
{
    return &ip_link_pe(l)->pod->ips[ip_link_idx(l)];
}

static uintptr_t *ip_link_next(uintptr_t l)
{
    return &ip_link_pe(l)->ip_next[ip_link_idx(l)];
}

static int ip_table_insert(struct ip_table *t, struct pod_entry *pe, unsigned idx)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        uintptr_t *b = calloc(nb, sizeof(*b));
        if (!b)
            return -1;
        for (size_t i = 0; i < t->nb; i++) {
            for (uintptr_t l = t->b[i], next; l; l = next) {
                next = *ip_link_next(l);
                size_t h = ip_hash(ip_link_ip(l)) & (nb - 1);
                *ip_link_next(l) = b[h];
                b[h] = l;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    uintptr_t l = (uintptr_t)pe | idx;
    size_t h = ip_hash(&pe->pod->ips[idx]) & (t->nb - 1);
    pe->ip_next[idx] = t->b[h];
    t->b[h] = l;
    t->n++;
    return 0;
}

static void ip_table_remove(struct ip_table *t, struct pod_entry *pe, unsigned idx)
{
    if (!t->nb)
        return;
    uintptr_t l = (uintptr_t)pe | idx;
    size_t h = ip_hash(&pe->pod->ips[idx]) & (t->nb - 1);
    for (uintptr_t *pp = &t->b[h]; *pp; pp = ip_link_next(*pp)) {
        if (*pp == l) {
            *pp = pe->ip_next[idx];
            pe->ip_next[idx] = 0;
            t->n--;
            return;
        }
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

/* Drops an endpoint's interned references and zeroes it. */
static void endpoint_clear(struct store *st, struct svcd_endpoint *e)
{
    intern_put(&st->strs, e->hostname);
    intern_put(&st->strs, e->node_name);
    intern_put(&st->strs, e->pod_name);
    intern_put(&st->tps, e->target_ports);
    memset(e, 0, sizeof(*e));
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return a == b || strcmp(a, b) == 0;
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
    if (a->target_ports == b->target_ports)
        return true;
    if (!a->target_ports || !b->target_ports)
        return n_ports == 0;
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

static void svc_entry_clear_eps(struct store *st, struct svc_entry *se)
{
    for (size_t i = 0; i < se->n_eps; i++)
        endpoint_clear(st, &se->eps[i]);
    se->n_eps = 0;
}

static struct svcd_endpoint *svc_entry_find_pod(struct svc_entry *se, const char *pod_name)
{
    for (size_t i = 0; i < se->n_eps; i++)
        if (se->eps[i].pod_name && str_eq(se->eps[i].pod_name, pod_name))
            return &se->eps[i];
    return NULL;
}

/* Appends a zeroed endpoint; NULL on ENOMEM. */
static struct svcd_endpoint *svc_entry_append(struct svc_entry *se)
{
    if (VEC_RESERVE(se->eps, se->n_eps, se->cap_eps, 4) < 0)
        return NULL;
    struct svcd_endpoint *e = &se->eps[se->n_eps++];
    memset(e, 0, sizeof(*e));
    return e;
}

/* Gives back unused endpoint capacity (the list is read far more often
 * than it grows). */
static void svc_entry_trim(struct svc_entry *se)
{
    if (se->cap_eps == se->n_eps)
        return;
    if (se->n_eps == 0) {
        free(se->eps);
        se->eps = NULL;
        se->cap_eps = 0;
        return;
    }
    struct svcd_endpoint *eps = realloc(se->eps, se->n_eps * sizeof(*eps));
    if (eps) {
        se->eps = eps;
        se->cap_eps = se->n_eps;
    }
}

/* An interned copy of a target port list of n entries; NULL on ENOMEM. */
static uint16_t *intern_ports(struct store *st, const uint16_t *tp, size_t n)
{
    return (uint16_t *)(uintptr_t)intern_get(&st->tps, tp, n * sizeof(*tp));
}

/*
 * Builds the endpoint the EndpointSlice controller would make for pod in
 * svc. Returns 1 when the pod is an endpoint (out filled), 0 when it is not,
 * -1 on ENOMEM. The pod must be adopted (its strings interned).
 */
static int endpoint_from_pod(struct store *st, const struct svcd_service *svc,
                             const struct svcd_pod *pod, struct svcd_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    if (!svc->has_selector || svc->type == SVCD_SVC_EXTERNAL_NAME)
        return 0;
    if (!str_eq(svc->meta.ns, pod->meta.ns))
        return 0;
    if (!svcd_selector_matches(&svc->selector, &pod->meta.labels))
        return 0;
    if (pod->n_ips == 0)
        return 0;
    if (pod->phase == SVCD_PHASE_SUCCEEDED || pod->phase == SVCD_PHASE_FAILED)
        return 0;

    uint16_t *tp = NULL;
    if (svc->n_ports) {
        uint16_t stack_tp[16];
        uint16_t *buf = svc->n_ports <= 16 ? stack_tp : calloc(svc->n_ports, sizeof(*buf));
        if (!buf)
            return -1;
        bool any = false;
        for (size_t i = 0; i < svc->n_ports; i++) {
            const struct svcd_service_port *sp = &svc->ports[i];
            if (sp->target_port_name)
                buf[i] = svcd_pod_named_port(pod, sp->target_port_name, sp->protocol);
            else
                buf[i] = sp->target_port ? sp->target_port : sp->port;
            any |= buf[i] != 0;
        }
        if (any)
            tp = intern_ports(st, buf, svc->n_ports);
        if (buf != stack_tp)
            free(buf);
        if (!any)            /* serves none of the Service's ports */
            return 0;
        if (!tp)
            return -1;
    }

    bool terminating = pod->meta.deletion_timestamp != NULL;
    bool pod_ready = svcd_pod_is_ready(pod);
    out->target_ports = tp;
    out->n_ips = pod->n_ips;
    memcpy(out->ips, pod->ips, sizeof(out->ips));
    out->ready = svc->publish_not_ready || (pod_ready && !terminating);
    out->serving = pod_ready;
    out->terminating = terminating;
    out->pod_name = intern_ref(pod->meta.name);
    if (pod->hostname && pod->subdomain && strcmp(pod->subdomain, svc->meta.name) == 0)
        out->hostname = intern_ref(pod->hostname);
    out->node_name = intern_ref(pod->node_name);
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
        is_ep = endpoint_from_pod(st, se->svc, pe->pod, &ne);
        if (is_ep < 0) {
            log_err("store", "out of memory computing endpoints of %s", se->key);
            return;
        }
    }
    struct svcd_endpoint *cur = svc_entry_find_pod(se, pod_name);
    if (is_ep) {
        if (cur && endpoint_equal(cur, &ne, se->svc->n_ports)) {
            endpoint_clear(st, &ne);
        } else {
            if (cur) {
                endpoint_clear(st, cur);
                *cur = ne;
            } else {
                struct svcd_endpoint *slot = svc_entry_append(se);
                if (!slot) {
                    endpoint_clear(st, &ne);
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
            endpoint_clear(st, cur);
            *cur = se->eps[--se->n_eps];
            svc_entry_sort(se);
            store_mark(st, se, STORE_SVC_ENDPOINTS);
        }
        if (pe)
            ptrvec_remove(&pe->member_of, se);
    }
}

/* Appends the endpoints one EndpointSlice gives a selector-less Service.
 * 0, or -1 on ENOMEM. */
static int slice_collect(struct store *st, struct svc_entry *se,
                         const struct svcd_endpoint_slice *sl)
{
    const struct svcd_service *svc = se->svc;
    if (strcmp(sl->meta.ns, svc->meta.ns) != 0 || !sl->service_name ||
        strcmp(sl->service_name, svc->meta.name) != 0)
        return 0;
    for (size_t i = 0; i < sl->n_endpoints; i++) {
        const struct svcd_slice_endpoint *sep = &sl->endpoints[i];
        if (sep->n_addresses == 0)
            continue;
        struct svcd_endpoint *e = svc_entry_append(se);
        if (!e)
            return -1;
        uint16_t *tp = NULL;
        e->n_ips = 1;
        e->ips[0] = sep->addresses[0];
        e->ready = svc->publish_not_ready || sep->ready;
        e->serving = sep->serving;
        e->terminating = sep->terminating;
        e->hostname = intern_str(st, sep->hostname);
        e->node_name = intern_str(st, sep->node_name);
        if ((sep->hostname && !e->hostname) || (sep->node_name && !e->node_name))
            goto enomem;
        if (svc->n_ports) {
            tp = calloc(svc->n_ports, sizeof(uint16_t));
            if (!tp)
                goto enomem;
            /* A slice port matches a Service port by name (and protocol). */
            for (size_t p = 0; p < svc->n_ports; p++) {
                const struct svcd_service_port *sp = &svc->ports[p];
                for (size_t q = 0; q < sl->n_ports; q++) {
                    const struct svcd_slice_port *lp = &sl->ports[q];
                    if (lp->protocol == sp->protocol &&
                        str_eq(lp->name && *lp->name ? lp->name : NULL,
                               sp->name && *sp->name ? sp->name : NULL)) {
                        tp[p] = lp->port;
                        break;
                    }
                }
            }
            e->target_ports = intern_ports(st, tp, svc->n_ports);
            free(tp);
            if (!e->target_ports)
                goto enomem;
        }
        continue;
enomem:
        /* never leave a half-built endpoint in the list */
        endpoint_clear(st, e);
        se->n_eps--;
        return -1;
    }
    return 0;
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
        /* The pods under the first pair bound the list: one allocation
         * (trimmed below) instead of doubling, which leaves holes. */
        if (pods && pods->n) {
            se->eps = malloc(pods->n * sizeof(*se->eps));
            se->cap_eps = se->eps ? pods->n : 0;
        }
        for (size_t i = 0; pods && i < pods->n; i++) {
            struct pod_entry *pe = ptrvec_at(pods, i);
            struct svcd_endpoint ne;
            int r = endpoint_from_pod(st, svc, pe->pod, &ne);
            if (r < 0)
                log_err("store", "out of memory computing endpoints of %s", se->key);
            if (r <= 0)
                continue;
            struct svcd_endpoint *slot = svc_entry_append(se);
            if (!slot) {
                endpoint_clear(st, &ne);
                continue;
            }
            *slot = ne;
            if (!ptrvec_contains(&pe->member_of, se))
                ptrvec_push(&pe->member_of, se);
        }
    } else {
        char k[STORE_KEY_MAX];
        store_key(k, svc->meta.ns, svc->meta.name);
        struct ptrvec *sls = hmap_get(st->slice_svc, k);
        for (size_t i = 0; sls && i < sls->n; i++) {
            if (slice_collect(st, se, ptrvec_at(sls, i)) < 0) {
                log_err("store", "out of memory computing endpoints of %s", se->key);
                break;
            }
        }
    }
    svc_entry_sort(se);
    svc_entry_trim(se);

    bool changed = n_old != se->n_eps || (n_old > 0 && n_ports_old != svc->n_ports);
    for (size_t i = 0; !changed && i < n_old; i++)
        changed = !endpoint_equal(&old[i], &se->eps[i], n_ports_old);
    for (size_t i = 0; i < n_old; i++)
        endpoint_clear(st, &old[i]);
    free(old);
    if (changed)
        store_mark(st, se, STORE_SVC_ENDPOINTS);
}

/* ---- changed pods ---------------------------------------------------------- */

/* The pod_gone key of a deleted pod: its interned ns and name pointers
 * (stable while the change list holds references to them). */
struct pod_gone_key {
    const char *ns, *name;
};

/* Appends a slot for pe's key to the batch's pod list; 1 + its index, or
 * 0 on ENOMEM (the list is then marked incomplete). */
static uint32_t pod_chg_push(struct store *st, const struct svcd_pod *pod)
{
    if (st->n_pod_chg == st->cap_pod_chg) {
        size_t cap = st->cap_pod_chg ? st->cap_pod_chg * 2 : 64;
        if (cap >= UINT32_MAX)
            goto lost;
        struct store_pod_ref *r = realloc(st->pod_chg, cap * sizeof(*r));
        if (!r)
            goto lost;
        st->pod_chg = r;
        struct pod_entry **e = realloc(st->pod_chg_pe, cap * sizeof(*e));
        if (!e)
            goto lost;
        st->pod_chg_pe = e;
        st->cap_pod_chg = cap;
    }
    struct store_pod_ref *r = &st->pod_chg[st->n_pod_chg];
    r->ns = intern_ref(pod->meta.ns);
    r->name = intern_ref(pod->meta.name);
    r->deleted = false;
    st->pod_chg_pe[st->n_pod_chg] = NULL;
    return (uint32_t)++st->n_pod_chg;
lost:
    if (!st->pod_chg_lost)
        log_err("store", "out of memory recording changed pods");
    st->pod_chg_lost = true;
    return 0;
}

/* Records that pe (live) changed in this batch. */
static void pod_note_changed(struct store *st, struct pod_entry *pe)
{
    st->pods_changed = true;
    if (pe->chg)
        return;
    if (hmap_count(st->pod_gone) > 0) {
        /* Deleted earlier in this batch: it comes back in the same slot. */
        struct pod_gone_key k = { pe->pod->meta.ns, pe->pod->meta.name };
        uintptr_t slot = (uintptr_t)hmap_del_bin(st->pod_gone, &k, sizeof(k));
        if (slot) {
            pe->chg = (uint32_t)slot;
            st->pod_chg[slot - 1].deleted = false;
            st->pod_chg_pe[slot - 1] = pe;
            return;
        }
    }
    pe->chg = pod_chg_push(st, pe->pod);
    if (pe->chg)
        st->pod_chg_pe[pe->chg - 1] = pe;
}

/* Records that pe is being deleted (before it is freed). */
static void pod_note_deleted(struct store *st, struct pod_entry *pe)
{
    st->pods_changed = true;
    uint32_t slot = pe->chg ? pe->chg : pod_chg_push(st, pe->pod);
    pe->chg = 0;
    if (!slot)
        return;
    struct store_pod_ref *r = &st->pod_chg[slot - 1];
    r->deleted = true;
    st->pod_chg_pe[slot - 1] = NULL;
    /* Keyed by the slot's own references: they outlive the pod. */
    struct pod_gone_key k = { r->ns, r->name };
    if (hmap_set_bin(st->pod_gone, &k, sizeof(k), (void *)(uintptr_t)slot) < 0) {
        log_err("store", "out of memory recording a deleted pod");
        st->pod_chg_lost = true;   /* a re-add would be listed twice */
    }
}

/* Drops the batch's pod list: entries forget their slots, pod_gone is
 * emptied. The slots' string references are the caller's to release. */
static void pod_chg_detach(struct store *st)
{
    for (size_t i = 0; i < st->n_pod_chg; i++) {
        if (st->pod_chg_pe[i])
            st->pod_chg_pe[i]->chg = 0;
        if (st->pod_chg[i].deleted) {
            struct pod_gone_key k = { st->pod_chg[i].ns, st->pod_chg[i].name };
            hmap_del_bin(st->pod_gone, &k, sizeof(k));
        }
    }
    free(st->pod_chg_pe);
    st->pod_chg = NULL;
    st->pod_chg_pe = NULL;
    st->n_pod_chg = st->cap_pod_chg = 0;
    st->pod_chg_lost = false;
}

static void pod_refs_release(struct store *st, struct store_pod_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        intern_put(&st->strs, refs[i].ns);
        intern_put(&st->strs, refs[i].name);
    }
    free(refs);
}

size_t store_changed_pods(const struct store *st, const struct store_pod_ref **out)
{
    *out = NULL;
    if (st->n_notify_pods == SIZE_MAX)
        return SIZE_MAX;
    *out = st->n_notify_pods ? st->notify_pods : NULL;
    return st->n_notify_pods;
}

/* ---- lifecycle ------------------------------------------------------------ */

struct store *store_new(void)
{
    struct store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->services = hmap_new();
    st->slices = hmap_new();
    st->slice_svc = hmap_new();
    st->svc_sel = hmap_new();
    st->pod_lbl = hmap_new();
    st->graveyard = hmap_new();
    st->pod_gone = hmap_new();
    if (!st->services || !st->slices || !st->slice_svc || !st->svc_sel || !st->pod_lbl ||
        !st->graveyard || !st->pod_gone) {
        store_free(st);
        return NULL;
    }
    return st;
}

static void svc_entry_free(struct store *st, struct svc_entry *se)
{
    if (!se)
        return;
    svc_entry_clear_eps(st, se);
    free(se->eps);
    store_svc_release(st, se->svc);
    free(se->key);
    free(se->sel_key);
    free(se);
}

static int free_svc_cb(void *ctx, const char *key, void *value)
{
    (void)key;
    svc_entry_free(ctx, value);
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

static void pod_entry_free(struct store *st, struct pod_entry *pe)
{
    ptrvec_free(&pe->member_of);
    store_pod_release(st, pe->pod);
    free(pe);
}

void store_free(struct store *st)
{
    if (!st)
        return;
    /* Deleted entries still waiting for a commit live only in changed. */
    for (size_t i = 0; i < st->changed.n; i++) {
        struct svc_entry *se = ptrvec_at(&st->changed, i);
        if (se->deleted)
            svc_entry_free(st, se);
    }
    ptrvec_free(&st->changed);
    /* A batch left open: its pod list still holds string references. */
    struct store_pod_ref *pod_refs = st->pod_chg;
    size_t n_pod_refs = st->n_pod_chg;
    if (st->pod_gone)
        pod_chg_detach(st);
    pod_refs_release(st, pod_refs, n_pod_refs);
    if (st->services) { hmap_foreach(st->services, free_svc_cb, st); hmap_free(st->services); }
    for (size_t i = 0; i < st->pods.nb; i++) {
        for (struct pod_entry *pe = st->pods.b[i], *next; pe; pe = next) {
            next = pe->next;
            pod_entry_free(st, pe);
        }
    }
    free(st->pods.b);
    free(st->pod_ip.b);
    if (st->slices) { hmap_foreach(st->slices, free_slice_cb, NULL); hmap_free(st->slices); }
    if (st->slice_svc) { hmap_foreach(st->slice_svc, free_vec_cb, NULL); hmap_free(st->slice_svc); }
    if (st->svc_sel) { hmap_foreach(st->svc_sel, free_vec_cb, NULL); hmap_free(st->svc_sel); }
    if (st->pod_lbl) { hmap_foreach(st->pod_lbl, free_vec_cb, NULL); hmap_free(st->pod_lbl); }
    hmap_free(st->graveyard);
    hmap_free(st->pod_gone);
    itab_free(&st->tps);
    itab_free(&st->kvs);
    itab_free(&st->strs);
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
    for (size_t i = 0; i < st->changed.n; i++) {
        struct svc_entry *se = ptrvec_at(&st->changed, i);
        if (!se->deleted)
            svc_entry_trim(se);
        if (!ch || i >= n)
            continue;
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
    struct store_pod_ref *pod_refs = st->pod_chg;
    size_t n_pod_refs = st->n_pod_chg;
    bool pods_lost = st->pod_chg_lost;
    pod_chg_detach(st);
    const struct store_pod_ref *outer_pods = st->notify_pods;   /* a nested commit */
    size_t n_outer_pods = st->n_notify_pods;
    st->notify_pods = pod_refs;
    st->n_notify_pods = pods_lost ? SIZE_MAX : n_pod_refs;
    for (size_t i = 0; i < changed.n; i++) {
        struct svc_entry *se = ptrvec_at(&changed, i);
        se->in_changes = false;
        se->change_flags = 0;
    }
    log_debug("store", "generation %llu: %zu services changed%s",
              (unsigned long long)st->generation, n, pods_changed ? ", pods changed" : "");
    for (size_t s = 0; s < st->n_subs; s++)
        st->subs[s].on_commit(st->subs[s].ctx, st, st->generation, ch, n, pods_changed);
    free(ch);
    st->notify_pods = outer_pods;
    st->n_notify_pods = n_outer_pods;
    pod_refs_release(st, pod_refs, n_pod_refs);
    for (size_t i = 0; i < changed.n; i++) {
        struct svc_entry *se = ptrvec_at(&changed, i);
        if (se->deleted) {
            if (hmap_get(st->graveyard, se->key) == se)
                hmap_del(st->graveyard, se->key);
            svc_entry_free(st, se);
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
        struct pod_entry *pe = pod_table_find(&st->pods, se->svc->meta.ns, se->eps[i].pod_name);
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
    if (se && se->svc->meta.fingerprint == svc->meta.fingerprint && svc->meta.fingerprint) {
        model_service_free(svc);
        return 0;
    }
    if (store_svc_adopt(st, svc) < 0) {
        model_service_free(svc);
        return -1;
    }
    struct svc_entry *revived = se ? NULL : hmap_get(st->graveyard, k);
    if (revived) {
        /* Deleted earlier in this batch: it comes back as one change. */
        if (hmap_set(st->services, k, revived) < 0) {
            store_svc_release(st, svc);
            return -1;
        }
        hmap_del(st->graveyard, k);
        revived->deleted = false;
        revived->change_flags &= ~(unsigned)STORE_SVC_DELETED;
        se = revived;
    }
    if (se) {
        n_ports_old = se->svc->n_ports;
        svc_forget_members(st, se);
        store_svc_release(st, se->svc);
        se->svc = svc;
    } else {
        se = calloc(1, sizeof(*se));
        if (!se) {
            store_svc_release(st, svc);
            return -1;
        }
        se->svc = svc;
        if (!(se->key = strdup(k)) || hmap_set(st->services, k, se) < 0) {
            svc_entry_free(st, se);
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
                log_err("store", "out of memory indexing pod %s/%s", pod->meta.ns,
                        pod->meta.name);
        } else {
            index_remove(st->pod_lbl, k, pe);
        }
    }
    for (unsigned i = 0; i < pod->n_ips && i < 2; i++) {
        if (add) {
            if (ip_table_insert(&st->pod_ip, pe, i) < 0)
                log_err("store", "out of memory indexing pod %s/%s", pod->meta.ns,
                        pod->meta.name);
        } else {
            ip_table_remove(&st->pod_ip, pe, i);
        }
    }
}

/* Re-evaluates pe against every Service that had it or may select it. */
static void pod_reconcile(struct store *st, struct pod_entry *pe)
{
    struct ptrvec cand = { 0 };
    for (size_t i = 0; i < pe->member_of.n; i++)
        ptrvec_push(&cand, ptrvec_at(&pe->member_of, i));
    const struct svcd_pod *pod = pe->pod;
    char k[STORE_KEY_MAX];
    for (size_t i = 0; i < pod->meta.labels.n; i++) {
        store_pair_key(k, pod->meta.ns, &pod->meta.labels.items[i]);
        struct ptrvec *v = hmap_get(st->svc_sel, k);
        for (size_t j = 0; v && j < v->n; j++)
            if (!ptrvec_contains(&cand, ptrvec_at(v, j)))
                ptrvec_push(&cand, ptrvec_at(v, j));
    }
    for (size_t i = 0; i < cand.n; i++)
        store_sync_pair(st, ptrvec_at(&cand, i), pe, pod->meta.name);
    ptrvec_free(&cand);
}

int store_pod_upsert(struct store *st, struct svcd_pod *pod)
{
    struct pod_entry *pe = pod_table_find(&st->pods, pod->meta.ns, pod->meta.name);
    if (pe && pe->pod->meta.fingerprint == pod->meta.fingerprint && pod->meta.fingerprint) {
        model_pod_free(pod);
        return 0;
    }
    if (store_pod_adopt(st, pod) < 0) {
        model_pod_free(pod);
        return -1;
    }
    if (pe) {
        pod->probe_ready = pe->pod->probe_ready;   /* svcd's own verdict stays */
        pod_index(st, pe, false);
        /* Same ns and name: the entry keeps its place in the pods table. */
        store_pod_release(st, pe->pod);
        pe->pod = pod;
    } else {
        pe = calloc(1, sizeof(*pe));
        if (!pe) {
            store_pod_release(st, pod);
            return -1;
        }
        pe->pod = pod;
        if (pod_table_insert(&st->pods, pe) < 0) {
            pod_entry_free(st, pe);
            return -1;
        }
    }
    pod_index(st, pe, true);
    pod_note_changed(st, pe);
    pod_reconcile(st, pe);
    return 0;
}

int store_pod_delete(struct store *st, const char *ns, const char *name)
{
    struct pod_entry *pe = pod_table_find(&st->pods, ns, name);
    if (!pe)
        return -1;
    pod_table_remove(&st->pods, pe);
    pod_index(st, pe, false);
    while (pe->member_of.n) {
        struct svc_entry *se = ptrvec_at(&pe->member_of, 0);
        store_sync_pair(st, se, NULL, pe->pod->meta.name);
        ptrvec_remove(&pe->member_of, se);
    }
    pod_note_deleted(st, pe);
    pod_entry_free(st, pe);
    return 0;
}

int store_pod_set_probe_ready(struct store *st, const char *ns, const char *name,
                              enum svcd_tristate ready)
{
    struct pod_entry *pe = pod_table_find(&st->pods, ns, name);
    if (!pe)
        return -1;
    if (pe->pod->probe_ready == ready)
        return 0;
    pe->pod->probe_ready = ready;
    pod_note_changed(st, pe);
    pod_reconcile(st, pe);
    return 0;
}

int store_pod_mark_terminating(struct store *st, const char *ns, const char *name,
                               const char *rfc3339)
{
    struct pod_entry *pe = pod_table_find(&st->pods, ns, name);
    if (!pe)
        return -1;
    if (pe->pod->meta.deletion_timestamp)
        return 0;
    char *ts = strdup(rfc3339);
    if (!ts)
        return -1;
    pe->pod->meta.deletion_timestamp = ts;
    pe->pod->meta.fingerprint ^= 0x9e3779b97f4a7c15ULL;   /* content differs now */
    pod_note_changed(st, pe);
    pod_reconcile(st, pe);
    return 0;
}

/* ---- slices --------------------------------------------------------------- */

/* Adds or removes sl under "ns/service-name" in the slice index. */
static void slice_index(struct store *st, struct svcd_endpoint_slice *sl, bool add)
{
    if (!sl->service_name)
        return;
    char k[STORE_KEY_MAX];
    store_key(k, sl->meta.ns, sl->service_name);
    if (!add)
        index_remove(st->slice_svc, k, sl);
    else if (index_add(st->slice_svc, k, sl) < 0)
        log_err("store", "out of memory indexing EndpointSlice %s/%s", sl->meta.ns,
                sl->meta.name);
}

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
    if (old)
        slice_index(st, old, false);
    slice_index(st, sl, true);
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
    slice_index(st, old, false);
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
    const struct pod_entry *pe = pod_table_find(&st->pods, ns, name);
    return pe ? pe->pod : NULL;
}

const struct svcd_pod *store_pod_by_ip(const struct store *st, const struct svcd_ip *ip)
{
    const struct svcd_pod *best = NULL;
    if (!st->pod_ip.nb)
        return NULL;
    for (uintptr_t l = st->pod_ip.b[ip_hash(ip) & (st->pod_ip.nb - 1)]; l;
         l = *ip_link_next(l)) {
        if (!svcd_ip_equal(ip_link_ip(l), ip))
            continue;
        const struct svcd_pod *p = ip_link_pe(l)->pod;
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
    for (size_t i = 0; i < st->pods.nb; i++) {
        for (const struct pod_entry *pe = st->pods.b[i]; pe; pe = pe->next) {
            int rc = cb(ctx, pe->pod);
            if (rc)
                return rc;
        }
    }
    return 0;
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
    out->pods = st->pods.n;
    out->slices = hmap_count(st->slices);
    out->commits = st->commits;
    hmap_foreach(st->services, stats_cb, out);
}
