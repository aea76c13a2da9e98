/*
 * fuzz_dns_wire: the DNS wire parser on arbitrary bytes. Parses the packet
 * as a query, then walks every record with dns_rr_parse and copies it
 * through the builder (re-encoding rdata names) and back through the
 * parser; converts every name to text. Aborts when a copy does not parse.
 */
#include <stdlib.h>
#include <string.h>

#include "svcd/dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_query q;
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question qq;
    struct dns_rr rr;
    static uint8_t out[65535];
    char text[DNS_NAME_TEXT_MAX];

    (void)dns_query_parse(data, size, &q);

    dns_cursor_init(&c, data, size);
    if (dns_header_parse(&c, &h) < 0)
        return 0;
    struct dns_builder b;
    size_t limit = size > 12 ? (size_t)data[2] * 8 + 12 : 512;   /* vary the limit */
    dns_builder_init(&b, out, sizeof(out), limit, h.id, h.flags);
    for (unsigned i = 0; i < h.counts[0] && i < 8; i++) {
        if (dns_question_parse(&c, &qq) < 0)
            return 0;
        if (dns_name_to_text(qq.name, qq.name_len, text, sizeof(text)) < 0)
            abort();                     /* a parsed name always prints */
        uint8_t back[DNS_NAME_MAX];
        size_t bl;
        if (dns_name_from_text(text, back, &bl) < 0 || !dns_name_equal(back, bl, qq.name, qq.name_len))
            abort();                     /* text round trip */
        dns_builder_question(&b, qq.name, qq.name_len, qq.qtype, qq.qclass);
    }
    unsigned total = (unsigned)h.counts[1] + h.counts[2] + h.counts[3];
    for (unsigned i = 0; i < total && i < 256; i++) {
        if (dns_rr_parse(&c, &rr) < 0)
            break;
        struct dns_edns e;
        (void)dns_edns_from_rr(&rr, &e);
        dns_builder_copy_rr(&b, DNS_SEC_ANSWER, data, size, &rr);
    }
    size_t n = dns_builder_finish(&b);
    if (n > limit && n > 12)
        abort();
    /* what we built must parse back completely */
    dns_cursor_init(&c, out, n);
    if (dns_header_parse(&c, &h) < 0)
        abort();
    for (unsigned i = 0; i < h.counts[0]; i++)
        if (dns_question_parse(&c, &qq) < 0)
            abort();
    for (unsigned i = 0; i < (unsigned)h.counts[1] + h.counts[2] + h.counts[3]; i++)
        if (dns_rr_parse(&c, &rr) < 0)
            abort();
    if (dns_cursor_remaining(&c) != 0)
        abort();
    return 0;
}
