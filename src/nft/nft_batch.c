/*
 * nft_batch: paged nftables transactions over libmnl (see nft_batch.h).
 *
 * Pages come from libnftnl's nftnl_batch: a message is always built at the
 * end of the current page, which has NFT_BATCH_MSG_MAX bytes of overrun
 * room; nftnl_batch_update() moves to a fresh page once a page is full, so
 * no message straddles two pages and nothing is sent before END. The pages
 * go out as one iovec array in one sendmsg(); nfnetlink processes the batch
 * synchronously in that call, so every error reply is already queued on the
 * socket when sendmsg() returns and is read without blocking.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "svcd/nft_batch.h"
#include "svcd/vec.h"

#define NFT_BATCH_PAGE (256u * 1024u)

struct nft_batch {
    struct nftnl_batch *nb;
    uint32_t seq_base;      /* seq of BEGIN */
    uint32_t seq_next;
    char **what;            /* description per message, index = seq - base - 1 */
    size_t n, cap;
    size_t bytes;
    int sent;
};

static uint32_t nft_batch_seq_counter;

struct mnl_socket *nft_sock_open(void)
{
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!nl)
        return NULL;
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl);
        errno = e;
        return NULL;
    }
    /* Error replies for a big failing batch must not overflow (ENOBUFS). */
    int fd = mnl_socket_get_fd(nl);
    int rcv = 16 * 1024 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    int one = 1;
    /* Extended ACKs carry the kernel's reason text when it has one. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    return nl;
}

struct nft_batch *nft_batch_new(void)
{
    struct nft_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->nb = nftnl_batch_alloc(NFT_BATCH_PAGE, NFT_BATCH_MSG_MAX);
    if (!b->nb) {
        free(b);
        return NULL;
    }
    if (nft_batch_seq_counter == 0)
        nft_batch_seq_counter = (uint32_t)time(NULL);
    b->seq_base = nft_batch_seq_counter;
    b->seq_next = b->seq_base + 1;
    /* BEGIN: opens the transaction (no nft equivalent; `nft -f` does it). */
    nftnl_batch_begin(nftnl_batch_buffer(b->nb), b->seq_base);
    b->bytes += NLMSG_ALIGN(sizeof(struct nlmsghdr) + sizeof(struct nfgenmsg));
    nftnl_batch_update(b->nb);
    return b;
}

void nft_batch_free(struct nft_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->what[i]);
    free(b->what);
    if (b->nb)
        nftnl_batch_free(b->nb);
    free(b);
}

char *nft_batch_msg_buf(struct nft_batch *b, uint32_t *seq)
{
    *seq = b->seq_next;
    return nftnl_batch_buffer(b->nb);
}

int nft_batch_msg_done(struct nft_batch *b, const char *fmt, ...)
{
    const struct nlmsghdr *nlh = nftnl_batch_buffer(b->nb);
    b->bytes += NLMSG_ALIGN(nlh->nlmsg_len);
    if (VEC_RESERVE(b->what, b->n, b->cap, 256) < 0)
        return -1;
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    b->what[b->n++] = s;
    b->seq_next++;
    if (nftnl_batch_update(b->nb) < 0)
        return -1;
    return 0;
}

size_t nft_batch_count(const struct nft_batch *b)
{
    return b->n;
}

size_t nft_batch_bytes(const struct nft_batch *b)
{
    return b->bytes;
}

/* The description of the message with this sequence number. */
static const char *nft_batch_what(const struct nft_batch *b, uint32_t seq)
{
    if (seq == b->seq_base)
        return "batch begin";
    if (seq == b->seq_next)
        return "batch end (commit)";
    uint32_t i = seq - b->seq_base - 1;
    if (i < b->n)
        return b->what[i];
    return "unknown message";
}

/* Reads every queued reply; returns the first error (negative errno) or 0. */
static int nft_batch_read_replies(struct nft_batch *b, struct mnl_socket *nl, char *err,
                                  size_t errlen)
{
    static char buf[1 << 16];
    int first = 0, nerr = 0;
    for (;;) {
        ssize_t len = recv(mnl_socket_get_fd(nl), buf, sizeof(buf), MSG_DONTWAIT);
        if (len < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (!first) {
                first = -errno;
                snprintf(err, errlen, "reading replies: %s", strerror(errno));
            }
            nerr++;
            break;
        }
        const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
        int rem = (int)len;
        while (mnl_nlmsg_ok(nlh, rem)) {
            if (nlh->nlmsg_type == NLMSG_ERROR &&
                nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
                const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
                if (e->error != 0) {
                    nerr++;
                    if (!first) {
                        first = e->error;
                        snprintf(err, errlen, "%s: %s", nft_batch_what(b, e->msg.nlmsg_seq),
                                 strerror(-e->error));
                    }
                }
            }
            nlh = mnl_nlmsg_next(nlh, &rem);
        }
    }
    if (nerr > 1 && first) {
        size_t l = strlen(err);
        snprintf(err + l, errlen > l ? errlen - l : 0, " (and %d more errors)", nerr - 1);
    }
    return first;
}

int nft_batch_send(struct nft_batch *b, struct mnl_socket *nl, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (b->sent) {
        snprintf(err, errlen, "batch already sent");
        return -EINVAL;
    }
    b->sent = 1;
    /* END: commits the transaction. */
    nftnl_batch_end(nftnl_batch_buffer(b->nb), b->seq_next);
    b->bytes += NLMSG_ALIGN(sizeof(struct nlmsghdr) + sizeof(struct nfgenmsg));
    nftnl_batch_update(b->nb);
    nft_batch_seq_counter = b->seq_next + 1;

    int rc = 0;
    int niov = nftnl_batch_iovec_len(b->nb);
    struct iovec *iov = calloc((size_t)niov, sizeof(*iov));
    if (!iov) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    nftnl_batch_iovec(b->nb, iov, (uint32_t)niov);
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].iov_len;
    /* The whole batch is one netlink message train: the send buffer must
     * hold all of it. */
    int fd = mnl_socket_get_fd(nl);
    int snd = (int)(total + 65536);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));

    struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
    struct msghdr msg = {
        .msg_name = &snl, .msg_namelen = sizeof(snl),
        .msg_iov = iov, .msg_iovlen = (size_t)niov,
    };
    ssize_t sent;
    do {
        sent = sendmsg(fd, &msg, 0);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        rc = -errno;
        snprintf(err, errlen, "sending batch of %zu bytes: %s", total, strerror(errno));
        goto out;
    }
    rc = nft_batch_read_replies(b, nl, err, errlen);
out:
    free(iov);
    return rc;
}
