/*
 * nft_watch: drift detection from nftables events (see
 * include/svcd/nft_watch.h). The equivalent on the command line is
 * `nft monitor`: svcd reads the same event stream.
 */
#include "svcd/nft_watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include "svcd/log.h"

#define MOD "nft-watch"
#define WATCH_BUF 65536

struct nft_watch {
    struct event_base *base;
    struct mnl_socket *nl;
    struct event *ev;
    char table[64];
    nft_watch_fn fn;
    void *ctx;
    bool touched;          /* the transaction being announced touched our table */
    bool deleted;          /* ... and deleted it */
    char *buf;
};

/* Every object event (table, chain, rule, set, element list, object,
 * flowtable) carries the table's name as attribute 1: NFTA_TABLE_NAME,
 * NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
 * NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE, NFTA_FLOWTABLE_TABLE. */
static bool watch_names_table(const struct nft_watch *w, const struct nlmsghdr *nlh)
{
    const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
    if (nfg->nfgen_family != NFPROTO_INET)
        return false;
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, sizeof(*nfg)) {
        if (mnl_attr_get_type(a) != 1)
            continue;
        const char *name = mnl_attr_get_payload(a);
        size_t len = mnl_attr_get_payload_len(a);
        return len > 0 && strnlen(name, len) == strlen(w->table) &&
               strncmp(name, w->table, len) == 0;
    }
    return false;
}

/* One NEWGEN: who committed the transaction just announced. */
static uint32_t watch_gen_pid(const struct nlmsghdr *nlh, char *proc, size_t proc_len)
{
    uint32_t pid = 0;
    const struct nlattr *a;
    proc[0] = '\0';
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(a) == NFTA_GEN_PROC_PID && mnl_attr_get_payload_len(a) == 4)
            pid = ntohl(mnl_attr_get_u32(a));
        else if (mnl_attr_get_type(a) == NFTA_GEN_PROC_NAME)
            snprintf(proc, proc_len, "%.*s", (int)mnl_attr_get_payload_len(a),
                     (const char *)mnl_attr_get_payload(a));
    }
    return pid;
}

/* After lost events: does the table still exist? (nft list table inet T) */
static bool watch_table_exists(const struct nft_watch *w)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    bool exists = true;
    if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
        goto out;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = (uint32_t)time(NULL);
    struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
    nfg->nfgen_family = NFPROTO_INET;
    nfg->version = NFNETLINK_V0;
    mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, w->table);
    uint32_t seq = nlh->nlmsg_seq;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        goto out;
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n > 0 && mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), NULL, NULL) < 0 &&
        errno == ENOENT)
        exists = false;
out:
    if (nl)
        mnl_socket_close(nl);
    return exists;
}

static void watch_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct nft_watch *w = arg;
    (void)what;
    /* a bounded slice: a few buffers per callback */
    for (int r = 0; r < 8; r++) {
        ssize_t n = recv(fd, w->buf, WATCH_BUF, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS) {
                /* events lost; a transaction may be half seen */
                w->touched = w->deleted = false;
                if (!watch_table_exists(w))
                    w->fn(w->ctx, "table deleted (seen after lost events)");
                continue;
            }
            break;
        }
        int len = (int)n;
        for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)w->buf; mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES ||
                nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(struct nfgenmsg))
                continue;
            int type = nlh->nlmsg_type & 0xff;
            if (type == NFT_MSG_NEWGEN) {
                char proc[64];
                uint32_t pid = watch_gen_pid(nlh, proc, sizeof(proc));
                if (w->touched && pid != (uint32_t)getpid()) {
                    char what_s[160];
                    snprintf(what_s, sizeof(what_s), "%s by pid %u (%s)",
                             w->deleted ? "table deleted" : "table changed", pid,
                             proc[0] ? proc : "?");
                    w->fn(w->ctx, what_s);
                }
                w->touched = w->deleted = false;
            } else if (watch_names_table(w, nlh)) {
                w->touched = true;
                if (type == NFT_MSG_DELTABLE)
                    w->deleted = true;
            }
        }
    }
}

struct nft_watch *nft_watch_new(struct event_base *base, const char *table, nft_watch_fn fn,
                                void *ctx)
{
    struct nft_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->base = base;
    w->fn = fn;
    w->ctx = ctx;
    snprintf(w->table, sizeof(w->table), "%s", table);
    w->buf = malloc(WATCH_BUF);
    w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int grp = NFNLGRP_NFTABLES;
    if (!w->buf || !w->nl || mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
        mnl_socket_setsockopt(w->nl, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
        log_warn(MOD, "cannot watch nftables events (%s): no drift repair", strerror(errno));
        nft_watch_free(w);
        return NULL;
    }
    /* our own large syncs produce an event per element: a big buffer makes
     * losing events (ENOBUFS) rare */
    int rcv = 8 << 20;
    if (setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
        (void)setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    w->ev = event_new(base, mnl_socket_get_fd(w->nl), EV_READ | EV_PERSIST, watch_on_readable, w);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        nft_watch_free(w);
        return NULL;
    }
    return w;
}

void nft_watch_free(struct nft_watch *w)
{
    if (!w)
        return;
    if (w->ev)
        event_free(w->ev);
    if (w->nl)
        mnl_socket_close(w->nl);
    free(w->buf);
    free(w);
}
