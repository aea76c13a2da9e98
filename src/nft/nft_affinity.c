/*
 * nft_affinity: delete the affinity entries of changed frontends (see
 * nft_affinity.h). One dump of the set (NFT_MSG_GETSETELEM), one batch of
 * deletions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "svcd/nft_affinity.h"
#include "svcd/nft_batch.h"
#include "svcd/vec.h"

struct keys {
    uint8_t (*k)[64];
    size_t n, cap;
    size_t klen, off;
    const struct nft_aff_match *m;
    size_t nm;
    int err;
};

static int elem_cb(const struct nlmsghdr *nlh, void *data)
{
    struct keys *ks = data;
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return MNL_CB_ERROR;
    if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
        nftnl_set_free(s);
        return MNL_CB_OK;
    }
    struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
    struct nftnl_set_elem *e;
    while (it && (e = nftnl_set_elems_iter_next(it))) {
        uint32_t len = 0;
        const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
        if (!key || len != ks->klen || len > 64)
            continue;
        for (size_t i = 0; i < ks->nm; i++) {
            const struct nft_aff_match *m = &ks->m[i];
            if (ks->off + m->len <= len && memcmp(key + ks->off, m->fe, m->len) == 0) {
                if (VEC_RESERVE(ks->k, ks->n, ks->cap, 16) < 0) {
                    ks->err = ENOMEM;
                    break;
                }
                memcpy(ks->k[ks->n++], key, len);
                break;
            }
        }
    }
    nftnl_set_elems_iter_destroy(it);
    nftnl_set_free(s);
    return MNL_CB_OK;
}

/* nft list set inet T <set>, keeping the keys that match. */
static int dump(struct mnl_socket *nl, const char *table, const char *set, struct keys *ks)
{
    char buf[MNL_SOCKET_BUFFER_SIZE * 4];
    uint32_t seq = (uint32_t)time(NULL);
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return -ENOMEM;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, set);
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
                                                 NLM_F_DUMP, seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    uint32_t portid = mnl_socket_get_portid(nl);
    int ret;
    while ((ret = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0) {
        ret = mnl_cb_run(buf, (size_t)ret, seq, portid, elem_cb, ks);
        if (ret <= 0)
            break;
    }
    if (ret < 0)
        return -errno;
    return ks->err ? -ks->err : 0;
}

/* nft delete element inet T <set> { keys } */
static int delete_keys(struct mnl_socket *nl, const char *table, const char *set,
                       const struct keys *ks, char *err, size_t errlen)
{
    struct nft_batch *b = nft_batch_new();
    if (!b)
        return -ENOMEM;
    for (size_t off = 0; off < ks->n; off += 200) {
        size_t cnt = ks->n - off < 200 ? ks->n - off : 200;
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s) {
            nft_batch_free(b);
            return -ENOMEM;
        }
        nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, set);
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
        for (size_t i = off; i < off + cnt; i++) {
            struct nftnl_set_elem *e = nftnl_set_elem_alloc();
            if (!e) {
                nftnl_set_free(s);
                nft_batch_free(b);
                return -ENOMEM;
            }
            nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, ks->k[i], (uint32_t)ks->klen);
            nftnl_set_elem_add(s, e);
        }
        uint32_t seq;
        char *buf = nft_batch_msg_buf(b, &seq);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_DELSETELEM, NFPROTO_INET, 0, seq);
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        if (nft_batch_msg_done(b, "delete element inet %s %s (%zu affinity entries)", table, set,
                               cnt) < 0) {
            nft_batch_free(b);
            return -ENOMEM;
        }
    }
    int rc = nft_batch_send(b, nl, err, errlen);
    nft_batch_free(b);
    return rc;
}

int nft_affinity_purge(struct mnl_socket *nl, const char *table, const char *set, size_t klen,
                       size_t off, const struct nft_aff_match *m, size_t n, char *err,
                       size_t errlen)
{
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct keys ks = { NULL, 0, 0, klen, off, m, n, 0 };
        rc = dump(nl, table, set, &ks);
        if (rc == 0 && ks.n)
            rc = delete_keys(nl, table, set, &ks, err, errlen);
        else if (rc < 0)
            snprintf(err, errlen, "list set inet %s %s: %s", table, set, strerror(-rc));
        size_t cnt = ks.n;
        free(ks.k);
        if (rc == 0)
            return (int)cnt;
        if (rc != -ENOENT)
            break;
    }
    return -1;
}
