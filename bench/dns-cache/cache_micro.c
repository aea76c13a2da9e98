/*
 * cache_micro: the cost of one dns_cache hit, without sockets.
 *
 * Fills a cache with N answers (default 10000, one A record each), then
 * times M lookups (default 2,000,000) of random cached names, each with a
 * different client ID and mixed-case question so the ID/case/TTL patches
 * run. Prints ns per lookup and the hit count. Usage:
 *   cache_micro [N] [M]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcd/dns_cache.h"

static size_t bench_query(uint8_t *b, uint16_t id, unsigned i, bool upper)
{
    char label[16];
    size_t n = 0;
    int l = snprintf(label, sizeof(label), "n%u", i);

    uint8_t h[12] = { (uint8_t)(id >> 8), (uint8_t)id, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
    memcpy(b, h, 12);
    n = 12;
    b[n++] = (uint8_t)l;
    memcpy(b + n, label, (size_t)l);
    if (upper)
        b[n] = 'N';
    n += (size_t)l;
    b[n++] = 5;
    memcpy(b + n, "bench", 5);
    n += 5;
    b[n++] = 4;
    memcpy(b + n, "test", 4);
    n += 4;
    b[n++] = 0;
    b[n++] = 0; b[n++] = 1; b[n++] = 0; b[n++] = 1;
    return n;
}

static size_t bench_answer(uint8_t *b, const uint8_t *q, size_t qn, unsigned i)
{
    memcpy(b, q, qn);
    b[2] = 0x81; b[3] = 0x80; b[7] = 1;
    uint8_t rr[16] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4,
                       10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
    memcpy(b + qn, rr, sizeof(rr));
    return qn + sizeof(rr);
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
    unsigned m = argc > 2 ? (unsigned)atoi(argv[2]) : 2000000;
    struct dns_cache *c = dns_cache_new(n, 0, 3600);
    uint8_t q[300], a[400], out[512];
    struct dns_cache_key k;
    struct timespec t0, t1;
    unsigned hits = 0, seed = 12345;

    if (!c || n == 0)
        return 1;
    for (unsigned i = 0; i < n; i++) {
        size_t qn = bench_query(q, 1, i, false);
        size_t an = bench_answer(a, q, qn, i);
        dns_cache_key_from_query(q, qn, &k);
        if (dns_cache_store(c, &k, a, an, 0) != 1)
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned j = 0; j < m; j++) {
        seed = seed * 1103515245u + 12345u;
        unsigned i = (seed >> 8) % n;
        size_t qn = bench_query(q, (uint16_t)j, i, j & 1);
        if (dns_cache_key_from_query(q, qn, &k) == 0 &&
            dns_cache_lookup(c, &k, q, qn, 1500, out, sizeof(out)) > 0)
            hits++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / m;
    printf("%u entries, %u lookups, %u hits, %.0f ns per key+lookup\n", n, m, hits, ns);
    dns_cache_free(c);
    return hits == m ? 0 : 1;
}
