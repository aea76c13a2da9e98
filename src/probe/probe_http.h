/*
 * probe_http: the httpGet probe as a lean, reusable client on the event loop.
 *
 * Internal to the probe module. One struct probe_http belongs to one probe
 * spec (target address, port, path, headers, timeout): the request text is
 * formatted once when it is made, and every attempt reuses it with no
 * allocation. An attempt is: a non-blocking socket + connect(), one send()
 * of the request (on loopback and veths the handshake has completed by the
 * time connect() returns; otherwise the send waits for writability), one
 * read event, reads into a stack buffer fed to nodejs/http-parser, and a
 * stop as soon as the status line and headers are complete (the kubelet
 * needs no body: 200-399 is success). The socket is then closed with an
 * RST (SO_LINGER 0): no FIN exchange and no TIME_WAIT left behind per probe.
 *
 * Reasons follow the kubelet's wording:
 *   "HTTP probe failed with statuscode: 500"
 *   "Get \"http://10.0.0.5:8080/healthz\": dial tcp 10.0.0.5:8080: connect: connection refused"
 *   "Get \"...\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
 */
#ifndef SVCD_PROBE_HTTP_H
#define SVCD_PROBE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "probe_internal.h"

struct event_base;
struct probe_http;

/* Makes the reusable state for probing http://ip:port/path with the given
 * httpHeaders (copied into the request text; may be NULL) and a deadline of
 * timeout_ms per attempt (0 = 1000). path NULL or "" means "/".
 * Returns NULL when the request cannot be built: err then holds the reason
 * (a header with CR/LF, a path with spaces...), or is "" on ENOMEM.
 * Free with probe_http_free(). */
struct probe_http *probe_http_new(struct event_base *base, const struct svcd_ip *ip,
                                  uint16_t port, const char *path,
                                  const struct svcd_kvmap *headers, uint32_t timeout_ms,
                                  char *err, size_t errlen);

/* Starts one attempt. done is called exactly once from the loop (never from
 * inside this call) unless the attempt is cancelled; inside done the
 * caller may start the next attempt or free h. Returns 0, or -1 (EBUSY)
 * when an attempt is already running. */
int probe_http_start(struct probe_http *h, probe_check_done_fn done, void *ctx);

/* True while an attempt runs. */
bool probe_http_running(const struct probe_http *h);

/* Stops the running attempt (socket closed, done not called); no-op when
 * idle. Must not be called from inside done. */
void probe_http_cancel(struct probe_http *h);

/* Cancels and frees. Accepts NULL; may be called from inside done. */
void probe_http_free(struct probe_http *h);

#endif
