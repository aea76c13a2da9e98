/*
 * fuzz_probe_grpc: the gRPC health-check response decoder
 * (probe_grpc_decode_response) on arbitrary bytes - what a probed pod's
 * server sends back in its DATA frames, so untrusted input.
 *
 * Besides crashes and sanitizer reports it aborts when:
 *   - the result is outside -1 .. 1000 (the ServingStatus is capped);
 *   - a frame shorter than 5 bytes or flagged compressed is not rejected;
 *   - bytes after the message (len > 5 + message length) change the answer,
 *     or a truncated message (len < 5 + message length) is accepted;
 *   - a HealthCheckResponse{status: s} built here from the input does not
 *     decode to s (capped at 1000);
 *   - the probe's own request (probe_grpc_encode_request with a service name
 *     taken from the input) does not decode as a well-formed message with
 *     status UNKNOWN (field 1 there is a string, which must be skipped).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/probe/probe_internal.h"

/* Writes a protobuf varint; returns its length (at most 10). */
static size_t fuzz_varint(uint8_t *b, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        b[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
    return n;
}

static void fuzz_check_frame(const uint8_t *data, size_t size)
{
    int r = probe_grpc_decode_response(data, size);
    if (r < -1 || r > 1000)
        abort();
    if (size < 5 || data[0] != 0) {
        if (r != -1)
            abort();
        return;
    }
    size_t mlen = ((size_t)data[1] << 24) | ((size_t)data[2] << 16) |
                  ((size_t)data[3] << 8) | data[4];
    if (mlen > size - 5) {
        if (r != -1)
            abort();                     /* truncated message accepted */
        return;
    }
    /* Only the message counts: the exact-length frame gives the same answer. */
    if (probe_grpc_decode_response(data, 5 + mlen) != r)
        abort();
    /* One byte short of the message is always malformed. */
    if (mlen > 0 && probe_grpc_decode_response(data, 4 + mlen) != -1)
        abort();
}

/* HealthCheckResponse{status: s} with s from the input. */
static void fuzz_check_built(const uint8_t *data, size_t size)
{
    uint64_t s = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        s = (s << 8) | data[i];
    if (size && (data[0] & 1))
        s &= 0xff;                       /* favour small, real statuses */
    uint8_t msg[5 + 1 + 10];
    size_t n = 5;
    msg[n++] = 0x08;                     /* field 1, varint */
    n += fuzz_varint(msg + n, s);
    msg[0] = 0;
    msg[1] = msg[2] = msg[3] = 0;
    msg[4] = (uint8_t)(n - 5);
    int want = s > 1000 ? 1000 : (int)s;
    if (probe_grpc_decode_response(msg, n) != want)
        abort();
}

/* The request the probe sends parses as a message with status UNKNOWN. */
static void fuzz_check_request(const uint8_t *data, size_t size)
{
    char service[300];
    size_t sl = size < sizeof(service) - 1 ? size : sizeof(service) - 1;
    memcpy(service, data, sl);
    service[sl] = '\0';                  /* stops at the first NUL, as a C string */
    uint8_t buf[512];
    int n = probe_grpc_encode_request(service, buf, sizeof(buf));
    if (n < 0)
        return;                          /* too long for buf: allowed to refuse */
    if (n < 5 || probe_grpc_decode_response(buf, (size_t)n) != 0)
        abort();
    /* A buffer one byte too small is refused, never overrun. */
    if (probe_grpc_encode_request(service, buf, (size_t)n - 1) != -1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_frame(data, size);
    fuzz_check_built(data, size);
    fuzz_check_request(data, size);
    return 0;
}
