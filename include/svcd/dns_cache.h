/*
 * dns_cache: a bounded cache of upstream DNS answers (RFC 1035 + RFC 2308).
 *
 * Pure data structure, no I/O and no clock of its own: every call takes
 * `now_ms` (a monotonic millisecond clock, CLOCK_MONOTONIC in the daemon) so
 * tests can move time. Keys are (lower-case qname, qtype, qclass, EDNS
 * present, DO, CD), computed from the client's query by
 * dns_cache_key_from_query().
 *
 * Stored: NOERROR answers with records (positive), and NXDOMAIN / NODATA
 * answers that carry an SOA in the authority section (negative, TTL =
 * min(SOA TTL, SOA MINIMUM) per RFC 2308). Every TTL is clamped to
 * [min_ttl, max_ttl] at store time; the entry lives for the smallest clamped
 * TTL. Not stored: SERVFAIL and other rcodes, TC answers, negative answers
 * without SOA, answers whose lifetime would be 0. Served answers carry TTLs
 * decreased by the entry's age (whole seconds), the client's ID, RD bit and
 * question-name case. The OPT record's TTL field (EDNS flags) is never
 * touched.
 *
 * At most max_entries entries, evicted least-recently-used. A lookup hit
 * allocates nothing; a store allocates (or reuses) one buffer per entry.
 * Single-threaded.
 */
#ifndef SVCD_DNS_CACHE_H
#define SVCD_DNS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/dns_wire.h"

#define DNS_CACHE_MAX_ANSWER 65535
#define DNS_CACHE_MAX_TTLS 256   /* answers with more RRs are not cached */

#define DNS_CACHE_KEY_EDNS 0x01  /* query carried an OPT record */
#define DNS_CACHE_KEY_DO   0x02  /* OPT DO bit */
#define DNS_CACHE_KEY_CD   0x04  /* header CD bit */

/* The identity of a question. name is the wire-format qname, lower-cased
 * (labels with length bytes, ending in the 0 byte). */
struct dns_cache_key {
    uint8_t name[255];
    uint16_t name_len;
    uint16_t qtype;
    uint16_t qclass;
    uint8_t flags;       /* DNS_CACHE_KEY_* */
    uint64_t hash;       /* filled by dns_cache_key_from_query() */
};

/* Parses a query (header with QDCOUNT 1, the question, and an OPT record in
 * the additional section if any) into *key. 0, or -1 when the query is not
 * a well-formed single-question query (the caller answers FORMERR or
 * SERVFAIL). */
int dns_cache_key_from_query(const uint8_t *query, size_t len, struct dns_cache_key *key);
/* The same from a query already parsed by dns_query_parse() (which
 * returned 0 with has_question). Never fails. */
void dns_cache_key_from_parsed(const struct dns_query *q, struct dns_cache_key *key);
bool dns_cache_key_equal(const struct dns_cache_key *a, const struct dns_cache_key *b);

/* Makes a reply for one client out of an answer to the same question:
 * copies answer into out (outcap bytes), sets the client's ID and RD bit
 * from query, and writes the client's spelling of the qname over the
 * answer's question. Returns the length, or 0 if it does not fit or the
 * answer's question is not the query's question. */
size_t dns_cache_adapt_answer(const uint8_t *query, size_t qlen, const uint8_t *answer,
                              size_t alen, uint8_t *out, size_t outcap);

struct dns_cache;

/* max_entries 0 makes a cache that stores nothing. NULL on ENOMEM. */
struct dns_cache *dns_cache_new(uint32_t max_entries, uint32_t min_ttl, uint32_t max_ttl);
/* Accepts NULL. */
void dns_cache_free(struct dns_cache *c);

/* Looks up the question of `query` (already parsed into key). On a hit
 * writes the adapted answer (see dns_cache_adapt_answer, plus TTLs
 * decreased by age) into out and returns its length (> 0). Returns 0 on a
 * miss (expired entries count as misses and are dropped) or when out is too
 * small. */
size_t dns_cache_lookup(struct dns_cache *c, const struct dns_cache_key *key,
                        const uint8_t *query, size_t qlen, uint64_t now_ms,
                        uint8_t *out, size_t outcap);

/* Offers an upstream answer for key. Returns 1 if stored, 0 if not
 * cacheable (see above), -1 on ENOMEM or a malformed answer. Replaces an
 * existing entry for the same key; evicts the LRU entry when full. */
int dns_cache_store(struct dns_cache *c, const struct dns_cache_key *key,
                    const uint8_t *answer, size_t alen, uint64_t now_ms);

/* Drops every entry. */
void dns_cache_clear(struct dns_cache *c);

struct dns_cache_stats {
    uint64_t hits, misses, stores, evictions, expired;
    uint32_t entries;
};
void dns_cache_get_stats(const struct dns_cache *c, struct dns_cache_stats *out);

#endif
