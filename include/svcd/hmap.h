/*
 * hmap: a string-keyed hash map of void pointers (chained, power-of-two
 * buckets, grows at load factor 1). Keys are copied and owned by the map;
 * values are the caller's. Used by the store's object and index tables.
 */
#ifndef SVCD_HMAP_H
#define SVCD_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap;

/* New empty map, or NULL on ENOMEM. */
struct hmap *hmap_new(void);
/* Frees the map and its keys (not the values). Accepts NULL. */
void hmap_free(struct hmap *m);

/* Value for key, or NULL. */
void *hmap_get(const struct hmap *m, const char *key);
/* Binary keys (e.g. addresses). */
void *hmap_get_bin(const struct hmap *m, const void *key, size_t klen);
/* Sets key to value (replacing). 0, or -1 on ENOMEM. */
int hmap_set(struct hmap *m, const char *key, void *value);
int hmap_set_bin(struct hmap *m, const void *key, size_t klen, void *value);
/* Removes key; returns the old value or NULL. */
void *hmap_del(struct hmap *m, const char *key);
void *hmap_del_bin(struct hmap *m, const void *key, size_t klen);
size_t hmap_count(const struct hmap *m);

/* Calls cb for each entry; stops when cb returns non-zero (returned).
 * cb must not modify the map. */
int hmap_foreach(const struct hmap *m, int (*cb)(void *ctx, const char *key, void *value),
                 void *ctx);

/* 64-bit FNV-1a, exposed for fingerprints. */
uint64_t hmap_hash(const void *data, size_t len, uint64_t seed);
#define HMAP_HASH_SEED 0xcbf29ce484222325ULL

#endif
