/*
 * probe_grpc: the gRPC health check (grpc.health.v1.Health/Check) over
 * HTTP/2 cleartext, as a minimal client written against RFC 9113 frames.
 *
 * Internal to the probe module. The request headers are HPACK-encoded as
 * literals (no dynamic table, no Huffman); the response is judged from the
 * HealthCheckResponse message in the DATA frames only, so no HPACK decoder
 * is needed: a SERVING message is success, any other status, a stream that
 * ends without a message (grpc-status != OK trailers-only), RST_STREAM or
 * GOAWAY is failure. Timeouts are enforced by the caller (probe_check.c).
 */
#ifndef SVCD_PROBE_GRPC_H
#define SVCD_PROBE_GRPC_H

#include <stdint.h>
#include "svcd/model.h"
#include "svcd/probe.h"

struct event_base;
struct probe_grpc;

/* Called once from the loop with the result (never from inside
 * probe_grpc_start). After it the caller frees the handle. */
typedef void (*probe_grpc_done_fn)(void *ctx, enum probe_result res, const char *reason);

/* Starts the RPC to ip:port for service (NULL = ""); NULL on ENOMEM. */
struct probe_grpc *probe_grpc_start(struct event_base *base, const struct svcd_ip *ip,
                                    uint16_t port, const char *service,
                                    probe_grpc_done_fn done, void *ctx);
/* Closes the connection; no callback afterwards. Accepts NULL. */
void probe_grpc_free(struct probe_grpc *g);

#endif
