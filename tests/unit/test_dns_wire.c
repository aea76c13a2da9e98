/*
 * test_dns_wire: the DNS wire codec. Table-driven checks of the cursor
 * (bounds, compression pointer loops, label/name caps), query parsing,
 * name text conversion, and the builder (compression, truncation at a
 * whole record, OPT reservation).
 */
#include "svcd/dns_wire.h"

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...) do { \
    if (cond) { passed++; } else { failed++; \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- name reading ---------------------------------------------------- */

struct name_case {
    const char *what;
    uint8_t pkt[300];
    size_t len;
    size_t start;
    int want_rc;
    const char *want_text;
    size_t want_end;
};

static void test_names(void)
{
    static struct name_case cases[] = {
        { "plain", { 3, 'w', 'w', 'w', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 0 }, 13, 0, 0,
          "www.Example.", 13 },
        { "root", { 0 }, 1, 0, 0, ".", 1 },
        { "pointer back", { 1, 'a', 0, 1, 'b', 0xc0, 0x00 }, 7, 3, 0, "b.a.", 7 },
        { "self pointer", { 0xc0, 0x00 }, 2, 0, -1, NULL, 0 },
        { "forward pointer", { 0xc0, 0x02, 1, 'a', 0 }, 5, 0, -1, NULL, 0 },
        { "loop a->b->a", { 1, 'a', 0xc0, 0x04, 1, 'b', 0xc0, 0x00 }, 8, 6, -1, NULL, 0 },
        { "truncated label", { 5, 'a', 'b' }, 3, 0, -1, NULL, 0 },
        { "no terminator", { 1, 'a' }, 2, 0, -1, NULL, 0 },
        { "truncated pointer", { 0xc0 }, 1, 0, -1, NULL, 0 },
        { "label type 0x40", { 0x41, 'a', 0 }, 3, 0, -1, NULL, 0 },
        { "label type 0x80", { 0x81, 'a', 0 }, 3, 0, -1, NULL, 0 },
        { "empty packet", { 0 }, 0, 0, -1, NULL, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct name_case *t = &cases[i];
        struct dns_cursor c;
        uint8_t name[DNS_NAME_MAX];
        size_t nlen = 0;
        dns_cursor_init(&c, t->pkt, t->len);
        c.pos = t->start;
        int rc = dns_cursor_name(&c, name, &nlen);
        CHECK(rc == t->want_rc, "%s: rc %d want %d", t->what, rc, t->want_rc);
        if (rc == 0 && t->want_text) {
            char text[DNS_NAME_TEXT_MAX];
            CHECK(dns_name_to_text(name, nlen, text, sizeof(text)) == 0 &&
                  strcmp(text, t->want_text) == 0, "%s: text %s", t->what, text);
            CHECK(c.pos == t->want_end, "%s: end %zu want %zu", t->what, c.pos, t->want_end);
        }
        if (rc != 0)
            CHECK(c.pos == t->start, "%s: cursor moved on failure", t->what);
    }

    /* label of 64 bytes is refused; 63 accepted */
    uint8_t pkt[600];
    memset(pkt, 'x', sizeof(pkt));
    pkt[0] = 64; pkt[65] = 0;
    struct dns_cursor c;
    dns_cursor_init(&c, pkt, 66);
    CHECK(dns_cursor_name(&c, NULL, NULL) == -1, "64-byte label accepted");
    pkt[0] = 63; pkt[64] = 0;
    dns_cursor_init(&c, pkt, 65);
    CHECK(dns_cursor_name(&c, NULL, NULL) == 0, "63-byte label refused");

    /* 255 bytes total accepted, 256 refused: 4 labels of 63 = 256+1 bytes */
    size_t o = 0;
    for (int l = 0; l < 3; l++) { pkt[o] = 63; o += 64; }
    pkt[o] = 61; o += 62; pkt[o++] = 0;       /* 3*64 + 62 + 1 = 255 */
    dns_cursor_init(&c, pkt, o);
    uint8_t name[DNS_NAME_MAX];
    size_t nlen;
    CHECK(dns_cursor_name(&c, name, &nlen) == 0 && nlen == 255, "255-byte name");
    o = 0;
    for (int l = 0; l < 3; l++) { pkt[o] = 63; o += 64; }
    pkt[o] = 62; o += 63; pkt[o++] = 0;       /* 256 */
    dns_cursor_init(&c, pkt, o);
    CHECK(dns_cursor_name(&c, name, &nlen) == -1, "256-byte name accepted");

    /* long pointer chain: every pointer goes one step back, 100 hops */
    memset(pkt, 0, sizeof(pkt));
    pkt[0] = 0;                        /* root at 0 */
    for (int k = 1; k <= 100; k++) {  /* pointer at 2k-1 .. to previous */
        size_t at = (size_t)(2 * k - 1);
        size_t to = k == 1 ? 0 : (size_t)(2 * k - 3);
        pkt[at] = (uint8_t)(0xc0 | (to >> 8));
        pkt[at + 1] = (uint8_t)to;
    }
    dns_cursor_init(&c, pkt, 201);
    c.pos = 199;
    CHECK(dns_cursor_name(&c, NULL, NULL) == -1, "100 pointer hops accepted");
}

/* ---- integers and bounds -------------------------------------------- */

static void test_cursor_ints(void)
{
    const uint8_t p[] = { 0x12, 0x34, 0x56, 0x78, 0x9a };
    struct dns_cursor c;
    uint8_t b; uint16_t s; uint32_t w;
    dns_cursor_init(&c, p, sizeof(p));
    CHECK(dns_cursor_u16(&c, &s) == 0 && s == 0x1234, "u16");
    CHECK(dns_cursor_u32(&c, &w) == -1 && c.pos == 2, "u32 past end");
    CHECK(dns_cursor_u16(&c, &s) == 0 && s == 0x5678, "u16 2");
    CHECK(dns_cursor_u8(&c, &b) == 0 && b == 0x9a, "u8");
    CHECK(dns_cursor_u8(&c, &b) == -1, "u8 past end");
    CHECK(dns_cursor_skip(&c, 1) == -1, "skip past end");
    dns_cursor_init(&c, p, sizeof(p));
    CHECK(dns_cursor_u32(&c, &w) == 0 && w == 0x12345678u, "u32");
}

/* ---- text <-> wire ------------------------------------------------- */

static void test_text(void)
{
    static const struct { const char *in; int rc; const char *out; } cases[] = {
        { "example.com", 0, "example.com." },
        { "example.com.", 0, "example.com." },
        { ".", 0, "." },
        { "a\\.b.c", 0, "a\\.b.c." },
        { "a\\065b", 0, "aAb." },
        { "a..b", -1, NULL },
        { "a\\9", -1, NULL },
        { "..", -1, NULL },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", -1, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t w[DNS_NAME_MAX];
        size_t wl = 0;
        char t[DNS_NAME_TEXT_MAX];
        int rc = dns_name_from_text(cases[i].in, w, &wl);
        CHECK(rc == cases[i].rc, "from_text(%s) rc %d", cases[i].in, rc);
        if (rc == 0)
            CHECK(dns_name_to_text(w, wl, t, sizeof(t)) == 0 && strcmp(t, cases[i].out) == 0,
                  "to_text(%s) = %s", cases[i].in, t);
    }
    uint8_t a[DNS_NAME_MAX], z[DNS_NAME_MAX];
    size_t al, zl;
    dns_name_from_text("Foo.SVC.cluster.local", a, &al);
    dns_name_from_text("cluster.LOCAL", z, &zl);
    CHECK(dns_name_is_subdomain(a, al, z, zl), "subdomain");
    CHECK(dns_name_is_subdomain(z, zl, z, zl), "self subdomain");
    CHECK(!dns_name_is_subdomain(z, zl, a, al), "parent not subdomain");
    dns_name_from_text("xcluster.local", a, &al);
    CHECK(!dns_name_is_subdomain(a, al, z, zl), "label boundary");
    CHECK(dns_name_labels(z, zl) == 2, "labels");
    dns_name_from_text("a.b.c", a, &al);
    CHECK(dns_name_suffix_off(a, al, 1) == 4, "suffix off");
}

/* ---- query parse ---------------------------------------------------- */

static size_t mkquery(uint8_t *buf, size_t cap, uint16_t flags, const char *name, uint16_t qtype,
                      bool edns, uint16_t udp)
{
    struct dns_builder b;
    uint8_t w[DNS_NAME_MAX];
    size_t wl;
    dns_builder_init(&b, buf, cap, cap, 0x1234, flags);
    dns_name_from_text(name, w, &wl);
    dns_builder_question(&b, w, wl, qtype, DNS_C_IN);
    if (edns)
        dns_builder_opt(&b, udp, 0, 0, true);
    return dns_builder_finish(&b);
}

static void test_query_parse(void)
{
    uint8_t buf[512];
    struct dns_query q;
    size_t n = mkquery(buf, sizeof(buf), DNS_F_RD, "Foo.Bar.", DNS_T_AAAA, true, 4096);
    CHECK(dns_query_parse(buf, n, &q) == 0, "query parse");
    CHECK(q.q.qtype == DNS_T_AAAA && q.edns.present && q.edns.udp_size == 4096 && q.edns.do_bit,
          "query fields");
    CHECK(q.q.name[1] == 'F', "case kept");
    CHECK(dns_query_parse(buf, 11, &q) == -1, "short header");
    CHECK(dns_query_parse(buf, n - 1, &q) == DNS_R_FORMERR, "truncated OPT");
    n = mkquery(buf, sizeof(buf), DNS_F_QR, "a.", DNS_T_A, false, 0);
    CHECK(dns_query_parse(buf, n, &q) == -1, "response dropped");
    n = mkquery(buf, sizeof(buf), 2u << 11, "a.", DNS_T_A, false, 0);
    CHECK(dns_query_parse(buf, n, &q) == DNS_R_NOTIMP, "opcode notimp");
    n = mkquery(buf, sizeof(buf), 0, "a.", DNS_T_A, false, 0);
    buf[5] = 2;   /* qdcount 2 */
    CHECK(dns_query_parse(buf, n, &q) == DNS_R_FORMERR, "qdcount 2");
    buf[5] = 0;
    CHECK(dns_query_parse(buf, n, &q) == DNS_R_FORMERR && !q.has_question, "qdcount 0");
    /* two OPTs */
    struct dns_builder b;
    uint8_t w[DNS_NAME_MAX]; size_t wl;
    dns_name_from_text("a", w, &wl);
    dns_builder_init(&b, buf, sizeof(buf), sizeof(buf), 1, 0);
    dns_builder_question(&b, w, wl, DNS_T_A, DNS_C_IN);
    dns_builder_opt(&b, 1232, 0, 0, false);
    dns_builder_opt(&b, 1232, 0, 0, false);
    n = dns_builder_finish(&b);
    CHECK(dns_query_parse(buf, n, &q) == DNS_R_FORMERR, "two OPT");
}

/* ---- builder -------------------------------------------------------- */

static void test_builder(void)
{
    uint8_t buf[600];
    struct dns_builder b;
    uint8_t qn[DNS_NAME_MAX], tn[DNS_NAME_MAX];
    size_t qnl, tnl;
    dns_name_from_text("web.default.svc.cluster.local", qn, &qnl);
    dns_name_from_text("x.default.svc.cluster.local", tn, &tnl);

    /* compression: answer owner = question name -> 2-byte pointer */
    dns_builder_init(&b, buf, sizeof(buf), 512, 7, DNS_F_QR | DNS_F_AA);
    CHECK(dns_builder_question(&b, qn, qnl, DNS_T_A, DNS_C_IN) == 0, "question");
    size_t after_q = b.len;
    uint8_t ip[4] = { 10, 0, 0, 1 };
    CHECK(dns_builder_rr(&b, DNS_SEC_ANSWER, qn, qnl, DNS_T_A, DNS_C_IN, 5, ip, 4) == 0, "rr");
    CHECK(b.len - after_q == 2 + 10 + 4, "owner compressed (%zu)", b.len - after_q);
    /* CNAME rdata sharing a suffix: 1 label + pointer */
    size_t before = b.len;
    dns_builder_rr_start(&b, DNS_SEC_ANSWER, qn, qnl, DNS_T_CNAME, DNS_C_IN, 5);
    dns_builder_rdata_name(&b, tn, tnl, true);
    CHECK(dns_builder_rr_end(&b) == 0, "cname end");
    CHECK(b.len - before == 2 + 10 + 2 + 2, "rdata suffix compressed (%zu)", b.len - before);
    size_t n = dns_builder_finish(&b);

    /* parse back */
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question q;
    struct dns_rr rr;
    dns_cursor_init(&c, buf, n);
    CHECK(dns_header_parse(&c, &h) == 0 && h.id == 7 && h.counts[1] == 2, "hdr back");
    CHECK(dns_question_parse(&c, &q) == 0 && dns_name_equal(q.name, q.name_len, qn, qnl), "q back");
    CHECK(dns_rr_parse(&c, &rr) == 0 && rr.type == DNS_T_A && rr.ttl == 5 && rr.rdlen == 4 &&
          dns_name_equal(rr.name, rr.name_len, qn, qnl), "rr back");
    CHECK(dns_rr_parse(&c, &rr) == 0 && rr.type == DNS_T_CNAME, "cname back");
    struct dns_cursor rc;
    dns_cursor_init(&rc, buf, n);
    rc.pos = rr.rdata_off;
    uint8_t got[DNS_NAME_MAX]; size_t gl;
    CHECK(dns_cursor_name(&rc, got, &gl) == 0 && dns_name_equal(got, gl, tn, tnl), "cname target");
    CHECK(dns_cursor_remaining(&c) == 0, "consumed all");

    /* case-insensitive compression keeps the first spelling */
    uint8_t up[DNS_NAME_MAX]; size_t upl;
    dns_name_from_text("WEB.default.svc.cluster.local", up, &upl);
    dns_builder_init(&b, buf, sizeof(buf), 512, 7, 0);
    dns_builder_question(&b, qn, qnl, DNS_T_A, DNS_C_IN);
    after_q = b.len;
    dns_builder_rr(&b, DNS_SEC_ANSWER, up, upl, DNS_T_A, DNS_C_IN, 5, ip, 4);
    CHECK(b.len - after_q == 16, "case-insensitive compression");

    /* truncation: 100-byte limit, records of 16 bytes after a 47-byte head */
    dns_builder_init(&b, buf, sizeof(buf), 100, 1, DNS_F_QR);
    dns_builder_question(&b, qn, qnl, DNS_T_A, DNS_C_IN);   /* 12 + 31 + 4 = 47 */
    CHECK(b.len == 47, "question len %zu", b.len);
    CHECK(dns_builder_reserve(&b, 11) == 0, "reserve");
    int added = 0;
    for (int i = 0; i < 10; i++) {
        if (dns_builder_rr(&b, DNS_SEC_ANSWER, qn, qnl, DNS_T_A, DNS_C_IN, 5, ip, 4) < 0)
            break;
        added++;
    }
    /* 47 + 11 reserved = 58; (100-58)/16 = 2 */
    CHECK(added == 2 && b.full, "truncated after %d", added);
    CHECK(b.len == 47 + 32, "no partial record (%zu)", b.len);
    dns_builder_unreserve(&b);
    CHECK(dns_builder_opt(&b, 1232, 0, 0, false) == 0, "OPT fits in reserve");
    n = dns_builder_finish(&b);
    CHECK(n <= 100 && n == 47 + 32 + 11, "final len %zu", n);
    dns_cursor_init(&c, buf, n);
    dns_header_parse(&c, &h);
    CHECK(h.counts[1] == 2 && h.counts[3] == 1, "counts after truncation");
    dns_question_parse(&c, &q);
    dns_rr_skip(&c); dns_rr_skip(&c);
    struct dns_edns e;
    CHECK(dns_rr_parse(&c, &rr) == 0 && dns_edns_from_rr(&rr, &e) == 0 && e.udp_size == 1232,
          "OPT back");

    /* rdata step overflow rolls back the whole record, compression table too */
    dns_builder_init(&b, buf, sizeof(buf), 70, 1, 0);
    dns_builder_question(&b, qn, qnl, DNS_T_A, DNS_C_IN);
    size_t nc = b.ncomp, l0 = b.len;
    CHECK(dns_builder_rr_start(&b, DNS_SEC_ANSWER, tn, tnl, DNS_T_TXT, DNS_C_IN, 5) == 0,
          "start fits");
    uint8_t big[64] = { 0 };
    CHECK(dns_builder_rdata_bytes(&b, big, sizeof(big)) == -1, "big rdata");
    CHECK(dns_builder_rr_end(&b) == -1, "end after rollback");
    CHECK(b.len == l0 && b.ncomp == nc && b.counts[1] == 0, "rolled back");

    /* SRV target not compressed when asked not to */
    dns_builder_init(&b, buf, sizeof(buf), 512, 1, 0);
    dns_builder_question(&b, qn, qnl, DNS_T_SRV, DNS_C_IN);
    before = b.len;
    dns_builder_rr_start(&b, DNS_SEC_ANSWER, qn, qnl, DNS_T_SRV, DNS_C_IN, 5);
    dns_builder_rdata_u16(&b, 0); dns_builder_rdata_u16(&b, 100); dns_builder_rdata_u16(&b, 80);
    dns_builder_rdata_name(&b, qn, qnl, false);
    dns_builder_rr_end(&b);
    CHECK(b.len - before == 2 + 10 + 6 + qnl, "SRV uncompressed");
}

int main(void)
{
    test_names();
    test_cursor_ints();
    test_text();
    test_query_parse();
    test_builder();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
