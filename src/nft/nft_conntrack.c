/*
 * nft_conntrack: asynchronous deletion of the UDP conntrack entries of
 * removed endpoints (see include/svcd/nft_conntrack.h).
 *
 * States of the one socket: idle -> dumping (one filtered dump for the job
 * at the head of the queue; matching reply tuples are collected) ->
 * deleting (DELETE messages sent in batches, ACKs counted) -> idle, next
 * job. Messages are told apart by sequence number: the dump has its own,
 * every DELETE gets the next one.
 */
#include "svcd/nft_conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "svcd/log.h"
#include "svcd/metrics.h"
#include "svcd/vec.h"

#define MOD "conntrack"
/* Kernel ABI (net/netfilter/nf_internals.h): which tuple fields a
 * CTA_FILTER_{ORIG,REPLY}_FLAGS filter compares. */
#define CT_FILTER_F_IP_SRC (1u << 0)
#define CT_FILTER_F_PROTO_NUM (1u << 3)
#define CT_FILTER_F_PROTO_SRC_PORT (1u << 4)

#define CT_BUF_SIZE (64 * 1024)    /* DELETE batches */
/* Receive buffer: the kernel sizes each dump part to the largest buffer we
 * read with, and fills a part by walking the conntrack hash until it is
 * full, inside our recv(). A small buffer keeps each walk (and so each
 * slice of the loop) short. */
#define CT_RECV_SIZE (16 * 1024)
#define CT_RECVS_PER_SLICE 1       /* receive buffers handled per callback */
#define CT_DELETES_PER_BATCH 256   /* DELETE messages per sendmsg */
#define CT_MAX_UNACKED 1024        /* DELETEs in flight (their ACKs must fit) */

struct ct_job {
    int af;
    uint8_t addr[16];
    uint16_t port_be;
};

struct ct_hit {
    uint8_t *data;      /* CTA_TUPLE_REPLY payload */
    uint16_t len;
};

struct nft_ct_cleaner {
    struct event_base *base;
    struct mnl_socket *nl;
    struct event *ev;
    unsigned portid;
    uint32_t seq;
    struct metric *m_deleted;
    uint64_t deleted;
    char *buf;
    /* queue (jobs[head..n)) */
    struct ct_job *jobs;
    size_t head, n, cap;
    /* the job in progress */
    bool dumping, busy;
    struct ct_job cur;
    uint32_t dump_seq;
    double dump_t0;
    struct ct_hit *hits;
    size_t n_hits, cap_hits, next_hit;
    size_t unacked;
};

/* ---- matching ------------------------------------------------------------- */

/* True when the nested CTA_TUPLE_* attribute has src addr:port and UDP. */
static bool ct_tuple_matches(const struct nlattr *tuple, const struct ct_job *m)
{
    const struct nlattr *a, *b;
    bool ip_ok = false, proto_ok = false, port_ok = false;
    mnl_attr_for_each_nested(a, tuple) {
        int t = mnl_attr_get_type(a);
        if (t == CTA_TUPLE_IP) {
            mnl_attr_for_each_nested(b, a) {
                int bt = mnl_attr_get_type(b);
                if (m->af == AF_INET && bt == CTA_IP_V4_SRC && mnl_attr_get_payload_len(b) == 4)
                    ip_ok = memcmp(mnl_attr_get_payload(b), m->addr, 4) == 0;
                if (m->af == AF_INET6 && bt == CTA_IP_V6_SRC && mnl_attr_get_payload_len(b) == 16)
                    ip_ok = memcmp(mnl_attr_get_payload(b), m->addr, 16) == 0;
            }
        } else if (t == CTA_TUPLE_PROTO) {
            mnl_attr_for_each_nested(b, a) {
                int bt = mnl_attr_get_type(b);
                if (bt == CTA_PROTO_NUM && mnl_attr_get_payload_len(b) >= 1)
                    proto_ok = mnl_attr_get_u8(b) == IPPROTO_UDP;
                if (bt == CTA_PROTO_SRC_PORT && mnl_attr_get_payload_len(b) >= 2)
                    port_ok = mnl_attr_get_u16(b) == m->port_be;
            }
        }
    }
    return ip_ok && proto_ok && port_ok;
}

/* True when the original direction's destination is the endpoint itself
 * (a direct flow to the pod, not NATed from a VIP): those are left alone. */
static bool ct_orig_dst_is(const struct nlattr *tuple, const struct ct_job *m)
{
    const struct nlattr *a, *b;
    mnl_attr_for_each_nested(a, tuple) {
        if (mnl_attr_get_type(a) != CTA_TUPLE_IP)
            continue;
        mnl_attr_for_each_nested(b, a) {
            int bt = mnl_attr_get_type(b);
            if (m->af == AF_INET && bt == CTA_IP_V4_DST && mnl_attr_get_payload_len(b) == 4)
                return memcmp(mnl_attr_get_payload(b), m->addr, 4) == 0;
            if (m->af == AF_INET6 && bt == CTA_IP_V6_DST && mnl_attr_get_payload_len(b) == 16)
                return memcmp(mnl_attr_get_payload(b), m->addr, 16) == 0;
        }
    }
    return false;
}

/* One dumped entry: keep its reply tuple if it is NATed to the endpoint.
 * The kernel already filtered on the reply tuple; the check is repeated
 * here so that a kernel without CTA_FILTER (which dumps everything) gives
 * the same result. */
static void ct_on_entry(struct nft_ct_cleaner *c, const struct nlmsghdr *nlh)
{
    const struct nlattr *a, *orig = NULL, *reply = NULL;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG)
            orig = a;
        else if (mnl_attr_get_type(a) == CTA_TUPLE_REPLY)
            reply = a;
    }
    if (!reply || !ct_tuple_matches(reply, &c->cur) || (orig && ct_orig_dst_is(orig, &c->cur)))
        return;
    if (VEC_RESERVE(c->hits, c->n_hits, c->cap_hits, 16) < 0)
        return;
    uint16_t len = (uint16_t)mnl_attr_get_payload_len(reply);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, mnl_attr_get_payload(reply), len);
    c->hits[c->n_hits].data = copy;
    c->hits[c->n_hits].len = len;
    c->n_hits++;
}

/* ---- messages ------------------------------------------------------------- */

static struct nlmsghdr *ct_msg(char *buf, uint16_t type, uint16_t flags, int af, uint32_t seq)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
    nlh->nlmsg_flags = NLM_F_REQUEST | flags;
    nlh->nlmsg_seq = seq;
    struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
    nfg->nfgen_family = (uint8_t)af;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    return nlh;
}

/* conntrack -L -p udp --reply-src ADDR --reply-port-src PORT: a dump the
 * kernel filters on the reply tuple (CTA_TUPLE_REPLY + CTA_FILTER). */
static double ct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int ct_send_dump(struct nft_ct_cleaner *c)
{
    c->dump_t0 = ct_now_ms();
    c->dump_seq = ++c->seq;
    struct nlmsghdr *nlh = ct_msg(c->buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, c->cur.af, c->dump_seq);
    struct nlattr *tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
    struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
    if (c->cur.af == AF_INET)
        mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, c->cur.addr);
    else
        mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, c->cur.addr);
    mnl_attr_nest_end(nlh, ip);
    struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
    mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_UDP);
    mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, c->cur.port_be);
    mnl_attr_nest_end(nlh, proto);
    mnl_attr_nest_end(nlh, tuple);
    struct nlattr *filter = mnl_attr_nest_start(nlh, CTA_FILTER);
    mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS,
                     CT_FILTER_F_IP_SRC | CT_FILTER_F_PROTO_NUM | CT_FILTER_F_PROTO_SRC_PORT);
    mnl_attr_nest_end(nlh, filter);
    return mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

static void ct_hits_clear(struct nft_ct_cleaner *c)
{
    for (size_t i = 0; i < c->n_hits; i++)
        free(c->hits[i].data);
    c->n_hits = c->next_hit = 0;
}

/* Sends the next batch of DELETEs (conntrack -D with each entry's reply
 * tuple), several messages in one sendmsg. */
static void ct_send_deletes(struct nft_ct_cleaner *c)
{
    while (c->next_hit < c->n_hits && c->unacked < CT_MAX_UNACKED) {
        char *p = c->buf;
        size_t used = 0, k = 0;
        while (c->next_hit < c->n_hits && k < CT_DELETES_PER_BATCH &&
               c->unacked + k < CT_MAX_UNACKED) {
            const struct ct_hit *h = &c->hits[c->next_hit];
            size_t need = MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct nfgenmsg)) +
                          MNL_ALIGN(sizeof(struct nlattr)) + MNL_ALIGN(h->len);
            if (used + need > CT_BUF_SIZE)
                break;
            struct nlmsghdr *nlh = ct_msg(p + used, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, c->cur.af,
                                          ++c->seq);
            mnl_attr_put(nlh, CTA_TUPLE_REPLY | NLA_F_NESTED, h->len, h->data);
            used += nlh->nlmsg_len;
            c->next_hit++;
            k++;
        }
        if (k == 0)
            break;
        if (mnl_socket_sendto(c->nl, p, used) < 0) {
            log_debug(MOD, "sending %zu deletes: %s", k, strerror(errno));
            continue;      /* those entries stay; they time out by themselves */
        }
        c->unacked += k;
        break;             /* one batch per slice */
    }
}

static void ct_job_done(struct nft_ct_cleaner *c);

/* Starts the next queued job if the socket is free. */
static void ct_start(struct nft_ct_cleaner *c)
{
    while (!c->busy && c->head < c->n) {
        c->cur = c->jobs[c->head++];
        if (c->head == c->n)
            c->head = c->n = 0;
        c->busy = true;
        c->dumping = true;
        if (ct_send_dump(c) < 0) {
            log_warn(MOD, "conntrack dump request: %s", strerror(errno));
            c->dumping = false;
            ct_job_done(c);
        }
    }
}

static void ct_job_done(struct nft_ct_cleaner *c)
{
    ct_hits_clear(c);
    c->busy = false;
    c->dumping = false;
}

/* After each slice: move the job forward. */
static void ct_advance(struct nft_ct_cleaner *c)
{
    if (!c->busy || c->dumping)
        return;
    if (c->next_hit < c->n_hits)
        ct_send_deletes(c);
    if (c->next_hit >= c->n_hits && c->unacked == 0) {
        ct_job_done(c);
        ct_start(c);
    }
}

static void ct_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct nft_ct_cleaner *c = arg;
    (void)fd; (void)what;
    for (int r = 0; r < CT_RECVS_PER_SLICE; r++) {
        ssize_t n = recv(mnl_socket_get_fd(c->nl), c->buf, CT_RECV_SIZE, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            /* ENOBUFS: ACKs or dump parts were lost; finish this job */
            log_warn(MOD, "conntrack socket: %s", strerror(errno));
            c->unacked = 0;
            c->next_hit = c->n_hits;
            c->dumping = false;
            break;
        }
        int len = (int)n;
        for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)c->buf; mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_type == NLMSG_DONE) {
                if (nlh->nlmsg_seq == c->dump_seq && c->dumping) {
                    c->dumping = false;
                    log_debug(MOD, "dump done in %.1f ms: %zu entries to delete",
                              ct_now_ms() - c->dump_t0, c->n_hits);
                }
            } else if (nlh->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
                if (nlh->nlmsg_seq == c->dump_seq && c->dumping) {
                    log_warn(MOD, "conntrack dump: %s", strerror(-e->error));
                    c->dumping = false;
                } else if (c->unacked > 0) {
                    c->unacked--;
                    if (e->error == 0) {
                        c->deleted++;
                        if (c->m_deleted)
                            metric_add(c->m_deleted, 1);
                    }
                }
            } else if (nlh->nlmsg_seq == c->dump_seq && c->dumping &&
                       (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK) {
                ct_on_entry(c, nlh);
            }
        }
    }
    ct_advance(c);
}

/* ---- API ------------------------------------------------------------------ */

struct nft_ct_cleaner *nft_ct_cleaner_new(struct event_base *base, struct metric *deleted)
{
    struct nft_ct_cleaner *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->m_deleted = deleted;
    c->buf = malloc(CT_BUF_SIZE);
    c->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!c->buf || !c->nl || mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        log_warn(MOD, "no ctnetlink socket (%s): UDP conntrack entries of removed endpoints "
                 "will time out instead of being deleted", strerror(errno));
        nft_ct_cleaner_free(c);
        return NULL;
    }
    /* ACKs of a full batch window must fit */
    int rcv = 1 << 20;
    (void)setsockopt(mnl_socket_get_fd(c->nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    c->portid = mnl_socket_get_portid(c->nl);
    c->seq = (uint32_t)time(NULL);
    c->ev = event_new(base, mnl_socket_get_fd(c->nl), EV_READ | EV_PERSIST, ct_on_readable, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) {
        nft_ct_cleaner_free(c);
        return NULL;
    }
    return c;
}

int nft_ct_cleaner_add(struct nft_ct_cleaner *c, int af, const uint8_t *addr, uint16_t port)
{
    if (!c)
        return 0;
    struct ct_job nj;
    memset(&nj, 0, sizeof(nj));
    nj.af = af;
    memcpy(nj.addr, addr, af == AF_INET6 ? 16 : 4);
    nj.port_be = htons(port);
    /* an endpoint behind several removed Services is cleaned once: each
     * dump walks the whole table in the kernel */
    for (size_t i = c->head; i < c->n; i++)
        if (memcmp(&c->jobs[i], &nj, sizeof(nj)) == 0)
            return 0;
    if (VEC_RESERVE(c->jobs, c->n, c->cap, 16) < 0)
        return -1;
    c->jobs[c->n++] = nj;
    ct_start(c);
    return 0;
}

size_t nft_ct_cleaner_pending(const struct nft_ct_cleaner *c)
{
    return c ? (c->n - c->head) + (c->busy ? 1 : 0) : 0;
}

uint64_t nft_ct_cleaner_deleted(const struct nft_ct_cleaner *c)
{
    return c ? c->deleted : 0;
}

void nft_ct_cleaner_free(struct nft_ct_cleaner *c)
{
    if (!c)
        return;
    if (c->ev)
        event_free(c->ev);
    if (c->nl)
        mnl_socket_close(c->nl);
    ct_hits_clear(c);
    free(c->hits);
    free(c->jobs);
    free(c->buf);
    free(c);
}
