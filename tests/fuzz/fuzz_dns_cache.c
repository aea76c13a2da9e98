/*
 * fuzz_dns_cache: upstream answers are untrusted input. The fuzz input is
 * an upstream answer; the query is rebuilt from its question (when it has
 * one) so the cache really stores it. Then the cached answer is looked up
 * for that query at two ages and adapted for the client; every answer the
 * cache hands out must be no longer than the buffer and start with the
 * client's ID.
 */
#include <stdlib.h>
#include <string.h>

#include "svcd/dns_cache.h"
#include "svcd/dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[65535];
    uint8_t query[512];
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question q;

    dns_cursor_init(&c, data, size);
    if (dns_header_parse(&c, &h) < 0 || h.counts[0] != 1 || dns_question_parse(&c, &q) < 0)
        return 0;

    /* The query this answer would answer: same question, another ID. */
    struct dns_builder b;
    dns_builder_init(&b, query, sizeof(query), sizeof(query), 0x4242, 0x0100);
    if (dns_builder_question(&b, q.name, q.name_len, q.qtype, q.qclass) < 0)
        return 0;
    size_t qlen = dns_builder_finish(&b);
    if (qlen == 0)
        return 0;

    struct dns_cache_key key;
    if (dns_cache_key_from_query(query, qlen, &key) < 0)
        return 0;
    struct dns_cache *cache = dns_cache_new(4, 0, 3600);
    if (!cache)
        return 0;
    (void)dns_cache_store(cache, &key, data, size, 1000);
    for (uint64_t now = 1000; now <= 61000; now += 60000) {
        size_t n = dns_cache_lookup(cache, &key, query, qlen, now, out, sizeof(out));
        if (n > sizeof(out) || (n > 0 && (n < 12 || out[0] != 0x42 || out[1] != 0x42)))
            abort();
    }
    size_t n = dns_cache_adapt_answer(query, qlen, data, size, out, sizeof(out));
    if (n > sizeof(out))
        abort();
    dns_cache_free(cache);
    return 0;
}
