/*
 * nft_conntrack: deletes UDP conntrack entries pointing at a removed
 * endpoint, through raw ctnetlink messages built with libmnl.
 *
 * One dump of the family's conntrack table (IPCTNL_MSG_CT_GET + NLM_F_DUMP)
 * collects the reply tuples whose source is the endpoint, then one
 * IPCTNL_MSG_CT_DELETE per entry names it by that reply tuple
 * (equivalent: conntrack -D -p udp --reply-src ADDR --reply-port-src PORT, for
 * entries whose original destination was another address, i.e. NATed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>

#include "svcd/nft_conntrack.h"
#include "svcd/vec.h"

struct ct_match {
    int af;
    uint8_t addr[16];
    uint16_t port_be;
    /* matching reply tuples (raw nested attribute payloads) */
    struct { uint8_t *data; uint16_t len; } *hits;
    size_t n, cap;
};

/* True when the nested CTA_TUPLE_* attribute has src addr:port and UDP. */
static bool ct_tuple_matches(const struct nlattr *tuple, const struct ct_match *m)
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
static bool ct_orig_dst_is(const struct nlattr *tuple, const struct ct_match *m)
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

static int ct_dump_cb(const struct nlmsghdr *nlh, void *data)
{
    struct ct_match *m = data;
    const struct nlattr *a, *orig = NULL;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
        if (mnl_attr_get_type(a) == CTA_TUPLE_ORIG)
            orig = a;
    if (orig && ct_orig_dst_is(orig, m))
        return MNL_CB_OK;
    mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
        if (mnl_attr_get_type(a) != CTA_TUPLE_REPLY)
            continue;
        if (!ct_tuple_matches(a, m))
            continue;
        if (VEC_RESERVE(m->hits, m->n, m->cap, 8) < 0)
            return MNL_CB_ERROR;
        uint16_t len = (uint16_t)mnl_attr_get_payload_len(a);
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            return MNL_CB_ERROR;
        memcpy(copy, mnl_attr_get_payload(a), len);
        m->hits[m->n].data = copy;
        m->hits[m->n].len = len;
        m->n++;
    }
    return MNL_CB_OK;
}

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

int nft_conntrack_delete_udp(int af, const uint8_t *addr, uint16_t port)
{
    struct ct_match m;
    memset(&m, 0, sizeof(m));
    m.af = af;
    memcpy(m.addr, addr, af == AF_INET6 ? 16 : 4);
    m.port_be = htons(port);
    int deleted = -1;
    char *buf = malloc(MNL_SOCKET_BUFFER_SIZE);
    struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
    if (!buf || !nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
        goto out;
    unsigned portid = mnl_socket_get_portid(nl);
    uint32_t seq = (uint32_t)time(NULL);
    /* conntrack -L -f ipv4|ipv6 (dump) */
    struct nlmsghdr *nlh = ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, af, seq);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        goto out;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE);
        if (n <= 0)
            goto out;
        int r = mnl_cb_run(buf, (size_t)n, seq, portid, ct_dump_cb, &m);
        if (r == MNL_CB_STOP)
            break;
        if (r < 0)
            goto out;
    }
    deleted = 0;
    for (size_t i = 0; i < m.n; i++) {
        /* conntrack -D -p udp --reply-src ADDR --reply-port-src PORT (one entry) */
        nlh = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, af, ++seq);
        mnl_attr_put(nlh, CTA_TUPLE_REPLY | NLA_F_NESTED, m.hits[i].len, m.hits[i].data);
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
            continue;
        ssize_t n = mnl_socket_recvfrom(nl, buf, MNL_SOCKET_BUFFER_SIZE);
        if (n > 0 && mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) >= 0)
            deleted++;
    }
out:
    for (size_t i = 0; i < m.n; i++)
        free(m.hits[i].data);
    free(m.hits);
    if (nl)
        mnl_socket_close(nl);
    free(buf);
    return deleted;
}
