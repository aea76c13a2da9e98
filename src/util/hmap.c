/*
 * hmap: chained hash map with copied keys. Small and predictable: the
 * store keeps a few of these (objects by ns/name, selector index, pods by
 * IP) and looks up once or twice per object change.
 */
#include "svcd/hmap.h"

#include <stdlib.h>
#include <string.h>

struct hmap_node {
    struct hmap_node *next;
    uint64_t hash;
    void *value;
    size_t klen;
    unsigned char key[];    /* klen bytes + NUL */
};

struct hmap {
    struct hmap_node **buckets;
    size_t nbuckets;        /* power of two */
    size_t count;
};

uint64_t hmap_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

struct hmap *hmap_new(void)
{
    struct hmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nbuckets = 16;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void hmap_free(struct hmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct hmap_node *n = m->buckets[i];
        while (n) {
            struct hmap_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(m->buckets);
    free(m);
}

static struct hmap_node **hmap_find(const struct hmap *m, const void *key, size_t klen,
                                    uint64_t h)
{
    struct hmap_node **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->key, key, klen) == 0)
            return pp;
    }
    return pp;
}

static int hmap_grow(struct hmap *m)
{
    size_t nb = m->nbuckets * 2;
    struct hmap_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct hmap_node *n = m->buckets[i];
        while (n) {
            struct hmap_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

void *hmap_get_bin(const struct hmap *m, const void *key, size_t klen)
{
    struct hmap_node **pp = hmap_find(m, key, klen, hmap_hash(key, klen, HMAP_HASH_SEED));
    return *pp ? (*pp)->value : NULL;
}

void *hmap_get(const struct hmap *m, const char *key)
{
    return hmap_get_bin(m, key, strlen(key));
}

int hmap_set_bin(struct hmap *m, const void *key, size_t klen, void *value)
{
    uint64_t h = hmap_hash(key, klen, HMAP_HASH_SEED);
    struct hmap_node **pp = hmap_find(m, key, klen, h);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    if (m->count >= m->nbuckets) {
        if (hmap_grow(m) < 0)
            return -1;
        pp = hmap_find(m, key, klen, h);
    }
    struct hmap_node *n = malloc(sizeof(*n) + klen + 1);
    if (!n)
        return -1;
    n->next = NULL;
    n->hash = h;
    n->value = value;
    n->klen = klen;
    memcpy(n->key, key, klen);
    n->key[klen] = '\0';
    *pp = n;
    m->count++;
    return 0;
}

int hmap_set(struct hmap *m, const char *key, void *value)
{
    return hmap_set_bin(m, key, strlen(key), value);
}

void *hmap_del_bin(struct hmap *m, const void *key, size_t klen)
{
    struct hmap_node **pp = hmap_find(m, key, klen, hmap_hash(key, klen, HMAP_HASH_SEED));
    struct hmap_node *n = *pp;
    if (!n)
        return NULL;
    void *v = n->value;
    *pp = n->next;
    free(n);
    m->count--;
    return v;
}

void *hmap_del(struct hmap *m, const char *key)
{
    return hmap_del_bin(m, key, strlen(key));
}

size_t hmap_count(const struct hmap *m)
{
    return m->count;
}

int hmap_foreach(const struct hmap *m, int (*cb)(void *ctx, const char *key, void *value),
                 void *ctx)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct hmap_node *n = m->buckets[i]; n; n = n->next) {
            int rc = cb(ctx, (const char *)n->key, n->value);
            if (rc)
                return rc;
        }
    }
    return 0;
}
