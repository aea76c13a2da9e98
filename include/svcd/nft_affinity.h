/*
 * nft_affinity: removes the session-affinity state of frontends and slots
 * that changed. svcd's affinity sets (aff4_<k>, aff6_<k>, naff4_<k>,
 * naff6_<k>: "this client was sent to slot k of this frontend") are shared
 * by every frontend, so a deleted Service, or an endpoint that left slot k,
 * would otherwise hand its clients to whatever takes the slot until the
 * timeout (kube-proxy deletes the endpoint's own affinity set). After the
 * commit, nftdp lists the affected sets and deletes the entries of those
 * frontends.
 */
#ifndef SVCD_NFT_AFFINITY_H
#define SVCD_NFT_AFFINITY_H

#include <stddef.h>
#include <stdint.h>

struct mnl_socket;

/* One frontend whose entries go: its bytes in the set key at offset off
 * (after the client address): daddr . proto . port, or proto . port. */
struct nft_aff_match {
    uint8_t fe[24];
    uint8_t len;
};

/* Lists set `set` of table inet `table` (klen-byte keys) over nl and
 * deletes, in one transaction, every element whose key bytes [off, off +
 * m->len) equal one of the n matches. An element that expires in between
 * fails the transaction: it is retried once with a fresh listing. Returns
 * the number deleted, or -1 (a message in err). */
int nft_affinity_purge(struct mnl_socket *nl, const char *table, const char *set, size_t klen,
                       size_t off, const struct nft_aff_match *m, size_t n, char *err,
                       size_t errlen);

#endif
