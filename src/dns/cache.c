/*
 * cache: the answer cache in front of the upstream forwarder.
 *
 * Why: every name a pod resolves outside the cluster (and every search-path
 * miss) would otherwise cost an upstream round trip. Entries live in one
 * preallocated array (max_entries slots) threaded on a hash chain and an LRU
 * list by index, so a hit is a hash lookup, one memcpy of the stored wire
 * answer, and in-place TTL/ID/case patches: no allocation. Stored answers
 * are parsed once at store time; the offsets of their TTL fields are kept
 * after the wire bytes so a hit never re-parses the answer.
 *
 * All packet reading goes through the dns_wire cursor.
 */
#include "svcd/dns_cache.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "svcd/dns_wire.h"
#include "svcd/hmap.h"

#define CACHE_NIL UINT32_MAX

/* Hot fields first: a chain walk reads only the first cache line of each
 * entry (hash, hnext) until the hash matches. */
struct cache_entry {
    uint64_t hash;           /* == key.hash */
    uint32_t hnext;          /* hash chain */
    uint32_t prev, next;     /* LRU list: head = most recently used */
    uint16_t len;            /* wire answer length */
    uint16_t n_ttl;
    uint64_t stored_ms;
    uint64_t expire_ms;
    uint8_t *buf;            /* wire answer, then n_ttl uint16 TTL offsets */
    size_t buf_cap;
    bool used;
    struct dns_cache_key key;
};

struct dns_cache {
    struct cache_entry *e;
    uint32_t cap;            /* slots */
    uint32_t n;              /* used */
    uint32_t *buckets;       /* CACHE_NIL or entry index */
    uint32_t nbuckets;       /* power of two */
    uint32_t free_head;      /* free slots chained through hnext */
    uint32_t lru_head, lru_tail;
    uint32_t min_ttl, max_ttl;
    struct dns_cache_stats st;
};

/* A process-wide hash seed so clients cannot aim names at one bucket. */
static uint64_t cache_seed(void)
{
    static uint64_t seed;
    static bool have;

    if (!have) {
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
            seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ULL;
        seed ^= HMAP_HASH_SEED;
        have = true;
    }
    return seed;
}

static uint64_t cache_key_hash(const struct dns_cache_key *k)
{
    uint8_t tail[5] = { (uint8_t)(k->qtype >> 8), (uint8_t)k->qtype,
                        (uint8_t)(k->qclass >> 8), (uint8_t)k->qclass, k->flags };
    uint64_t h = hmap_hash(k->name, k->name_len, cache_seed());
    return hmap_hash(tail, sizeof(tail), h);
}

void dns_cache_key_from_parsed(const struct dns_query *q, struct dns_cache_key *key)
{
    /* No memset: only name[0..name_len) is ever read. */
    key->flags = 0;
    dns_name_lower(key->name, q->q.name, q->q.name_len);
    key->name_len = (uint16_t)q->q.name_len;
    key->qtype = q->q.qtype;
    key->qclass = q->q.qclass;
    if (q->edns.present)
        key->flags |= DNS_CACHE_KEY_EDNS;
    if (q->edns.do_bit)
        key->flags |= DNS_CACHE_KEY_DO;
    if (q->hdr.flags & DNS_F_CD)
        key->flags |= DNS_CACHE_KEY_CD;
    key->hash = cache_key_hash(key);
}

int dns_cache_key_from_query(const uint8_t *query, size_t len, struct dns_cache_key *key)
{
    struct dns_query q;

    if (dns_query_parse(query, len, &q) != 0 || !q.has_question)
        return -1;
    dns_cache_key_from_parsed(&q, key);
    return 0;
}

bool dns_cache_key_equal(const struct dns_cache_key *a, const struct dns_cache_key *b)
{
    return a->hash == b->hash && a->qtype == b->qtype && a->qclass == b->qclass &&
           a->flags == b->flags && a->name_len == b->name_len &&
           memcmp(a->name, b->name, a->name_len) == 0;
}

/* ---- adapting an answer to one client ---------------------------------- */

/* The client's ID, RD bit, and qname as it sits uncompressed at offset 12.
 * 0 or -1. */
static int cache_query_client(const uint8_t *query, size_t qlen, uint16_t *id, bool *rd,
                              const uint8_t **qname, size_t *qname_len)
{
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question q;

    dns_cursor_init(&c, query, qlen);
    if (dns_header_parse(&c, &h) < 0 || h.counts[DNS_SEC_QUESTION] != 1 ||
        dns_question_parse(&c, &q) < 0)
        return -1;
    *id = h.id;
    *rd = (h.flags & DNS_F_RD) != 0;
    /* Only an uncompressed question name can be copied byte for byte. */
    if (c.pos == DNS_HEADER_LEN + q.name_len + 4) {
        *qname = query + DNS_HEADER_LEN;
        *qname_len = q.name_len;
    } else {
        *qname = NULL;
        *qname_len = 0;
    }
    return 0;
}

/* Patches ID, RD and the question-name spelling into out (len bytes, a copy
 * of an answer whose uncompressed question name is name_len bytes at 12). */
static void cache_patch_client(uint8_t *out, size_t len, uint16_t id, bool rd,
                               const uint8_t *qname, size_t qname_len)
{
    if (len < DNS_HEADER_LEN)
        return;
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[2] = (uint8_t)((out[2] & ~(DNS_F_RD >> 8)) | (rd ? (DNS_F_RD >> 8) : 0));
    if (qname && DNS_HEADER_LEN + qname_len <= len &&
        dns_name_equal(out + DNS_HEADER_LEN, qname_len, qname, qname_len))
        memcpy(out + DNS_HEADER_LEN, qname, qname_len);
}

size_t dns_cache_adapt_answer(const uint8_t *query, size_t qlen, const uint8_t *answer,
                              size_t alen, uint8_t *out, size_t outcap)
{
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question aq;
    uint16_t id;
    bool rd;
    const uint8_t *qname;
    size_t qname_len;

    if (alen > outcap || cache_query_client(query, qlen, &id, &rd, &qname, &qname_len) < 0)
        return 0;
    dns_cursor_init(&c, answer, alen);
    if (dns_header_parse(&c, &h) < 0 || h.counts[DNS_SEC_QUESTION] != 1 ||
        dns_question_parse(&c, &aq) < 0)
        return 0;
    if (qname && !dns_name_equal(aq.name, aq.name_len, qname, qname_len))
        return 0;
    memcpy(out, answer, alen);
    /* The answer's question must itself be uncompressed at 12 to patch it. */
    if (c.pos != DNS_HEADER_LEN + aq.name_len + 4)
        qname = NULL;
    cache_patch_client(out, alen, id, rd, qname, qname_len);
    return alen;
}

/* ---- table maintenance -------------------------------------------------- */

struct dns_cache *dns_cache_new(uint32_t max_entries, uint32_t min_ttl, uint32_t max_ttl)
{
    struct dns_cache *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->cap = max_entries;
    c->min_ttl = min_ttl;
    c->max_ttl = max_ttl;
    c->lru_head = c->lru_tail = CACHE_NIL;
    c->free_head = CACHE_NIL;
    c->nbuckets = 16;
    while (c->nbuckets < max_entries * 2u && c->nbuckets < (1u << 30))
        c->nbuckets <<= 1;
    c->buckets = malloc(sizeof(*c->buckets) * c->nbuckets);
    if (max_entries)
        c->e = calloc(max_entries, sizeof(*c->e));
    if (!c->buckets || (max_entries && !c->e)) {
        dns_cache_free(c);
        return NULL;
    }
    for (uint32_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = CACHE_NIL;
    for (uint32_t i = max_entries; i-- > 0;) {
        c->e[i].hnext = c->free_head;
        c->free_head = i;
    }
    return c;
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c)
        return;
    if (c->e)
        for (uint32_t i = 0; i < c->cap; i++)
            free(c->e[i].buf);
    free(c->e);
    free(c->buckets);
    free(c);
}

static void cache_lru_unlink(struct dns_cache *c, uint32_t i)
{
    struct cache_entry *e = &c->e[i];

    if (e->prev != CACHE_NIL)
        c->e[e->prev].next = e->next;
    else
        c->lru_head = e->next;
    if (e->next != CACHE_NIL)
        c->e[e->next].prev = e->prev;
    else
        c->lru_tail = e->prev;
    e->prev = e->next = CACHE_NIL;
}

static void cache_lru_push_front(struct dns_cache *c, uint32_t i)
{
    struct cache_entry *e = &c->e[i];

    e->prev = CACHE_NIL;
    e->next = c->lru_head;
    if (c->lru_head != CACHE_NIL)
        c->e[c->lru_head].prev = i;
    c->lru_head = i;
    if (c->lru_tail == CACHE_NIL)
        c->lru_tail = i;
}

/* Index of the entry for key, or CACHE_NIL. */
static uint32_t cache_find(const struct dns_cache *c, const struct dns_cache_key *key)
{
    uint32_t i = c->buckets[key->hash & (c->nbuckets - 1)];

    while (i != CACHE_NIL &&
           (c->e[i].hash != key->hash || !dns_cache_key_equal(&c->e[i].key, key)))
        i = c->e[i].hnext;
    return i;
}

/* Unlinks entry i from its hash chain and the LRU list and frees the slot
 * (its buffer is kept for reuse). */
static void cache_remove(struct dns_cache *c, uint32_t i)
{
    struct cache_entry *e = &c->e[i];
    uint32_t *pp = &c->buckets[e->hash & (c->nbuckets - 1)];

    while (*pp != CACHE_NIL && *pp != i)
        pp = &c->e[*pp].hnext;
    if (*pp == i)
        *pp = e->hnext;
    cache_lru_unlink(c, i);
    e->used = false;
    e->hnext = c->free_head;
    c->free_head = i;
    c->n--;
}

void dns_cache_clear(struct dns_cache *c)
{
    while (c->lru_head != CACHE_NIL)
        cache_remove(c, c->lru_head);
}

/* ---- lookup ------------------------------------------------------------- */

static uint32_t cache_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void cache_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

size_t dns_cache_lookup(struct dns_cache *c, const struct dns_cache_key *key,
                        const uint8_t *query, size_t qlen, uint64_t now_ms,
                        uint8_t *out, size_t outcap)
{
    uint32_t i;
    struct cache_entry *e;
    uint16_t id;
    bool rd;
    const uint8_t *qname;
    size_t qname_len;
    uint32_t age;

    if (!c->cap || (i = cache_find(c, key)) == CACHE_NIL) {
        c->st.misses++;
        return 0;
    }
    e = &c->e[i];
    if (now_ms >= e->expire_ms) {
        cache_remove(c, i);
        c->st.expired++;
        c->st.misses++;
        return 0;
    }
    if (e->len > outcap || cache_query_client(query, qlen, &id, &rd, &qname, &qname_len) < 0) {
        c->st.misses++;
        return 0;
    }
    memcpy(out, e->buf, e->len);
    age = (uint32_t)((now_ms - e->stored_ms) / 1000);
    if (age) {
        const uint8_t *offs = e->buf + e->len;
        for (uint16_t k = 0; k < e->n_ttl; k++) {
            size_t off = (size_t)offs[2 * k] << 8 | offs[2 * k + 1];
            uint32_t ttl = cache_get_u32(out + off);
            cache_put_u32(out + off, ttl > age ? ttl - age : 0);
        }
    }
    cache_patch_client(out, e->len, id, rd, qname, qname_len);
    if (c->lru_head != i) {
        cache_lru_unlink(c, i);
        cache_lru_push_front(c, i);
    }
    c->st.hits++;
    return e->len;
}

/* ---- store -------------------------------------------------------------- */

static uint32_t cache_clamp(const struct dns_cache *c, uint32_t ttl)
{
    if (ttl < c->min_ttl)
        ttl = c->min_ttl;
    if (ttl > c->max_ttl)
        ttl = c->max_ttl;
    return ttl;
}

/* Reads the SOA MINIMUM field of the SOA record rr in answer. 0 or -1. */
static int cache_soa_minimum(const uint8_t *answer, size_t alen, const struct dns_rr *rr,
                             uint32_t *minimum)
{
    struct dns_cursor c;

    dns_cursor_init(&c, answer, rr->rdata_off + rr->rdlen);
    c.pos = rr->rdata_off;
    if (c.len > alen || dns_cursor_name(&c, NULL, NULL) < 0 ||
        dns_cursor_name(&c, NULL, NULL) < 0 || dns_cursor_skip(&c, 16) < 0 ||
        dns_cursor_u32(&c, minimum) < 0)
        return -1;
    return 0;
}

int dns_cache_store(struct dns_cache *c, const struct dns_cache_key *key,
                    const uint8_t *answer, size_t alen, uint64_t now_ms)
{
    struct dns_cursor cur;
    struct dns_header h;
    struct dns_question q;
    struct dns_rr rr;
    uint16_t ttl_off[DNS_CACHE_MAX_TTLS];
    uint32_t ttl_val[DNS_CACHE_MAX_TTLS];
    uint16_t n_ttl = 0;
    uint32_t entry_ttl = UINT32_MAX;
    bool have_soa = false;
    unsigned rcode, nrr;
    uint32_t i;
    struct cache_entry *e;
    size_t need;

    if (!c->cap)
        return 0;
    if (alen > DNS_CACHE_MAX_ANSWER)
        return 0;
    dns_cursor_init(&cur, answer, alen);
    if (dns_header_parse(&cur, &h) < 0 || !(h.flags & DNS_F_QR) ||
        h.counts[DNS_SEC_QUESTION] != 1 || dns_question_parse(&cur, &q) < 0)
        return -1;
    if (cur.pos != DNS_HEADER_LEN + q.name_len + 4 ||
        !dns_name_equal(q.name, q.name_len, key->name, key->name_len) ||
        q.qtype != key->qtype || q.qclass != key->qclass)
        return -1;
    rcode = DNS_RCODE(h.flags);
    if ((h.flags & DNS_F_TC) || (rcode != DNS_R_NOERROR && rcode != DNS_R_NXDOMAIN))
        return 0;
    nrr = (unsigned)h.counts[DNS_SEC_ANSWER] + h.counts[DNS_SEC_AUTHORITY] +
          h.counts[DNS_SEC_ADDITIONAL];
    for (unsigned k = 0; k < nrr; k++) {
        bool authority = k >= h.counts[DNS_SEC_ANSWER] &&
                         k < (unsigned)h.counts[DNS_SEC_ANSWER] + h.counts[DNS_SEC_AUTHORITY];
        uint32_t ttl;

        if (dns_rr_parse(&cur, &rr) < 0)
            return -1;
        if (rr.type == DNS_T_OPT)
            continue;             /* its "TTL" is the EDNS flags word */
        if (n_ttl == DNS_CACHE_MAX_TTLS || rr.ttl_off > UINT16_MAX)
            return 0;
        ttl = rr.ttl;
        if (authority && rr.type == DNS_T_SOA) {
            uint32_t minimum;
            if (cache_soa_minimum(answer, alen, &rr, &minimum) < 0)
                return -1;
            if (minimum < ttl)
                ttl = minimum;    /* RFC 2308 section 5 */
            have_soa = true;
        }
        ttl = cache_clamp(c, ttl);
        if (ttl < entry_ttl)
            entry_ttl = ttl;
        ttl_off[n_ttl] = (uint16_t)rr.ttl_off;
        ttl_val[n_ttl] = ttl;
        n_ttl++;
    }
    /* Negative answers (NXDOMAIN, NODATA) are cacheable only with an SOA. */
    if ((rcode == DNS_R_NXDOMAIN || h.counts[DNS_SEC_ANSWER] == 0) && !have_soa)
        return 0;
    if (entry_ttl == UINT32_MAX || entry_ttl == 0)
        return 0;

    i = cache_find(c, key);
    if (i == CACHE_NIL) {
        if (c->free_head == CACHE_NIL) {
            cache_remove(c, c->lru_tail);
            c->st.evictions++;
        }
        i = c->free_head;
        e = &c->e[i];
        need = alen + 2u * n_ttl;
        if (need > e->buf_cap) {
            uint8_t *nb = realloc(e->buf, need);
            if (!nb)
                return -1;
            e->buf = nb;
            e->buf_cap = need;
        }
        c->free_head = e->hnext;
        e->key = *key;
        e->hash = key->hash;
        e->hnext = c->buckets[key->hash & (c->nbuckets - 1)];
        c->buckets[key->hash & (c->nbuckets - 1)] = i;
        e->used = true;
        c->n++;
        cache_lru_push_front(c, i);
    } else {
        e = &c->e[i];
        need = alen + 2u * n_ttl;
        if (need > e->buf_cap) {
            uint8_t *nb = realloc(e->buf, need);
            if (!nb)
                return -1;
            e->buf = nb;
            e->buf_cap = need;
        }
        cache_lru_unlink(c, i);
        cache_lru_push_front(c, i);
    }
    memcpy(e->buf, answer, alen);
    for (uint16_t k = 0; k < n_ttl; k++) {
        cache_put_u32(e->buf + ttl_off[k], ttl_val[k]);
        e->buf[alen + 2u * k] = (uint8_t)(ttl_off[k] >> 8);
        e->buf[alen + 2u * k + 1] = (uint8_t)ttl_off[k];
    }
    e->len = (uint16_t)alen;
    e->n_ttl = n_ttl;
    e->stored_ms = now_ms;
    e->expire_ms = now_ms + (uint64_t)entry_ttl * 1000u;
    c->st.stores++;
    return 1;
}

void dns_cache_get_stats(const struct dns_cache *c, struct dns_cache_stats *out)
{
    *out = c->st;
    out->entries = c->n;
}
