/*
 * probe_grpc: grpc.health.v1.Health/Check over HTTP/2 cleartext (h2c with
 * prior knowledge, as the kubelet's gRPC probe speaks it).
 *
 * Client side of one stream (id 1):
 *   preface "PRI * HTTP/2.0..." + SETTINGS{ENABLE_PUSH=0}
 *   HEADERS(END_HEADERS) :method POST, :scheme http, :path
 *     /grpc.health.v1.Health/Check, :authority ip:port,
 *     content-type application/grpc, te trailers
 *   DATA(END_STREAM) 5-byte gRPC prefix + HealthCheckRequest{service}
 * then reads frames: SETTINGS are ACKed, PINGs answered, DATA of stream 1
 * collected until one whole gRPC message decodes. Every read of the wire
 * is bounds-checked; frames larger than we accept fail the probe.
 *
 * libnghttp2 would be the full implementation; it is not linked into
 * svcd_core (CMakeLists.txt), and the health check needs only this much.
 */
#include "probe_grpc.h"
#include "probe_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define H2_FRAME_DATA 0x0
#define H2_FRAME_HEADERS 0x1
#define H2_FRAME_RST_STREAM 0x3
#define H2_FRAME_SETTINGS 0x4
#define H2_FRAME_PING 0x6
#define H2_FRAME_GOAWAY 0x7
#define H2_FLAG_END_STREAM 0x1
#define H2_FLAG_ACK 0x1
#define H2_FLAG_END_HEADERS 0x4
#define H2_FLAG_PADDED 0x8
#define H2_MAX_FRAME 16384          /* SETTINGS_MAX_FRAME_SIZE default */
#define GRPC_MAX_MSG 4096           /* a HealthCheckResponse is ~2 bytes */
#define PROBE_GRPC_UA "kube-probe/1.31"

/* snprintf that truncates on purpose (reasons are capped at PROBE_REASON_MAX). */
static void __attribute__((format(printf, 3, 4)))
probe_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct probe_grpc {
    struct bufferevent *bev;
    struct event *ev_defer;
    probe_grpc_done_fn done;
    void *ctx;
    bool finished;
    enum probe_result def_res;
    char def_reason[PROBE_REASON_MAX];
    char authority[64];
    char service[256];
    uint8_t msg[GRPC_MAX_MSG + 5];  /* DATA payload of stream 1 so far */
    size_t msg_len;
};

/* ---- protobuf / gRPC message (pure) ---------------------------------------- */

int probe_grpc_encode_request(const char *service, uint8_t *buf, size_t cap)
{
    size_t slen = service ? strlen(service) : 0;
    size_t body = 0;
    if (slen > 0) {
        /* field 1, wire type 2: tag 0x0a, varint length, bytes */
        size_t vl = 1;
        for (size_t v = slen; v >= 0x80; v >>= 7)
            vl++;
        body = 1 + vl + slen;
    }
    if (cap < 5 + body)
        return -1;
    buf[0] = 0;                               /* not compressed */
    buf[1] = (uint8_t)(body >> 24);
    buf[2] = (uint8_t)(body >> 16);
    buf[3] = (uint8_t)(body >> 8);
    buf[4] = (uint8_t)body;
    size_t o = 5;
    if (slen > 0) {
        buf[o++] = 0x0a;
        size_t v = slen;
        while (v >= 0x80) {
            buf[o++] = (uint8_t)(v | 0x80);
            v >>= 7;
        }
        buf[o++] = (uint8_t)v;
        memcpy(buf + o, service, slen);
        o += slen;
    }
    return (int)o;
}

/* Reads a protobuf varint at *o; 0 or -1. */
static int probe_grpc_varint(const uint8_t *b, size_t len, size_t *o, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*o >= len)
            return -1;
        uint8_t byte = b[(*o)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int probe_grpc_decode_response(const uint8_t *buf, size_t len)
{
    if (len < 5)
        return -1;
    if (buf[0] != 0)
        return -1;                            /* compressed: we asked for none */
    size_t mlen = ((size_t)buf[1] << 24) | ((size_t)buf[2] << 16) | ((size_t)buf[3] << 8) | buf[4];
    if (mlen > len - 5)
        return -1;
    const uint8_t *m = buf + 5;
    size_t o = 0;
    int status = 0;                           /* proto3 default: UNKNOWN */
    while (o < mlen) {
        uint64_t key, v;
        if (probe_grpc_varint(m, mlen, &o, &key) < 0)
            return -1;
        unsigned wt = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        switch (wt) {
        case 0:
            if (probe_grpc_varint(m, mlen, &o, &v) < 0)
                return -1;
            if (field == 1)
                status = v > 1000 ? 1000 : (int)v;
            break;
        case 1:
            if (mlen - o < 8)
                return -1;
            o += 8;
            break;
        case 2:
            if (probe_grpc_varint(m, mlen, &o, &v) < 0 || v > mlen - o)
                return -1;
            o += (size_t)v;
            break;
        case 5:
            if (mlen - o < 4)
                return -1;
            o += 4;
            break;
        default:
            return -1;
        }
    }
    return status;
}

/* ---- HTTP/2 frames ------------------------------------------------------- */

static void probe_grpc_frame_header(struct evbuffer *out, size_t len, uint8_t type,
                                    uint8_t flags, uint32_t stream)
{
    uint8_t h[9] = {
        (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
        (uint8_t)((stream >> 24) & 0x7f), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8),
        (uint8_t)stream,
    };
    evbuffer_add(out, h, sizeof(h));
}

/* HPACK integer with an N-bit prefix (RFC 7541 5.1). */
static size_t probe_grpc_hpack_int(uint8_t *b, size_t cap, uint8_t first, int nbits, size_t v)
{
    size_t max = ((size_t)1 << nbits) - 1;
    size_t o = 0;
    if (cap < 1)
        return 0;
    if (v < max) {
        b[o++] = (uint8_t)(first | v);
        return o;
    }
    b[o++] = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        if (o >= cap)
            return 0;
        b[o++] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    if (o >= cap)
        return 0;
    b[o++] = (uint8_t)v;
    return o;
}

/* Literal header field without indexing; name_index 0 = new name. Returns
 * bytes written, 0 if it does not fit. */
static size_t probe_grpc_hpack_literal(uint8_t *b, size_t cap, unsigned name_index,
                                       const char *name, const char *value)
{
    size_t o = probe_grpc_hpack_int(b, cap, 0x00, 4, name_index);
    if (!o)
        return 0;
    if (name_index == 0) {
        size_t nl = strlen(name);
        size_t n = probe_grpc_hpack_int(b + o, cap - o, 0x00, 7, nl);
        if (!n || cap - o - n < nl)
            return 0;
        o += n;
        memcpy(b + o, name, nl);
        o += nl;
    }
    size_t vl = strlen(value);
    size_t n = probe_grpc_hpack_int(b + o, cap - o, 0x00, 7, vl);
    if (!n || cap - o - n < vl)
        return 0;
    o += n;
    memcpy(b + o, value, vl);
    return o + vl;
}

static int probe_grpc_send_request(struct probe_grpc *g)
{
    struct evbuffer *out = bufferevent_get_output(g->bev);
    uint8_t hb[512];
    size_t o = 0, n;

    evbuffer_add(out, h2_preface, sizeof(h2_preface) - 1);
    /* SETTINGS { ENABLE_PUSH (0x2) = 0 } */
    static const uint8_t settings[6] = { 0x00, 0x02, 0x00, 0x00, 0x00, 0x00 };
    probe_grpc_frame_header(out, sizeof(settings), H2_FRAME_SETTINGS, 0, 0);
    evbuffer_add(out, settings, sizeof(settings));

    hb[o++] = 0x83;                            /* :method POST (static 3) */
    hb[o++] = 0x86;                            /* :scheme http (static 6) */
    if (!(n = probe_grpc_hpack_literal(hb + o, sizeof(hb) - o, 4, NULL,
                                       "/grpc.health.v1.Health/Check")))
        return -1;
    o += n;
    if (!(n = probe_grpc_hpack_literal(hb + o, sizeof(hb) - o, 1, NULL, g->authority)))
        return -1;
    o += n;
    if (!(n = probe_grpc_hpack_literal(hb + o, sizeof(hb) - o, 31, NULL, "application/grpc")))
        return -1;                             /* content-type (static 31) */
    o += n;
    if (!(n = probe_grpc_hpack_literal(hb + o, sizeof(hb) - o, 0, "te", "trailers")))
        return -1;
    o += n;
    if (!(n = probe_grpc_hpack_literal(hb + o, sizeof(hb) - o, 58, NULL, PROBE_GRPC_UA)))
        return -1;                             /* user-agent (static 58) */
    o += n;
    probe_grpc_frame_header(out, o, H2_FRAME_HEADERS, H2_FLAG_END_HEADERS, 1);
    evbuffer_add(out, hb, o);

    uint8_t body[300];
    int bl = probe_grpc_encode_request(g->service, body, sizeof(body));
    if (bl < 0)
        return -1;
    probe_grpc_frame_header(out, (size_t)bl, H2_FRAME_DATA, H2_FLAG_END_STREAM, 1);
    evbuffer_add(out, body, (size_t)bl);
    return 0;
}

/* ---- result delivery ------------------------------------------------------ */

static void probe_grpc_finish(struct probe_grpc *g, enum probe_result res, const char *reason)
{
    if (g->finished)
        return;
    g->finished = true;
    if (g->bev)
        bufferevent_disable(g->bev, EV_READ | EV_WRITE);
    g->done(g->ctx, res, reason);          /* the caller frees g afterwards */
}

static void probe_grpc_on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct probe_grpc *g = arg;
    probe_grpc_finish(g, g->def_res, g->def_reason);
}

static void probe_grpc_defer(struct probe_grpc *g, enum probe_result res, const char *reason)
{
    g->def_res = res;
    probe_fmt(g->def_reason, sizeof(g->def_reason), "%s", reason);
    struct timeval zero = { 0, 0 };
    evtimer_add(g->ev_defer, &zero);
}

static const char *probe_grpc_status_name(int st)
{
    switch (st) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "INVALID";
    }
}

/* Handles one complete frame; returns 1 when the probe is decided. */
static int probe_grpc_frame(struct probe_grpc *g, uint8_t type, uint8_t flags, uint32_t stream,
                            const uint8_t *p, size_t len)
{
    char reason[PROBE_REASON_MAX];
    struct evbuffer *out = bufferevent_get_output(g->bev);

    switch (type) {
    case H2_FRAME_SETTINGS:
        if (!(flags & H2_FLAG_ACK))
            probe_grpc_frame_header(out, 0, H2_FRAME_SETTINGS, H2_FLAG_ACK, 0);
        return 0;
    case H2_FRAME_PING:
        if (!(flags & H2_FLAG_ACK) && len == 8) {
            probe_grpc_frame_header(out, 8, H2_FRAME_PING, H2_FLAG_ACK, 0);
            evbuffer_add(out, p, 8);
        }
        return 0;
    case H2_FRAME_GOAWAY:
        probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: server sent GOAWAY");
        return 1;
    case H2_FRAME_RST_STREAM:
        if (stream != 1)
            return 0;
        probe_fmt(reason, sizeof(reason), "rpc error: stream reset (code %u)",
                 len >= 4 ? (unsigned)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                                       ((uint32_t)p[2] << 8) | p[3]) : 0u);
        probe_grpc_finish(g, PROBE_RESULT_FAILURE, reason);
        return 1;
    case H2_FRAME_DATA: {
        if (stream != 1)
            return 0;
        size_t off = 0, pad = 0;
        if (flags & H2_FLAG_PADDED) {
            if (len < 1)
                goto malformed;
            pad = p[0];
            off = 1;
            if (pad > len - off)
                goto malformed;
        }
        size_t dl = len - off - pad;
        if (dl > sizeof(g->msg) - g->msg_len) {
            probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: response message too large");
            return 1;
        }
        memcpy(g->msg + g->msg_len, p + off, dl);
        g->msg_len += dl;
        if (g->msg_len >= 5) {
            size_t mlen = ((size_t)g->msg[1] << 24) | ((size_t)g->msg[2] << 16) |
                          ((size_t)g->msg[3] << 8) | g->msg[4];
            if (mlen > GRPC_MAX_MSG) {
                probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: response message too large");
                return 1;
            }
            if (g->msg_len >= 5 + mlen) {
                int st = probe_grpc_decode_response(g->msg, 5 + mlen);
                if (st < 0)
                    goto malformed;
                if (st == 1) {
                    probe_grpc_finish(g, PROBE_RESULT_SUCCESS, "");
                } else {
                    probe_fmt(reason, sizeof(reason),
                             "service unhealthy (responded with \"%s\")",
                             probe_grpc_status_name(st));
                    probe_grpc_finish(g, PROBE_RESULT_FAILURE, reason);
                }
                return 1;
            }
        }
        if (flags & H2_FLAG_END_STREAM)
            goto no_message;
        return 0;
    }
    case H2_FRAME_HEADERS:
        if (stream == 1 && (flags & H2_FLAG_END_STREAM))
            goto no_message;
        return 0;
    default:
        return 0;                           /* WINDOW_UPDATE, PRIORITY, ... */
    }
no_message:
    probe_fmt(reason, sizeof(reason), "rpc error: no health response (grpc-status not OK%s%s%s)",
             g->service[0] ? ", service \"" : "", g->service, g->service[0] ? "\"" : "");
    probe_grpc_finish(g, PROBE_RESULT_FAILURE, reason);
    return 1;
malformed:
    probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: malformed HTTP/2 frame");
    return 1;
}

static void probe_grpc_on_read(struct bufferevent *bev, void *arg)
{
    struct probe_grpc *g = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    static uint8_t payload[H2_MAX_FRAME];

    while (!g->finished) {
        uint8_t h[9];
        if (evbuffer_copyout(in, h, sizeof(h)) < (ev_ssize_t)sizeof(h))
            return;
        size_t len = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];
        if (len > H2_MAX_FRAME) {
            probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: HTTP/2 frame too large "
                                                       "(is the port speaking HTTP/2?)");
            return;
        }
        if (evbuffer_get_length(in) < sizeof(h) + len)
            return;
        evbuffer_drain(in, sizeof(h));
        if (len && evbuffer_remove(in, payload, len) != (int)len) {
            probe_grpc_finish(g, PROBE_RESULT_ERROR, "rpc error: short read");
            return;
        }
        uint32_t stream = (((uint32_t)h[5] & 0x7f) << 24) | ((uint32_t)h[6] << 16) |
                          ((uint32_t)h[7] << 8) | h[8];
        if (probe_grpc_frame(g, h[3], h[4], stream, payload, len))
            return;
    }
}

static void probe_grpc_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe_grpc *g = arg;
    char reason[PROBE_REASON_MAX];
    if (what & BEV_EVENT_CONNECTED) {
        if (probe_grpc_send_request(g) < 0)
            probe_grpc_finish(g, PROBE_RESULT_ERROR, "grpc: request too large");
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();
        probe_fmt(reason, sizeof(reason),
                 "failed to connect service \"%s\" within timeout: %s", g->authority,
                 strerror(err));
        probe_grpc_finish(g, PROBE_RESULT_FAILURE, reason);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        probe_grpc_finish(g, PROBE_RESULT_FAILURE, "rpc error: connection closed before a response");
        return;
    }
}

struct probe_grpc *probe_grpc_start(struct event_base *base, const struct svcd_ip *ip,
                                    uint16_t port, const char *service,
                                    probe_grpc_done_fn done, void *ctx)
{
    struct probe_grpc *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->done = done;
    g->ctx = ctx;
    probe_fmt(g->service, sizeof(g->service), "%s", service ? service : "");
    char ipbuf[INET6_ADDRSTRLEN];
    svcd_ip_format(ip, ipbuf, sizeof(ipbuf));
    probe_fmt(g->authority, sizeof(g->authority), ip->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
             ipbuf, (unsigned)port);
    g->ev_defer = evtimer_new(base, probe_grpc_on_defer, g);
    g->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!g->ev_defer || !g->bev) {
        probe_grpc_free(g);
        return NULL;
    }
    bufferevent_setcb(g->bev, probe_grpc_on_read, NULL, probe_grpc_on_event, g);
    bufferevent_enable(g->bev, EV_READ | EV_WRITE);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (ip->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        s6->sin6_addr = ip->u.v6;
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        s4->sin_addr = ip->u.v4;
        sl = sizeof(*s4);
    }
    if (bufferevent_socket_connect(g->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        char reason[PROBE_REASON_MAX];
        probe_fmt(reason, sizeof(reason), "failed to connect service \"%s\": %s", g->authority,
                 strerror(errno));
        probe_grpc_defer(g, PROBE_RESULT_FAILURE, reason);
    }
    return g;
}

void probe_grpc_free(struct probe_grpc *g)
{
    if (!g)
        return;
    if (g->bev)
        bufferevent_free(g->bev);
    if (g->ev_defer)
        event_free(g->ev_defer);
    free(g);
}
