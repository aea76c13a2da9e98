/*
 * dns_testutil: asking a dns_zone a question in unit tests and reading the
 * reply back as text. ask() builds the query, calls dns_zone_answer() and
 * parses the reply into a struct reply: rcode, AA, section counts, the
 * answer and additional records as sorted "TYPE data" strings joined by
 * ';', the first answer's owner/TTL, and the authority SOA's owner, TTL and
 * MINIMUM. Set ask_client to the client address for autopath.
 * Include testutil.h first (CHECK, passed, failed).
 */
#ifndef SVCD_DNS_TESTUTIL_H
#define SVCD_DNS_TESTUTIL_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/dns_wire.h"
#include "svcd/dns_zone.h"
#include "testutil.h"

struct reply {
    enum dns_zone_status st;
    struct dns_zone_result res;
    int rcode;
    bool aa;
    int an, ns, ar;
    char answers[2048];      /* "TYPE data" sorted, joined by ';' */
    char extra[2048];        /* additional section, "owner TYPE data" sorted */
    char soa_owner[DNS_NAME_TEXT_MAX];  /* of the authority SOA, or "" */
    char first_owner[DNS_NAME_TEXT_MAX];
    char first_answer[1100];
    uint32_t first_ttl;
    uint32_t soa_min, soa_ttl;
};

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts n strings, joins them with ';' into out and frees them. */
static void join_sorted(char **items, int n, char *out, size_t olen)
{
    qsort(items, (size_t)n, sizeof(items[0]), cmpstr);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strncat(out, ";", olen - strlen(out) - 1);
        strncat(out, items[i], olen - strlen(out) - 1);
        free(items[i]);
    }
}

static void rr_text(const uint8_t *pkt, size_t len, const struct dns_rr *rr, char *out,
                    size_t olen)
{
    struct dns_cursor c;
    uint8_t nm[DNS_NAME_MAX];
    size_t nl;
    char t[DNS_NAME_TEXT_MAX], ip[INET6_ADDRSTRLEN];
    dns_cursor_init(&c, pkt, rr->rdata_off + rr->rdlen);
    c.pos = rr->rdata_off;
    switch (rr->type) {
    case DNS_T_A:
        inet_ntop(AF_INET, pkt + rr->rdata_off, ip, sizeof(ip));
        snprintf(out, olen, "A %s", ip);
        break;
    case DNS_T_AAAA:
        inet_ntop(AF_INET6, pkt + rr->rdata_off, ip, sizeof(ip));
        snprintf(out, olen, "AAAA %s", ip);
        break;
    case DNS_T_CNAME:
    case DNS_T_PTR:
    case DNS_T_NS:
        dns_cursor_name(&c, nm, &nl);
        dns_name_to_text(nm, nl, t, sizeof(t));
        snprintf(out, olen, "%s %s", rr->type == DNS_T_CNAME ? "CNAME" :
                 rr->type == DNS_T_PTR ? "PTR" : "NS", t);
        break;
    case DNS_T_SRV: {
        uint16_t pr, w, port;
        dns_cursor_u16(&c, &pr); dns_cursor_u16(&c, &w); dns_cursor_u16(&c, &port);
        dns_cursor_name(&c, nm, &nl);
        dns_name_to_text(nm, nl, t, sizeof(t));
        snprintf(out, olen, "SRV %u %u %u %s", pr, w, port, t);
        break;
    }
    case DNS_T_TXT:
        snprintf(out, olen, "TXT %.*s", pkt[rr->rdata_off], (const char *)pkt + rr->rdata_off + 1);
        break;
    case DNS_T_SOA:
        snprintf(out, olen, "SOA");
        break;
    default:
        snprintf(out, olen, "TYPE%u", rr->type);
    }
}

static const struct svcd_ip *ask_client;

static void ask_limit(struct dns_zone *z, const char *name, uint16_t qtype, size_t limit,
                      struct reply *r)
{
    static uint8_t buf[65535];
    struct dns_builder b;
    struct dns_question q;
    memset(r, 0, sizeof(*r));
    if (dns_name_from_text(name, q.name, &q.name_len) < 0) {
        fprintf(stderr, "bad name %s\n", name);
        exit(2);
    }
    q.qtype = qtype;
    q.qclass = DNS_C_IN;
    dns_builder_init(&b, buf, sizeof(buf), limit, 42, DNS_F_QR | DNS_F_RD);
    dns_builder_question(&b, q.name, q.name_len, qtype, DNS_C_IN);
    r->st = dns_zone_answer(z, &q, ask_client, &b, &r->res);
    size_t len = dns_builder_finish(&b);

    struct dns_cursor c;
    struct dns_header h;
    struct dns_question qq;
    struct dns_rr rr;
    dns_cursor_init(&c, buf, len);
    dns_header_parse(&c, &h);
    dns_question_parse(&c, &qq);
    r->rcode = DNS_RCODE(h.flags);
    r->aa = (h.flags & DNS_F_AA) != 0;
    r->an = h.counts[1];
    r->ns = h.counts[2];
    r->ar = h.counts[3];
    char *items[512], *xitems[512];
    int n = 0, nx = 0;
    for (int i = 0; i < r->an + r->ns + r->ar; i++) {
        if (dns_rr_parse(&c, &rr) < 0) {
            fprintf(stderr, "unparsable answer for %s\n", name);
            failed++;
            return;
        }
        char t[1100];
        rr_text(buf, len, &rr, t, sizeof(t));
        if (i == 0) {
            dns_name_to_text(rr.name, rr.name_len, r->first_owner, sizeof(r->first_owner));
            snprintf(r->first_answer, sizeof(r->first_answer), "%s", t);
            r->first_ttl = rr.ttl;
        }
        if (i < r->an && n < 512)
            items[n++] = strdup(t);
        if (i >= r->an + r->ns && rr.type != DNS_T_OPT && nx < 512) {
            char o[DNS_NAME_TEXT_MAX], line[DNS_NAME_TEXT_MAX + 1100];
            dns_name_to_text(rr.name, rr.name_len, o, sizeof(o));
            snprintf(line, sizeof(line), "%s %s", o, t);
            xitems[nx++] = strdup(line);
        }
        if (i >= r->an && i < r->an + r->ns && rr.type == DNS_T_SOA) {
            struct dns_cursor rc;
            dns_cursor_init(&rc, buf, len);
            rc.pos = rr.rdata_off;
            dns_cursor_name(&rc, NULL, NULL);
            dns_cursor_name(&rc, NULL, NULL);
            dns_cursor_skip(&rc, 16);
            dns_cursor_u32(&rc, &r->soa_min);
            r->soa_ttl = rr.ttl;
            dns_name_to_text(rr.name, rr.name_len, r->soa_owner, sizeof(r->soa_owner));
        }
    }
    join_sorted(items, n, r->answers, sizeof(r->answers));
    join_sorted(xitems, nx, r->extra, sizeof(r->extra));
}

static void ask(struct dns_zone *z, const char *name, uint16_t qtype, struct reply *r)
{
    ask_limit(z, name, qtype, 65535, r);
}

#endif
