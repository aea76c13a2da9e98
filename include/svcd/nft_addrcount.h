/*
 * nft_addrcount: a compact counter table keyed by an IP address (IPv4 or
 * IPv6), used by nftdp for reference counts of shared set elements (the
 * hairpin set: one entry per backend address; the ClusterIP set) and for
 * their per-sync deltas.
 *
 * Why not an hmap: at 100k backends an hmap costs one malloc'd node per
 * address (~72 bytes plus bucket); these are open-addressing arrays of
 * 8-byte (IPv4) / 20-byte (IPv6) slots, about 11-16 bytes per IPv4 entry.
 *
 * A zero-filled struct is a valid empty table. Counts are signed (deltas
 * may be negative); an entry whose count reaches 0 is removed.
 * Single-threaded.
 */
#ifndef SVCD_NFT_ADDRCOUNT_H
#define SVCD_NFT_ADDRCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct nft_addrcount_v4 {
    uint32_t addr;          /* network order, as the bytes of the address */
    int32_t cnt;            /* 0 = empty slot */
};

struct nft_addrcount_v6 {
    uint8_t addr[16];
    int32_t cnt;
};

struct nft_addrcount {
    struct nft_addrcount_v4 *v4;
    size_t n4, cap4;        /* cap: 0 or a power of two */
    struct nft_addrcount_v6 *v6;
    size_t n6, cap6;
};

/* Frees the arrays and leaves an empty table. */
void nft_addrcount_clear(struct nft_addrcount *t);
/* Adds delta to the count of (fam, addr); fam 4 or 6, addr 4 or 16 bytes.
 * 0, or -1 on ENOMEM (the table is then unchanged). */
int nft_addrcount_add(struct nft_addrcount *t, uint8_t fam, const uint8_t *addr, int32_t delta);
/* The count of (fam, addr), 0 when absent. */
int32_t nft_addrcount_get(const struct nft_addrcount *t, uint8_t fam, const uint8_t *addr);
/* Number of entries (both families). */
size_t nft_addrcount_count(const struct nft_addrcount *t);
/* Calls cb for every entry; stops when cb returns non-zero (returned). cb
 * must not modify t. addr is 4 or 16 bytes as fam says. */
int nft_addrcount_foreach(const struct nft_addrcount *t,
                          int (*cb)(void *ctx, uint8_t fam, const uint8_t *addr, int32_t cnt),
                          void *ctx);

#endif
