/*
 * wire: DNS message parsing and building (see include/svcd/dns_wire.h).
 *
 * Every read from an untrusted packet goes through struct dns_cursor and is
 * length-checked first. Name decompression only follows pointers to earlier
 * offsets, counts them, and caps label and name lengths. The builder writes
 * into a caller buffer under a limit and rolls back a record that would not
 * fit, so a truncated answer always ends at a whole record.
 */
#include "svcd/dns_wire.h"

#include <string.h>

/* ---- cursor ------------------------------------------------------------ */

void dns_cursor_init(struct dns_cursor *c, const uint8_t *pkt, size_t len)
{
    c->pkt = pkt;
    c->len = len;
    c->pos = 0;
}

int dns_cursor_u8(struct dns_cursor *c, uint8_t *out)
{
    if (dns_cursor_remaining(c) < 1)
        return -1;
    *out = c->pkt[c->pos];
    c->pos += 1;
    return 0;
}

int dns_cursor_u16(struct dns_cursor *c, uint16_t *out)
{
    if (dns_cursor_remaining(c) < 2)
        return -1;
    *out = (uint16_t)((c->pkt[c->pos] << 8) | c->pkt[c->pos + 1]);
    c->pos += 2;
    return 0;
}

int dns_cursor_u32(struct dns_cursor *c, uint32_t *out)
{
    if (dns_cursor_remaining(c) < 4)
        return -1;
    const uint8_t *p = c->pkt + c->pos;
    *out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    c->pos += 4;
    return 0;
}

int dns_cursor_bytes(struct dns_cursor *c, void *out, size_t n)
{
    if (dns_cursor_remaining(c) < n)
        return -1;
    memcpy(out, c->pkt + c->pos, n);
    c->pos += n;
    return 0;
}

int dns_cursor_skip(struct dns_cursor *c, size_t n)
{
    if (dns_cursor_remaining(c) < n)
        return -1;
    c->pos += n;
    return 0;
}

int dns_cursor_name(struct dns_cursor *c, uint8_t *out, size_t *out_len)
{
    size_t pos = c->pos;        /* where we read now */
    size_t end = 0;             /* cursor position after the name */
    bool jumped = false;
    size_t low = c->pos;        /* pointers must go below this */
    size_t n = 0;               /* bytes of uncompressed name */
    int ptrs = 0;

    for (;;) {
        if (pos >= c->len)
            return -1;
        uint8_t l = c->pkt[pos];
        if ((l & 0xc0) == 0xc0) {
            if (pos + 1 >= c->len)
                return -1;
            size_t target = ((size_t)(l & 0x3f) << 8) | c->pkt[pos + 1];
            if (!jumped) {
                end = pos + 2;
                jumped = true;
            }
            /* only strictly backwards, and below every earlier jump */
            if (target >= low || ++ptrs > DNS_PTR_MAX)
                return -1;
            low = target;
            pos = target;
            continue;
        }
        if (l & 0xc0)
            return -1;          /* 0x40 / 0x80: reserved label types */
        if (n + 1 + l > DNS_NAME_MAX)
            return -1;
        if (pos + 1 + l > c->len)
            return -1;
        if (out)
            memcpy(out + n, c->pkt + pos, (size_t)l + 1);
        n += (size_t)l + 1;
        pos += (size_t)l + 1;
        if (l == 0)
            break;
    }
    c->pos = jumped ? end : pos;
    if (out_len)
        *out_len = n;
    return 0;
}

int dns_header_parse(struct dns_cursor *c, struct dns_header *h)
{
    if (dns_cursor_remaining(c) < DNS_HEADER_LEN)
        return -1;
    dns_cursor_u16(c, &h->id);
    dns_cursor_u16(c, &h->flags);
    for (int i = 0; i < 4; i++)
        dns_cursor_u16(c, &h->counts[i]);
    return 0;
}

int dns_question_parse(struct dns_cursor *c, struct dns_question *q)
{
    size_t save = c->pos;
    if (dns_cursor_name(c, q->name, &q->name_len) < 0 ||
        dns_cursor_u16(c, &q->qtype) < 0 || dns_cursor_u16(c, &q->qclass) < 0) {
        c->pos = save;
        return -1;
    }
    return 0;
}

int dns_rr_parse(struct dns_cursor *c, struct dns_rr *rr)
{
    size_t save = c->pos;
    if (dns_cursor_name(c, rr->name, &rr->name_len) < 0 ||
        dns_cursor_u16(c, &rr->type) < 0 || dns_cursor_u16(c, &rr->rclass) < 0)
        goto fail;
    rr->ttl_off = c->pos;
    if (dns_cursor_u32(c, &rr->ttl) < 0 || dns_cursor_u16(c, &rr->rdlen) < 0)
        goto fail;
    rr->rdata_off = c->pos;
    if (dns_cursor_skip(c, rr->rdlen) < 0)
        goto fail;
    return 0;
fail:
    c->pos = save;
    return -1;
}

int dns_rr_skip(struct dns_cursor *c)
{
    size_t save = c->pos;
    uint16_t rdlen;
    if (dns_cursor_name(c, NULL, NULL) < 0 || dns_cursor_skip(c, 8) < 0 ||
        dns_cursor_u16(c, &rdlen) < 0 || dns_cursor_skip(c, rdlen) < 0) {
        c->pos = save;
        return -1;
    }
    return 0;
}

int dns_edns_from_rr(const struct dns_rr *rr, struct dns_edns *e)
{
    if (rr->type != DNS_T_OPT || rr->name_len != 1)
        return -1;
    e->present = true;
    e->udp_size = rr->rclass;
    e->ext_rcode = (uint8_t)(rr->ttl >> 24);
    e->version = (uint8_t)(rr->ttl >> 16);
    e->do_bit = (rr->ttl & 0x8000u) != 0;
    return 0;
}

int dns_query_parse(const uint8_t *pkt, size_t len, struct dns_query *out)
{
    struct dns_cursor c;
    dns_cursor_init(&c, pkt, len);
    memset(&out->edns, 0, sizeof(out->edns));
    out->has_question = false;
    out->question_end = 0;
    if (dns_header_parse(&c, &out->hdr) < 0)
        return -1;
    if (out->hdr.flags & DNS_F_QR)
        return -1;
    if (DNS_OPCODE(out->hdr.flags) != DNS_OPCODE_QUERY)
        return DNS_R_NOTIMP;
    if (out->hdr.counts[DNS_SEC_QUESTION] != 1)
        return DNS_R_FORMERR;
    if (dns_question_parse(&c, &out->q) < 0)
        return DNS_R_FORMERR;
    out->has_question = true;
    out->question_end = c.pos;
    /* A query carries no answer/authority records in practice; skip any. */
    unsigned skip = (unsigned)out->hdr.counts[DNS_SEC_ANSWER] + out->hdr.counts[DNS_SEC_AUTHORITY];
    for (unsigned i = 0; i < skip; i++)
        if (dns_rr_skip(&c) < 0)
            return DNS_R_FORMERR;
    struct dns_rr rr;
    for (unsigned i = 0; i < out->hdr.counts[DNS_SEC_ADDITIONAL]; i++) {
        if (dns_rr_parse(&c, &rr) < 0)
            return DNS_R_FORMERR;
        if (rr.type == DNS_T_OPT) {
            if (out->edns.present)          /* RFC 6891 6.1.1: more than one */
                return DNS_R_FORMERR;
            if (dns_edns_from_rr(&rr, &out->edns) < 0)
                return DNS_R_FORMERR;
        }
    }
    return 0;
}

/* ---- names ------------------------------------------------------------- */

static inline uint8_t dns_lc(uint8_t ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + 32) : ch;
}

void dns_name_lower(uint8_t *out, const uint8_t *in, size_t len)
{
    /* Label length bytes are < 64 so never in 'A'..'Z' (65..90). */
    for (size_t i = 0; i < len; i++)
        out[i] = dns_lc(in[i]);
}

bool dns_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (dns_lc(a[i]) != dns_lc(b[i]))
            return false;
    return true;
}

int dns_name_labels(const uint8_t *name, size_t len)
{
    int n = 0;
    size_t i = 0;
    while (i < len && name[i] != 0) {
        i += (size_t)name[i] + 1;
        n++;
    }
    return n;
}

int dns_name_suffix_off(const uint8_t *name, size_t len, int n)
{
    int total = dns_name_labels(name, len);
    if (n < 0 || n > total)
        return -1;
    size_t i = 0;
    for (int k = 0; k < total - n; k++)
        i += (size_t)name[i] + 1;
    return (int)i;
}

bool dns_name_is_subdomain(const uint8_t *name, size_t len, const uint8_t *zone, size_t zlen)
{
    if (zlen > len)
        return false;
    size_t i = 0;
    /* walk label boundaries of name until the remainder is zlen long */
    while (len - i > zlen) {
        if (i >= len || name[i] == 0)
            return false;
        i += (size_t)name[i] + 1;
    }
    if (len - i != zlen)
        return false;
    return dns_name_equal(name + i, zlen, zone, zlen);
}

int dns_name_from_text(const char *text, uint8_t *out, size_t *out_len)
{
    size_t n = 0;          /* bytes written */
    size_t lab = 0;        /* offset of the current label length byte */
    const char *p = text;

    if (strcmp(text, ".") == 0 || *text == '\0') {
        out[0] = 0;
        *out_len = 1;
        return 0;
    }
    out[0] = 0;
    n = 1;
    while (*p) {
        if (*p == '.') {
            if (n - lab - 1 == 0)
                return -1;             /* empty label */
            out[lab] = (uint8_t)(n - lab - 1);
            p++;
            if (*p == '\0')
                break;                 /* trailing dot */
            if (n + 1 > DNS_NAME_MAX - 1)
                return -1;
            lab = n;
            out[n++] = 0;
            continue;
        }
        unsigned ch;
        if (*p == '\\') {
            p++;
            if (p[0] >= '0' && p[0] <= '9') {
                if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
                    return -1;
                ch = (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
                     (unsigned)(p[2] - '0');
                if (ch > 255)
                    return -1;
                p += 3;
            } else if (*p) {
                ch = (unsigned char)*p++;
            } else {
                return -1;
            }
        } else {
            ch = (unsigned char)*p++;
        }
        if (n - lab - 1 >= DNS_LABEL_MAX || n + 1 > DNS_NAME_MAX - 1)
            return -1;
        out[n++] = (uint8_t)ch;
    }
    if (n - lab - 1 == 0)
        return -1;
    out[lab] = (uint8_t)(n - lab - 1);
    out[n++] = 0;
    *out_len = n;
    return 0;
}

int dns_name_to_text(const uint8_t *name, size_t len, char *buf, size_t buflen)
{
    size_t o = 0;
    size_t i = 0;
    if (buflen < 2)
        return -1;
    if (len >= 1 && name[0] == 0) {
        buf[0] = '.';
        buf[1] = '\0';
        return 0;
    }
    while (i < len && name[i] != 0) {
        uint8_t l = name[i];
        if (l > DNS_LABEL_MAX || i + 1 + l >= len)
            return -1;
        for (size_t k = 0; k < l; k++) {
            uint8_t ch = name[i + 1 + k];
            if (ch == '.' || ch == '\\') {
                if (o + 2 >= buflen)
                    return -1;
                buf[o++] = '\\';
                buf[o++] = (char)ch;
            } else if (ch <= 0x20 || ch >= 0x7f) {
                if (o + 4 >= buflen)
                    return -1;
                buf[o++] = '\\';
                buf[o++] = (char)('0' + ch / 100);
                buf[o++] = (char)('0' + (ch / 10) % 10);
                buf[o++] = (char)('0' + ch % 10);
            } else {
                if (o + 1 >= buflen)
                    return -1;
                buf[o++] = (char)ch;
            }
        }
        if (o + 1 >= buflen)
            return -1;
        buf[o++] = '.';
        i += (size_t)l + 1;
    }
    if (i >= len)
        return -1;          /* no root label */
    buf[o] = '\0';
    return 0;
}

/* ---- builder ----------------------------------------------------------- */

static inline void dns_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int dns_builder_init(struct dns_builder *b, uint8_t *buf, size_t cap, size_t limit,
                     uint16_t id, uint16_t flags)
{
    memset(b, 0, sizeof(*b));
    if (cap < DNS_HEADER_LEN)
        return -1;
    if (cap > 65535)
        cap = 65535;
    b->buf = buf;
    b->cap = cap;
    b->limit = limit < DNS_HEADER_LEN ? DNS_HEADER_LEN : (limit > cap ? cap : limit);
    memset(buf, 0, DNS_HEADER_LEN);
    dns_put16(buf, id);
    dns_put16(buf + 2, flags);
    b->len = DNS_HEADER_LEN;
    return 0;
}

void dns_builder_set_flags(struct dns_builder *b, uint16_t flags)
{
    dns_put16(b->buf + 2, flags);
}

uint16_t dns_builder_flags(const struct dns_builder *b)
{
    return (uint16_t)((b->buf[2] << 8) | b->buf[3]);
}

int dns_builder_reserve(struct dns_builder *b, size_t n)
{
    if (b->len + b->reserved + n > b->limit)
        return -1;
    b->reserved += n;
    return 0;
}

void dns_builder_unreserve(struct dns_builder *b)
{
    b->reserved = 0;
}

static inline bool dns_builder_room(const struct dns_builder *b, size_t n)
{
    return b->len + n + b->reserved <= b->limit;
}

/* Does the (possibly compressed) name at buf offset off equal the
 * uncompressed name s (case-insensitive)? buf is our own output but is
 * still walked with bounds and a pointer budget. */
static bool dns_builder_name_at(const struct dns_builder *b, size_t off, const uint8_t *s,
                                size_t slen)
{
    size_t i = 0;
    int hops = 0;
    for (;;) {
        if (off >= b->len)
            return false;
        uint8_t l = b->buf[off];
        if ((l & 0xc0) == 0xc0) {
            if (off + 1 >= b->len || ++hops > DNS_PTR_MAX)
                return false;
            off = ((size_t)(l & 0x3f) << 8) | b->buf[off + 1];
            continue;
        }
        if (i >= slen || s[i] != l)
            return false;
        if (l == 0)
            return i + 1 == slen;
        if (off + 1 + l > b->len || i + 1 + l > slen)
            return false;
        for (size_t k = 1; k <= l; k++)
            if (dns_lc(b->buf[off + k]) != dns_lc(s[i + k]))
                return false;
        off += (size_t)l + 1;
        i += (size_t)l + 1;
    }
}

/* Writes name at b->len, compressed against remembered names when
 * compress; remembers its label offsets. -1 when it does not fit (nothing
 * is kept: the caller rolls back). */
static int dns_builder_put_name(struct dns_builder *b, const uint8_t *name, size_t len,
                                bool compress)
{
    size_t i = 0;
    while (i < len) {
        uint8_t l = name[i];
        if (l == 0) {
            if (!dns_builder_room(b, 1))
                return -1;
            b->buf[b->len++] = 0;
            return 0;
        }
        if (l > DNS_LABEL_MAX || i + 1 + l >= len)
            return -1;
        if (compress) {
            for (size_t k = 0; k < b->ncomp; k++) {
                if (dns_builder_name_at(b, b->comp_off[k], name + i, len - i)) {
                    if (!dns_builder_room(b, 2))
                        return -1;
                    dns_put16(b->buf + b->len, (uint16_t)(0xc000u | b->comp_off[k]));
                    b->len += 2;
                    return 0;
                }
            }
        }
        if (!dns_builder_room(b, (size_t)l + 1))
            return -1;
        if (b->len < 0x4000 && b->ncomp < DNS_COMPRESS_MAX)
            b->comp_off[b->ncomp++] = (uint16_t)b->len;
        memcpy(b->buf + b->len, name + i, (size_t)l + 1);
        b->len += (size_t)l + 1;
        i += (size_t)l + 1;
    }
    return -1;      /* no root label */
}

int dns_builder_question(struct dns_builder *b, const uint8_t *name, size_t name_len,
                         uint16_t qtype, uint16_t qclass)
{
    size_t save = b->len, savec = b->ncomp;
    if (dns_builder_put_name(b, name, name_len, true) < 0 || !dns_builder_room(b, 4))
        goto fail;
    dns_put16(b->buf + b->len, qtype);
    dns_put16(b->buf + b->len + 2, qclass);
    b->len += 4;
    b->counts[DNS_SEC_QUESTION]++;
    return 0;
fail:
    b->len = save;
    b->ncomp = savec;
    b->full = true;
    return -1;
}

static int dns_builder_rollback(struct dns_builder *b)
{
    if (b->in_rr) {
        b->len = b->rr_start;
        b->ncomp = b->rr_ncomp;
        b->in_rr = false;
    }
    b->full = true;
    return -1;
}

int dns_builder_rr_start(struct dns_builder *b, enum dns_section sec, const uint8_t *name,
                         size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl)
{
    if (b->in_rr || sec < DNS_SEC_ANSWER || sec > DNS_SEC_ADDITIONAL)
        return -1;
    b->in_rr = true;
    b->rr_section = sec;
    b->rr_start = b->len;
    b->rr_ncomp = b->ncomp;
    if (dns_builder_put_name(b, name, name_len, true) < 0 || !dns_builder_room(b, 10))
        return dns_builder_rollback(b);
    uint8_t *p = b->buf + b->len;
    dns_put16(p, type);
    dns_put16(p + 2, rclass);
    dns_put16(p + 4, (uint16_t)(ttl >> 16));
    dns_put16(p + 6, (uint16_t)ttl);
    dns_put16(p + 8, 0);
    b->rr_rdlen_off = b->len + 8;
    b->len += 10;
    return 0;
}

int dns_builder_rdata_bytes(struct dns_builder *b, const void *p, size_t n)
{
    if (!b->in_rr)
        return -1;
    if (!dns_builder_room(b, n))
        return dns_builder_rollback(b);
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 0;
}

int dns_builder_rdata_u16(struct dns_builder *b, uint16_t v)
{
    uint8_t x[2];
    dns_put16(x, v);
    return dns_builder_rdata_bytes(b, x, 2);
}

int dns_builder_rdata_u32(struct dns_builder *b, uint32_t v)
{
    uint8_t x[4];
    dns_put16(x, (uint16_t)(v >> 16));
    dns_put16(x + 2, (uint16_t)v);
    return dns_builder_rdata_bytes(b, x, 4);
}

int dns_builder_rdata_name(struct dns_builder *b, const uint8_t *name, size_t name_len,
                           bool compress)
{
    if (!b->in_rr)
        return -1;
    if (dns_builder_put_name(b, name, name_len, compress) < 0)
        return dns_builder_rollback(b);
    return 0;
}

int dns_builder_rr_end(struct dns_builder *b)
{
    if (!b->in_rr)
        return -1;
    size_t rdlen = b->len - b->rr_rdlen_off - 2;
    if (rdlen > 65535)
        return dns_builder_rollback(b);
    dns_put16(b->buf + b->rr_rdlen_off, (uint16_t)rdlen);
    b->counts[b->rr_section]++;
    b->in_rr = false;
    return 0;
}

int dns_builder_rr(struct dns_builder *b, enum dns_section sec, const uint8_t *name,
                   size_t name_len, uint16_t type, uint16_t rclass, uint32_t ttl,
                   const void *rdata, size_t rdlen)
{
    if (dns_builder_rr_start(b, sec, name, name_len, type, rclass, ttl) < 0 ||
        dns_builder_rdata_bytes(b, rdata, rdlen) < 0)
        return -1;
    return dns_builder_rr_end(b);
}

int dns_builder_copy_rr(struct dns_builder *b, enum dns_section sec, const uint8_t *pkt,
                        size_t len, const struct dns_rr *rr)
{
    struct dns_cursor c;
    uint8_t nm[DNS_NAME_MAX];
    size_t nl;
    size_t end = rr->rdata_off + rr->rdlen;
    if (end > len)
        return -1;
    /* the rdata is read up to its own end, names may point anywhere before */
    dns_cursor_init(&c, pkt, end);
    c.pos = rr->rdata_off;
    if (dns_builder_rr_start(b, sec, rr->name, rr->name_len, rr->type, rr->rclass, rr->ttl) < 0)
        return -1;
    size_t fixed = 0;       /* bytes before the name */
    int names = 1;          /* names to re-encode */
    size_t tail = 0;        /* fixed bytes after the names */
    bool compress = true;
    switch (rr->type) {
    case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR: break;
    case DNS_T_MX: fixed = 2; break;
    case DNS_T_SRV: fixed = 6; compress = false; break;
    case DNS_T_SOA: names = 2; tail = 20; break;
    default: names = 0; break;
    }
    if (names == 0)
        return dns_builder_rdata_bytes(b, pkt + rr->rdata_off, rr->rdlen) < 0 ? -1
               : dns_builder_rr_end(b);
    uint8_t fx[20];
    if (dns_cursor_bytes(&c, fx, fixed) < 0 || dns_builder_rdata_bytes(b, fx, fixed) < 0)
        goto bad;
    for (int i = 0; i < names; i++)
        if (dns_cursor_name(&c, nm, &nl) < 0 || dns_builder_rdata_name(b, nm, nl, compress) < 0)
            goto bad;
    if (dns_cursor_bytes(&c, fx, tail) < 0 || dns_builder_rdata_bytes(b, fx, tail) < 0 ||
        dns_cursor_remaining(&c) != 0)
        goto bad;
    return dns_builder_rr_end(b);
bad:
    if (b->in_rr) {         /* malformed rdata: undo without marking full */
        b->len = b->rr_start;
        b->ncomp = b->rr_ncomp;
        b->in_rr = false;
    }
    return -1;
}

int dns_builder_opt(struct dns_builder *b, uint16_t udp_size, uint8_t ext_rcode,
                    uint8_t version, bool do_bit)
{
    static const uint8_t root = 0;
    uint32_t ttl = ((uint32_t)ext_rcode << 24) | ((uint32_t)version << 16) |
                   (do_bit ? 0x8000u : 0);
    if (udp_size < 512)
        udp_size = 512;
    return dns_builder_rr(b, DNS_SEC_ADDITIONAL, &root, 1, DNS_T_OPT, udp_size, ttl, NULL, 0);
}

size_t dns_builder_finish(struct dns_builder *b)
{
    if (b->in_rr)
        dns_builder_rollback(b);
    for (int i = 0; i < 4; i++)
        dns_put16(b->buf + 4 + 2 * i, b->counts[i]);
    return b->len;
}
