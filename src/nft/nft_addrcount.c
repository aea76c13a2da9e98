/*
 * nft_addrcount: address -> signed count, open addressing with linear
 * probing (see nft_addrcount.h). A slot is empty when its count is 0;
 * deletion shifts the following cluster back (no tombstones), so lookups
 * stay short however many add/remove cycles the table sees. The table
 * doubles above 3/4 load and never shrinks until cleared.
 */
#include "svcd/nft_addrcount.h"

#include <stdlib.h>
#include <string.h>

static uint32_t ac_hash32(uint32_t x)
{
    /* murmur3 finalizer: spreads consecutive addresses over the table */
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

static uint32_t ac_hash128(const uint8_t *a)
{
    uint32_t w[4];
    memcpy(w, a, 16);
    return ac_hash32(w[0] ^ ac_hash32(w[1] ^ ac_hash32(w[2] ^ ac_hash32(w[3]))));
}

void nft_addrcount_clear(struct nft_addrcount *t)
{
    free(t->v4);
    free(t->v6);
    memset(t, 0, sizeof(*t));
}

/* ---- IPv4 ---- */

static size_t ac4_find(const struct nft_addrcount_v4 *v, size_t cap, uint32_t a)
{
    size_t m = cap - 1, i = ac_hash32(a) & m;
    while (v[i].cnt != 0 && v[i].addr != a)
        i = (i + 1) & m;
    return i;
}

static int ac4_grow(struct nft_addrcount *t)
{
    size_t nc = t->cap4 ? t->cap4 * 2 : 16;
    struct nft_addrcount_v4 *nv = calloc(nc, sizeof(*nv));
    if (!nv)
        return -1;
    for (size_t i = 0; i < t->cap4; i++)
        if (t->v4[i].cnt != 0)
            nv[ac4_find(nv, nc, t->v4[i].addr)] = t->v4[i];
    free(t->v4);
    t->v4 = nv;
    t->cap4 = nc;
    return 0;
}

static void ac4_remove(struct nft_addrcount *t, size_t i)
{
    size_t m = t->cap4 - 1, j = i;
    t->v4[i].cnt = 0;
    for (;;) {
        j = (j + 1) & m;
        if (t->v4[j].cnt == 0)
            break;
        size_t home = ac_hash32(t->v4[j].addr) & m;
        /* move j back into the hole at i unless its home lies in (i, j] */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        t->v4[i] = t->v4[j];
        t->v4[j].cnt = 0;
        i = j;
    }
    t->n4--;
}

static int ac4_add(struct nft_addrcount *t, uint32_t a, int32_t d)
{
    if (d == 0)
        return 0;
    if ((t->n4 + 1) * 4 > t->cap4 * 3 && ac4_grow(t) < 0)
        return -1;
    size_t i = ac4_find(t->v4, t->cap4, a);
    if (t->v4[i].cnt == 0) {
        t->v4[i].addr = a;
        t->v4[i].cnt = d;
        t->n4++;
        return 0;
    }
    t->v4[i].cnt += d;
    if (t->v4[i].cnt == 0)
        ac4_remove(t, i);
    return 0;
}

/* ---- IPv6 ---- */

static size_t ac6_find(const struct nft_addrcount_v6 *v, size_t cap, const uint8_t *a)
{
    size_t m = cap - 1, i = ac_hash128(a) & m;
    while (v[i].cnt != 0 && memcmp(v[i].addr, a, 16) != 0)
        i = (i + 1) & m;
    return i;
}

static int ac6_grow(struct nft_addrcount *t)
{
    size_t nc = t->cap6 ? t->cap6 * 2 : 16;
    struct nft_addrcount_v6 *nv = calloc(nc, sizeof(*nv));
    if (!nv)
        return -1;
    for (size_t i = 0; i < t->cap6; i++)
        if (t->v6[i].cnt != 0)
            nv[ac6_find(nv, nc, t->v6[i].addr)] = t->v6[i];
    free(t->v6);
    t->v6 = nv;
    t->cap6 = nc;
    return 0;
}

static void ac6_remove(struct nft_addrcount *t, size_t i)
{
    size_t m = t->cap6 - 1, j = i;
    t->v6[i].cnt = 0;
    for (;;) {
        j = (j + 1) & m;
        if (t->v6[j].cnt == 0)
            break;
        size_t home = ac_hash128(t->v6[j].addr) & m;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        t->v6[i] = t->v6[j];
        t->v6[j].cnt = 0;
        i = j;
    }
    t->n6--;
}

static int ac6_add(struct nft_addrcount *t, const uint8_t *a, int32_t d)
{
    if (d == 0)
        return 0;
    if ((t->n6 + 1) * 4 > t->cap6 * 3 && ac6_grow(t) < 0)
        return -1;
    size_t i = ac6_find(t->v6, t->cap6, a);
    if (t->v6[i].cnt == 0) {
        memcpy(t->v6[i].addr, a, 16);
        t->v6[i].cnt = d;
        t->n6++;
        return 0;
    }
    t->v6[i].cnt += d;
    if (t->v6[i].cnt == 0)
        ac6_remove(t, i);
    return 0;
}

/* ---- API ---- */

int nft_addrcount_add(struct nft_addrcount *t, uint8_t fam, const uint8_t *addr, int32_t delta)
{
    if (fam == 6)
        return ac6_add(t, addr, delta);
    uint32_t a;
    memcpy(&a, addr, 4);
    return ac4_add(t, a, delta);
}

int32_t nft_addrcount_get(const struct nft_addrcount *t, uint8_t fam, const uint8_t *addr)
{
    if (fam == 6) {
        if (!t->cap6)
            return 0;
        return t->v6[ac6_find(t->v6, t->cap6, addr)].cnt;
    }
    if (!t->cap4)
        return 0;
    uint32_t a;
    memcpy(&a, addr, 4);
    return t->v4[ac4_find(t->v4, t->cap4, a)].cnt;
}

size_t nft_addrcount_count(const struct nft_addrcount *t)
{
    return t->n4 + t->n6;
}

int nft_addrcount_foreach(const struct nft_addrcount *t,
                          int (*cb)(void *ctx, uint8_t fam, const uint8_t *addr, int32_t cnt),
                          void *ctx)
{
    for (size_t i = 0; i < t->cap4; i++) {
        if (t->v4[i].cnt == 0)
            continue;
        int r = cb(ctx, 4, (const uint8_t *)&t->v4[i].addr, t->v4[i].cnt);
        if (r)
            return r;
    }
    for (size_t i = 0; i < t->cap6; i++) {
        if (t->v6[i].cnt == 0)
            continue;
        int r = cb(ctx, 6, t->v6[i].addr, t->v6[i].cnt);
        if (r)
            return r;
    }
    return 0;
}
