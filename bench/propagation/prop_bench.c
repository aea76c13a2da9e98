/*
 * prop_bench: how long a change takes to reach svcd's two outputs.
 *
 * Run inside the lab's node namespace (bench/propagation/run.sh does the
 * setup). It makes a change itself, timestamps it (t0), and then watches,
 * in one poll() loop with a deadline:
 *
 *   - DNS: an A query for --name sent to svcd over UDP, paced every
 *     --dns-interval-us (one query outstanding; a lost one is re-sent after
 *     50 ms). The answer is parsed with svcd's codec (svcd/dns_wire.h); the
 *     change is "visible in DNS" at the receive time of the first reply
 *     whose A set equals the expected set.
 *   - nftables: a netlink socket subscribed to NFNLGRP_NFTABLES (the same
 *     feed `nft monitor` reads). The kernel multicasts every object of a
 *     committed transaction and then NFT_MSG_NEWGEN; the change is
 *     "committed" at the receive time of the first NEWGEN after t0 whose
 *     transaction carried at least one object message.
 *   - probe mode only: an AF_PACKET socket on --ifname (the node's bridge)
 *     that sees svcd's HTTP probe answers coming back. The first answer
 *     from the flipped pod with the new status line ("HTTP/1.1 500" after a
 *     fail, "HTTP/1.1 200" after a heal) is the probe result (kernel receive
 *     timestamp, SO_TIMESTAMPNS), so probe-result -> visible excludes the
 *     up-to-one-period wait for the next probe.
 *
 * Modes:
 *   --mode manifest --file PATH --content-a FILE --content-b FILE
 *        --expect-a IPS --expect-b IPS
 *       Alternates PATH between the two contents, starting from a (which
 *       DNS must already answer): each flip writes a hidden temp file next
 *       to PATH and rename()s it over PATH; t0 is taken just before rename().
 *       IPS is a comma-separated list of IPv4 addresses (the full A set).
 *   --mode probe --pod IP:FAILFILE ... --ifname IF [--jitter-ms MS]
 *       Each flip waits a random 0..MS ms, picks one pod at random and
 *       creates (fail) or unlinks (heal) its podserver --fail-file; t0 is
 *       taken just before. The expected A set is every pod not failing.
 *       All pods are healed on exit.
 *
 * Output: one CSV line per flip to --csv (flip, direction, and the times in
 * ms from t0; -1 = not seen before the deadline), and a summary on stdout:
 * count, min, p50, p90, p99, max per measure. Exit status 1 when any flip
 * missed a deadline or the starting state was wrong, 2 for bad arguments.
 *
 * All loops are bounded: --count flips, --timeout-ms per flip, and
 * --max-seconds overall.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "svcd/dns_wire.h"

#define PB_MAX_IPS 16
#define PB_MAX_FLIPS 10000
#define PB_DNS_RETRY_NS 50000000LL  /* re-send a query unanswered for 50 ms */

enum pb_mode { PB_MANIFEST, PB_PROBE };

struct pb_ipset {
    uint32_t ip[PB_MAX_IPS];  /* network order, sorted */
    size_t n;
};

struct pb_flip {
    int to_b;                 /* manifest: 1 = a -> b; probe: 1 = pod failed */
    int pod;                  /* probe mode: index of the flipped pod */
    double dns_ms, nft_ms;    /* from t0; -1 = not seen */
    double probe_ms;          /* probe result from t0 (probe mode); -1 */
    int txn_msgs;             /* object messages in the first commit */
    int extra_commits;        /* further commits before the next flip */
    double dns_max_wait_ms;   /* longest wait for a DNS reply (svcd stalls) */
    int dns_lost;             /* queries re-sent after 50 ms without reply */
};

struct pb {
    enum pb_mode mode;
    int count, timeout_ms, settle_ms, max_seconds, dns_interval_us, jitter_ms;
    const char *file, *content_path[2], *ifname, *csv, *name;
    /* probe mode: the pods that may be flipped */
    uint32_t pod_ip[PB_MAX_IPS];
    const char *pod_fail[PB_MAX_IPS];
    size_t npods;
    bool pod_failing[PB_MAX_IPS];
    char *content[2];
    size_t content_len[2];
    struct pb_ipset expect[2];
    struct sockaddr_in dns_addr;
    uint8_t qname[DNS_NAME_MAX];
    size_t qname_len;

    int dns_fd, pkt_fd;
    struct mnl_socket *mon;
    uint16_t qid;
    bool q_out;               /* a query is outstanding */
    int64_t q_sent_ns;
    int64_t q_first_ns;       /* first send of the query (re-sends included) */

    /* per-flip watch state, reset at each t0 */
    int64_t t0_ns;
    int target;               /* manifest: 0 = a, 1 = b */
    struct pb_ipset want;     /* the A set that shows the change */
    uint32_t probe_ip;        /* probe mode: the flipped pod */
    int probe_status;         /* ... and the HTTP status it now answers */
    int64_t dns_seen_ns, nft_seen_ns, probe_seen_ns;
    int txn_objs;             /* object messages since the last NEWGEN */
    int first_txn_msgs;
    int extra_commits;
    bool armed;               /* t0 taken: NEWGENs count */
    int64_t dns_max_wait_ns;  /* since the last pb_arm */
    int dns_lost;

    struct pb_flip *flips;
    int nflips;
    int failures;
};

static int64_t pb_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int pb_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* "10.0.0.1,10.0.0.2" -> sorted set; "" is the empty set. 0 or -1. */
static int pb_ipset_parse(const char *s, struct pb_ipset *out)
{
    char buf[1024], *save = NULL, *tok;
    out->n = 0;
    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        struct in_addr a;
        if (out->n >= PB_MAX_IPS || inet_pton(AF_INET, tok, &a) != 1)
            return -1;
        out->ip[out->n++] = a.s_addr;
    }
    qsort(out->ip, out->n, sizeof(out->ip[0]), pb_cmp_u32);
    return 0;
}

static bool pb_ipset_equal(const struct pb_ipset *a, const struct pb_ipset *b)
{
    return a->n == b->n && memcmp(a->ip, b->ip, a->n * sizeof(a->ip[0])) == 0;
}

static int pb_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    int rc = -1;
    *out = NULL;
    if (!f)
        return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    *out = malloc((size_t)n + 1);
    if (!*out || fread(*out, 1, (size_t)n, f) != (size_t)n)
        goto out;
    (*out)[n] = '\0';
    *len = (size_t)n;
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* ---- DNS ---------------------------------------------------------------- */

/* Sends one A query for p->qname (new id). 0 or -1. */
static int pb_dns_send(struct pb *p)
{
    uint8_t buf[512];
    struct dns_builder b;
    size_t len;

    p->qid++;
    if (dns_builder_init(&b, buf, sizeof(buf), sizeof(buf), p->qid, DNS_F_RD) < 0 ||
        dns_builder_question(&b, p->qname, p->qname_len, DNS_T_A, DNS_C_IN) < 0)
        return -1;
    len = dns_builder_finish(&b);
    if (send(p->dns_fd, buf, len, 0) < 0 && errno != EAGAIN)
        return -1;
    p->q_out = true;
    p->q_sent_ns = pb_now_ns();
    p->q_first_ns = p->q_first_ns ? p->q_first_ns : p->q_sent_ns;
    return 0;
}

/* Parses a reply into its A set. 1 when it answers our current query,
 * 0 for a stale/foreign one, -1 when malformed. */
static int pb_dns_parse(struct pb *p, const uint8_t *pkt, size_t len, struct pb_ipset *set)
{
    struct dns_cursor c;
    struct dns_header h;
    struct dns_question q;

    set->n = 0;
    dns_cursor_init(&c, pkt, len);
    if (dns_header_parse(&c, &h) < 0 || !(h.flags & DNS_F_QR))
        return -1;
    if (h.id != p->qid)
        return 0;
    for (uint16_t i = 0; i < h.counts[DNS_SEC_QUESTION]; i++)
        if (dns_question_parse(&c, &q) < 0)
            return -1;
    for (uint16_t i = 0; i < h.counts[DNS_SEC_ANSWER]; i++) {
        struct dns_rr rr;
        if (dns_rr_parse(&c, &rr) < 0)
            return -1;
        if (rr.type != DNS_T_A || rr.rdlen != 4 || set->n >= PB_MAX_IPS)
            continue;
        memcpy(&set->ip[set->n++], pkt + rr.rdata_off, 4);
    }
    qsort(set->ip, set->n, sizeof(set->ip[0]), pb_cmp_u32);
    return 1;
}

/* Reads every pending reply; records the first one matching the target. */
static void pb_dns_read(struct pb *p)
{
    uint8_t buf[2048];
    for (;;) {
        ssize_t n = recv(p->dns_fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
            return;
        int64_t now = pb_now_ns();
        struct pb_ipset got;
        if (pb_dns_parse(p, buf, (size_t)n, &got) != 1)
            continue;
        p->q_out = false;
        if (p->q_first_ns && now - p->q_first_ns > p->dns_max_wait_ns)
            p->dns_max_wait_ns = now - p->q_first_ns;
        p->q_first_ns = 0;
        if (p->armed && !p->dns_seen_ns && pb_ipset_equal(&got, &p->want))
            p->dns_seen_ns = now;
    }
}

/* ---- nftables monitor ----------------------------------------------------- */

static int pb_mon_cb(const struct nlmsghdr *nlh, void *data)
{
    struct pb *p = data;
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
        return MNL_CB_OK;
    if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWGEN) {
        p->txn_objs++;
        return MNL_CB_OK;
    }
    /* a committed transaction ends with NEWGEN (nft monitor: "# new generation") */
    if (p->armed && p->txn_objs > 0) {
        if (!p->nft_seen_ns) {
            p->nft_seen_ns = pb_now_ns();
            p->first_txn_msgs = p->txn_objs;
        } else {
            p->extra_commits++;
        }
    }
    p->txn_objs = 0;
    return MNL_CB_OK;
}

static void pb_mon_read(struct pb *p)
{
    static char buf[1 << 17];
    for (;;) {
        ssize_t n = recv(mnl_socket_get_fd(p->mon), buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS) {
                fprintf(stderr, "prop_bench: netlink monitor overrun (ENOBUFS)\n");
                continue;
            }
            return;
        }
        mnl_cb_run(buf, (size_t)n, 0, 0, pb_mon_cb, p);
    }
}

static struct mnl_socket *pb_mon_open(void)
{
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    int sz = 8 << 20;
    if (!nl)
        return NULL;
    if (mnl_socket_bind(nl, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
        mnl_socket_close(nl);
        return NULL;
    }
    if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
        setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    return nl;
}

/* ---- probe answers on the wire ------------------------------------------- */

static int pb_pkt_open(const char *ifname)
{
    struct sockaddr_ll sll;
    int one = 1, fd;
    unsigned idx = if_nametoindex(ifname);
    if (!idx)
        return -1;
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0)
        return -1;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)idx;
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The HTTP status code of a TCP segment from port 80 carrying the start of
 * an HTTP response, or 0. Every field read is length-checked. */
static int pb_pkt_http_status(const uint8_t *f, size_t len, uint32_t *src4)
{
    size_t off = 14, l4;
    uint16_t et;
    uint8_t proto;
    if (len < off)
        return 0;
    et = (uint16_t)(f[12] << 8 | f[13]);
    if (et == ETH_P_IP) {
        if (len < off + 20)
            return 0;
        size_t ihl = (size_t)(f[off] & 0x0f) * 4;
        proto = f[off + 9];
        memcpy(src4, f + off + 12, 4);
        l4 = off + ihl;
    } else if (et == ETH_P_IPV6) {
        if (len < off + 40)
            return 0;
        proto = f[off + 6];
        l4 = off + 40;
    } else {
        return 0;
    }
    if (proto != IPPROTO_TCP || len < l4 + 20)
        return 0;
    if ((f[l4] << 8 | f[l4 + 1]) != 80)
        return 0;
    size_t data = l4 + (size_t)(f[l4 + 12] >> 4) * 4;
    if (len < data + 12 || memcmp(f + data, "HTTP/1.", 7) != 0)
        return 0;
    int code = 0;
    for (size_t k = data + 9; k < data + 12; k++) {
        if (f[k] < '0' || f[k] > '9')
            return 0;
        code = code * 10 + (f[k] - '0');
    }
    return code;
}

static void pb_pkt_read(struct pb *p)
{
    uint8_t frame[4096];
    char cbuf[256];
    for (;;) {
        struct iovec iov = { frame, sizeof(frame) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(p->pkt_fd, &mh, MSG_DONTWAIT);
        if (n < 0)
            return;
        int64_t ts = pb_now_ns();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec t;
                memcpy(&t, CMSG_DATA(c), sizeof(t));
                ts = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
            }
        }
        uint32_t src = 0;
        int st = pb_pkt_http_status(frame, (size_t)n, &src);
        if (st && p->armed && !p->probe_seen_ns && st == p->probe_status &&
            src == p->probe_ip && ts >= p->t0_ns)
            p->probe_seen_ns = ts;
    }
}

/* ---- the flip loop ---------------------------------------------------------- */

/* Manifest mode: installs content `to` (0 = a, 1 = b). Probe mode: fails
 * (to = 1) or heals (to = 0) pod `pod`. Sets *t0 just before the change. */
static int pb_do_flip(struct pb *p, int to, size_t pod, int64_t *t0)
{
    if (p->mode == PB_MANIFEST) {
        char tmp[4096];
        const char *slash = strrchr(p->file, '/');
        int dirlen = slash ? (int)(slash - p->file) : 0;
        snprintf(tmp, sizeof(tmp), "%.*s/.%s.prop.tmp", dirlen, p->file,
                 slash ? slash + 1 : p->file);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        ssize_t w = write(fd, p->content[to], p->content_len[to]);
        close(fd);
        if (w != (ssize_t)p->content_len[to])
            return -1;
        *t0 = pb_now_ns();
        return rename(tmp, p->file);
    }
    *t0 = pb_now_ns();
    if (to == 1) {
        int fd = open(p->pod_fail[pod], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        close(fd);
        return 0;
    }
    return unlink(p->pod_fail[pod]);
}

enum pb_stop { PB_STOP_NEVER, PB_STOP_ALL, PB_STOP_DNS };

/* Polls every source until `until_ns`, or earlier: PB_STOP_ALL once DNS and
 * nft (and the probe answer, in probe mode) were seen, PB_STOP_DNS once DNS
 * was. */
static void pb_watch(struct pb *p, int64_t until_ns, enum pb_stop stop)
{
    for (;;) {
        int64_t now = pb_now_ns();
        if (now >= until_ns)
            return;
        if (stop == PB_STOP_ALL && p->dns_seen_ns && p->nft_seen_ns &&
            (p->mode != PB_PROBE || p->probe_seen_ns))
            return;
        if (stop == PB_STOP_DNS && p->dns_seen_ns)
            return;
        /* pace the DNS queries while the DNS answer is still awaited */
        int wait_us = p->dns_interval_us;
        if (!p->dns_seen_ns || !p->armed) {
            if (p->q_out && now - p->q_sent_ns > PB_DNS_RETRY_NS) {
                p->dns_lost++;
                p->q_out = false;
            }
            if (!p->q_out) {
                if (now - p->q_sent_ns >= (int64_t)p->dns_interval_us * 1000)
                    pb_dns_send(p);
                else
                    wait_us = (int)((p->q_sent_ns + (int64_t)p->dns_interval_us * 1000 - now) / 1000);
            }
        } else {
            wait_us = 1000;
        }
        int64_t left_us = (until_ns - now) / 1000;
        if (wait_us > left_us)
            wait_us = (int)left_us;
        struct pollfd fds[3] = {
            { p->dns_fd, POLLIN, 0 },
            { mnl_socket_get_fd(p->mon), POLLIN, 0 },
            { p->pkt_fd, POLLIN, 0 },
        };
        struct timespec ts = { wait_us / 1000000, (long)(wait_us % 1000000) * 1000 };
        if (ppoll(fds, p->pkt_fd >= 0 ? 3 : 2, &ts, NULL) < 0 && errno != EINTR)
            return;
        if (fds[1].revents)
            pb_mon_read(p);
        if (fds[0].revents)
            pb_dns_read(p);
        if (p->pkt_fd >= 0 && fds[2].revents)
            pb_pkt_read(p);
    }
}

/* The A set DNS answers once every pod's current state is visible. */
static void pb_probe_want(struct pb *p, struct pb_ipset *out)
{
    out->n = 0;
    for (size_t i = 0; i < p->npods; i++)
        if (!p->pod_failing[i])
            out->ip[out->n++] = p->pod_ip[i];
    qsort(out->ip, out->n, sizeof(out->ip[0]), pb_cmp_u32);
}

static void pb_arm(struct pb *p, int target, int64_t t0)
{
    p->target = target;
    if (p->mode == PB_MANIFEST)
        p->want = p->expect[target];
    else
        pb_probe_want(p, &p->want);
    p->t0_ns = t0;
    p->dns_seen_ns = p->nft_seen_ns = p->probe_seen_ns = 0;
    p->first_txn_msgs = 0;
    p->extra_commits = 0;
    p->q_out = false;          /* answers to older queries are ignored (id) */
    p->q_sent_ns = 0;
    p->q_first_ns = 0;
    p->dns_max_wait_ns = 0;
    p->dns_lost = 0;
    p->armed = true;
}

static double pb_ms(int64_t seen, int64_t t0)
{
    return seen ? (double)(seen - t0) / 1e6 : -1;
}

static int pb_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pb_pct(const double *v, int n, double q)
{
    int k = (int)(q * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static void pb_summary(const char *label, const double *vals, int nvals, int missed)
{
    double *v = malloc(sizeof(double) * (size_t)(nvals ? nvals : 1));
    int n = 0;
    for (int i = 0; i < nvals; i++)
        if (vals[i] >= 0)
            v[n++] = vals[i];
    qsort(v, (size_t)n, sizeof(double), pb_cmp_d);
    if (n == 0)
        printf("%-44s count=0 missed=%d\n", label, missed);
    else
        printf("%-44s count=%d min=%.2f p50=%.2f p90=%.2f p99=%.2f max=%.2f ms%s\n", label, n,
               v[0], pb_pct(v, n, 0.50), pb_pct(v, n, 0.90), pb_pct(v, n, 0.99), v[n - 1],
               missed ? " (some missed)" : "");
    if (missed)
        printf("%-44s missed=%d\n", "", missed);
    free(v);
}

static void pb_usage(void)
{
    fprintf(stderr,
            "usage: prop_bench --mode manifest|probe --name FQDN --dns ADDR[:PORT]\n"
            "         [--count N] [--timeout-ms MS]\n"
            "         [--settle-ms MS] [--max-seconds S] [--dns-interval-us US] [--csv FILE]\n"
            "  manifest: --file PATH --content-a FILE --content-b FILE --expect-a IPS --expect-b IPS\n"
            "  probe:    --pod IP:FAILFILE (repeatable) --ifname IF [--jitter-ms MS]\n");
}

int main(int argc, char **argv)
{
    struct pb p = { .count = 200, .timeout_ms = 3000, .settle_ms = 30, .max_seconds = 170,
                    .dns_interval_us = 200, .dns_fd = -1, .pkt_fd = -1 };
    const char *dns = "127.0.0.1:53", *ea = NULL, *eb = NULL;
    int rc = 1;
    FILE *csv = NULL;
    static const struct option opts[] = {
        { "mode", required_argument, 0, 'm' }, { "name", required_argument, 0, 'n' },
        { "dns", required_argument, 0, 'd' }, { "expect-a", required_argument, 0, 'A' },
        { "expect-b", required_argument, 0, 'B' }, { "count", required_argument, 0, 'c' },
        { "timeout-ms", required_argument, 0, 't' }, { "settle-ms", required_argument, 0, 's' },
        { "max-seconds", required_argument, 0, 'M' },
        { "dns-interval-us", required_argument, 0, 'i' }, { "csv", required_argument, 0, 'o' },
        { "file", required_argument, 0, 'f' }, { "content-a", required_argument, 0, 'a' },
        { "content-b", required_argument, 0, 'b' },
        { "ifname", required_argument, 0, 'I' }, { "pod", required_argument, 0, 'P' },
        { "jitter-ms", required_argument, 0, 'j' }, { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'm':
            if (!strcmp(optarg, "manifest"))
                p.mode = PB_MANIFEST;
            else if (!strcmp(optarg, "probe"))
                p.mode = PB_PROBE;
            else
                goto usage;
            break;
        case 'n': p.name = optarg; break;
        case 'd': dns = optarg; break;
        case 'A': ea = optarg; break;
        case 'B': eb = optarg; break;
        case 'c': p.count = atoi(optarg); break;
        case 't': p.timeout_ms = atoi(optarg); break;
        case 's': p.settle_ms = atoi(optarg); break;
        case 'M': p.max_seconds = atoi(optarg); break;
        case 'i': p.dns_interval_us = atoi(optarg); break;
        case 'o': p.csv = optarg; break;
        case 'f': p.file = optarg; break;
        case 'a': p.content_path[0] = optarg; break;
        case 'b': p.content_path[1] = optarg; break;
        case 'I': p.ifname = optarg; break;
        case 'j': p.jitter_ms = atoi(optarg); break;
        case 'P': {
            /* IP:FAILFILE */
            char ip[64];
            const char *colon = strchr(optarg, ':');
            struct in_addr a;
            if (!colon || p.npods >= PB_MAX_IPS || colon - optarg >= (long)sizeof(ip))
                goto usage;
            snprintf(ip, sizeof(ip), "%.*s", (int)(colon - optarg), optarg);
            if (inet_pton(AF_INET, ip, &a) != 1 || !colon[1])
                goto usage;
            p.pod_ip[p.npods] = a.s_addr;
            p.pod_fail[p.npods++] = colon + 1;
            break;
        }
        default: goto usage;
        }
    }
    if (!p.name || p.count < 1 || p.count > PB_MAX_FLIPS || p.timeout_ms < 1 ||
        p.dns_interval_us < 10 || p.max_seconds < 1 || p.jitter_ms < 0 ||
        dns_name_from_text(p.name, p.qname, &p.qname_len) < 0)
        goto usage;
    if (p.mode == PB_MANIFEST &&
        (!p.file || !p.content_path[0] || !p.content_path[1] || !ea || !eb ||
         pb_ipset_parse(ea, &p.expect[0]) < 0 || pb_ipset_parse(eb, &p.expect[1]) < 0 ||
         pb_read_file(p.content_path[0], &p.content[0], &p.content_len[0]) < 0 ||
         pb_read_file(p.content_path[1], &p.content[1], &p.content_len[1]) < 0))
        goto usage;
    if (p.mode == PB_PROBE && (p.npods == 0 || !p.ifname))
        goto usage;
    {
        char host[64];
        const char *colon = strrchr(dns, ':');
        int port = 53;
        snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - dns) : (int)strlen(dns), dns);
        if (colon)
            port = atoi(colon + 1);
        p.dns_addr.sin_family = AF_INET;
        p.dns_addr.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &p.dns_addr.sin_addr) != 1 || port < 1 || port > 65535)
            goto usage;
    }

    p.dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p.dns_fd < 0 || connect(p.dns_fd, (struct sockaddr *)&p.dns_addr, sizeof(p.dns_addr)) < 0) {
        perror("prop_bench: dns socket");
        goto out;
    }
    p.mon = pb_mon_open();
    if (!p.mon) {
        perror("prop_bench: nftables monitor (NFNLGRP_NFTABLES)");
        goto out;
    }
    if (p.mode == PB_PROBE && (p.pkt_fd = pb_pkt_open(p.ifname)) < 0) {
        perror("prop_bench: packet socket");
        goto out;
    }
    if (p.csv && !(csv = fopen(p.csv, "w"))) {
        perror(p.csv);
        goto out;
    }
    p.flips = calloc((size_t)p.count, sizeof(*p.flips));
    if (!p.flips)
        goto out;
    srand((unsigned)getpid());
    p.qid = (uint16_t)rand();

    /* the starting state (a) must be what DNS answers now */
    pb_arm(&p, 0, pb_now_ns());
    pb_watch(&p, pb_now_ns() + 2000000000LL, PB_STOP_DNS);
    p.armed = false;
    if (!p.dns_seen_ns) {
        fprintf(stderr, "prop_bench: %s does not answer the starting state within 2 s\n",
                p.name);
        goto out;
    }
    if (csv)
        fprintf(csv, "t0_unix_ms,flip,to,pod,dns_ms,nft_ms,probe_ms,probe_to_dns_ms,probe_to_nft_ms,txn_msgs,extra_commits,dns_max_wait_ms,dns_lost\n");

    int64_t start = pb_now_ns(), deadline = start + (int64_t)p.max_seconds * 1000000000LL;
    int state = 0;
    for (int i = 0; i < p.count && pb_now_ns() < deadline; i++) {
        int64_t t0;
        int to = !state;
        size_t pod = 0;
        /* quiet period (2 ms + random jitter): drains stale answers and
         * monitor events, and in probe mode puts the flip at a random point
         * of the probe period */
        int64_t quiet = 2000000LL;
        if (p.jitter_ms > 0)
            quiet += (int64_t)((double)rand() / ((double)RAND_MAX + 1) * p.jitter_ms * 1e6);
        pb_watch(&p, pb_now_ns() + quiet, PB_STOP_NEVER);
        if (p.mode == PB_PROBE) {
            pod = (size_t)rand() % p.npods;
            to = !p.pod_failing[pod];
        }
        if (pb_do_flip(&p, to, pod, &t0) < 0) {
            perror("prop_bench: flip");
            goto out;
        }
        if (p.mode == PB_PROBE) {
            p.pod_failing[pod] = to;
            p.probe_ip = p.pod_ip[pod];
            p.probe_status = to ? 500 : 200;
        }
        pb_arm(&p, to, t0);
        pb_watch(&p, t0 + (int64_t)p.timeout_ms * 1000000LL, PB_STOP_ALL);
        /* linger: count commits that follow the first one */
        pb_watch(&p, pb_now_ns() + (int64_t)p.settle_ms * 1000000LL, PB_STOP_NEVER);
        struct pb_flip *f = &p.flips[p.nflips++];
        f->to_b = to;
        f->pod = (int)pod;
        f->dns_ms = pb_ms(p.dns_seen_ns, t0);
        f->nft_ms = pb_ms(p.nft_seen_ns, t0);
        f->probe_ms = pb_ms(p.probe_seen_ns, t0);
        f->txn_msgs = p.first_txn_msgs;
        f->extra_commits = p.extra_commits;
        f->dns_max_wait_ms = (double)p.dns_max_wait_ns / 1e6;
        f->dns_lost = p.dns_lost;
        p.armed = false;
        if (f->dns_ms < 0 || f->nft_ms < 0 || (p.mode == PB_PROBE && f->probe_ms < 0))
            p.failures++;
        if (csv)
            fprintf(csv, "%.3f,%d,%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%d,%.3f,%d\n", (double)t0 / 1e6, i,
                    p.mode == PB_PROBE ? (to ? "fail" : "heal") : (to ? "b" : "a"), f->pod, f->dns_ms,
                    f->nft_ms, f->probe_ms,
                    f->probe_ms >= 0 && f->dns_ms >= 0 ? f->dns_ms - f->probe_ms : -1,
                    f->probe_ms >= 0 && f->nft_ms >= 0 ? f->nft_ms - f->probe_ms : -1,
                    f->txn_msgs, f->extra_commits, f->dns_max_wait_ms, f->dns_lost);
        state = to;
    }
    /* probe mode: leave every pod healthy */
    for (size_t k = 0; p.mode == PB_PROBE && k < p.npods; k++)
        if (p.pod_failing[k])
            unlink(p.pod_fail[k]);

    {
        int n = p.nflips, miss_dns = 0, miss_nft = 0, miss_pr = 0, extra = 0, lost = 0;
        double max_wait = 0;
        double *dv = calloc((size_t)n + 1, sizeof(double)), *nv = calloc((size_t)n + 1, sizeof(double));
        double *pd = calloc((size_t)n + 1, sizeof(double)), *pn = calloc((size_t)n + 1, sizeof(double));
        double *pr = calloc((size_t)n + 1, sizeof(double));
        if (!dv || !nv || !pd || !pn || !pr)
            goto out;
        for (int i = 0; i < n; i++) {
            const struct pb_flip *f = &p.flips[i];
            dv[i] = f->dns_ms;
            nv[i] = f->nft_ms;
            pr[i] = f->probe_ms;
            pd[i] = f->probe_ms >= 0 && f->dns_ms >= 0 ? f->dns_ms - f->probe_ms : -1;
            pn[i] = f->probe_ms >= 0 && f->nft_ms >= 0 ? f->nft_ms - f->probe_ms : -1;
            miss_dns += f->dns_ms < 0;
            miss_nft += f->nft_ms < 0;
            miss_pr += f->probe_ms < 0;
            extra += f->extra_commits;
            lost += f->dns_lost;
            if (f->dns_max_wait_ms > max_wait)
                max_wait = f->dns_max_wait_ms;
        }
        printf("# %s mode: %d flips in %.1f s, DNS polled every %d us, %s\n",
               p.mode == PB_MANIFEST ? "manifest" : "probe", n,
               (double)(pb_now_ns() - start) / 1e9, p.dns_interval_us, p.name);
        if (p.mode == PB_MANIFEST) {
            pb_summary("(a) manifest change -> DNS answer changed", dv, n, miss_dns);
            pb_summary("(b) manifest change -> rules committed", nv, n, miss_nft);
        } else {
            pb_summary("(c) probe flip -> DNS answer changed", dv, n, miss_dns);
            pb_summary("(d) probe flip -> rules committed", nv, n, miss_nft);
            pb_summary("    probe flip -> probe result (wire)", pr, n, miss_pr);
            pb_summary("(c') probe result -> DNS answer changed", pd, n, miss_pr + miss_dns);
            pb_summary("(d') probe result -> rules committed", pn, n, miss_pr + miss_nft);
        }
        printf("# extra commits after the first, within %d ms of it: %d\n", p.settle_ms, extra);
        printf("# DNS while a change was pending: longest wait for a reply %.2f ms, %d queries unanswered after 50 ms\n",
               max_wait, lost);
        free(dv);
        free(nv);
        free(pd);
        free(pn);
        free(pr);
        rc = p.failures || n < p.count ? 1 : 0;
        if (n < p.count)
            printf("# stopped after %d of %d flips (--max-seconds %d)\n", n, p.count, p.max_seconds);
    }
out:
    if (csv)
        fclose(csv);
    if (p.mon)
        mnl_socket_close(p.mon);
    if (p.dns_fd >= 0)
        close(p.dns_fd);
    if (p.pkt_fd >= 0)
        close(p.pkt_fd);
    free(p.flips);
    free(p.content[0]);
    free(p.content[1]);
    return rc;
usage:
    pb_usage();
    return 2;
}
