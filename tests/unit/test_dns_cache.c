/*
 * test_dns_cache: the answer cache alone, with a fake clock.
 *
 * Packets are assembled by a tiny local writer (not the codec under test
 * elsewhere), so a codec bug and a cache bug cannot hide each other.
 * Each table row stores one upstream answer, then looks it up at a given
 * age and checks hit/miss and the TTLs the client sees.
 */
#include <stdio.h>
#include <string.h>

#include "svcd/dns_cache.h"

static int g_pass, g_fail;

#define CHECK(cond, ...) do { \
    if (cond) { g_pass++; } else { g_fail++; \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- a small packet writer ---------------------------------------------- */

struct pkt {
    uint8_t b[4096];
    size_t n;
};

static void p8(struct pkt *p, unsigned v) { p->b[p->n++] = (uint8_t)v; }
static void p16(struct pkt *p, unsigned v) { p8(p, v >> 8); p8(p, v); }
static void p32(struct pkt *p, uint32_t v) { p16(p, v >> 16); p16(p, v & 0xffff); }

static void pname(struct pkt *p, const char *text)
{
    while (*text) {
        const char *dot = strchr(text, '.');
        size_t l = dot ? (size_t)(dot - text) : strlen(text);
        p8(p, (unsigned)l);
        memcpy(p->b + p->n, text, l);
        p->n += l;
        text += l;
        if (*text == '.')
            text++;
    }
    p8(p, 0);
}

/* Header: id, flags, counts. */
static void phdr(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an,
                 unsigned ns, unsigned ar)
{
    p->n = 0;
    p16(p, id); p16(p, flags); p16(p, qd); p16(p, an); p16(p, ns); p16(p, ar);
}

static void popt(struct pkt *p, bool do_bit)
{
    p8(p, 0); p16(p, 41); p16(p, 1232); p32(p, do_bit ? 0x8000 : 0); p16(p, 0);
}

/* A query for name/type; edns: 0 none, 1 OPT, 2 OPT+DO. */
static void mkquery(struct pkt *p, unsigned id, const char *name, unsigned type, int edns)
{
    phdr(p, id, 0x0100, 1, 0, 0, edns ? 1 : 0);
    pname(p, name);
    p16(p, type); p16(p, 1);
    if (edns)
        popt(p, edns == 2);
}

/* An answer record with a compressed owner (pointer to the question). */
static void pa(struct pkt *p, uint32_t ttl, uint32_t addr)
{
    p16(p, 0xc00c); p16(p, 1); p16(p, 1); p32(p, ttl); p16(p, 4); p32(p, addr);
}

static void psoa(struct pkt *p, const char *zone, uint32_t ttl, uint32_t minimum)
{
    pname(p, zone);
    p16(p, 6); p16(p, 1); p32(p, ttl);
    size_t rdlen_at = p->n;
    p16(p, 0);
    size_t start = p->n;
    pname(p, "ns"); /* relative-looking, but a valid single label name */
    p16(p, 0xc00c); /* compressed rname */
    p32(p, 1); p32(p, 7200); p32(p, 900); p32(p, 1209600); p32(p, minimum);
    size_t rdlen = p->n - start;
    p->b[rdlen_at] = (uint8_t)(rdlen >> 8);
    p->b[rdlen_at + 1] = (uint8_t)rdlen;
}

enum ans_kind { ANS_A, ANS_A2, ANS_NX_SOA, ANS_NODATA_SOA, ANS_NX_NOSOA, ANS_SERVFAIL,
                ANS_TC, ANS_A_OPT_DO, ANS_A_TTL0 };

/* An upstream answer to `name` A, id 0x9999, lower-case question. */
static void mkanswer(struct pkt *p, const char *name, enum ans_kind k, uint32_t ttl,
                     uint32_t soa_min)
{
    unsigned flags = 0x8180; /* QR RD RA */
    switch (k) {
    case ANS_A:
    case ANS_A_TTL0:
        phdr(p, 0x9999, flags, 1, 1, 0, 0);
        break;
    case ANS_A2:
        phdr(p, 0x9999, flags, 1, 2, 0, 0);
        break;
    case ANS_A_OPT_DO:
        phdr(p, 0x9999, flags, 1, 1, 0, 1);
        break;
    case ANS_NX_SOA:
        phdr(p, 0x9999, flags | 3, 1, 0, 1, 0);
        break;
    case ANS_NODATA_SOA:
        phdr(p, 0x9999, flags, 1, 0, 1, 0);
        break;
    case ANS_NX_NOSOA:
        phdr(p, 0x9999, flags | 3, 1, 0, 0, 0);
        break;
    case ANS_SERVFAIL:
        phdr(p, 0x9999, flags | 2, 1, 0, 0, 0);
        break;
    case ANS_TC:
        phdr(p, 0x9999, flags | 0x0200, 1, 1, 0, 0);
        break;
    }
    pname(p, name);
    p16(p, 1); p16(p, 1);
    switch (k) {
    case ANS_A:
    case ANS_TC:
        pa(p, ttl, 0x01020304);
        break;
    case ANS_A_TTL0:
        pa(p, 0, 0x01020304);
        break;
    case ANS_A2:
        pa(p, ttl, 0x01020304);
        pa(p, ttl * 2, 0x05060708);
        break;
    case ANS_A_OPT_DO:
        pa(p, ttl, 0x01020304);
        popt(p, true);
        break;
    case ANS_NX_SOA:
    case ANS_NODATA_SOA:
        psoa(p, "example", ttl, soa_min);
        break;
    default:
        break;
    }
}

/* TTL of the n-th record (answer+authority+additional, OPT included) of a
 * reply built by mkanswer; walks the packet with known shapes. */
static uint32_t rr_ttl(const uint8_t *b, size_t len, int nth)
{
    size_t pos = 12;
    while (pos < len && b[pos])            /* question name */
        pos += b[pos] + 1u;
    pos += 1 + 4;
    for (int i = 0; pos + 10 <= len; i++) {
        if (b[pos] >= 0xc0) pos += 2;
        else { while (b[pos]) pos += b[pos] + 1u; pos++; }
        uint32_t ttl = (uint32_t)b[pos + 4] << 24 | (uint32_t)b[pos + 5] << 16 |
                       (uint32_t)b[pos + 6] << 8 | b[pos + 7];
        if (i == nth)
            return ttl;
        pos += 10u + ((size_t)b[pos + 8] << 8 | b[pos + 9]);
    }
    return 0xdeadbeef;
}

/* ---- table: store then look up ------------------------------------------ */

struct ttl_case {
    const char *what;
    enum ans_kind kind;
    uint32_t ttl, soa_min;
    uint32_t min_ttl, max_ttl;
    int want_store;          /* dns_cache_store() result */
    uint64_t at_ms;          /* lookup time (stored at 1000 ms) */
    bool want_hit;
    int nth;                 /* record whose TTL to check */
    uint32_t want_ttl;
};

static const struct ttl_case ttl_cases[] = {
    { "fresh A keeps TTL", ANS_A, 300, 0, 0, 3600, 1, 1000, true, 0, 300 },
    { "A aged 100.9 s", ANS_A, 300, 0, 0, 3600, 1, 1000 + 100900, true, 0, 200 },
    { "A just before expiry", ANS_A, 300, 0, 0, 3600, 1, 1000 + 299999, true, 0, 1 },
    { "A expired at TTL", ANS_A, 300, 0, 0, 3600, 1, 1000 + 300000, false, 0, 0 },
    { "min cap raises TTL", ANS_A, 5, 0, 60, 3600, 1, 1000 + 30000, true, 0, 30 },
    { "min cap keeps entry alive", ANS_A, 5, 0, 60, 3600, 1, 1000 + 59000, true, 0, 1 },
    { "max cap lowers TTL", ANS_A, 86400, 0, 0, 100, 1, 1000, true, 0, 100 },
    { "max cap expires entry", ANS_A, 86400, 0, 0, 100, 1, 1000 + 100000, false, 0, 0 },
    { "two TTLs each aged", ANS_A2, 100, 0, 0, 3600, 1, 1000 + 10000, true, 1, 190 },
    { "two TTLs, entry dies at min", ANS_A2, 100, 0, 0, 3600, 1, 1000 + 100000, false, 0, 0 },
    { "NXDOMAIN uses SOA minimum", ANS_NX_SOA, 3600, 30, 0, 3600, 1, 1000, true, 0, 30 },
    { "NXDOMAIN expires at minimum", ANS_NX_SOA, 3600, 30, 0, 3600, 1, 1000 + 30000, false, 0, 0 },
    { "NODATA uses SOA TTL when lower", ANS_NODATA_SOA, 10, 300, 0, 3600, 1, 1000 + 4000, true, 0, 6 },
    { "NXDOMAIN without SOA not cached", ANS_NX_NOSOA, 0, 0, 0, 3600, 0, 1000, false, 0, 0 },
    { "SERVFAIL not cached", ANS_SERVFAIL, 0, 0, 0, 3600, 0, 1000, false, 0, 0 },
    { "TC not cached", ANS_TC, 300, 0, 0, 3600, 0, 1000, false, 0, 0 },
    { "TTL 0 not cached", ANS_A_TTL0, 0, 0, 0, 3600, 0, 1000, false, 0, 0 },
    { "TTL 0 cached with min cap", ANS_A_TTL0, 0, 0, 10, 3600, 1, 1000 + 2000, true, 0, 8 },
    { "OPT flags not aged", ANS_A_OPT_DO, 300, 0, 0, 3600, 1, 1000 + 50000, true, 1, 0x8000 },
    { "A in OPT answer aged", ANS_A_OPT_DO, 300, 0, 0, 3600, 1, 1000 + 50000, true, 0, 250 },
};

static void test_ttl_table(void)
{
    for (size_t i = 0; i < sizeof(ttl_cases) / sizeof(ttl_cases[0]); i++) {
        const struct ttl_case *tc = &ttl_cases[i];
        struct dns_cache *c = dns_cache_new(16, tc->min_ttl, tc->max_ttl);
        struct pkt q, a;
        struct dns_cache_key key;
        uint8_t out[4096];

        mkquery(&q, 0x1111, "www.example", 1, tc->kind == ANS_A_OPT_DO ? 2 : 0);
        CHECK(dns_cache_key_from_query(q.b, q.n, &key) == 0, "%s: key", tc->what);
        mkanswer(&a, "www.example", tc->kind, tc->ttl, tc->soa_min);
        int st = dns_cache_store(c, &key, a.b, a.n, 1000);
        CHECK(st == tc->want_store, "%s: store %d want %d", tc->what, st, tc->want_store);
        size_t n = dns_cache_lookup(c, &key, q.b, q.n, tc->at_ms, out, sizeof(out));
        CHECK((n > 0) == tc->want_hit, "%s: hit %zu want %d", tc->what, n, tc->want_hit);
        if (n > 0 && tc->want_hit) {
            uint32_t ttl = rr_ttl(out, n, tc->nth);
            CHECK(ttl == tc->want_ttl, "%s: ttl %u want %u", tc->what, ttl, tc->want_ttl);
            CHECK(out[0] == 0x11 && out[1] == 0x11, "%s: client id", tc->what);
            CHECK(n == a.n, "%s: length %zu want %zu", tc->what, n, a.n);
        }
        dns_cache_free(c);
    }
}

/* ---- keys ----------------------------------------------------------------- */

struct key_case {
    const char *what;
    const char *n1; unsigned t1; int e1;
    const char *n2; unsigned t2; int e2;
    bool same;
};

static const struct key_case key_cases[] = {
    { "case-insensitive", "WwW.Example", 1, 0, "www.example", 1, 0, true },
    { "type differs", "www.example", 1, 0, "www.example", 28, 0, false },
    { "DO bit differs", "www.example", 1, 1, "www.example", 1, 2, false },
    { "EDNS presence differs", "www.example", 1, 0, "www.example", 1, 1, false },
    { "same EDNS", "www.example", 1, 2, "WWW.example", 1, 2, true },
    { "name differs", "www.example", 1, 0, "ww.example", 1, 0, false },
};

static void test_keys(void)
{
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *kc = &key_cases[i];
        struct pkt q1, q2;
        struct dns_cache_key k1, k2;
        mkquery(&q1, 1, kc->n1, kc->t1, kc->e1);
        mkquery(&q2, 2, kc->n2, kc->t2, kc->e2);
        CHECK(dns_cache_key_from_query(q1.b, q1.n, &k1) == 0 &&
              dns_cache_key_from_query(q2.b, q2.n, &k2) == 0, "%s: parse", kc->what);
        CHECK(dns_cache_key_equal(&k1, &k2) == kc->same, "%s: equal", kc->what);
    }
    /* CD bit is part of the key. */
    struct pkt q;
    struct dns_cache_key k1, k2;
    mkquery(&q, 1, "www.example", 1, 0);
    dns_cache_key_from_query(q.b, q.n, &k1);
    q.b[3] |= 0x10;
    dns_cache_key_from_query(q.b, q.n, &k2);
    CHECK(!dns_cache_key_equal(&k1, &k2), "CD in key");
    /* Malformed queries are rejected. */
    struct { const char *what; size_t cut; unsigned qd; unsigned flags; } bad[] = {
        { "truncated", 14, 1, 0x0100 },
        { "two questions", 0, 2, 0x0100 },
        { "a response", 0, 1, 0x8100 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mkquery(&q, 1, "www.example", 1, 0);
        q.b[5] = (uint8_t)bad[i].qd;
        q.b[2] = (uint8_t)(bad[i].flags >> 8);
        size_t n = bad[i].cut ? bad[i].cut : q.n;
        CHECK(dns_cache_key_from_query(q.b, n, &k1) < 0, "bad query %s", bad[i].what);
    }
}

/* A stored answer to a no-EDNS query is not served to a DO query. */
static void test_do_miss(void)
{
    struct dns_cache *c = dns_cache_new(8, 0, 3600);
    struct pkt q, qdo, a;
    struct dns_cache_key k, kdo;
    uint8_t out[4096];

    mkquery(&q, 5, "a.example", 1, 0);
    mkquery(&qdo, 6, "a.example", 1, 2);
    dns_cache_key_from_query(q.b, q.n, &k);
    dns_cache_key_from_query(qdo.b, qdo.n, &kdo);
    mkanswer(&a, "a.example", ANS_A, 60, 0);
    CHECK(dns_cache_store(c, &k, a.b, a.n, 0) == 1, "store plain");
    CHECK(dns_cache_lookup(c, &kdo, qdo.b, qdo.n, 0, out, sizeof(out)) == 0, "DO misses");
    CHECK(dns_cache_lookup(c, &k, q.b, q.n, 0, out, sizeof(out)) > 0, "plain hits");
    dns_cache_free(c);
}

/* ---- client rewrite ------------------------------------------------------ */

static void test_case_and_id(void)
{
    struct dns_cache *c = dns_cache_new(8, 0, 3600);
    struct pkt q, q2, a;
    struct dns_cache_key k;
    uint8_t out[4096];
    size_t n;

    mkquery(&q, 0x1234, "www.example", 1, 0);
    dns_cache_key_from_query(q.b, q.n, &k);
    mkanswer(&a, "www.example", ANS_A, 60, 0);
    dns_cache_store(c, &k, a.b, a.n, 0);

    mkquery(&q2, 0xbeef, "WwW.ExAmPlE", 1, 0);
    q2.b[2] &= (uint8_t)~0x01; /* RD=0 */
    dns_cache_key_from_query(q2.b, q2.n, &k);
    n = dns_cache_lookup(c, &k, q2.b, q2.n, 500, out, sizeof(out));
    CHECK(n == a.n, "hit for mixed case");
    CHECK(out[0] == 0xbe && out[1] == 0xef, "id rewritten");
    CHECK(memcmp(out + 12, q2.b + 12, 13) == 0, "question case as the client sent it");
    CHECK((out[2] & 0x01) == 0, "RD copied from client");
    CHECK((out[2] & 0x80) == 0x80, "QR kept");
    CHECK(memcmp(out + 12 + 13, a.b + 12 + 13, a.n - 25) == 0, "rest unchanged at age 0");
    /* too small an output buffer: miss, no overrun */
    CHECK(dns_cache_lookup(c, &k, q2.b, q2.n, 500, out, 20) == 0, "small out is a miss");

    /* adapt_answer: used for forwarded (non-cached) answers */
    n = dns_cache_adapt_answer(q2.b, q2.n, a.b, a.n, out, sizeof(out));
    CHECK(n == a.n && out[0] == 0xbe && out[1] == 0xef &&
          memcmp(out + 12, q2.b + 12, 13) == 0, "adapt answer");
    mkquery(&q, 1, "other.example", 1, 0);
    CHECK(dns_cache_adapt_answer(q.b, q.n, a.b, a.n, out, sizeof(out)) == 0,
          "adapt refuses another question");
    dns_cache_free(c);
}

/* ---- eviction ------------------------------------------------------------- */

static void test_eviction(void)
{
    struct dns_cache *c = dns_cache_new(3, 0, 3600);
    const char *names[] = { "a.example", "b.example", "c.example", "d.example", "e.example" };
    struct pkt q[5], a;
    struct dns_cache_key k[5];
    uint8_t out[4096];
    struct dns_cache_stats st;

    for (int i = 0; i < 5; i++) {
        mkquery(&q[i], 1, names[i], 1, 0);
        dns_cache_key_from_query(q[i].b, q[i].n, &k[i]);
    }
    for (int i = 0; i < 3; i++) {
        mkanswer(&a, names[i], ANS_A, 60, 0);
        CHECK(dns_cache_store(c, &k[i], a.b, a.n, 0) == 1, "store %s", names[i]);
    }
    /* touch a: b becomes least recently used */
    CHECK(dns_cache_lookup(c, &k[0], q[0].b, q[0].n, 0, out, sizeof(out)) > 0, "a hit");
    mkanswer(&a, names[3], ANS_A, 60, 0);
    CHECK(dns_cache_store(c, &k[3], a.b, a.n, 0) == 1, "store d");
    CHECK(dns_cache_lookup(c, &k[1], q[1].b, q[1].n, 0, out, sizeof(out)) == 0, "b evicted");
    CHECK(dns_cache_lookup(c, &k[0], q[0].b, q[0].n, 0, out, sizeof(out)) > 0, "a kept");
    CHECK(dns_cache_lookup(c, &k[2], q[2].b, q[2].n, 0, out, sizeof(out)) > 0, "c kept");
    CHECK(dns_cache_lookup(c, &k[3], q[3].b, q[3].n, 0, out, sizeof(out)) > 0, "d kept");
    /* d, c, a recently used in that order → a is... lookup order a,c,d: LRU = a */
    mkanswer(&a, names[4], ANS_A, 60, 0);
    dns_cache_store(c, &k[4], a.b, a.n, 0);
    CHECK(dns_cache_lookup(c, &k[0], q[0].b, q[0].n, 0, out, sizeof(out)) == 0, "a evicted");
    dns_cache_get_stats(c, &st);
    CHECK(st.entries == 3, "entries %u", st.entries);
    CHECK(st.evictions == 2, "evictions %llu", (unsigned long long)st.evictions);
    /* replacing an entry does not grow the cache */
    mkanswer(&a, names[4], ANS_A, 120, 0);
    CHECK(dns_cache_store(c, &k[4], a.b, a.n, 10) == 1, "replace e");
    dns_cache_get_stats(c, &st);
    CHECK(st.entries == 3 && st.evictions == 2, "replace keeps count");
    CHECK(dns_cache_lookup(c, &k[4], q[4].b, q[4].n, 10, out, sizeof(out)) > 0 &&
          rr_ttl(out, a.n, 0) == 120, "replaced answer served");
    dns_cache_clear(c);
    dns_cache_get_stats(c, &st);
    CHECK(st.entries == 0, "clear");
    CHECK(dns_cache_lookup(c, &k[4], q[4].b, q[4].n, 10, out, sizeof(out)) == 0, "miss after clear");
    /* many stores through a small cache stay bounded and consistent */
    for (int i = 0; i < 1000; i++) {
        char name[64];
        struct pkt qq;
        struct dns_cache_key kk;
        snprintf(name, sizeof(name), "n%d.example", i);
        mkquery(&qq, 1, name, 1, 0);
        dns_cache_key_from_query(qq.b, qq.n, &kk);
        mkanswer(&a, name, ANS_A, 60, 0);
        dns_cache_store(c, &kk, a.b, a.n, 0);
    }
    dns_cache_get_stats(c, &st);
    CHECK(st.entries == 3, "bounded after 1000 stores: %u", st.entries);
    dns_cache_free(c);

    c = dns_cache_new(0, 0, 3600);
    mkanswer(&a, names[0], ANS_A, 60, 0);
    CHECK(c && dns_cache_store(c, &k[0], a.b, a.n, 0) == 0, "size 0 stores nothing");
    dns_cache_free(c);
}

/* Answers that do not match the key, or are garbage, are refused. */
static void test_store_rejects(void)
{
    struct dns_cache *c = dns_cache_new(8, 0, 3600);
    struct pkt q, a;
    struct dns_cache_key k;

    mkquery(&q, 1, "www.example", 1, 0);
    dns_cache_key_from_query(q.b, q.n, &k);
    mkanswer(&a, "other.example", ANS_A, 60, 0);
    CHECK(dns_cache_store(c, &k, a.b, a.n, 0) < 0, "other question refused");
    mkanswer(&a, "www.example", ANS_A, 60, 0);
    CHECK(dns_cache_store(c, &k, a.b, a.n - 3, 0) < 0, "truncated rdata refused");
    for (size_t cut = 0; cut < a.n; cut++)
        (void)dns_cache_store(c, &k, a.b, cut, 0);  /* must not crash (ASan) */
    struct dns_cache_stats st;
    dns_cache_get_stats(c, &st);
    CHECK(st.entries == 0, "nothing stored from truncations");
    dns_cache_free(c);
}

int main(void)
{
    test_ttl_table();
    test_keys();
    test_do_miss();
    test_case_and_id();
    test_eviction();
    test_store_rejects();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
