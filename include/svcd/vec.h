/*
 * vec: the one growth rule for svcd's plain dynamic arrays (T *items with a
 * count and a capacity): make room for one more item, doubling the
 * allocation, starting at first_cap.
 */
#ifndef SVCD_VEC_H
#define SVCD_VEC_H

#include <stdlib.h>
#include <string.h>

/* itemsp points at the array pointer (T **); n items are in use, *cap are
 * allocated, each size bytes. Returns 0 when there is room for item n (the
 * array may have moved), or -1 on ENOMEM with the array unchanged. */
static inline int vec_reserve_one(void *itemsp, size_t n, size_t *cap, size_t size,
                                  size_t first_cap)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : first_cap;
    void *items;
    memcpy(&items, itemsp, sizeof(items));
    void *grown = realloc(items, nc * size);
    if (!grown)
        return -1;
    memcpy(itemsp, &grown, sizeof(grown));
    *cap = nc;
    return 0;
}

/* VEC_RESERVE(items, n, cap, first): vec_reserve_one for an lvalue array. */
#define VEC_RESERVE(items, n, cap, first) \
    vec_reserve_one(&(items), (n), &(cap), sizeof(*(items)), (first))

#endif
