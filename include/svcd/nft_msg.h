/*
 * nft_msg: the netlink messages of svcd's nftables layout, built with
 * libnftnl into an nft_batch. Knows the layout (docs/NFTABLES.md): the
 * table, its fixed sets/maps, fixed chains and rules, the per-size load
 * balancing chains lb<4|6|n4|n6>_<N>[_a<timeout>], and element changes.
 * Owns no state: nftdp decides what to send, this module only encodes it.
 *
 * Every function appends one or more messages to the batch and returns 0, or
 * -1 on ENOMEM (the batch must then be dropped).
 */
#ifndef SVCD_NFT_MSG_H
#define SVCD_NFT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "svcd/model.h"

struct nft_batch;

/* The fixed sets and maps of the layout (names in nft_msg_set_name()). */
enum nft_set_id {
    NFT_SET_BE4 = 0,   /* map   ipv4_addr . inet_proto . inet_service . mark(slot) : ipv4_addr . inet_service */
    NFT_SET_BE6,
    NFT_SET_BNP4,      /* map   inet_proto . inet_service . mark(slot) : ipv4_addr . inet_service */
    NFT_SET_BNP6,
    NFT_SET_NOEP4,     /* vmap  ipv4_addr . inet_proto . inet_service : goto do_reject (no
                              endpoint) | drop (no local endpoint, policy Local)      */
    NFT_SET_NOEP6,
    NFT_SET_NPNOEP4,   /* vmap  inet_proto . inet_service : the same for NodePorts       */
    NFT_SET_NPNOEP6,
    NFT_SET_PORTS4,    /* set   ipv4_addr . inet_proto . inet_service (ClusterIP ports) */
    NFT_SET_PORTS6,
    NFT_SET_CIPS4,     /* set   ipv4_addr (ClusterIPs)                                 */
    NFT_SET_CIPS6,
    NFT_SET_HAIRPIN4,  /* set   ipv4_addr . ipv4_addr (endpoint . same endpoint)       */
    NFT_SET_HAIRPIN6,
    /* dispatch: frontend -> goto its lb chain */
    NFT_SET_FE4,       /* vmap  ipv4_addr . inet_proto . inet_service : verdict        */
    NFT_SET_FE6,
    NFT_SET_FEN4,      /* vmap  inet_proto . inet_service : verdict  (NodePorts)        */
    NFT_SET_FEN6,
    NFT_SET_FESC4,     /* vmap  like fe4: externalTrafficPolicy Local frontends -> the
                              chain of all endpoints (pod / node short-circuit)       */
    NFT_SET_FESC6,
    NFT_SET_FENSC4,    /* vmap  like fen4, short-circuit                                */
    NFT_SET_FENSC6,
    /* configuration ranges (interval sets, filled once) */
    NFT_SET_POD4,      /* set   ipv4_addr, flags interval: --pod-cidr                   */
    NFT_SET_POD6,
    NFT_SET_SVC4,      /* set   --service-cidr                                          */
    NFT_SET_SVC6,
    NFT_SET_NPA4,      /* set   --nodeport-addresses (resolved)                         */
    NFT_SET_NPA6,
    NFT_SET__COUNT
};

const char *nft_msg_set_name(enum nft_set_id id);
/* Key and data lengths (bytes, register-padded) of a set. */
size_t nft_msg_set_klen(enum nft_set_id id);
size_t nft_msg_set_dlen(enum nft_set_id id);

/* Kinds of load-balancing chain. */
enum nft_lb_kind { NFT_LB_VIP4 = 0, NFT_LB_VIP6, NFT_LB_NP4, NFT_LB_NP6 };

/* The masquerade bit (kube-proxy's default masqueradeBit 14). A chain that
 * decides to masquerade sets it; nat_postrouting masquerades marked packets
 * and clears the bit. */
#define NFT_MASQ_MARK 0x4000u
/* Slot offset of the "all endpoints" view of an externalTrafficPolicy Local
 * frontend in be4/be6/bnp4/bnp6 (its local endpoints use slots 0..N-1). */
#define NFT_SC_SLOT_BASE 0x10000u

enum nft_masq {
    NFT_MASQ_NONE = 0,     /* keep the client address                        */
    NFT_MASQ_NONPOD = 1,   /* ip saddr != @pod4: mark (ClusterIPs)          */
    NFT_MASQ_ALL = 2,      /* always mark (external, Cluster policy; --masquerade-all) */
};

/* A load-balancing chain: one per (kind, endpoint count N, affinity
 * timeout); timeout 0 = no affinity. With affinity, the chain first tries
 * the per-slot dynamic sets aff<kind>_<k> (k < N: "this client was sent to
 * slot k within the timeout") and otherwise picks a slot with numgen; the
 * slot chains lb<kind>s<k>_a<T> record the client and DNAT to slot k. */
struct nft_lbchain {
    enum nft_lb_kind kind;
    uint32_t n;
    uint32_t timeout;
    uint8_t masq;          /* enum nft_masq */
    uint8_t elocal;        /* externalTrafficPolicy Local: short-circuit pods and the node
                              to the fesc/fensc group first (n may be 0) */
    uint8_t sc;            /* the all-endpoints view: slots from NFT_SC_SLOT_BASE */
    uint8_t pad;
};
/* Writes the chain name ("lb4_3", "lbn6_2_a10800", "lb4_3_mp", "lbn4_1_el",
 * "lb4_2_sc") into buf (>= 48 bytes). */
const char *nft_msg_lbchain_name(const struct nft_lbchain *c, char *buf, size_t len);

/* Name of the affinity set of slot k of a kind ("aff4_3", "naff6_0"). */
void nft_msg_affset_name(enum nft_lb_kind kind, uint32_t k, char *buf, size_t len);

/* One element: key (and data for maps). */
struct nft_elem {
    uint8_t key[32];       /* longest key: ipv6 hairpin, 32 bytes */
    uint8_t data[20];
    char chain[40];        /* verdict maps: goto this chain ("" = drop) */
};

/* add table inet T; delete table inet T  (the first half of "replace all") */
int nft_msg_table_reset(struct nft_batch *b, const char *table);
/* delete table inet T */
int nft_msg_table_delete(struct nft_batch *b, const char *table);
/* Address ranges for the fixed interval sets (pod4/6, svc4/6, npa4/6). */
struct nft_ranges {
    const struct svcd_cidr *pod, *svc, *np;
    size_t n_pod, n_svc, n_np;
};

/* add table inet T, every fixed set (interval sets filled from r), the
 * reject chain, base chains and their rules. */
int nft_msg_skeleton(struct nft_batch *b, const char *table, const struct nft_ranges *r);
/* Affinity objects, shared by all lb chains of a kind: the dynamic set
 * aff4_<k> (add set inet T aff4_3 { type ipv4_addr . ipv4_addr . inet_proto
 * . inet_service; flags dynamic,timeout; size 65536; }) and the slot chain
 * lb4s3_a<T>. Create the set before any slot chain, slot chains before the
 * lb chains that jump to them. */
int nft_msg_affset_add(struct nft_batch *b, const char *table, enum nft_lb_kind kind, uint32_t k);
int nft_msg_slotchain_add(struct nft_batch *b, const char *table, enum nft_lb_kind kind,
                          uint32_t k, uint32_t timeout);
/* add chain inet T <lbchain> + its rule(s). Frontends reach it through
 * their element of fe4/fen4/fesc4/fensc4 (`10.96.0.10 . tcp . 80 : goto lb4_3`). */
int nft_msg_lbchain_add(struct nft_batch *b, const char *table, const struct nft_lbchain *c);
/* delete chain inet T <lbchain> (no element may point to it any more) */
int nft_msg_lbchain_del(struct nft_batch *b, const char *table, const struct nft_lbchain *c);
/* add/delete element inet T <set> { ... } for n elements (chunked);
 * `what` names the owner for error messages. */
int nft_msg_elems(struct nft_batch *b, const char *table, enum nft_set_id set, bool add,
                  const struct nft_elem *elems, size_t n, const char *what);

#endif
