/*
 * etcd_parse: the pure half of the etcd client. Decodes the gateway's JSON
 * answers (range results and watch messages, parsed by jansson) into
 * struct etcd_msg, and the base64 the gateway uses for keys and values.
 * No I/O; fuzzed by tests/fuzz/fuzz_etcd.c.
 */
#include <stdlib.h>
#include <string.h>

#include "svcd/etcd.h"

static const char etcd_b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        *o++ = etcd_b64_chars[(v >> 18) & 63];
        *o++ = etcd_b64_chars[(v >> 12) & 63];
        *o++ = i + 1 < len ? etcd_b64_chars[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? etcd_b64_chars[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int etcd_b64_val(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

char *etcd_b64_decode(const char *text, size_t *outlen)
{
    size_t n = strlen(text);
    while (n && text[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    char *out = malloc(n / 4 * 3 + 3), *o = out;
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = etcd_b64_val(text[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}

char *etcd_prefix_end_b64(const char *prefix)
{
    size_t n = strlen(prefix);
    if (!n)
        return NULL;
    char *end = strdup(prefix);
    if (!end)
        return NULL;
    /* Increment the last byte that is not 0xff, dropping what follows. */
    while (n && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (!n) {
        free(end);
        return etcd_b64_encode("\0", 1);    /* every key: range_end "\0" */
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    char *b = etcd_b64_encode(end, n);
    free(end);
    return b;
}

int64_t etcd_json_int(json_t *obj, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end = NULL;
        long long x = strtoll(s, &end, 10);
        if (end != s && *end == '\0')
            return x;
    }
    return dflt;
}

void etcd_msg_free(struct etcd_msg *m)
{
    for (size_t i = 0; i < m->n_kvs; i++) {
        free(m->kvs[i].key);
        free(m->kvs[i].value);
    }
    free(m->kvs);
    free(m->cancel_reason);
    memset(m, 0, sizeof(*m));
}

/* Decodes one "kv" object. 0 or -1. */
static int etcd_parse_kv(json_t *kv, bool deleted, struct etcd_kv *out)
{
    size_t klen = 0;
    memset(out, 0, sizeof(*out));
    const char *k = json_string_value(json_object_get(kv, "key"));
    if (!k || !(out->key = etcd_b64_decode(k, &klen)) || strlen(out->key) != klen)
        return -1;
    const char *v = json_string_value(json_object_get(kv, "value"));
    out->value = etcd_b64_decode(v ? v : "", &out->value_len);
    if (!out->value)
        return -1;
    out->create_revision = etcd_json_int(kv, "create_revision", 0);
    out->mod_revision = etcd_json_int(kv, "mod_revision", 0);
    out->lease = etcd_json_int(kv, "lease", 0);
    out->deleted = deleted;
    return 0;
}

static int etcd_parse_kvs(json_t *arr, bool events, struct etcd_msg *out)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return -1;
    size_t n = json_array_size(arr);
    if (!n)
        return 0;
    out->kvs = calloc(n, sizeof(*out->kvs));
    if (!out->kvs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(arr, i), *kv = it;
        bool deleted = false;
        if (!json_is_object(it))
            return -1;
        if (events) {
            const char *type = json_string_value(json_object_get(it, "type"));
            /* The gateway omits enum fields at their default: no type = PUT. */
            if (type && strcmp(type, "DELETE") == 0)
                deleted = true;
            else if (type && strcmp(type, "PUT") != 0)
                return -1;
            kv = json_object_get(it, "kv");
            if (!json_is_object(kv))
                return -1;
        }
        if (etcd_parse_kv(kv, deleted, &out->kvs[out->n_kvs]) != 0) {
            out->n_kvs++;            /* free what was decoded */
            return -1;
        }
        out->n_kvs++;
    }
    return 0;
}

int etcd_parse_range(json_t *resp, struct etcd_msg *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(resp))
        return -1;
    out->revision = etcd_json_int(json_object_get(resp, "header"), "revision", 0);
    json_t *more = json_object_get(resp, "more");
    out->more = json_is_true(more);
    if (etcd_parse_kvs(json_object_get(resp, "kvs"), false, out) != 0) {
        etcd_msg_free(out);
        return -1;
    }
    return 0;
}

int etcd_parse_watch(json_t *result, struct etcd_msg *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(result))
        return -1;
    out->revision = etcd_json_int(json_object_get(result, "header"), "revision", 0);
    out->compact_revision = etcd_json_int(result, "compact_revision", 0);
    out->created = json_is_true(json_object_get(result, "created"));
    out->canceled = json_is_true(json_object_get(result, "canceled"));
    const char *why = json_string_value(json_object_get(result, "cancel_reason"));
    if (why && !(out->cancel_reason = strdup(why)))
        return -1;
    if (etcd_parse_kvs(json_object_get(result, "events"), true, out) != 0) {
        etcd_msg_free(out);
        return -1;
    }
    return 0;
}

int etcd_parse_watch_line(const char *buf, size_t len, struct etcd_msg *out)
{
    memset(out, 0, sizeof(*out));
    json_t *j = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
    int rc = -1;
    json_t *res = json_object_get(j, "result"), *err = json_object_get(j, "error");
    if (json_is_object(res)) {
        rc = etcd_parse_watch(res, out);
    } else if (err) {
        const char *msg = json_string_value(err);
        if (!msg)
            msg = json_string_value(json_object_get(err, "message"));
        out->cancel_reason = strdup(msg ? msg : "error");
        out->canceled = true;
        rc = out->cancel_reason ? 1 : -1;
    }
    json_decref(j);
    return rc;
}
