/*
 * server: svcd's DNS sockets and the per-query protocol decisions
 * (see include/svcd/dns_server.h).
 *
 * UDP: one non-blocking socket per listen address, read with recvmmsg in
 * batches of DNS_UDP_BATCH into buffers allocated once; authoritative
 * replies are built in place and sent back with one sendmmsg per batch, so
 * the common path makes no allocation and two system calls per batch.
 * Forwarded queries carry a small context (the only allocation) until the
 * forwarder calls back; the reply then goes out with sendto.
 *
 * TCP: evconnlistener + one bufferevent per connection; every complete
 * length-prefixed query is processed as it arrives (pipelining), local
 * answers are written at once and forwarded ones when they complete (out
 * of order, matched by ID as RFC 7766 allows). A connection idle for
 * cfg->dns_tcp_idle_ms with nothing in flight is closed; at the
 * cfg->dns_tcp_max_conns cap the oldest idle connection makes room.
 */
#include "svcd/dns_server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "svcd/dns_forward.h"
#include "svcd/log.h"
#include "svcd/metrics.h"

#define SRV_MOD "dns"
#define DNS_UDP_BATCH 32
#define DNS_UDP_IN_MAX 4096       /* larger UDP queries are dropped */
#define DNS_UDP_ROUNDS 8          /* batches per wake-up before yielding */
#define DNS_TCP_BACKLOG 128
#define DNS_UDP_CTL 64            /* control buffer: one in(6)_pktinfo */
#define DNS_TCP_OUT_MAX (256 * 1024)  /* stop reading while more is queued */
#define DNS_TCP_PENDING_MAX 64    /* forwarded queries in flight per connection */

struct dns_server;

/* ---- query processing (no I/O) ------------------------------------------ */

static uint16_t srv_reply_flags(const struct dns_query *q, bool ra)
{
    uint16_t f = DNS_F_QR | (uint16_t)(q->hdr.flags & (DNS_F_RD | DNS_F_CD)) |
                 (uint16_t)(q->hdr.flags & 0x7800u);   /* opcode */
    if (ra)
        f |= DNS_F_RA;
    return f;
}

/* A reply with only header (+ question, + OPT): errors and refusals. */
static size_t srv_reply_error(const struct dns_query *q, int rcode, bool ra, uint16_t udp_max,
                              size_t limit, uint8_t *out)
{
    struct dns_builder b;
    uint16_t flags = srv_reply_flags(q, ra);
    int ext = rcode >> 4;
    flags |= (uint16_t)(rcode & 0xf);
    dns_builder_init(&b, out, 65535, limit, q->hdr.id, flags);
    if (q->has_question)
        dns_builder_question(&b, q->q.name, q->q.name_len, q->q.qtype, q->q.qclass);
    if (q->edns.present)
        dns_builder_opt(&b, udp_max, (uint8_t)ext, 0, q->edns.do_bit);
    return dns_builder_finish(&b);
}

enum dns_action dns_server_process(struct dns_zone *z, const uint8_t *pkt, size_t len,
                                   const struct svcd_ip *client, bool tcp, bool allow_forward,
                                   uint16_t udp_max, uint8_t *out, size_t *out_len,
                                   struct dns_process_info *info)
{
    struct dns_query *q = &info->query;
    memset(info, 0, offsetof(struct dns_process_info, chase_name));
    info->chase_len = 0;
    *out_len = 0;
    if (udp_max < 512)
        udp_max = 512;

    int rc = dns_query_parse(pkt, len, q);
    if (rc < 0)
        return DNS_ACT_DROP;
    size_t limit = 512;
    if (tcp)
        limit = 65535;
    else if (q->edns.present)
        limit = q->edns.udp_size < 512 ? 512 : (q->edns.udp_size > udp_max ? udp_max
                                                                           : q->edns.udp_size);
    info->limit = limit;

    if (rc == 0 && q->edns.present && q->edns.version != 0)
        rc = DNS_R_BADVERS;
    if (rc == 0) {
        uint16_t t = q->q.qtype;
        if (q->q.qclass != DNS_C_IN && q->q.qclass != DNS_C_ANY)
            rc = DNS_R_REFUSED;
        else if (t == DNS_T_AXFR || t == DNS_T_IXFR)
            rc = DNS_R_REFUSED;
        else if (t == DNS_T_OPT)
            rc = DNS_R_FORMERR;
        else if (t == 253 || t == 254)       /* MAILB, MAILA */
            rc = DNS_R_NOTIMP;
    }
    if (rc > 0) {
        info->rcode = rc;
        *out_len = srv_reply_error(q, rc, allow_forward, udp_max, limit, out);
        return DNS_ACT_REPLY;
    }

    struct dns_builder b;
    dns_builder_init(&b, out, 65535, limit, q->hdr.id, srv_reply_flags(q, allow_forward));
    dns_builder_question(&b, q->q.name, q->q.name_len, q->q.qtype, q->q.qclass);
    if (q->edns.present)
        dns_builder_reserve(&b, 11);
    struct dns_zone_result res;
    struct dns_question qq = q->q;
    /* autopath may need the forwarder: only for clients allowed to use it */
    enum dns_zone_status zs = dns_zone_answer(z, &qq, allow_forward ? client : NULL, &b, &res);
    if (zs == DNS_ZONE_NOT_AUTH) {
        int frc = allow_forward ? DNS_R_SERVFAIL : DNS_R_REFUSED;
        info->rcode = frc;
        *out_len = srv_reply_error(q, frc, allow_forward, udp_max, limit, out);
        return allow_forward ? DNS_ACT_FORWARD : DNS_ACT_REPLY;
    }
    info->rcode = res.rcode;
    info->truncated = res.truncated;
    if (res.truncated)
        dns_builder_set_flags(&b, dns_builder_flags(&b) | DNS_F_TC);
    dns_builder_unreserve(&b);
    if (q->edns.present)
        dns_builder_opt(&b, udp_max, 0, 0, q->edns.do_bit);
    *out_len = dns_builder_finish(&b);
    if (res.external_cname && allow_forward && !res.truncated) {
        memcpy(info->chase_name, res.cname_target, res.cname_len);
        info->chase_len = res.cname_len;
        return DNS_ACT_CHASE;
    }
    return DNS_ACT_REPLY;
}

/* ---- server state -------------------------------------------------------- */

struct dns_udp {
    struct dns_server *srv;
    int fd;
    struct event *ev;
    struct mmsghdr in_msgs[DNS_UDP_BATCH];
    struct iovec in_iov[DNS_UDP_BATCH];
    struct sockaddr_storage in_addr[DNS_UDP_BATCH];
    bool pktinfo;                    /* wildcard bind: answer from the
                                        address the query was sent to */
    _Alignas(struct cmsghdr) uint8_t in_ctl[DNS_UDP_BATCH][DNS_UDP_CTL];
    _Alignas(struct cmsghdr) uint8_t out_ctl[DNS_UDP_BATCH][DNS_UDP_CTL];
    struct mmsghdr out_msgs[DNS_UDP_BATCH];
    struct iovec out_iov[DNS_UDP_BATCH];
    uint8_t (*in_buf)[DNS_UDP_IN_MAX];
    uint8_t *out_buf;                /* DNS_UDP_BATCH slots of out_slot */
    size_t out_slot;
};

struct dns_tcp_conn {
    TAILQ_ENTRY(dns_tcp_conn) link;  /* oldest activity first */
    struct dns_server *srv;
    struct bufferevent *bev;
    struct svcd_ip peer;
    unsigned pending;                /* forwarded queries in flight */
    bool closed;                     /* bev gone; freed when pending == 0 */
    bool throttled;                  /* reading paused: output backlog */
};
TAILQ_HEAD(dns_tcp_list, dns_tcp_conn);

enum fwd_mode { FWD_PLAIN, FWD_CHASE };

/* One forwarded query waiting for the forwarder. */
struct dns_fwd_ctx {
    struct dns_fwd_ctx *prev, *next;
    struct dns_server *srv;
    enum fwd_mode mode;
    struct dns_udp *udp;             /* UDP: socket and peer */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    _Alignas(struct cmsghdr) uint8_t ctl[DNS_UDP_CTL]; /* source address to answer from */
    size_t ctl_len;
    struct dns_tcp_conn *conn;       /* TCP */
    size_t limit;
    struct dns_query q;
    double t0;                       /* when the query arrived (monotonic s) */
    /* FWD_CHASE: the CNAME answer already built */
    uint8_t *cname_reply;
    size_t cname_len;
};

/* Label values of the duration histograms: the common query types, then
 * "other"; rcodes 0-5 by name, then "other". */
#define SRV_QTYPES 11
#define SRV_RCODES 7
static const char *const srv_qtype_names[SRV_QTYPES] = {
    "A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "MX", "NS", "SOA", "ANY", "other" };
static const uint16_t srv_qtype_codes[SRV_QTYPES - 1] = {
    1, 28, 33, 12, 16, 5, 15, 2, 6, 255 };
static const char *const srv_rcode_names[SRV_RCODES] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other" };

struct dns_metrics {
    struct metric *q_udp, *q_tcp;
    struct metric *rcode[6], *rcode_other;
    struct metric *truncated, *forwarded, *dropped, *names, *tcp_conns;
    /* svcd_dns_request_duration_seconds{qtype,rcode}, registered on first use */
    struct metric *duration[SRV_QTYPES][SRV_RCODES];
};

struct dns_server {
    struct event_base *base;
    struct store *st;
    struct svcd_config cfg;
    struct dns_zone *zone;
    struct dns_forwarder *fwd;
    struct dns_udp *udp[SVCD_MAX_LISTEN];
    size_t n_udp;
    struct evconnlistener *tcp[SVCD_MAX_LISTEN];
    size_t n_tcp;
    struct dns_tcp_list conns;
    size_t n_conns;
    struct dns_fwd_ctx *fwd_list;
    uint8_t *scratch;                /* 65535 + 2 bytes: forwarded replies */
    uint8_t *tcp_query, *tcp_reply;  /* 65535 bytes each */
    struct dns_metrics m;
    double t_recv;                   /* arrival of the query being handled */
};

/* ---- metrics ------------------------------------------------------------ */

static void srv_metrics_init(struct dns_metrics *m)
{
    const char *const *names = srv_rcode_names;
    const char *qh = "DNS queries received, by transport";
    m->q_udp = metric_counter("svcd_dns_queries_total", "transport=\"udp\"", qh);
    m->q_tcp = metric_counter("svcd_dns_queries_total", "transport=\"tcp\"", qh);
    char lab[64];
    for (int i = 0; i < 6; i++) {
        snprintf(lab, sizeof(lab), "rcode=\"%s\"", names[i]);
        m->rcode[i] = metric_counter("svcd_dns_responses_total", lab,
                                     "DNS responses sent, by rcode");
    }
    m->rcode_other = metric_counter("svcd_dns_responses_total", "rcode=\"other\"",
                                    "DNS responses sent, by rcode");
    m->truncated = metric_counter("svcd_dns_truncated_total", NULL,
                                  "UDP responses sent with TC=1");
    m->forwarded = metric_counter("svcd_dns_forwarded_total", NULL,
                                  "Queries handed to the forwarder");
    m->dropped = metric_counter("svcd_dns_dropped_total", NULL,
                                "Packets dropped without reply (unparsable, responses)");
    m->names = metric_gauge("svcd_dns_zone_names", NULL, "Owner names in the cluster zone");
    m->tcp_conns = metric_gauge("svcd_dns_tcp_connections", NULL, "Open DNS TCP connections");
}

static double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts a response by rcode and observes the time since the query arrived
 * (t0) in the histogram of its query type and rcode. */
static void srv_count_answer(struct dns_server *s, uint16_t qtype, int rcode, double t0)
{
    if (rcode >= 0 && rcode < 6)
        metric_add(s->m.rcode[rcode], 1);
    else
        metric_add(s->m.rcode_other, 1);
    size_t qi = SRV_QTYPES - 1, ri = (rcode >= 0 && rcode < 6) ? (size_t)rcode : SRV_RCODES - 1;
    for (size_t i = 0; i < SRV_QTYPES - 1; i++) {
        if (srv_qtype_codes[i] == qtype) {
            qi = i;
            break;
        }
    }
    struct metric **h = &s->m.duration[qi][ri];
    if (!*h) {
        char lab[64];
        snprintf(lab, sizeof(lab), "qtype=\"%s\",rcode=\"%s\"", srv_qtype_names[qi],
                 srv_rcode_names[ri]);
        *h = metric_histogram("svcd_dns_request_duration_seconds", lab,
                              "Time from a DNS query's arrival to its response being sent, "
                              "by query type and rcode (forwarded queries included)");
    }
    metric_observe(*h, srv_now() - t0);
}

/* ---- helpers ------------------------------------------------------------- */

static void srv_sockaddr_ip(const struct sockaddr_storage *sa, struct svcd_ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (sa->ss_family == AF_INET) {
        ip->family = AF_INET;
        memcpy(&ip->u.v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            ip->family = AF_INET;
            memcpy(&ip->u.v4, a->s6_addr + 12, 4);
        } else {
            ip->family = AF_INET6;
            memcpy(&ip->u.v6, a, 16);
        }
    }
}

static socklen_t srv_hostport_sockaddr(const struct svcd_hostport *hp,
                                       struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (hp->ip.family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(hp->port);
        memcpy(&s6->sin6_addr, &hp->ip.u.v6, 16);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(hp->port);
    memcpy(&s4->sin_addr, &hp->ip.u.v4, 4);
    return sizeof(*s4);
}

static bool srv_allowed(struct dns_server *s, const struct svcd_ip *client)
{
    return s->fwd && dns_forwarder_allowed(s->fwd, client);
}

/* Fits a forwarded answer to the client's limit: as is when it fits, else
 * the header and question with TC=1 (+ OPT when the client sent one). */
static size_t srv_fit_answer(struct dns_server *s, const struct dns_query *q, size_t limit,
                             const uint8_t *answer, size_t alen, uint8_t *out)
{
    if (alen <= limit) {
        memcpy(out, answer, alen);
        return alen;
    }
    struct dns_cursor cur;
    struct dns_header h;
    dns_cursor_init(&cur, answer, alen);
    if (dns_header_parse(&cur, &h) < 0)
        h.flags = DNS_F_QR | DNS_R_SERVFAIL;
    uint16_t flags = h.flags;
    struct dns_builder b;
    dns_builder_init(&b, out, 65535, limit, q->hdr.id, (uint16_t)(flags | DNS_F_TC));
    dns_builder_question(&b, q->q.name, q->q.name_len, q->q.qtype, q->q.qclass);
    if (q->edns.present)
        dns_builder_opt(&b, s->cfg.dns_udp_max, 0, 0, q->edns.do_bit);
    metric_add(s->m.truncated, 1);
    return dns_builder_finish(&b);
}

/* Appends the upstream answer to the CNAME reply built locally: the
 * answer-section records of upstream go after our CNAME, rcode from
 * upstream. Returns the new length in out (falls back to the CNAME reply). */
static size_t srv_merge_chase(struct dns_server *s, struct dns_fwd_ctx *c,
                              const uint8_t *answer, size_t alen, uint8_t *out)
{
    struct dns_cursor cur;
    struct dns_header uh, h;
    struct dns_question uq;
    struct dns_rr rr;

    memcpy(out, c->cname_reply, c->cname_len);
    if (!answer)
        return c->cname_len;
    dns_cursor_init(&cur, answer, alen);
    if (dns_header_parse(&cur, &uh) < 0 || uh.counts[0] != 1 ||
        dns_question_parse(&cur, &uq) < 0)
        return c->cname_len;

    /* rebuild: header + question + our answer records, then upstream's */
    struct dns_builder b;
    struct dns_cursor mc;
    dns_cursor_init(&mc, c->cname_reply, c->cname_len);
    dns_header_parse(&mc, &h);
    uint16_t flags = (uint16_t)((h.flags & ~0x000fu & ~DNS_F_AA) | DNS_RCODE(uh.flags));
    dns_builder_init(&b, out, 65535, c->limit, h.id, flags);
    struct dns_question q0;
    if (dns_question_parse(&mc, &q0) < 0)
        goto fallback;
    dns_builder_question(&b, q0.name, q0.name_len, q0.qtype, q0.qclass);
    if (c->q.edns.present)
        dns_builder_reserve(&b, 11);
    for (unsigned i = 0; i < h.counts[1]; i++) {
        if (dns_rr_parse(&mc, &rr) < 0 ||
            dns_builder_copy_rr(&b, DNS_SEC_ANSWER, c->cname_reply, c->cname_len, &rr) < 0)
            goto fallback;
    }
    for (unsigned i = 0; i < uh.counts[1]; i++) {
        if (dns_rr_parse(&cur, &rr) < 0)
            break;
        if (dns_builder_copy_rr(&b, DNS_SEC_ANSWER, answer, alen, &rr) < 0) {
            if (b.full)
                dns_builder_set_flags(&b, dns_builder_flags(&b) | DNS_F_TC);
            break;
        }
    }
    dns_builder_unreserve(&b);
    if (c->q.edns.present)
        dns_builder_opt(&b, s->cfg.dns_udp_max, 0, 0, c->q.edns.do_bit);
    return dns_builder_finish(&b);
fallback:
    memcpy(out, c->cname_reply, c->cname_len);
    return c->cname_len;
}

/* Control data for a reply: the query's destination address as the
 * source (IP_PKTINFO / IPV6_PKTINFO), for sockets bound to a wildcard.
 * Returns its length (0 when there is none). */
static size_t srv_reply_ctl(const struct msghdr *in, uint8_t *out)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_control = out;
    mh.msg_controllen = DNS_UDP_CTL;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)in); cm;
         cm = CMSG_NXTHDR((struct msghdr *)in, cm)) {
        struct cmsghdr *o = CMSG_FIRSTHDR(&mh);
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo pi, po;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            memset(&po, 0, sizeof(po));
            po.ipi_spec_dst = pi.ipi_addr;
            o->cmsg_level = IPPROTO_IP;
            o->cmsg_type = IP_PKTINFO;
            o->cmsg_len = CMSG_LEN(sizeof(po));
            memcpy(CMSG_DATA(o), &po, sizeof(po));
            return CMSG_SPACE(sizeof(po));
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
            cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            o->cmsg_level = IPPROTO_IPV6;
            o->cmsg_type = IPV6_PKTINFO;
            o->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(o), &pi, sizeof(pi));
            return CMSG_SPACE(sizeof(pi));
        }
    }
    return 0;
}

/* ---- forwarding ---------------------------------------------------------- */

static void srv_tcp_send(struct dns_tcp_conn *c, const uint8_t *msg, size_t len);
static void srv_tcp_conn_release(struct dns_tcp_conn *c);

static void srv_fwd_ctx_free(struct dns_fwd_ctx *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->fwd_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->cname_reply);
    free(c);
}

static void srv_fwd_deliver(struct dns_fwd_ctx *c, const uint8_t *msg, size_t len)
{
    struct dns_server *s = c->srv;
    struct dns_header h;
    struct dns_cursor cur;
    dns_cursor_init(&cur, msg, len);
    if (dns_header_parse(&cur, &h) == 0)
        srv_count_answer(s, c->q.q.qtype, DNS_RCODE(h.flags), c->t0);
    if (c->conn) {
        srv_tcp_send(c->conn, msg, len);
        c->conn->pending--;
        srv_tcp_conn_release(c->conn);
    } else if (c->udp) {
        struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
        struct msghdr mh = { .msg_name = &c->peer, .msg_namelen = c->peer_len,
                             .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = c->ctl_len ? c->ctl : NULL,
                             .msg_controllen = c->ctl_len };
        if (sendmsg(c->udp->fd, &mh, MSG_DONTWAIT) < 0)
            log_debug(SRV_MOD, "udp sendmsg: %s", strerror(errno));
    }
}

static void srv_fwd_done(void *arg, const uint8_t *answer, size_t len)
{
    struct dns_fwd_ctx *c = arg;
    struct dns_server *s = c->srv;
    uint8_t *out = s->scratch + 2;
    size_t n;
    if (c->mode == FWD_CHASE) {
        n = srv_merge_chase(s, c, (answer && len >= DNS_HEADER_LEN) ? answer : NULL, len, out);
    } else if (!answer || len < DNS_HEADER_LEN) {
        n = srv_reply_error(&c->q, DNS_R_SERVFAIL, true, s->cfg.dns_udp_max, c->limit, out);
    } else {
        n = srv_fit_answer(s, &c->q, c->limit, answer, len, out);
    }
    srv_fwd_deliver(c, out, n);
    srv_fwd_ctx_free(c);
}

/* Starts forwarding for one query. For FWD_PLAIN pkt is the client query;
 * for FWD_CHASE a query for the CNAME target is made. Returns 0, or -1
 * (nothing started; the caller sends its fallback reply). */
static int srv_forward(struct dns_server *s, enum fwd_mode mode, const uint8_t *pkt, size_t len,
                       const struct dns_process_info *info, const uint8_t *reply,
                       size_t reply_len, struct dns_udp *u,
                       const struct sockaddr_storage *peer, socklen_t peer_len,
                       const uint8_t *ctl, size_t ctl_len, struct dns_tcp_conn *conn)
{
    struct dns_fwd_ctx *c = calloc(1, sizeof(*c));
    uint8_t qbuf[DNS_HEADER_LEN + DNS_NAME_MAX + 4 + 11];
    if (!c)
        return -1;
    c->srv = s;
    c->mode = mode;
    c->limit = info->limit;
    c->q = info->query;
    c->t0 = s->t_recv;
    c->udp = u;
    if (peer) {
        memcpy(&c->peer, peer, peer_len);
        c->peer_len = peer_len;
    }
    if (ctl && ctl_len <= sizeof(c->ctl)) {
        memcpy(c->ctl, ctl, ctl_len);
        c->ctl_len = ctl_len;
    }
    c->conn = conn;
    if (mode == FWD_CHASE) {
        c->cname_reply = malloc(reply_len);
        if (!c->cname_reply) {
            free(c);
            return -1;
        }
        memcpy(c->cname_reply, reply, reply_len);
        c->cname_len = reply_len;
        struct dns_builder b;
        dns_builder_init(&b, qbuf, sizeof(qbuf), sizeof(qbuf), info->query.hdr.id, DNS_F_RD);
        dns_builder_question(&b, info->chase_name, info->chase_len, info->query.q.qtype,
                             DNS_C_IN);
        if (info->query.edns.present)
            dns_builder_opt(&b, s->cfg.dns_udp_max, 0, 0, info->query.edns.do_bit);
        len = dns_builder_finish(&b);
        pkt = qbuf;
    }
    c->next = s->fwd_list;
    if (c->next)
        c->next->prev = c;
    s->fwd_list = c;
    if (conn)
        conn->pending++;
    metric_add(s->m.forwarded, 1);
    if (dns_forwarder_query(s->fwd, pkt, len, srv_fwd_done, c) < 0) {
        if (conn)
            conn->pending--;
        srv_fwd_ctx_free(c);
        return -1;
    }
    return 0;
}

/* ---- UDP ----------------------------------------------------------------- */

static void srv_udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct dns_udp *u = arg;
    struct dns_server *s = u->srv;
    struct dns_process_info info;

    for (int round = 0; round < DNS_UDP_ROUNDS; round++) {
        for (int i = 0; i < DNS_UDP_BATCH; i++) {
            u->in_iov[i].iov_base = u->in_buf[i];
            u->in_iov[i].iov_len = DNS_UDP_IN_MAX;
            memset(&u->in_msgs[i].msg_hdr, 0, sizeof(u->in_msgs[i].msg_hdr));
            u->in_msgs[i].msg_hdr.msg_iov = &u->in_iov[i];
            u->in_msgs[i].msg_hdr.msg_iovlen = 1;
            u->in_msgs[i].msg_hdr.msg_name = &u->in_addr[i];
            u->in_msgs[i].msg_hdr.msg_namelen = sizeof(u->in_addr[i]);
            if (u->pktinfo) {
                u->in_msgs[i].msg_hdr.msg_control = u->in_ctl[i];
                u->in_msgs[i].msg_hdr.msg_controllen = DNS_UDP_CTL;
            }
        }
        int n = recvmmsg(fd, u->in_msgs, DNS_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        metric_add(s->m.q_udp, n);
        s->t_recv = srv_now();
        int nout = 0;
        for (int i = 0; i < n; i++) {
            struct msghdr *mh = &u->in_msgs[i].msg_hdr;
            if (mh->msg_flags & MSG_TRUNC) {
                metric_add(s->m.dropped, 1);
                continue;
            }
            struct svcd_ip client;
            srv_sockaddr_ip(&u->in_addr[i], &client);
            uint8_t *out = u->out_buf + (size_t)nout * u->out_slot;
            size_t olen = 0;
            bool allow = srv_allowed(s, &client);
            /* out slots are out_slot bytes; process writes within the
             * limit it computes (<= dns_udp_max <= out_slot) */
            enum dns_action act = dns_server_process(s->zone, u->in_buf[i], u->in_msgs[i].msg_len,
                                                     &client, false, allow, s->cfg.dns_udp_max,
                                                     out, &olen, &info);
            if (act == DNS_ACT_DROP) {
                metric_add(s->m.dropped, 1);
                continue;
            }
            size_t ctl_len = u->pktinfo ? srv_reply_ctl(mh, u->out_ctl[nout]) : 0;
            if (act == DNS_ACT_FORWARD || act == DNS_ACT_CHASE) {
                if (srv_forward(s, act == DNS_ACT_FORWARD ? FWD_PLAIN : FWD_CHASE,
                                u->in_buf[i], u->in_msgs[i].msg_len, &info, out, olen, u,
                                &u->in_addr[i], mh->msg_namelen, u->out_ctl[nout], ctl_len,
                                NULL) == 0)
                    continue;
                /* could not forward: send the fallback already in out */
            }
            if (info.truncated)
                metric_add(s->m.truncated, 1);
            srv_count_answer(s, info.query.q.qtype, info.rcode, s->t_recv);
            u->out_iov[nout].iov_base = out;
            u->out_iov[nout].iov_len = olen;
            memset(&u->out_msgs[nout].msg_hdr, 0, sizeof(u->out_msgs[nout].msg_hdr));
            u->out_msgs[nout].msg_hdr.msg_iov = &u->out_iov[nout];
            u->out_msgs[nout].msg_hdr.msg_iovlen = 1;
            u->out_msgs[nout].msg_hdr.msg_name = &u->in_addr[i];
            u->out_msgs[nout].msg_hdr.msg_namelen = mh->msg_namelen;
            if (ctl_len) {
                u->out_msgs[nout].msg_hdr.msg_control = u->out_ctl[nout];
                u->out_msgs[nout].msg_hdr.msg_controllen = ctl_len;
            }
            nout++;
        }
        int sent = 0;
        while (sent < nout) {
            int k = sendmmsg(fd, u->out_msgs + sent, (unsigned)(nout - sent), MSG_DONTWAIT);
            if (k <= 0) {
                if (k < 0 && errno == EINTR)
                    continue;
                /* EAGAIN or a per-destination error: skip one and go on */
                sent++;
                continue;
            }
            sent += k;
        }
        if (n < DNS_UDP_BATCH)
            break;
    }
    metric_set(s->m.names, (double)dns_zone_names(s->zone));
}

static void srv_udp_free(struct dns_udp *u)
{
    if (!u)
        return;
    if (u->ev)
        event_free(u->ev);
    if (u->fd >= 0)
        close(u->fd);
    free(u->in_buf);
    free(u->out_buf);
    free(u);
}

static struct dns_udp *srv_udp_new(struct dns_server *s, const struct svcd_hostport *hp)
{
    struct dns_udp *u = calloc(1, sizeof(*u));
    struct sockaddr_storage ss;
    socklen_t sl = srv_hostport_sockaddr(hp, &ss);
    int one = 1;
    if (!u)
        return NULL;
    u->srv = s;
    u->fd = -1;
    u->out_slot = s->cfg.dns_udp_max < 512 ? 512 : s->cfg.dns_udp_max;
    u->in_buf = malloc(sizeof(*u->in_buf) * DNS_UDP_BATCH);
    u->out_buf = malloc(u->out_slot * DNS_UDP_BATCH);
    if (!u->in_buf || !u->out_buf)
        goto fail;
    u->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0)
        goto fail;
    setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    int rcvbuf = 4 << 20;
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (bind(u->fd, (struct sockaddr *)&ss, sl) < 0)
        goto fail;
    /* a wildcard address answers from the address each query was sent to */
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
    if (ss.ss_family == AF_INET && hp->ip.u.v4.s_addr == htonl(INADDR_ANY)) {
        u->pktinfo = setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) == 0;
    } else if (ss.ss_family == AF_INET6 && memcmp(&hp->ip.u.v6, &any6, 16) == 0) {
        u->pktinfo = setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) == 0;
    }
    u->ev = event_new(s->base, u->fd, EV_READ | EV_PERSIST, srv_udp_read, u);
    if (!u->ev || event_add(u->ev, NULL) < 0)
        goto fail;
    return u;
fail:
    log_err(SRV_MOD, "udp %s: %s", hp->text, strerror(errno));
    srv_udp_free(u);
    return NULL;
}

/* ---- TCP ----------------------------------------------------------------- */

static void srv_tcp_close(struct dns_tcp_conn *c)
{
    struct dns_server *s = c->srv;
    if (c->closed)
        return;
    c->closed = true;
    bufferevent_free(c->bev);
    c->bev = NULL;
    TAILQ_REMOVE(&s->conns, c, link);
    s->n_conns--;
    metric_set(s->m.tcp_conns, (double)s->n_conns);
    if (c->pending == 0)
        free(c);
}

/* Frees a closed connection once its last forwarded answer is delivered. */
static void srv_tcp_conn_release(struct dns_tcp_conn *c)
{
    if (c->closed && c->pending == 0)
        free(c);
}

static void srv_tcp_send(struct dns_tcp_conn *c, const uint8_t *msg, size_t len)
{
    if (c->closed || len > 65535)
        return;
    uint8_t pfx[2] = { (uint8_t)(len >> 8), (uint8_t)len };
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, pfx, 2);
    evbuffer_add(out, msg, len);
}

static void srv_tcp_touch(struct dns_tcp_conn *c)
{
    struct dns_server *s = c->srv;
    TAILQ_REMOVE(&s->conns, c, link);
    TAILQ_INSERT_TAIL(&s->conns, c, link);
}

static void srv_tcp_read(struct bufferevent *bev, void *arg)
{
    struct dns_tcp_conn *c = arg;
    struct dns_server *s = c->srv;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct dns_process_info info;
    uint8_t *qbuf = s->tcp_query;
    uint8_t *reply = s->tcp_reply;

    srv_tcp_touch(c);
    for (;;) {
        uint8_t pfx[2];
        if (evbuffer_get_length(bufferevent_get_output(bev)) > DNS_TCP_OUT_MAX) {
            /* the client does not read its answers: wait for the output
             * to drain (srv_tcp_write) before reading more queries */
            bufferevent_disable(bev, EV_READ);
            c->throttled = true;
            break;
        }
        if (evbuffer_copyout(in, pfx, 2) < 2)
            break;
        size_t mlen = ((size_t)pfx[0] << 8) | pfx[1];
        if (mlen < DNS_HEADER_LEN) {
            srv_tcp_close(c);
            return;
        }
        if (evbuffer_get_length(in) < mlen + 2)
            break;
        evbuffer_drain(in, 2);
        evbuffer_remove(in, qbuf, mlen);
        metric_add(s->m.q_tcp, 1);
        s->t_recv = srv_now();
        size_t olen = 0;
        enum dns_action act = dns_server_process(s->zone, qbuf, mlen, &c->peer, true,
                                                 srv_allowed(s, &c->peer), s->cfg.dns_udp_max,
                                                 reply, &olen, &info);
        if (act == DNS_ACT_DROP) {
            metric_add(s->m.dropped, 1);
            srv_tcp_close(c);
            return;
        }
        if (act == DNS_ACT_FORWARD || act == DNS_ACT_CHASE) {
            /* the forwarder may answer synchronously and reuse scratch:
             * the query is no longer needed after this call */
            if (c->pending < DNS_TCP_PENDING_MAX &&
            srv_forward(s, act == DNS_ACT_FORWARD ? FWD_PLAIN : FWD_CHASE, qbuf, mlen,
                        &info, reply, olen, NULL, NULL, 0, NULL, 0, c) == 0) {
                if (c->closed)
                    return;
                continue;
            }
        }
        srv_count_answer(s, info.query.q.qtype, info.rcode, s->t_recv);
        srv_tcp_send(c, reply, olen);
    }
}

/* Output drained: resume reading if it was paused. */
static void srv_tcp_write(struct bufferevent *bev, void *arg)
{
    struct dns_tcp_conn *c = arg;
    if (!c->throttled)
        return;
    c->throttled = false;
    bufferevent_enable(bev, EV_READ);
    srv_tcp_read(bev, c);     /* queries already buffered */
}

static void srv_tcp_event(struct bufferevent *bev, short what, void *arg)
{
    struct dns_tcp_conn *c = arg;
    if ((what & BEV_EVENT_TIMEOUT) && c->pending > 0) {
        bufferevent_enable(bev, EV_READ | EV_WRITE);   /* answers still coming */
        return;
    }
    srv_tcp_close(c);
}

static void srv_tcp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct dns_server *s = arg;
    if (s->n_conns >= s->cfg.dns_tcp_max_conns) {
        struct dns_tcp_conn *old;
        TAILQ_FOREACH(old, &s->conns, link)
            if (old->pending == 0)
                break;
        if (!old) {
            close(fd);
            return;
        }
        srv_tcp_close(old);
    }
    struct dns_tcp_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->srv = s;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, sa, (size_t)salen < sizeof(ss) ? (size_t)salen : sizeof(ss));
    srv_sockaddr_ip(&ss, &c->peer);
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    struct timeval tv = { .tv_sec = s->cfg.dns_tcp_idle_ms / 1000,
                          .tv_usec = (s->cfg.dns_tcp_idle_ms % 1000) * 1000 };
    bufferevent_setcb(c->bev, srv_tcp_read, srv_tcp_write, srv_tcp_event, c);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_setwatermark(c->bev, EV_READ, 2, 65537 * 4);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&s->conns, c, link);
    s->n_conns++;
    metric_set(s->m.tcp_conns, (double)s->n_conns);
}

/* ---- lifetime ------------------------------------------------------------ */

void dns_server_free(struct dns_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_tcp; i++)
        evconnlistener_free(s->tcp[i]);
    for (size_t i = 0; i < s->n_udp; i++)
        srv_udp_free(s->udp[i]);
    /* cancels in-flight queries without calling back */
    dns_forwarder_free(s->fwd);
    while (s->fwd_list) {
        struct dns_fwd_ctx *c = s->fwd_list;
        if (c->conn)
            c->conn->pending--;
        struct dns_tcp_conn *conn = c->conn;
        srv_fwd_ctx_free(c);
        if (conn)
            srv_tcp_conn_release(conn);
    }
    while (!TAILQ_EMPTY(&s->conns))
        srv_tcp_close(TAILQ_FIRST(&s->conns));
    dns_zone_free(s->zone);
    free(s->scratch);
    free(s->tcp_query);
    free(s->tcp_reply);
    free(s);
}

struct dns_server *dns_server_new(struct event_base *base, struct store *st,
                                  const struct svcd_config *cfg)
{
    struct dns_server *s = calloc(1, sizeof(*s));
    if (!s) {
        log_err(SRV_MOD, "out of memory");
        return NULL;
    }
    s->base = base;
    s->st = st;
    s->cfg = *cfg;
    TAILQ_INIT(&s->conns);
    srv_metrics_init(&s->m);
    s->scratch = malloc(65535 + 2);
    s->tcp_query = malloc(65535);
    s->tcp_reply = malloc(65535);
    if (!s->scratch || !s->tcp_query || !s->tcp_reply)
        goto fail;
    s->zone = dns_zone_new(st, cfg);
    if (!s->zone)
        goto fail;
    s->fwd = dns_forwarder_new(base, cfg);
    if (!s->fwd)
        log_warn(SRV_MOD, "no forwarder: names outside %s will be refused", cfg->cluster_domain);
    for (size_t i = 0; i < cfg->n_dns_listen; i++) {
        const struct svcd_hostport *hp = &cfg->dns_listen[i];
        struct dns_udp *u = srv_udp_new(s, hp);
        if (!u)
            goto fail;
        s->udp[s->n_udp++] = u;
        struct sockaddr_storage ss;
        socklen_t sl = srv_hostport_sockaddr(hp, &ss);
        struct evconnlistener *l = evconnlistener_new_bind(
            base, srv_tcp_accept, s,
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
            (ss.ss_family == AF_INET6 ? LEV_OPT_BIND_IPV6ONLY : 0),
            DNS_TCP_BACKLOG, (struct sockaddr *)&ss, (int)sl);
        if (!l) {
            log_err(SRV_MOD, "tcp %s: %s", hp->text, strerror(errno));
            goto fail;
        }
        s->tcp[s->n_tcp++] = l;
        log_info(SRV_MOD, "listening on %s (udp, tcp)", hp->text);
    }
    metric_set(s->m.names, (double)dns_zone_names(s->zone));
    return s;
fail:
    dns_server_free(s);
    return NULL;
}

void dns_server_flush_cache(struct dns_server *s)
{
    if (s && s->fwd)
        dns_forwarder_flush(s->fwd);
}

uint64_t dns_server_generation(const struct dns_server *s)
{
    return dns_zone_generation(s->zone);
}
