/*
 * nft_msg: encodes svcd's nftables layout as libnftnl messages.
 *
 * The layout (docs/NFTABLES.md) keeps the number of chains and sets fixed:
 * Services are elements of a few named maps, and the only chains that vary
 * are the load-balancing chains, one per distinct (endpoint count N, kind,
 * affinity timeout), shared by every Service with that shape. So a full sync
 * of k Services is O(k) elements and O(distinct N) chains: linear.
 *
 * Register plan (32-bit registers NFT_REG32_00.. = 8..23): concatenated
 * keys are loaded into consecutive registers, one register per 4 bytes
 * (IPv6 addresses take four); lookups read keys from and write data to
 * register ranges chosen below so that everything fits in the 16 registers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include "svcd/nft_batch.h"
#include "svcd/nft_msg.h"

/* nft's datatype ids, for `nft list` to print keys (src/datatype.h). */
enum { DT_VERDICT = 1, DT_IPADDR = 7, DT_IP6ADDR = 8, DT_INET_PROTO = 12,
       DT_INET_SERVICE = 13, DT_MARK = 19 };
#define DT_BITS 6
#define R(n) (NFT_REG32_00 + (n))
#define ELEMS_PER_MSG 200

/* One component of a concatenated key. */
enum comp { C_END = 0, C_IP4, C_IP6, C_PROTO, C_PORT, C_SLOT };

struct set_def {
    const char *name;
    enum comp key[6];
    enum comp data[3];  /* C_END only = set; verdict maps use vmap */
    bool vmap;
    bool dynamic;       /* dynamic + timeout (affinity) */
    bool interval;      /* flags interval (address ranges) */
};

static const struct set_def nft_sets[NFT_SET__COUNT] = {
    [NFT_SET_BE4] = { "be4", { C_IP4, C_PROTO, C_PORT, C_SLOT }, { C_IP4, C_PORT }, false, false, false },
    [NFT_SET_BE6] = { "be6", { C_IP6, C_PROTO, C_PORT, C_SLOT }, { C_IP6, C_PORT }, false, false, false },
    [NFT_SET_BNP4] = { "bnp4", { C_PROTO, C_PORT, C_SLOT }, { C_IP4, C_PORT }, false, false, false },
    [NFT_SET_BNP6] = { "bnp6", { C_PROTO, C_PORT, C_SLOT }, { C_IP6, C_PORT }, false, false, false },
    [NFT_SET_NOEP4] = { "noep4", { C_IP4, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_NOEP6] = { "noep6", { C_IP6, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_NPNOEP4] = { "np_noep4", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_NPNOEP6] = { "np_noep6", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_PORTS4] = { "ports4", { C_IP4, C_PROTO, C_PORT }, { C_END }, false, false, false },
    [NFT_SET_PORTS6] = { "ports6", { C_IP6, C_PROTO, C_PORT }, { C_END }, false, false, false },
    [NFT_SET_CIPS4] = { "cips4", { C_IP4 }, { C_END }, false, false, false },
    [NFT_SET_CIPS6] = { "cips6", { C_IP6 }, { C_END }, false, false, false },
    [NFT_SET_HAIRPIN4] = { "hairpin4", { C_IP4, C_IP4 }, { C_END }, false, false, false },
    [NFT_SET_HAIRPIN6] = { "hairpin6", { C_IP6, C_IP6 }, { C_END }, false, false, false },
    [NFT_SET_FE4] = { "fe4", { C_IP4, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FE6] = { "fe6", { C_IP6, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FEN4] = { "fen4", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FEN6] = { "fen6", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FESC4] = { "fesc4", { C_IP4, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FESC6] = { "fesc6", { C_IP6, C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FENSC4] = { "fensc4", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_FENSC6] = { "fensc6", { C_PROTO, C_PORT }, { C_END }, true, false, false },
    [NFT_SET_POD4] = { "pod4", { C_IP4 }, { C_END }, false, false, true },
    [NFT_SET_POD6] = { "pod6", { C_IP6 }, { C_END }, false, false, true },
    [NFT_SET_SVC4] = { "svc4", { C_IP4 }, { C_END }, false, false, true },
    [NFT_SET_SVC6] = { "svc6", { C_IP6 }, { C_END }, false, false, true },
    [NFT_SET_NPA4] = { "npa4", { C_IP4 }, { C_END }, false, false, true },
    [NFT_SET_NPA6] = { "npa6", { C_IP6 }, { C_END }, false, false, true },
};

static size_t comp_len(enum comp c)
{
    return c == C_IP6 ? 16 : c == C_END ? 0 : 4;
}

static uint32_t comp_type(enum comp c)
{
    switch (c) {
    case C_IP4: return DT_IPADDR;
    case C_IP6: return DT_IP6ADDR;
    case C_PROTO: return DT_INET_PROTO;
    case C_PORT: return DT_INET_SERVICE;
    case C_SLOT: return DT_MARK;
    default: return 0;
    }
}

static size_t comps_len(const enum comp *c, size_t max)
{
    size_t l = 0;
    for (size_t i = 0; i < max && c[i] != C_END; i++)
        l += comp_len(c[i]);
    return l;
}

static uint32_t comps_type(const enum comp *c, size_t max)
{
    uint32_t t = 0;
    for (size_t i = 0; i < max && c[i] != C_END; i++)
        t = (t << DT_BITS) | comp_type(c[i]);
    return t;
}

const char *nft_msg_set_name(enum nft_set_id id)
{
    return id < NFT_SET__COUNT ? nft_sets[id].name : "?";
}

size_t nft_msg_set_klen(enum nft_set_id id)
{
    return comps_len(nft_sets[id].key, 6);
}

size_t nft_msg_set_dlen(enum nft_set_id id)
{
    return comps_len(nft_sets[id].data, 3);
}

const char *nft_msg_lbchain_name(const struct nft_lbchain *c, char *buf, size_t len)
{
    static const char *k[] = { "lb4", "lb6", "lbn4", "lbn6" };
    static const char *m[] = { "", "_mp", "_ma" };
    char aff[16] = "";
    if (c->timeout)
        snprintf(aff, sizeof(aff), "_a%u", c->timeout);
    snprintf(buf, len, "%s_%u%s%s%s%s", k[c->kind], c->n, aff, m[c->masq % 3],
             c->elocal ? "_el" : "", c->sc ? "_sc" : "");
    return buf;
}

/* ---- expression helpers --------------------------------------------------- */

static int rule_add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
    if (!e)
        return -1;
    nftnl_rule_add_expr(r, e);
    return 0;
}

static int ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("payload");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
    return rule_add_expr(r, e);
}

static int ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("meta");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
    return rule_add_expr(r, e);
}

static int ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
    struct nftnl_expr *e = nftnl_expr_alloc("cmp");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    return rule_add_expr(r, e);
}

/* reg = (reg & mask) ^ xor */
static int ex_bitwise_mx(struct nftnl_rule *r, uint32_t reg, const void *mask, const void *xor,
                         uint32_t len)
{
    struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
    return rule_add_expr(r, e);
}

static int ex_bitwise(struct nftnl_rule *r, uint32_t reg, const void *mask, uint32_t len)
{
    uint8_t zero[16] = { 0 };
    return ex_bitwise_mx(r, reg, mask, zero, len);
}

/* meta mark set meta mark | NFT_MASQ_MARK  (or with clear: & ~NFT_MASQ_MARK) */
static int ex_mark_masq(struct nftnl_rule *r, bool set)
{
    uint32_t mask = ~NFT_MASQ_MARK, xor = set ? NFT_MASQ_MARK : 0;
    if (ex_meta(r, NFT_META_MARK, NFT_REG_1) < 0 ||
        ex_bitwise_mx(r, NFT_REG_1, &mask, &xor, 4) < 0)
        return -1;
    struct nftnl_expr *e = nftnl_expr_alloc("meta");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
    return rule_add_expr(r, e);
}

/* fib saddr type local */
static int ex_fib_saddr_local(struct nftnl_rule *r)
{
    struct nftnl_expr *e = nftnl_expr_alloc("fib");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_SADDR);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
    if (rule_add_expr(r, e) < 0) return -1;
    uint32_t local = RTN_LOCAL;
    return ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, 4);
}

static int ex_lookup(struct nftnl_rule *r, enum nft_set_id set, uint32_t sreg, int dreg, bool inv)
{
    struct nftnl_expr *e = nftnl_expr_alloc("lookup");
    if (!e) return -1;
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, nft_sets[set].name);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, (uint32_t)set + 1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
    if (dreg >= 0)
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
    if (inv)
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    return rule_add_expr(r, e);
}

static int ex_numgen(struct nftnl_rule *r, uint32_t mod, uint32_t dreg, uint32_t offset)
{
    struct nftnl_expr *e = nftnl_expr_alloc("numgen");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, dreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, mod);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, offset);
    return rule_add_expr(r, e);
}

static int ex_dnat(struct nftnl_rule *r, int v6, uint32_t addr_reg, uint32_t proto_reg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("nat");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addr_reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, proto_reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS,
                       NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
    return rule_add_expr(r, e);
}

static int ex_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
    struct nftnl_expr *e = nftnl_expr_alloc("immediate");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
    if (chain)
        nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
    return rule_add_expr(r, e);
}

static int ex_simple(struct nftnl_rule *r, const char *name)
{
    return rule_add_expr(r, nftnl_expr_alloc(name));
}

static int ex_reject(struct nftnl_rule *r, uint32_t type, uint8_t code)
{
    struct nftnl_expr *e = nftnl_expr_alloc("reject");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, type);
    nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, code);
    return rule_add_expr(r, e);
}

static int ex_ct(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("ct");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
    return rule_add_expr(r, e);
}

/* meta nfproto ipv4|ipv6 */
static int ex_nfproto(struct nftnl_rule *r, int v6)
{
    uint8_t p = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
    if (ex_meta(r, NFT_META_NFPROTO, NFT_REG_1) < 0) return -1;
    return ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &p, 1);
}

/* ct state new | ct status dnat : (ct KEY & bits) != 0 */
static int ex_ct_bits(struct nftnl_rule *r, uint32_t key, uint32_t bits)
{
    uint32_t zero = 0;
    if (ex_ct(r, key, NFT_REG_1) < 0) return -1;
    if (ex_bitwise(r, NFT_REG_1, &bits, 4) < 0) return -1;
    return ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, 4);
}

/* ip daddr @npa4 (ip6 daddr @npa6): an address that accepts NodePorts */
static int ex_npaddr(struct nftnl_rule *r, int v6)
{
    if (ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, R(0)) < 0)
        return -1;
    return ex_lookup(r, v6 ? NFT_SET_NPA6 : NFT_SET_NPA4, R(0), -1, false);
}

/* Loads packet fields into consecutive registers from *reg on. */
enum field { F_SADDR, F_DADDR, F_PROTO, F_DPORT };
static int ex_load(struct nftnl_rule *r, int v6, const enum field *f, size_t n, uint32_t *reg)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        switch (f[i]) {
        case F_SADDR:
            rc = ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, *reg);
            *reg += v6 ? 4 : 1;
            break;
        case F_DADDR:
            rc = ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, *reg);
            *reg += v6 ? 4 : 1;
            break;
        case F_PROTO:
            rc = ex_meta(r, NFT_META_L4PROTO, *reg);
            *reg += 1;
            break;
        case F_DPORT:
            rc = ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, *reg);
            *reg += 1;
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- message emitters ------------------------------------------------------ */

static int emit_rule(struct nft_batch *b, const char *table, struct nftnl_rule *r,
                     const char *chain, const char *nftcmd)
{
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET,
                                                 NLM_F_CREATE | NLM_F_APPEND, seq);
    nftnl_rule_nlmsg_build_payload(nlh, r);
    nftnl_rule_free(r);
    return nft_batch_msg_done(b, "add rule inet %s %s %s", table, chain, nftcmd);
}

static int emit_chain(struct nft_batch *b, const char *table, const char *name, bool add,
                      const char *type, int hook, int prio)
{
    struct nftnl_chain *c = nftnl_chain_alloc();
    if (!c)
        return -1;
    nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
    nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
    if (type) {
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    }
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, add ? NFT_MSG_NEWCHAIN : NFT_MSG_DELCHAIN,
                                                 NFPROTO_INET, add ? NLM_F_CREATE : 0, seq);
    nftnl_chain_nlmsg_build_payload(nlh, c);
    nftnl_chain_free(c);
    return nft_batch_msg_done(b, "%s chain inet %s %s", add ? "add" : "delete", table, name);
}

static int emit_table(struct nft_batch *b, const char *table, bool add)
{
    struct nftnl_table *t = nftnl_table_alloc();
    if (!t)
        return -1;
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, add ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE,
                                                 NFPROTO_INET, add ? NLM_F_CREATE : 0, seq);
    nftnl_table_nlmsg_build_payload(nlh, t);
    nftnl_table_free(t);
    return nft_batch_msg_done(b, "%s table inet %s", add ? "add" : "delete", table);
}

int nft_msg_table_reset(struct nft_batch *b, const char *table)
{
    /* nft add table inet T ; nft delete table inet T
     * (the "add" makes the delete succeed when no table exists yet) */
    if (emit_table(b, table, true) < 0)
        return -1;
    return emit_table(b, table, false);
}

int nft_msg_table_delete(struct nft_batch *b, const char *table)
{
    /* nft delete table inet T */
    return emit_table(b, table, false);
}

static int emit_set(struct nft_batch *b, const char *table, enum nft_set_id id)
{
    const struct set_def *d = &nft_sets[id];
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return -1;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)id + 1);
    nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, (uint32_t)comps_len(d->key, 6));
    nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, comps_type(d->key, 6));
    uint32_t flags = 0;
    if (d->vmap) {
        flags |= NFT_SET_MAP;
        nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
        nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 0);
    } else if (d->data[0] != C_END) {
        flags |= NFT_SET_MAP;
        nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, comps_type(d->data, 3));
        nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, (uint32_t)comps_len(d->data, 3));
    }
    if (d->dynamic) {
        flags |= NFT_SET_EVAL | NFT_SET_TIMEOUT;
        nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65536);
    }
    if (d->interval)
        flags |= NFT_SET_INTERVAL;
    nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET,
                                                 NLM_F_CREATE, seq);
    nftnl_set_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    return nft_batch_msg_done(b, "add %s inet %s %s", flags & NFT_SET_MAP ? "map" : "set",
                              table, d->name);
}

/* Elements of an interval set: each CIDR as [first, last + 1) (the end
 * element flagged INTERVAL_END; none when the range reaches the top of the
 * address space). CIDRs of the other family, and CIDRs inside an earlier
 * one of the list, are skipped (the kernel refuses overlaps).
 * nft add element inet T pod4 { 10.244.0.0/16 } */
static int emit_ranges(struct nft_batch *b, const char *table, enum nft_set_id id,
                       const struct svcd_cidr *c, size_t n, int af)
{
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return -1;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, nft_sets[id].name);
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
    size_t alen = af == AF_INET6 ? 16 : 4, cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].addr.family != af)
            continue;
        bool inside = false;
        for (size_t j = 0; j < n && !inside; j++) {
            if (j == i || c[j].addr.family != af || c[j].prefix > c[i].prefix)
                continue;
            if (svcd_cidr_contains(&c[j], &c[i].addr) && (c[j].prefix < c[i].prefix || j < i))
                inside = true;
        }
        if (inside)
            continue;
        uint8_t lo[16], hi[16];
        memcpy(lo, c[i].addr.u.bytes, alen);
        memcpy(hi, lo, alen);
        /* hi = lo + 2^(bits - prefix): add 1 at bit position prefix - 1 */
        bool carry = true;
        int bitpos = c[i].prefix - 1;   /* the last network bit */
        if (bitpos < 0) {
            carry = true;               /* /0: no end */
        } else {
            int byte = bitpos / 8, bit = 7 - bitpos % 8;
            unsigned v = (unsigned)hi[byte] + (1u << bit);
            hi[byte] = (uint8_t)v;
            carry = v > 0xff;
            for (int k = byte - 1; k >= 0 && carry; k--) {
                v = (unsigned)hi[k] + 1;
                hi[k] = (uint8_t)v;
                carry = v > 0xff;
            }
        }
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        if (!e) {
            nftnl_set_free(s);
            return -1;
        }
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, lo, (uint32_t)alen);
        nftnl_set_elem_add(s, e);
        if (!carry) {
            if (!(e = nftnl_set_elem_alloc())) {
                nftnl_set_free(s);
                return -1;
            }
            nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, hi, (uint32_t)alen);
            nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
            nftnl_set_elem_add(s, e);
        }
        cnt++;
    }
    if (cnt == 0) {
        nftnl_set_free(s);
        return 0;
    }
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSETELEM, NFPROTO_INET,
                                                 NLM_F_CREATE, seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    return nft_batch_msg_done(b, "add element inet %s %s (%zu ranges)", table, nft_sets[id].name,
                              cnt);
}

#define NEWRULE(r) do { if (!((r) = nftnl_rule_alloc())) return -1; } while (0)

/* The filter-side checks: no-endpoint services and unknown ClusterIP ports.
 * The base chains jump here for new connections only (ct state new). */
static int emit_filter_check(struct nft_batch *b, const char *table)
{
    struct nftnl_rule *r;
    static const enum field fk[] = { F_DADDR, F_PROTO, F_DPORT };
    static const enum field fn[] = { F_PROTO, F_DPORT };
    for (int v6 = 0; v6 <= 1; v6++) {
        /* frontends without (local) endpoints: reject, or drop (policy Local)
         * nft add rule inet T filter_check meta nfproto ipv4
         *     ip daddr . meta l4proto . th dport vmap @noep4
         * nft add rule inet T filter_check meta nfproto ipv4 ip daddr @npa4
         *     meta l4proto . th dport vmap @np_noep4 */
        for (int np = 0; np <= 1; np++) {
            enum nft_set_id set = np ? (v6 ? NFT_SET_NPNOEP6 : NFT_SET_NPNOEP4)
                                     : (v6 ? NFT_SET_NOEP6 : NFT_SET_NOEP4);
            uint32_t reg = R(0);
            NEWRULE(r);
            if (ex_nfproto(r, v6) < 0 || (np && ex_npaddr(r, v6) < 0) ||
                ex_load(r, v6, np ? fn : fk, np ? 2 : 3, &reg) < 0 ||
                ex_lookup(r, set, R(0), NFT_REG_VERDICT, false) < 0)
                goto fail;
            if (emit_rule(b, table, r, "filter_check", nft_sets[set].name) < 0)
                return -1;
        }
        /* nft add rule inet T filter_check meta nfproto ipv4
         *     ip daddr @cips4 ip daddr . meta l4proto . th dport != @ports4 goto do_reject */
        uint32_t reg = R(0);
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 || ex_load(r, v6, fk, 3, &reg) < 0 ||
            ex_lookup(r, v6 ? NFT_SET_CIPS6 : NFT_SET_CIPS4, R(0), -1, false) < 0 ||
            ex_lookup(r, v6 ? NFT_SET_PORTS6 : NFT_SET_PORTS4, R(0), -1, true) < 0 ||
            ex_verdict(r, NFT_GOTO, "do_reject") < 0)
            goto fail;
        if (emit_rule(b, table, r, "filter_check",
                      v6 ? "... ip6 daddr @cips6 ... != @ports6 goto do_reject"
                         : "... ip daddr @cips4 ... != @ports4 goto do_reject") < 0)
            return -1;
    }
    return 0;
fail:
    nftnl_rule_free(r);
    return -1;
}

/* The dispatch key of a frontend kind: ip daddr . meta l4proto . th dport,
 * or meta l4proto . th dport for NodePorts. */
static int ex_fe_key(struct nftnl_rule *r, int v6, bool np);
/* <key> vmap @<fe map>: one lookup decides "is this a frontend" and which
 * lb chain it goes to. */
static int ex_dispatch(struct nftnl_rule *r, enum nft_set_id fe)
{
    return ex_lookup(r, fe, R(0), NFT_REG_VERDICT, false);
}

static int emit_svc_drop(struct nft_batch *b, const char *table, const char *chain)
{
    /* nft add rule inet T <chain> ct state new ip daddr @svc4 drop  (and ip6 @svc6)
     * after DNAT: whatever still goes to the service range is an address no
     * Service holds (or a port it does not have: rejected before). */
    for (int v6 = 0; v6 <= 1; v6++) {
        struct nftnl_rule *r;
        NEWRULE(r);
        if (ex_ct_bits(r, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW)) < 0 || ex_nfproto(r, v6) < 0 ||
            ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, R(0)) < 0 ||
            ex_lookup(r, v6 ? NFT_SET_SVC6 : NFT_SET_SVC4, R(0), -1, false) < 0 ||
            ex_verdict(r, NF_DROP, NULL) < 0) {
            nftnl_rule_free(r);
            return -1;
        }
        if (emit_rule(b, table, r, chain, v6 ? "ct state new ip6 daddr @svc6 drop"
                                             : "ct state new ip daddr @svc4 drop") < 0)
            return -1;
    }
    return 0;
}

int nft_msg_skeleton(struct nft_batch *b, const char *table, const struct nft_ranges *rg)
{
    struct nftnl_rule *r;
    /* nft add table inet T */
    if (emit_table(b, table, true) < 0)
        return -1;
    /* nft add map inet T be4 { type ipv4_addr . inet_proto . inet_service . mark : ipv4_addr . inet_service; } ... */
    for (int i = 0; i < NFT_SET__COUNT; i++)
        if (emit_set(b, table, (enum nft_set_id)i) < 0)
            return -1;
    /* nft add element inet T pod4 { 10.244.0.0/16 } ; svc4 ; npa4 ; (and the ip6 sets) */
    for (int v6 = 0; v6 <= 1; v6++) {
        int af = v6 ? AF_INET6 : AF_INET;
        if (emit_ranges(b, table, v6 ? NFT_SET_POD6 : NFT_SET_POD4, rg->pod, rg->n_pod, af) < 0 ||
            emit_ranges(b, table, v6 ? NFT_SET_SVC6 : NFT_SET_SVC4, rg->svc, rg->n_svc, af) < 0 ||
            emit_ranges(b, table, v6 ? NFT_SET_NPA6 : NFT_SET_NPA4, rg->np, rg->n_np, af) < 0)
            return -1;
    }
    /* nft add chain inet T do_reject */
    if (emit_chain(b, table, "do_reject", true, NULL, 0, 0) < 0)
        return -1;
    /* nft add rule inet T do_reject meta l4proto tcp reject with tcp reset */
    NEWRULE(r);
    uint8_t tcp = IPPROTO_TCP;
    if (ex_meta(r, NFT_META_L4PROTO, NFT_REG_1) < 0 ||
        ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &tcp, 1) < 0 ||
        ex_reject(r, NFT_REJECT_TCP_RST, 0) < 0)
        goto fail;
    if (emit_rule(b, table, r, "do_reject", "meta l4proto tcp reject with tcp reset") < 0)
        return -1;
    /* nft add rule inet T do_reject reject   (icmpx port-unreachable) */
    NEWRULE(r);
    if (ex_reject(r, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH) < 0)
        goto fail;
    if (emit_rule(b, table, r, "do_reject", "reject with icmpx port-unreachable") < 0)
        return -1;

    /* nft add chain inet T filter_check ; + its rules */
    if (emit_chain(b, table, "filter_check", true, NULL, 0, 0) < 0 ||
        emit_filter_check(b, table) < 0)
        return -1;
    /* nft add chain inet T services */
    if (emit_chain(b, table, "services", true, NULL, 0, 0) < 0)
        return -1;
    for (int v6 = 0; v6 <= 1; v6++) {
        /* nft add rule inet T services meta nfproto ipv4
         *     ip daddr . meta l4proto . th dport vmap @fe4
         * (verdict elements: 10.96.0.10 . tcp . 80 : goto lb4_3) */
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 || ex_fe_key(r, v6, false) < 0 ||
            ex_dispatch(r, v6 ? NFT_SET_FE6 : NFT_SET_FE4) < 0)
            goto fail;
        if (emit_rule(b, table, r, "services", v6 ? "... vmap @fe6"
                                                  : "... vmap @fe4") < 0)
            return -1;
        /* nft add rule inet T services meta nfproto ipv4 ip daddr @npa4
         *     meta l4proto . th dport vmap @fen4 */
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 || ex_npaddr(r, v6) < 0 || ex_fe_key(r, v6, true) < 0 ||
            ex_dispatch(r, v6 ? NFT_SET_FEN6 : NFT_SET_FEN4) < 0)
            goto fail;
        if (emit_rule(b, table, r, "services", v6 ? "ip6 daddr @npa6 ... vmap @fen6"
                                                  : "ip daddr @npa4 ... vmap @fen4") < 0)
            return -1;
    }
    /* nft add chain inet T nat_postrouting { type nat hook postrouting priority srcnat; } */
    if (emit_chain(b, table, "nat_postrouting", true, "nat", NF_INET_POST_ROUTING, 100) < 0)
        return -1;
    for (int v6 = 0; v6 <= 1; v6++) {
        static const enum field fh[] = { F_SADDR, F_DADDR };
        uint32_t reg = R(0);
        /* nft add rule inet T nat_postrouting ct status dnat meta nfproto ipv4
         *     ip saddr . ip daddr @hairpin4 masquerade */
        NEWRULE(r);
        if (ex_ct_bits(r, NFT_CT_STATUS, IPS_DST_NAT) < 0 || ex_nfproto(r, v6) < 0 ||
            ex_load(r, v6, fh, 2, &reg) < 0 ||
            ex_lookup(r, v6 ? NFT_SET_HAIRPIN6 : NFT_SET_HAIRPIN4, R(0), -1, false) < 0 ||
            ex_simple(r, "masq") < 0)
            goto fail;
        if (emit_rule(b, table, r, "nat_postrouting",
                      v6 ? "... @hairpin6 masquerade" : "... @hairpin4 masquerade") < 0)
            return -1;
    }
    /* nft add rule inet T nat_postrouting meta mark & 0x4000 == 0x4000
     *     meta mark set meta mark & 0xffffbfff masquerade fully-random
     * (kube-proxy's mark-then-masquerade: lb chains set the bit) */
    NEWRULE(r);
    {
        uint32_t bit = NFT_MASQ_MARK, zero = 0;
        if (ex_meta(r, NFT_META_MARK, NFT_REG_1) < 0 || ex_bitwise(r, NFT_REG_1, &bit, 4) < 0 ||
            ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, 4) < 0 || ex_mark_masq(r, false) < 0)
            goto fail;
        struct nftnl_expr *e = nftnl_expr_alloc("masq");
        if (!e)
            goto fail;
        nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
        nftnl_rule_add_expr(r, e);
        if (emit_rule(b, table, r, "nat_postrouting", "meta mark & 0x4000 ... masquerade") < 0)
            return -1;
    }
    /* nft add chain inet T nat_prerouting { type nat hook prerouting priority dstnat; }
     * nft add rule inet T nat_prerouting jump services   (same for output) */
    static const struct { const char *name, *type; int hook, prio; const char *jump; } base[] = {
        { "nat_prerouting", "nat", NF_INET_PRE_ROUTING, -100, "services" },
        { "nat_output", "nat", NF_INET_LOCAL_OUT, -100, "services" },
        { "filter_input", "filter", NF_INET_LOCAL_IN, -110, "filter_check" },
        { "filter_forward", "filter", NF_INET_FORWARD, -110, "filter_check" },
        { "filter_output", "filter", NF_INET_LOCAL_OUT, -110, "filter_check" },
        { "filter_output_post", "filter", NF_INET_LOCAL_OUT, -90, NULL },
    };
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        if (emit_chain(b, table, base[i].name, true, base[i].type, base[i].hook, base[i].prio) < 0)
            return -1;
        if (base[i].jump) {
            /* nft add rule inet T filter_input ct state new jump filter_check
             * nft add rule inet T nat_output jump services */
            bool filter = !strcmp(base[i].type, "filter");
            NEWRULE(r);
            if ((filter && ex_ct_bits(r, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW)) < 0) ||
                ex_verdict(r, NFT_JUMP, base[i].jump) < 0)
                goto fail;
            if (emit_rule(b, table, r, base[i].name, base[i].jump) < 0)
                return -1;
        }
    }
    /* drops to unallocated service addresses, after DNAT: forward, output */
    if (emit_svc_drop(b, table, "filter_forward") < 0 ||
        emit_svc_drop(b, table, "filter_output_post") < 0)
        return -1;
    return 0;
fail:
    nftnl_rule_free(r);
    return -1;
}

static bool lb_v6(enum nft_lb_kind k)
{
    return k == NFT_LB_VIP6 || k == NFT_LB_NP6;
}

static bool lb_np(enum nft_lb_kind k)
{
    return k == NFT_LB_NP4 || k == NFT_LB_NP6;
}

void nft_msg_affset_name(enum nft_lb_kind kind, uint32_t k, char *buf, size_t len)
{
    static const char *p[] = { "aff4", "aff6", "naff4", "naff6" };
    snprintf(buf, len, "%s_%u", p[kind], k);
}

static void slotchain_name(enum nft_lb_kind kind, uint32_t k, uint32_t timeout, char *buf,
                           size_t len)
{
    static const char *p[] = { "lb4s", "lb6s", "lbn4s", "lbn6s" };
    snprintf(buf, len, "%s%u_a%u", p[kind], k, timeout);
}

/* Fields of the affinity key: ip saddr . ip daddr . meta l4proto . th dport
 * (NodePorts: ip saddr . meta l4proto . th dport). */
static const enum field aff_vip[] = { F_SADDR, F_DADDR, F_PROTO, F_DPORT };
static const enum field aff_np[] = { F_SADDR, F_PROTO, F_DPORT };

static uint32_t batch_set_id = 1000;

int nft_msg_affset_add(struct nft_batch *b, const char *table, enum nft_lb_kind kind, uint32_t k)
{
    char name[40];
    nft_msg_affset_name(kind, k, name, sizeof(name));
    enum comp vip4[] = { C_IP4, C_IP4, C_PROTO, C_PORT, C_END, C_END };
    enum comp vip6[] = { C_IP6, C_IP6, C_PROTO, C_PORT, C_END, C_END };
    enum comp np4[] = { C_IP4, C_PROTO, C_PORT, C_END, C_END, C_END };
    enum comp np6[] = { C_IP6, C_PROTO, C_PORT, C_END, C_END, C_END };
    const enum comp *key = kind == NFT_LB_VIP4 ? vip4 : kind == NFT_LB_VIP6 ? vip6
                         : kind == NFT_LB_NP4 ? np4 : np6;
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return -1;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, name);
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s, NFTNL_SET_ID, ++batch_set_id);
    nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, (uint32_t)comps_len(key, 6));
    nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, comps_type(key, 6));
    nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_EVAL | NFT_SET_TIMEOUT);
    nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65536);
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    /* nft add set inet T aff4_3 { type ipv4_addr . ipv4_addr . inet_proto .
     *     inet_service; flags dynamic,timeout; size 65536; } */
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET,
                                                 NLM_F_CREATE, seq);
    nftnl_set_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    return nft_batch_msg_done(b, "add set inet %s %s", table, name);
}

static int ex_lookup_name(struct nftnl_rule *r, const char *set, uint32_t set_id, uint32_t sreg,
                          int dreg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("lookup");
    if (!e) return -1;
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    if (set_id)
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
    if (dreg >= 0)
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
    return rule_add_expr(r, e);
}

static int ex_imm_u32(struct nftnl_rule *r, uint32_t v, uint32_t dreg)
{
    struct nftnl_expr *e = nftnl_expr_alloc("immediate");
    if (!e) return -1;
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
    nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &v, sizeof(v));
    return rule_add_expr(r, e);
}

/* dnat to (ip daddr .) meta l4proto . th dport . <slot> map @be4|@bnp4 ;
 * slot < 0 means numgen random mod n. */
static int ex_dnat_slot(struct nftnl_rule *r, enum nft_lb_kind kind, int64_t slot, uint32_t n,
                        uint32_t base)
{
    static const enum field k_vip[] = { F_DADDR, F_PROTO, F_DPORT };
    static const enum field k_np[] = { F_PROTO, F_DPORT };
    int v6 = lb_v6(kind);
    bool np = lb_np(kind);
    enum nft_set_id be = np ? (v6 ? NFT_SET_BNP6 : NFT_SET_BNP4) : (v6 ? NFT_SET_BE6 : NFT_SET_BE4);
    uint32_t reg = R(0);
    if (ex_nfproto(r, v6) < 0 || ex_load(r, v6, np ? k_np : k_vip, np ? 2 : 3, &reg) < 0)
        return -1;
    if (slot < 0 ? ex_numgen(r, n, reg, base) < 0 : ex_imm_u32(r, (uint32_t)slot + base, reg) < 0)
        return -1;
    if (ex_lookup(r, be, R(0), R(0), false) < 0)
        return -1;
    return ex_dnat(r, v6, R(0), R(0) + (v6 ? 4 : 1));
}

int nft_msg_slotchain_add(struct nft_batch *b, const char *table, enum nft_lb_kind kind,
                          uint32_t k, uint32_t timeout)
{
    char name[48], set[40];
    slotchain_name(kind, k, timeout, name, sizeof(name));
    nft_msg_affset_name(kind, k, set, sizeof(set));
    int v6 = lb_v6(kind);
    bool np = lb_np(kind);
    struct nftnl_rule *r;
    /* nft add chain inet T lb4s3_a60 */
    if (emit_chain(b, table, name, true, NULL, 0, 0) < 0)
        return -1;
    /* nft add rule inet T lb4s3_a60 update @aff4_3 { ip saddr . ip daddr .
     *     meta l4proto . th dport timeout 60s } */
    NEWRULE(r);
    uint32_t reg = R(0);
    struct nftnl_expr *e;
    if (ex_nfproto(r, v6) < 0 || ex_load(r, v6, np ? aff_np : aff_vip, np ? 3 : 4, &reg) < 0 ||
        !(e = nftnl_expr_alloc("dynset")))
        goto fail;
    nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
    nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, R(0));
    nftnl_expr_set_u64(e, NFTNL_EXPR_DYNSET_TIMEOUT, (uint64_t)timeout * 1000u);
    nftnl_rule_add_expr(r, e);
    if (emit_rule(b, table, r, name, "update @aff { saddr ... timeout }") < 0)
        return -1;
    /* nft add rule inet T lb4s3_a60 dnat ip to ip daddr . meta l4proto .
     *     th dport . 3 map @be4 */
    NEWRULE(r);
    if (ex_dnat_slot(r, kind, k, 0, 0) < 0)
        goto fail;
    return emit_rule(b, table, r, name, "dnat to ... . <slot> map @be");
fail:
    nftnl_rule_free(r);
    return -1;
}

static int ex_fe_key(struct nftnl_rule *r, int v6, bool np)
{
    static const enum field fk[] = { F_DADDR, F_PROTO, F_DPORT };
    static const enum field fn[] = { F_PROTO, F_DPORT };
    uint32_t reg = R(0);
    return ex_load(r, v6, np ? fn : fk, np ? 2 : 3, &reg);
}

/* The rules before load balancing: masquerade marking, and for
 * externalTrafficPolicy Local the short-circuits of pod and node traffic. */
static int lbchain_prefix(struct nft_batch *b, const char *table, const struct nft_lbchain *c,
                          const char *name)
{
    int v6 = lb_v6(c->kind);
    bool np = lb_np(c->kind);
    struct nftnl_rule *r = NULL;
    enum nft_set_id pod = v6 ? NFT_SET_POD6 : NFT_SET_POD4;
    if (c->masq == NFT_MASQ_NONPOD) {
        /* nft add rule inet T lb4_3_mp meta nfproto ipv4 ip saddr != @pod4
         *     meta mark set meta mark | 0x4000 */
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 ||
            ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, R(0)) < 0 ||
            ex_lookup(r, pod, R(0), -1, true) < 0 || ex_mark_masq(r, true) < 0)
            goto fail;
        if (emit_rule(b, table, r, name, "ip saddr != @pod4 meta mark set meta mark | 0x4000") < 0)
            return -1;
    } else if (c->masq == NFT_MASQ_ALL) {
        /* nft add rule inet T lb4_3_ma meta mark set meta mark | 0x4000 */
        NEWRULE(r);
        if (ex_mark_masq(r, true) < 0)
            goto fail;
        if (emit_rule(b, table, r, name, "meta mark set meta mark | 0x4000") < 0)
            return -1;
    }
    if (c->elocal) {
        enum nft_set_id sc = np ? (v6 ? NFT_SET_FENSC6 : NFT_SET_FENSC4)
                                : (v6 ? NFT_SET_FESC6 : NFT_SET_FESC4);
        /* pods keep their address and use every endpoint:
         * nft add rule inet T lb4_1_el meta nfproto ipv4 ip saddr @pod4
         *     ip daddr . meta l4proto . th dport vmap @fesc4 */
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 ||
            ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, R(0)) < 0 ||
            ex_lookup(r, pod, R(0), -1, false) < 0 || ex_fe_key(r, v6, np) < 0 ||
            ex_dispatch(r, sc) < 0)
            goto fail;
        if (emit_rule(b, table, r, name, "ip saddr @pod4 ... vmap @fesc4") < 0)
            return -1;
        /* the node itself is masqueraded and uses every endpoint:
         * nft add rule inet T lb4_1_el meta nfproto ipv4 fib saddr type local
         *     meta mark set meta mark | 0x4000 ip daddr . meta l4proto . th dport
         *     vmap @fesc4 */
        NEWRULE(r);
        if (ex_nfproto(r, v6) < 0 || ex_fib_saddr_local(r) < 0 || ex_mark_masq(r, true) < 0 ||
            ex_fe_key(r, v6, np) < 0 || ex_dispatch(r, sc) < 0)
            goto fail;
        if (emit_rule(b, table, r, name, "fib saddr type local mark ... vmap @fesc4") < 0)
            return -1;
    }
    return 0;
fail:
    nftnl_rule_free(r);
    return -1;
}

static int lbchain_body(struct nft_batch *b, const char *table, const struct nft_lbchain *c)
{
    char name[48];
    nft_msg_lbchain_name(c, name, sizeof(name));
    int v6 = lb_v6(c->kind);
    bool np = lb_np(c->kind);
    struct nftnl_rule *r = NULL;

    /* nft add chain inet T lb4_3 */
    if (emit_chain(b, table, name, true, NULL, 0, 0) < 0)
        return -1;
    if (lbchain_prefix(b, table, c, name) < 0)
        return -1;
    if (c->n == 0)
        return 0;  /* elocal without local endpoints: the filter drops the rest */
    if (!c->timeout) {
        /* nft add rule inet T lb4_3 dnat ip to ip daddr . meta l4proto .
         *     th dport . numgen random mod 3 map @be4
         * (the all-endpoints view _sc: numgen random mod 3 offset 0x10000) */
        NEWRULE(r);
        if (ex_dnat_slot(r, c->kind, -1, c->n, c->sc ? NFT_SC_SLOT_BASE : 0) < 0)
            goto fail;
        return emit_rule(b, table, r, name, "dnat to ... numgen random mod N map @be");
    }
    /* Affinity: a client recorded for slot k (k < N) goes back to it.
     * nft add rule inet T lb4_3_a60 ip saddr . ip daddr . meta l4proto .
     *     th dport @aff4_1 goto lb4s1_a60 */
    for (uint32_t k = 0; k < c->n; k++) {
        char set[40], slot[48];
        nft_msg_affset_name(c->kind, k, set, sizeof(set));
        slotchain_name(c->kind, k, c->timeout, slot, sizeof(slot));
        NEWRULE(r);
        uint32_t reg = R(0);
        if (ex_nfproto(r, v6) < 0 || ex_load(r, v6, np ? aff_np : aff_vip, np ? 3 : 4, &reg) < 0 ||
            ex_lookup_name(r, set, 0, R(0), -1) < 0 || ex_verdict(r, NFT_GOTO, slot) < 0)
            goto fail;
        if (emit_rule(b, table, r, name, "... @aff goto slot chain") < 0)
            return -1;
    }
    /* Otherwise pick a slot.
     * nft add rule inet T lb4_3_a60 numgen random mod 3 vmap { 0 : goto lb4s0_a60, ... } */
    uint32_t sid = ++batch_set_id;
    struct nftnl_set *s = nftnl_set_alloc();
    if (!s)
        return -1;
    nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
    nftnl_set_set_str(s, NFTNL_SET_NAME, "__map%d");
    nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
    nftnl_set_set_u32(s, NFTNL_SET_ID, sid);
    nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 4);
    nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, DT_MARK); /* host-endian, like numgen */
    nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP);
    /* tell `nft list` the key is host-endian (as numgen writes it) */
    struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
    if (ud) {
        nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, 1 /* BYTEORDER_HOST_ENDIAN */);
        nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
        nftnl_udata_buf_free(ud);
    }
    uint32_t seq;
    char *buf = nft_batch_msg_buf(b, &seq);
    struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSET, NFPROTO_INET,
                                                 NLM_F_CREATE, seq);
    nftnl_set_nlmsg_build_payload(nlh, s);
    if (nft_batch_msg_done(b, "add anonymous vmap for chain %s", name) < 0) {
        nftnl_set_free(s);
        return -1;
    }
    for (uint32_t k = 0; k < c->n; k++) {
        char slot[48];
        slotchain_name(c->kind, k, c->timeout, slot, sizeof(slot));
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        if (!e) {
            nftnl_set_free(s);
            return -1;
        }
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &k, 4);
        nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
        nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, slot);
        nftnl_set_elem_add(s, e);
    }
    buf = nft_batch_msg_buf(b, &seq);
    nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE, seq);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    nftnl_set_free(s);
    if (nft_batch_msg_done(b, "add elements of the anonymous vmap of chain %s", name) < 0)
        return -1;
    NEWRULE(r);
    if (ex_numgen(r, c->n, R(0), 0) < 0)
        goto fail;
    {
        struct nftnl_expr *e = nftnl_expr_alloc("lookup");
        if (!e)
            goto fail;
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, "__map%d");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, sid);
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, R(0));
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
        nftnl_rule_add_expr(r, e);
    }
    return emit_rule(b, table, r, name, "numgen random mod N vmap { k : goto slot chain }");
fail:
    nftnl_rule_free(r);
    return -1;
}

int nft_msg_lbchain_add(struct nft_batch *b, const char *table, const struct nft_lbchain *c)
{
    return lbchain_body(b, table, c);
}

int nft_msg_lbchain_del(struct nft_batch *b, const char *table, const struct nft_lbchain *c)
{
    char name[48];
    nft_msg_lbchain_name(c, name, sizeof(name));
    /* nft delete chain inet T lb4_3  (its rules and anonymous vmap go with it) */
    return emit_chain(b, table, name, false, NULL, 0, 0);
}


int nft_msg_elems(struct nft_batch *b, const char *table, enum nft_set_id set, bool add,
                  const struct nft_elem *elems, size_t n, const char *what)
{
    const struct set_def *d = &nft_sets[set];
    size_t klen = comps_len(d->key, 6), dlen = comps_len(d->data, 3);
    for (size_t off = 0; off < n; off += ELEMS_PER_MSG) {
        size_t cnt = n - off < ELEMS_PER_MSG ? n - off : ELEMS_PER_MSG;
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s)
            return -1;
        nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
        for (size_t i = off; i < off + cnt; i++) {
            struct nftnl_set_elem *e = nftnl_set_elem_alloc();
            if (!e) {
                nftnl_set_free(s);
                return -1;
            }
            nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[i].key, (uint32_t)klen);
            if (add && d->vmap && !elems[i].chain[0]) {
                nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NF_DROP);
            } else if (add && d->vmap) {
                nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
                nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, elems[i].chain);
            } else if (add && dlen) {
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, elems[i].data, (uint32_t)dlen);
            }
            nftnl_set_elem_add(s, e);
        }
        uint32_t seq;
        char *buf = nft_batch_msg_buf(b, &seq);
        /* nft add|delete element inet T <set> { key [: value], ... } */
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, add ? NFT_MSG_NEWSETELEM
                                                              : NFT_MSG_DELSETELEM,
                                                     NFPROTO_INET, add ? NLM_F_CREATE : 0, seq);
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        if (nft_batch_msg_done(b, "%s element inet %s %s (%zu elements, %s)",
                               add ? "add" : "delete", table, d->name, cnt, what) < 0)
            return -1;
    }
    return 0;
}
