/*
 * dns_wire: the DNS wire format (RFC 1035, 3596, 2782, 6891), parsed and
 * built without ever indexing a packet directly.
 *
 * Reading goes through a dns_cursor: a (packet, length, position) triple
 * whose every read checks the remaining length first and returns 0 or -1.
 * Names are read into caller buffers of DNS_NAME_MAX bytes in uncompressed
 * wire form (length-prefixed labels ending with the root label), case kept
 * as sent; compression pointers are followed only backwards, at most
 * DNS_PTR_MAX times, with label (63) and name (255) length caps, so a
 * hostile packet cannot loop or overrun.
 *
 * Writing goes through a dns_builder over a caller buffer: header, question,
 * then resource records with name compression. The builder has a limit (the
 * client's UDP size, or 65535 for TCP): a record that would cross it is
 * rolled back whole, the builder is marked full and the call returns -1, so
 * the caller can set TC=1 and still send every complete record written
 * before it. Nothing here allocates.
 *
 * Names in this API are always uncompressed wire names (uint8_t *, length
 * including the final 0 byte).
 */
#ifndef SVCD_DNS_WIRE_H
#define SVCD_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 255        /* wire bytes, including the root label */
#define DNS_LABEL_MAX 63
#define DNS_NAME_TEXT_MAX 1024  /* text form incl. escapes ("\\123") and NUL */
#define DNS_PTR_MAX 64          /* compression pointers followed per name */
#define DNS_HEADER_LEN 12

/* Types and classes used by svcd. */
enum {
    DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
    DNS_T_HINFO = 13, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33,
    DNS_T_OPT = 41, DNS_T_IXFR = 251, DNS_T_AXFR = 252, DNS_T_ANY = 255,
};
enum { DNS_C_IN = 1, DNS_C_CH = 3, DNS_C_ANY = 255 };

/* Header flag bits (the 16-bit flags word) and rcodes. */
#define DNS_F_QR 0x8000u
#define DNS_F_AA 0x0400u
#define DNS_F_TC 0x0200u
#define DNS_F_RD 0x0100u
#define DNS_F_RA 0x0080u
#define DNS_F_AD 0x0020u
#define DNS_F_CD 0x0010u
#define DNS_OPCODE(flags) (((flags) >> 11) & 0xfu)
#define DNS_RCODE(flags) ((flags) & 0xfu)
enum {
    DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3,
    DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5,
    DNS_R_BADVERS = 16,   /* extended: needs OPT (ext rcode 1, header rcode 0) */
};
enum { DNS_OPCODE_QUERY = 0 };
/* Section numbers for the builder and counts[]. */
enum dns_section { DNS_SEC_QUESTION = 0, DNS_SEC_ANSWER, DNS_SEC_AUTHORITY,
                   DNS_SEC_ADDITIONAL };

/* ---- reading ----------------------------------------------------------- */

/* A read position in a packet the caller owns (not copied). */
struct dns_cursor {
    const uint8_t *pkt;
    size_t len;
    size_t pos;
};

void dns_cursor_init(struct dns_cursor *c, const uint8_t *pkt, size_t len);
static inline size_t dns_cursor_remaining(const struct dns_cursor *c)
{
    return c->pos <= c->len ? c->len - c->pos : 0;
}
/* Each read returns 0 and advances, or -1 (too short) leaving pos as is.
 * Multi-byte integers are big-endian on the wire, host order in *out. */
int dns_cursor_u8(struct dns_cursor *c, uint8_t *out);
int dns_cursor_u16(struct dns_cursor *c, uint16_t *out);
int dns_cursor_u32(struct dns_cursor *c, uint32_t *out);
int dns_cursor_bytes(struct dns_cursor *c, void *out, size_t n);
int dns_cursor_skip(struct dns_cursor *c, size_t n);
/* Reads a possibly compressed name into out[DNS_NAME_MAX] (uncompressed,
 * case kept) and sets *out_len (>= 1). out may be NULL to only skip/check.
 * The cursor ends after the name as it sits at pos (after the first
 * pointer). -1 on truncation, forward/looping pointers, labels > 63 bytes,
 * names > 255 bytes, or reserved label types (0x40/0x80). */
int dns_cursor_name(struct dns_cursor *c, uint8_t *out, size_t *out_len);

/* The 12-byte header, counts in host order. */
struct dns_header {
    uint16_t id;
    uint16_t flags;
    uint16_t counts[4];   /* by enum dns_section: qd, an, ns, ar */
};
int dns_header_parse(struct dns_cursor *c, struct dns_header *h);

struct dns_question {
    uint8_t name[DNS_NAME_MAX];
    size_t name_len;
    uint16_t qtype, qclass;
};
int dns_question_parse(struct dns_cursor *c, struct dns_question *q);

/* One resource record. The rdata stays in the packet: rdata_off/rdlen
 * locate it (rdata_off + rdlen <= packet length is checked), ttl_off is the
 * offset of the 4 TTL bytes (for rewriting TTLs in place). */
struct dns_rr {
    uint8_t name[DNS_NAME_MAX];
    size_t name_len;
    uint16_t type, rclass;
    uint32_t ttl;
    uint16_t rdlen;
    size_t ttl_off;
    size_t rdata_off;
};
/* Parses one RR (name decompressed into rr->name) and moves past its rdata.
 * -1 when anything, rdata included, runs past the packet. */
int dns_rr_parse(struct dns_cursor *c, struct dns_rr *rr);
/* Moves past one RR without copying its name. 0 or -1. */
int dns_rr_skip(struct dns_cursor *c);

/* EDNS0 from an OPT RR (RFC 6891 6.1.3). */
struct dns_edns {
    bool present;
    uint16_t udp_size;    /* as sent (the caller applies the 512 floor) */
    uint8_t ext_rcode;    /* upper 8 bits of the 12-bit rcode */
    uint8_t version;
    bool do_bit;
};
/* Fills e from an OPT record just parsed; -1 when rr is not a valid OPT
 * (type != 41 or owner not the root). */
int dns_edns_from_rr(const struct dns_rr *rr, struct dns_edns *e);

/* A query as a server sees it: header, the one question, EDNS if any.
 * Returns 0, or a DNS rcode (> 0) to answer with: DNS_R_FORMERR for a bad
 * packet whose header parsed (has_question tells whether the question did
 * too), DNS_R_NOTIMP for an opcode other than QUERY. -1 when not even the
 * header parsed or QR is set (drop: never answer a response). */
struct dns_query {
    struct dns_header hdr;
    struct dns_question q;
    bool has_question;
    struct dns_edns edns;
    size_t question_end;  /* offset just after the question */
};
int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_query *out);

/* ---- names -------------------------------------------------------------- */

/* ASCII lowercase copy (in may equal out). */
void dns_name_lower(uint8_t *out, const uint8_t *in, size_t len);
/* Case-insensitive equality of two wire names. */
bool dns_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Number of labels, root not counted ("a.b." = 2). */
int dns_name_labels(const uint8_t *name, size_t len);
/* Offset of the suffix of name that is the last n labels (n <= labels);
 * -1 if n is too big. */
int dns_name_suffix_off(const uint8_t *name, size_t len, int n);
/* Whether name equals or is below zone (case-insensitive). */
bool dns_name_is_subdomain(const uint8_t *name, size_t len, const uint8_t *zone,
                           size_t zlen);
/* Text ("a.b.c" or "a.b.c.", "." for root; backslash escapes \. \\ \DDD)
 * to wire. 0 or -1 (bad escape, empty label, too long). */
int dns_name_from_text(const char *text, uint8_t *out, size_t *out_len);
/* Wire to text with a trailing dot; non-printables and . \ escaped as dig
 * does. Returns 0, or -1 when buf is too small (DNS_NAME_TEXT_MAX always
 * suffices) or the name is malformed. */
int dns_name_to_text(const uint8_t *name, size_t len, char *buf, size_t buflen);

/* ---- building ----------------------------------------------------------- */

#define DNS_COMPRESS_MAX 64   /* name positions remembered for compression */

/* Builds a message into buf (owned by the caller). Fields are private. */
struct dns_builder {
    uint8_t *buf;
    size_t cap;        /* size of buf */
    size_t limit;      /* max message size (<= cap) */
    size_t reserved;   /* bytes kept free at the end (e.g. for an OPT) */
    size_t len;
    uint16_t counts[4];
    bool full;         /* a record did not fit and was rolled back */
    /* record in progress */
    bool in_rr;
    int rr_section;
    size_t rr_start, rr_rdlen_off;
    size_t rr_ncomp;
    /* compression: offsets of names/suffixes already in buf */
    uint16_t comp_off[DNS_COMPRESS_MAX];
    size_t ncomp;
};

/* Starts a message: writes the header (id, flags, zero counts). limit is
 * clamped to [DNS_HEADER_LEN, cap]. -1 if cap < 12. */
int dns_builder_init(struct dns_builder *b, uint8_t *buf, size_t cap, size_t limit,
                     uint16_t id, uint16_t flags);
void dns_builder_set_flags(struct dns_builder *b, uint16_t flags);
uint16_t dns_builder_flags(const struct dns_builder *b);
/* Keeps n bytes free at the end of the limit for a later record (the OPT);
 * dns_builder_unreserve() gives them back. -1 if already used. */
int dns_builder_reserve(struct dns_builder *b, size_t n);
void dns_builder_unreserve(struct dns_builder *b);
/* Appends the question (name compressed targets remembered). 0 or -1. */
int dns_builder_question(struct dns_builder *b, const uint8_t *name, size_t name_len,
                         uint16_t qtype, uint16_t qclass);

/* A record is written in steps: start, rdata pieces, end. Any step that
 * does not fit rolls the whole record back, sets b->full and returns -1;
 * the following steps of that record then also return -1. Counts are
 * updated at dns_builder_rr_end(). */
int dns_builder_rr_start(struct dns_builder *b, enum dns_section sec, const uint8_t *name,
                         size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl);
int dns_builder_rdata_bytes(struct dns_builder *b, const void *p, size_t n);
int dns_builder_rdata_u16(struct dns_builder *b, uint16_t v);
int dns_builder_rdata_u32(struct dns_builder *b, uint32_t v);
/* A name in rdata; compress only for the RFC 1035 types (NS, CNAME, PTR,
 * SOA, MX), never for SRV (RFC 2782/3597). */
int dns_builder_rdata_name(struct dns_builder *b, const uint8_t *name, size_t name_len,
                           bool compress);
int dns_builder_rr_end(struct dns_builder *b);
/* Whole record from raw rdata (no names inside to compress). */
int dns_builder_rr(struct dns_builder *b, enum dns_section sec, const uint8_t *name,
                   size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl,
                   const void *rdata, size_t rdlen);
/* Copies record rr, parsed from pkt (len bytes), re-encoding the names
 * inside the rdata of NS, CNAME, PTR, MX, SOA and SRV (they may be
 * compressed against pkt); other rdata is copied as is. 0, or -1 when it
 * does not fit (b->full) or the rdata is malformed (b not full). */
int dns_builder_copy_rr(struct dns_builder *b, enum dns_section sec, const uint8_t *pkt,
                        size_t len, const struct dns_rr *rr);
/* OPT pseudo-record in the additional section (RFC 6891). */
int dns_builder_opt(struct dns_builder *b, uint16_t udp_size, uint8_t ext_rcode,
                    uint8_t version, bool do_bit);
/* Writes the counts into the header; returns the message length. */
size_t dns_builder_finish(struct dns_builder *b);

#endif
