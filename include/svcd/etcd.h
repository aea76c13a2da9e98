/*
 * etcd: a non-blocking etcd v3 client on the libevent loop.
 *
 * It speaks etcd's v3 JSON gateway (POST /v3/kv/range, /v3/kv/txn,
 * /v3/lease/grant, /v3/watch ...) through libcurl's multi interface, whose
 * sockets and timer are driven by libevent (CURLMOPT_SOCKETFUNCTION /
 * CURLMOPT_TIMERFUNCTION): no thread, no blocking call. Bodies are jansson
 * objects; keys and values travel base64-encoded as the gateway wants.
 * docs/CLUSTER.md says why the gateway was chosen over gRPC.
 *
 * Failover: the client keeps a current endpoint. A unary call that fails on
 * the transport (connect refused, timeout, reset) or with an HTTP 5xx is
 * retried at once on the next endpoint, each endpoint at most once per call;
 * when all failed the callback gets the error. Backoff between rounds is the
 * caller's (the cluster module's) job. A watch is one streaming request; it
 * ends (end callback) when the stream breaks, and the caller restarts it.
 *
 * The pure parsing helpers (etcd_parse_*) take untrusted bytes and are
 * fuzzed (tests/fuzz/fuzz_etcd.c).
 */
#ifndef SVCD_ETCD_H
#define SVCD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct event_base;
struct etcd_client;
struct etcd_watch;

#define ETCD_MAX_ENDPOINTS 16

struct etcd_tls {
    const char *cafile;     /* NULL = system CAs (only for https://) */
    const char *certfile;   /* client certificate, or NULL */
    const char *keyfile;    /* its key, or NULL */
};

/* endpoints: "http://10.0.0.1:2379,http://10.0.0.2:2379" (https:// for TLS).
 * Strings are copied. NULL with *err filled when the list is empty or a
 * URL is not http(s)://, or on ENOMEM. */
struct etcd_client *etcd_client_new(struct event_base *base, const char *endpoints,
                                    const struct etcd_tls *tls, char *err, size_t errlen);
/* Cancels every call and watch without calling their callbacks. Accepts NULL. */
void etcd_client_free(struct etcd_client *c);

/* The endpoint calls go to now (for messages and /readyz). */
const char *etcd_client_endpoint(const struct etcd_client *c);

/* Unary call result: ok with the decoded JSON answer (borrowed, valid
 * during the callback), or !ok with err (one line). An etcd error answer
 * (HTTP 4xx with {"error": ...}) is !ok with the message and no failover. */
typedef void (*etcd_cb)(void *ctx, bool ok, json_t *resp, const char *err);

/* POSTs body (reference stolen, also on failure) to /v3/<method>, e.g.
 * "kv/range". 0, or -1 on ENOMEM (cb not called). */
int etcd_call(struct etcd_client *c, const char *method, json_t *body, etcd_cb cb, void *ctx);

/* Runs the client's event base until the call completes (svcctl). Returns
 * 0 with *resp (caller decrefs), or -1 with err. */
int etcd_call_sync(struct etcd_client *c, const char *method, json_t *body, json_t **resp,
                   char *err, size_t errlen);

/* One watch stream. msg is called for each message's "result" object
 * (borrowed); end is called once when the stream is over (err says why);
 * the watch is freed right after end returns. */
typedef void (*etcd_watch_msg_cb)(void *ctx, json_t *result);
typedef void (*etcd_watch_end_cb)(void *ctx, const char *err);

/* Starts POST /v3/watch with {"create_request": create} (create stolen).
 * NULL on ENOMEM. */
struct etcd_watch *etcd_watch_start(struct etcd_client *c, json_t *create,
                                    etcd_watch_msg_cb msg, etcd_watch_end_cb end, void *ctx);
/* Stops a watch without calling end. Accepts NULL. */
void etcd_watch_cancel(struct etcd_watch *w);

/* Bytes received from and sent to etcd (bodies), for metrics and bench. */
void etcd_client_traffic(const struct etcd_client *c, uint64_t *rx, uint64_t *tx);

/* ---- pure helpers (no I/O) ---------------------------------------------- */

/* base64 (RFC 4648, with padding). encode returns a malloc'd string or
 * NULL on ENOMEM; decode returns a malloc'd NUL-terminated buffer with
 * *outlen, or NULL when the text is not base64. */
char *etcd_b64_encode(const void *data, size_t len);
char *etcd_b64_decode(const char *text, size_t *outlen);

/* The end of the range that holds every key with this prefix ("/svcd/" ->
 * "/svcd0"), base64-encoded. NULL on ENOMEM or an empty prefix. */
char *etcd_prefix_end_b64(const char *prefix);

/* An int64 field as the gateway writes it (a JSON string of digits, or a
 * number). Missing -> dflt. */
int64_t etcd_json_int(json_t *obj, const char *key, int64_t dflt);

/* One key-value from a range answer or a watch event, decoded. */
struct etcd_kv {
    char *key;             /* NUL-terminated */
    char *value;           /* NUL-terminated, value_len bytes (may be "") */
    size_t value_len;
    int64_t create_revision, mod_revision;
    int64_t lease;
    bool deleted;          /* watch DELETE event */
};

/* A range answer or one watch message, decoded. */
struct etcd_msg {
    int64_t revision;          /* header.revision */
    int64_t compact_revision;  /* watch: > 0 when the start revision was compacted */
    bool created, canceled;    /* watch */
    bool more;                 /* range: more keys than returned */
    char *cancel_reason;       /* or NULL */
    struct etcd_kv *kvs;       /* range kvs or watch events in order */
    size_t n_kvs;
};

/* Decodes a range answer (result of kv/range, or a watch "result"). 0, or
 * -1 when the JSON does not have the expected shape (a key that is not
 * base64...). out is always safe to free. */
int etcd_parse_range(json_t *resp, struct etcd_msg *out);
int etcd_parse_watch(json_t *result, struct etcd_msg *out);
/* Parses one newline-delimited message of the watch stream (the gateway's
 * {"result": ...} or {"error": ...} wrapper). 0 on a result, 1 on an error
 * message (out->cancel_reason holds it), -1 on garbage. */
int etcd_parse_watch_line(const char *buf, size_t len, struct etcd_msg *out);
void etcd_msg_free(struct etcd_msg *m);

#endif
