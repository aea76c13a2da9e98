/*
 * dns_server: svcd's DNS front end. Answers the cluster zone (dns_zone)
 * itself and hands every other name to the forwarder (dns_forward), over
 * UDP (recvmmsg/sendmmsg batches, EDNS0, TC=1 when an answer does not fit)
 * and TCP (pipelined queries answered as they complete, idle timeout,
 * connection cap closing the oldest idle connection).
 *
 * The protocol decisions (parse, rcode, EDNS, truncation, REFUSED for
 * clients not allowed to recurse, AXFR/IXFR refused, ANY minimal) live in
 * dns_server_process(), which does no I/O so tests and the fuzzer can
 * drive it directly.
 *
 * Single-threaded: everything runs on the event_base's thread.
 */
#ifndef SVCD_DNS_SERVER_H
#define SVCD_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "svcd/config.h"
#include "svcd/dns_wire.h"
#include "svcd/dns_zone.h"
#include "svcd/model.h"
#include "svcd/store.h"

struct event_base;
struct dns_server;

/* Creates the zone (subscribed to st), the forwarder (dns_forwarder_new)
 * and binds UDP and TCP on every cfg->dns_listen. Returns NULL on failure,
 * with the reason logged (e.g. "bind 127.0.0.1:53: Address in use").
 * cfg is copied. Free with dns_server_free() before the store. */
struct dns_server *dns_server_new(struct event_base *base, struct store *st,
                                  const struct svcd_config *cfg);
/* Closes the sockets, cancels forwarded queries, frees. Accepts NULL. */
void dns_server_free(struct dns_server *s);
/* The store generation the served zone reflects. */
uint64_t dns_server_generation(const struct dns_server *s);
/* Drops every cached upstream answer (SIGHUP). */
void dns_server_flush_cache(struct dns_server *s);

/* ---- query processing without I/O --------------------------------------- */

enum dns_action {
    DNS_ACT_DROP = 0,     /* send nothing (garbage, or a response packet) */
    DNS_ACT_REPLY,        /* out holds the reply */
    DNS_ACT_FORWARD,      /* not ours and the client may recurse: forward the
                             query as received; out holds a SERVFAIL to send
                             if forwarding fails */
    DNS_ACT_CHASE,        /* out holds a CNAME answer (sendable as is); the
                             target info->chase_name should be resolved
                             upstream and its answer appended */
};

struct dns_process_info {
    struct dns_query query;       /* the parsed query (valid unless DROP) */
    size_t limit;                 /* reply size limit for this transport */
    int rcode;                    /* of the reply in out */
    bool truncated;
    uint8_t chase_name[DNS_NAME_MAX];  /* CHASE: name to resolve upstream */
    size_t chase_len;
};

/* Handles one query packet from client (tcp: no size limit but 65535).
 * allow_forward: whether the client may use recursion (otherwise names
 * outside the zone are REFUSED; autopath is only tried for allowed
 * clients). udp_max: the EDNS cap (cfg->dns_udp_max). out must hold the
 * reply limit: 65535 bytes for TCP, max(512, udp_max) for UDP; *out_len is
 * the reply length (0 for DROP). */
enum dns_action dns_server_process(struct dns_zone *z, const uint8_t *pkt, size_t len,
                                   const struct svcd_ip *client, bool tcp, bool allow_forward,
                                   uint16_t udp_max, uint8_t *out, size_t *out_len,
                                   struct dns_process_info *info);

#endif
