/*
 * fuzz_podman_http: podman_resp (HTTP responses read with nodejs/http-parser)
 * on arbitrary bytes. The first input byte picks the mode (bit 0: events
 * stream or plain response; bit 1: EOF at the end) and the piece size
 * (bits 2-7, 0 = all at once), so that chunk boundaries, split headers and
 * split lines are explored. Checked: results are one of MORE/DONE/ERROR and
 * stay fixed after DONE/ERROR, an ERROR has a reason, the headers-done
 * callback comes once and before any line, lines hold no '\n' and respect
 * the line cap, the collected body respects the body cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svcd/podman.h"

struct fz_seen {
    int heads;
};

static void fz_line(void *ctx, const char *line, size_t len)
{
    struct fz_seen *s = ctx;

    if (!line) {
        if (len != 0 || s->heads++ != 0)
            abort();
        return;
    }
    if (s->heads != 1 || len == 0 || len > PODMAN_HTTP_MAX_LINE ||
        memchr(line, '\n', len) || line[len] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_seen seen = { 0 };
    struct podman_resp *r;
    enum podman_resp_rc rc = PODMAN_RESP_MORE, again;
    size_t off = 0, step, n, blen;
    bool stream, eof;

    if (size < 1)
        return 0;
    stream = data[0] & 1;
    eof = data[0] & 2;
    step = data[0] >> 2;
    data++;
    size--;
    r = podman_resp_new(stream, fz_line, &seen);
    if (!r)
        return 0;
    while (off < size && rc == PODMAN_RESP_MORE) {
        n = size - off;
        if (step && n > step)
            n = step;
        rc = podman_resp_feed(r, (const char *)data + off, n);
        off += n;
    }
    if (eof && rc == PODMAN_RESP_MORE)
        rc = podman_resp_feed(r, NULL, 0);
    if (rc != PODMAN_RESP_MORE && rc != PODMAN_RESP_DONE && rc != PODMAN_RESP_ERROR)
        abort();
    if ((rc == PODMAN_RESP_ERROR) != (podman_resp_error(r)[0] != '\0'))
        abort();
    if (rc == PODMAN_RESP_DONE && (!podman_resp_headers_done(r) || podman_resp_status(r) < 100 ||
                                   podman_resp_status(r) > 999))
        abort();
    if (rc != PODMAN_RESP_MORE) {
        again = podman_resp_feed(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
        if (again != rc || podman_resp_feed(r, NULL, 0) != rc)
            abort();
    }
    (void)podman_resp_body(r, &blen);
    if (blen > PODMAN_HTTP_MAX_BODY)
        abort();
    podman_resp_free(r);
    return 0;
}
