/*
 * manifest_parse: Kubernetes manifests (YAML or JSON) -> model objects.
 *
 * libyaml's document loader builds a node tree per '---' document; this
 * file walks those trees with typed accessors (string / integer / boolean /
 * mapping / sequence) that each report "document N: field.path: problem"
 * on the first error. Validation follows the Kubernetes API server's rules
 * for the fields svcd uses; unknown fields are ignored, like kubectl's
 * lenient decoding. A file with any error yields nothing.
 *
 * Untrusted input: every object tree is first walked once with a depth
 * limit and a node budget (aliases can make a small file a huge or cyclic
 * tree); the same walk rejects duplicate mapping keys and computes the
 * object's fingerprint, so later field access is bounded by that budget.
 */
#include "svcd/manifest.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "svcd/hmap.h"

#define MF_MAX_DEPTH 64           /* nesting of one object's tree */
#define MF_MAX_NODES 1000000      /* node visits per file beyond one per input byte */
#define MF_PATH_MAX 256
#define MF_MSG_MAX 400
#define MF_INT32_MAX 2147483647LL

struct mf_ctx {
    yaml_document_t *doc;
    int docno;                    /* 1-based document number */
    int item;                     /* 1-based List item, 0 outside a List */
    int64_t now;
    char *err;
    size_t errlen;
    bool failed;
    size_t visits;
    size_t max_visits;            /* MF_MAX_NODES + input length */
    struct manifest_objs *out;
    struct hmap *seen;            /* "Kind/ns/name" -> where (see mf_where_code) */
    bool each;                    /* an invalid object is a rejection, not a failure */
    bool fatal;                   /* the failure concerns the whole file */
};

/* ---- errors and warnings -------------------------------------------------- */

static void mf_where(const struct mf_ctx *c, char *buf, size_t len)
{
    if (c->item)
        snprintf(buf, len, "document %d item %d", c->docno, c->item);
    else
        snprintf(buf, len, "document %d", c->docno);
}

/* Records the first error as "document N: path: message"; returns -1. */
__attribute__((format(printf, 3, 4)))
static int mf_fail_(struct mf_ctx *c, const char *path, const char *fmt, ...)
{
    char where[64], msg[MF_MSG_MAX];
    va_list ap;

    if (c->failed)
        return -1;
    c->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mf_where(c, where, sizeof(where));
    if (c->err && c->errlen) {
        if (path && *path)
            snprintf(c->err, c->errlen, "%s: %s: %s", where, path, msg);
        else
            snprintf(c->err, c->errlen, "%s: %s", where, msg);
    }
    return -1;
}

/* Visibly -1 to the compiler too, so callers' out-parameters are not
 * "maybe uninitialized" after an error return at -O3. */
#define mf_fail(...) __extension__({ mf_fail_(__VA_ARGS__); -1; })

/* Grows a pointer array whose capacity is implied by n (powers of two). */
static void *mf_grow(void *arr, size_t n, size_t elem)
{
    size_t cap;

    if (n != 0 && (n & (n - 1)) != 0)
        return arr;
    cap = n ? n * 2 : 1;
    if (cap > SIZE_MAX / elem)
        return NULL;
    return realloc(arr, cap * elem);
}

#define MF_PUSH(arr, n, obj) __extension__ ({                          \
        int rc_ = -1;                                                  \
        void *g_ = mf_grow((arr), (n), sizeof(*(arr)));                \
        if (g_) {                                                      \
            (arr) = g_;                                                \
            (arr)[(n)++] = (obj);                                      \
            rc_ = 0;                                                   \
        }                                                              \
        rc_;                                                           \
    })

__attribute__((format(printf, 2, 3)))
static int mf_warn(struct mf_ctx *c, const char *fmt, ...)
{
    char where[64], msg[MF_MSG_MAX], *line;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mf_where(c, where, sizeof(where));
    if (asprintf(&line, "%s: %s", where, msg) < 0)
        return mf_fail(c, "", "out of memory");
    if (MF_PUSH(c->out->warnings, c->out->n_warnings, line) != 0) {
        free(line);
        return mf_fail(c, "", "out of memory");
    }
    return 0;
}

/* ---- paths ---------------------------------------------------------------- */

/* Paths longer than MF_PATH_MAX are cut (only messages use them). */
static const char *mf_path(char *buf, const char *parent, const char *key)
{
    int n;
    if (parent && *parent)
        n = snprintf(buf, MF_PATH_MAX, "%s.%s", parent, key);
    else
        n = snprintf(buf, MF_PATH_MAX, "%s", key);
    if (n >= MF_PATH_MAX)
        buf[MF_PATH_MAX - 1] = '\0';
    return buf;
}

static const char *mf_path_idx(char *buf, const char *parent, size_t idx)
{
    if (snprintf(buf, MF_PATH_MAX, "%s[%zu]", parent, idx) >= MF_PATH_MAX)
        buf[MF_PATH_MAX - 1] = '\0';
    return buf;
}

/* ---- scalar typing -------------------------------------------------------- */

enum mf_stype { MF_T_NULL, MF_T_BOOL, MF_T_INT, MF_T_FLOAT, MF_T_STR };

static bool mf_streq(const yaml_node_t *n, const char *s)
{
    size_t l = strlen(s);
    return n->data.scalar.length == l && memcmp(n->data.scalar.value, s, l) == 0;
}

static bool mf_all_digits(const char *s, size_t len, int base)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= '0' && ch <= '9' && ch - '0' < base) ||
                  (base == 16 && ((ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')));
        if (!ok)
            return false;
    }
    return true;
}

static bool mf_looks_float(const char *s, size_t len)
{
    size_t i = 0, digits = 0;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    if (len - i == 4 && (!strncmp(s + i, ".inf", 4) || !strncmp(s + i, ".Inf", 4) ||
                         !strncmp(s + i, ".INF", 4)))
        return true;
    if (len == 4 && (!strncmp(s, ".nan", 4) || !strncmp(s, ".NaN", 4) || !strncmp(s, ".NAN", 4)))
        return true;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!mf_all_digits(s + i, len - i, 10))
            return false;
        i = len;
    }
    return i == len;
}

/* The YAML type of a scalar: quoted scalars are strings; plain ones are
 * resolved like YAML's core schema (and like JSON for JSON input). */
static enum mf_stype mf_scalar_type(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    const char *tag = (const char *)n->tag;
    size_t i = 0;

    if (tag && strcmp(tag, YAML_STR_TAG) != 0) {
        if (!strcmp(tag, YAML_INT_TAG))
            return MF_T_INT;
        if (!strcmp(tag, YAML_FLOAT_TAG))
            return MF_T_FLOAT;
        if (!strcmp(tag, YAML_BOOL_TAG))
            return MF_T_BOOL;
        if (!strcmp(tag, YAML_NULL_TAG))
            return MF_T_NULL;
    }
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return MF_T_STR;
    if (len == 0 || mf_streq(n, "~") || mf_streq(n, "null") || mf_streq(n, "Null") ||
        mf_streq(n, "NULL"))
        return MF_T_NULL;
    if (mf_streq(n, "true") || mf_streq(n, "True") || mf_streq(n, "TRUE") ||
        mf_streq(n, "false") || mf_streq(n, "False") || mf_streq(n, "FALSE"))
        return MF_T_BOOL;
    if (s[0] == '+' || s[0] == '-')
        i = 1;
    if (len - i > 2 && s[i] == '0' && s[i + 1] == 'x' && mf_all_digits(s + i + 2, len - i - 2, 16))
        return MF_T_INT;
    if (len - i > 2 && s[i] == '0' && s[i + 1] == 'o' && mf_all_digits(s + i + 2, len - i - 2, 8))
        return MF_T_INT;
    if (mf_all_digits(s + i, len - i, 10))
        return MF_T_INT;
    if (mf_looks_float(s, len))
        return MF_T_FLOAT;
    return MF_T_STR;
}

static bool mf_is_null(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE && mf_scalar_type(n) == MF_T_NULL;
}

/* ---- node access ---------------------------------------------------------- */

static yaml_node_t *mf_node(struct mf_ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

/* Value of key in a mapping, or NULL when absent or null. */
static yaml_node_t *mf_get(struct mf_ctx *c, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mf_node(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && mf_streq(k, key)) {
            yaml_node_t *v = mf_node(c, p->value);
            return mf_is_null(v) ? NULL : v;
        }
    }
    return NULL;
}

static int mf_want_map(struct mf_ctx *c, yaml_node_t *n, const char *path)
{
    if (n->type != YAML_MAPPING_NODE)
        return mf_fail(c, path, "must be a mapping");
    return 0;
}

/* Sequence items as nodes (items, count); fails unless n is a sequence. */
static int mf_want_seq(struct mf_ctx *c, yaml_node_t *n, const char *path,
                       yaml_node_item_t **items, size_t *count)
{
    *items = NULL;
    *count = 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return mf_fail(c, path, "must be a sequence");
    *items = n->data.sequence.items.start;
    *count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    return 0;
}

/* A scalar string as a heap copy. */
static int mf_str(struct mf_ctx *c, yaml_node_t *n, const char *path, char **out)
{
    char *s;

    if (n->type != YAML_SCALAR_NODE || mf_scalar_type(n) != MF_T_STR ||
        memchr(n->data.scalar.value, '\0', n->data.scalar.length))
        return mf_fail(c, path, "must be a string");
    s = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
    if (!s)
        return mf_fail(c, path, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* Borrowed text of a string scalar (valid while the document lives). */
static int mf_text(struct mf_ctx *c, yaml_node_t *n, const char *path, const char **out)
{
    if (n->type != YAML_SCALAR_NODE || mf_scalar_type(n) != MF_T_STR ||
        memchr(n->data.scalar.value, '\0', n->data.scalar.length))
        return mf_fail(c, path, "must be a string");
    *out = (const char *)n->data.scalar.value;
    return 0;
}

/* Integer value; values beyond long long saturate (so range checks fail). */
static int mf_int(struct mf_ctx *c, yaml_node_t *n, const char *path, long long *out)
{
    const char *s;
    size_t len, i = 0;
    bool neg = false;
    int base = 10;
    unsigned long long v = 0;

    if (n->type != YAML_SCALAR_NODE || mf_scalar_type(n) != MF_T_INT)
        return mf_fail(c, path, "must be an integer");
    s = (const char *)n->data.scalar.value;
    len = n->data.scalar.length;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'o')) {
        base = s[i + 1] == 'x' ? 16 : 8;
        i += 2;
    }
    if (!mf_all_digits(s + i, len - i, base))
        return mf_fail(c, path, "must be an integer");
    for (; i < len; i++) {
        int d = (s[i] >= '0' && s[i] <= '9') ? s[i] - '0'
              : (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10 : s[i] - 'A' + 10;
        if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base) {
            v = ULLONG_MAX;
            break;
        }
        v = v * (unsigned)base + (unsigned)d;
    }
    if (v > (unsigned long long)LLONG_MAX)
        *out = neg ? LLONG_MIN : LLONG_MAX;
    else
        *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static int mf_bool(struct mf_ctx *c, yaml_node_t *n, const char *path, bool *out)
{
    if (n->type != YAML_SCALAR_NODE || mf_scalar_type(n) != MF_T_BOOL)
        return mf_fail(c, path, "must be a boolean");
    *out = mf_streq(n, "true") || mf_streq(n, "True") || mf_streq(n, "TRUE");
    return 0;
}

/* Port number 1-65535. */
static int mf_port(struct mf_ctx *c, yaml_node_t *n, const char *path, uint16_t *out)
{
    long long v;

    if (mf_int(c, n, path, &v))
        return -1;
    if (v < 1 || v > 65535)
        return mf_fail(c, path, "must be 1-65535");
    *out = (uint16_t)v;
    return 0;
}

/* Optional integer field key of map, within [min, INT32_MAX]. */
static int mf_u32_field(struct mf_ctx *c, yaml_node_t *map, const char *parent,
                        const char *key, long long min, uint32_t *out)
{
    char p[MF_PATH_MAX];
    yaml_node_t *n = mf_get(c, map, key);
    long long v;

    if (!n)
        return 0;
    mf_path(p, parent, key);
    if (mf_int(c, n, p, &v))
        return -1;
    if (v < min)
        return min == 0 ? mf_fail(c, p, "must be 0 or more")
                        : mf_fail(c, p, "must be at least %lld", min);
    if (v > MF_INT32_MAX)
        return mf_fail(c, p, "must be at most %lld", MF_INT32_MAX);
    *out = (uint32_t)v;
    return 0;
}

/* ---- name validation ------------------------------------------------------ */

static bool mf_is_alnum_lower(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most max characters. */
static bool mf_is_dns_label_n(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    if (!mf_is_alnum_lower(s[0]) || !mf_is_alnum_lower(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!mf_is_alnum_lower(s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool mf_is_dns_label(const char *s)
{
    return mf_is_dns_label_n(s, strlen(s), 63);
}

/* RFC 1123 subdomain: labels joined by '.', at most 253 characters. */
static bool mf_is_dns_subdomain(const char *s)
{
    size_t len = strlen(s);
    const char *p = s;

    if (len == 0 || len > 253)
        return false;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!mf_is_dns_label_n(p, l, 63))
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

/* IANA_SVC_NAME (RFC 6335): 1-15 of [a-z0-9-], a letter somewhere, no
 * leading, trailing or doubled '-'. */
static bool mf_is_iana_svc_name(const char *s)
{
    size_t len = strlen(s);
    bool letter = false;

    if (len == 0 || len > 15 || s[0] == '-' || s[len - 1] == '-' || strstr(s, "--"))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            letter = true;
        else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return false;
    }
    return letter;
}

#define MF_LABEL_MSG "must be a DNS-1123 label (lowercase letters, digits and '-', " \
                     "starting and ending with a letter or digit, at most 63 characters)"
#define MF_SUBDOMAIN_MSG "must be a DNS-1123 subdomain (lowercase letters, digits, '-' " \
                         "and '.', at most 253 characters)"
#define MF_IANA_MSG "must be an IANA_SVC_NAME (at most 15 lowercase letters, digits " \
                    "and '-', with at least one letter)"

/* Optional string field that must be a DNS label (or subdomain). */
static int mf_dns_field(struct mf_ctx *c, yaml_node_t *map, const char *parent,
                        const char *key, bool subdomain, char **out)
{
    char p[MF_PATH_MAX];
    yaml_node_t *n = mf_get(c, map, key);

    if (!n)
        return 0;
    mf_path(p, parent, key);
    if (mf_str(c, n, p, out))
        return -1;
    if (!**out) {                 /* "" means unset, as in the API */
        free(*out);
        *out = NULL;
        return 0;
    }
    /* A hostname or Pod subdomain over 63 characters costs only its DNS
     * record (the zone skips it), not the object. */
    if (!subdomain && (strcmp(key, "hostname") == 0 || strcmp(key, "subdomain") == 0) &&
        !mf_is_dns_label(*out) &&
        mf_is_dns_label_n(*out, strlen(*out), 253))
        return mf_warn(c, "%s is over 63 characters, so it has no DNS record (got \"%s\")", p,
                       *out);
    if (subdomain ? !mf_is_dns_subdomain(*out) : !mf_is_dns_label(*out))
        return mf_fail(c, p, "%s (got \"%s\")", subdomain ? MF_SUBDOMAIN_MSG : MF_LABEL_MSG,
                       *out);
    return 0;
}

static int mf_ip_text(struct mf_ctx *c, yaml_node_t *n, const char *path, struct svcd_ip *out)
{
    const char *s;

    if (mf_text(c, n, path, &s))
        return -1;
    if (svcd_ip_parse(s, out) != 0)
        return mf_fail(c, path, "must be a valid IP address (got \"%s\")", s);
    return 0;
}

static const char *mf_family_name(int family)
{
    return family == AF_INET6 ? "IPv6" : "IPv4";
}

static int mf_proto(struct mf_ctx *c, yaml_node_t *map, const char *parent,
                    enum svcd_proto *out)
{
    char p[MF_PATH_MAX];
    yaml_node_t *n = mf_get(c, map, "protocol");
    const char *s;

    *out = SVCD_PROTO_TCP;
    if (!n)
        return 0;
    mf_path(p, parent, "protocol");
    if (mf_text(c, n, p, &s))
        return -1;
    if (svcd_proto_parse(s, out) != 0)
        return mf_fail(c, p, "must be TCP, UDP or SCTP (got \"%s\")", s);
    return 0;
}

/* IntOrString port: a YAML integer is a number, a string an IANA name. */
static int mf_int_or_name(struct mf_ctx *c, yaml_node_t *n, const char *path,
                          uint16_t *num, char **name)
{
    const char *s;

    if (n->type == YAML_SCALAR_NODE && mf_scalar_type(n) == MF_T_INT)
        return mf_port(c, n, path, num);
    if (n->type != YAML_SCALAR_NODE || mf_scalar_type(n) != MF_T_STR)
        return mf_fail(c, path, "must be an integer or a string");
    if (mf_text(c, n, path, &s))
        return -1;
    if (!mf_is_iana_svc_name(s))
        return mf_fail(c, path, "must be 1-65535 or an IANA_SVC_NAME (got \"%s\")", s);
    *num = 0;
    return mf_str(c, n, path, name);
}

/* A mapping of strings into a kvmap (null values become ""). */
static int mf_kvmap(struct mf_ctx *c, yaml_node_t *n, const char *path, struct svcd_kvmap *m)
{
    char p[MF_PATH_MAX];

    if (mf_want_map(c, n, path))
        return -1;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
         pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = mf_node(c, pr->key), *v = mf_node(c, pr->value);
        const char *ks, *vs = "";
        if (!k || !v)
            return mf_fail(c, path, "malformed mapping");
        if (k->type != YAML_SCALAR_NODE || mf_scalar_type(k) != MF_T_STR ||
            memchr(k->data.scalar.value, '\0', k->data.scalar.length))
            return mf_fail(c, path, "keys must be strings");
        ks = (const char *)k->data.scalar.value;
        snprintf(p, sizeof(p), "%s[%s]", path, ks);
        if (!mf_is_null(v) && mf_text(c, v, p, &vs))
            return -1;
        if (svcd_kvmap_set(m, ks, vs) != 0)
            return mf_fail(c, p, "out of memory");
    }
    return 0;
}

/* ---- RFC 3339 time -------------------------------------------------------- */

static bool mf_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t mf_days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "2024-01-02T03:04:05(.frac)?(Z|+hh:mm)" -> unix seconds; 0 or -1. */
static int mf_rfc3339(const char *s, int64_t *out)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int Y, M, D, h, mi, sec, oh = 0, om = 0, sign = 0;
    size_t len = strlen(s), i = 19;
    bool leap;

    if (len < 20 || !mf_digits(s, 4, &Y) || s[4] != '-' || !mf_digits(s + 5, 2, &M) ||
        s[7] != '-' || !mf_digits(s + 8, 2, &D) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !mf_digits(s + 11, 2, &h) || s[13] != ':' || !mf_digits(s + 14, 2, &mi) ||
        s[16] != ':' || !mf_digits(s + 17, 2, &sec))
        return -1;
    if (s[i] == '.') {
        size_t j = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == j)
            return -1;
    }
    if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
        sign = 0;
    } else if (i < len && (s[i] == '+' || s[i] == '-') && len - i == 6 &&
               mf_digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
               mf_digits(s + i + 4, 2, &om)) {
        sign = s[i] == '-' ? -1 : 1;
        if (oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] + (M == 2 && leap) ||
        h > 23 || mi > 59 || sec > 60)
        return -1;
    *out = mf_days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec -
           sign * (oh * 3600 + om * 60);
    return 0;
}

/* ---- tree walk: limits, duplicate keys, fingerprint ----------------------- */

struct mf_walk {
    struct mf_ctx *c;
    /* For the node at each depth: the node, and how its parent reached it
     * (a mapping key, or a sequence index); turned into a path only when
     * an error is reported. */
    yaml_node_t *stack[MF_MAX_DEPTH + 2];
    yaml_node_t *via_key[MF_MAX_DEPTH + 2];
    size_t via_idx[MF_MAX_DEPTH + 2];
    uint64_t hash;
};

static void mf_mix(struct mf_walk *w, const void *data, size_t len)
{
    w->hash = hmap_hash(data, len, w->hash);
}

static void mf_mix_byte(struct mf_walk *w, uint8_t b)
{
    w->hash = (w->hash ^ b) * 0x100000001b3ULL;
}

static void mf_mix_len(struct mf_walk *w, size_t v)
{
    do {
        mf_mix_byte(w, (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

/* Tags as one byte for the common ones, the full text otherwise. */
static void mf_mix_tag(struct mf_walk *w, const yaml_char_t *tag)
{
    static const char *const known[] = { YAML_STR_TAG, YAML_MAP_TAG, YAML_SEQ_TAG,
                                         YAML_INT_TAG, YAML_BOOL_TAG, YAML_NULL_TAG,
                                         YAML_FLOAT_TAG };
    const char *t = tag ? (const char *)tag : "";

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (!strcmp(t, known[i])) {
            mf_mix_byte(w, (uint8_t)(i + 1));
            return;
        }
    }
    mf_mix_byte(w, 0);
    mf_mix(w, t, strlen(t) + 1);
}

/* The path of the node at depth, e.g. "spec.ports[1].name". */
static const char *mf_walk_path(const struct mf_walk *w, int depth, char *buf)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int d = 1; d <= depth && len < MF_PATH_MAX - 1; d++) {
        const yaml_node_t *k = w->via_key[d];
        int r;
        if (k && k->type == YAML_SCALAR_NODE)
            r = snprintf(buf + len, MF_PATH_MAX - len, "%s%.*s", len ? "." : "",
                         (int)(k->data.scalar.length > 60 ? 60 : k->data.scalar.length),
                         (const char *)k->data.scalar.value);
        else if (k)
            r = snprintf(buf + len, MF_PATH_MAX - len, "%s?", len ? "." : "");
        else
            r = snprintf(buf + len, MF_PATH_MAX - len, "[%zu]", w->via_idx[d]);
        if (r < 0)
            break;
        len += (size_t)r;
    }
    return buf;
}

__attribute__((format(printf, 3, 4)))
static int mf_walk_fail(struct mf_walk *w, int depth, const char *fmt, ...)
{
    char path[MF_PATH_MAX], msg[MF_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return mf_fail(w->c, mf_walk_path(w, depth, path), "%s", msg);
}

/* Rejects a repeated scalar key; small mappings compare pairwise. */
static int mf_walk_dupkeys(struct mf_walk *w, yaml_node_t *n, int depth)
{
    struct mf_ctx *c = w->c;
    yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
    size_t count = (size_t)(top - start);
    struct hmap *keys = NULL;
    int rc = 0;

    if (count > 16 && !(keys = hmap_new()))
        return mf_walk_fail(w, depth, "out of memory");
    for (yaml_node_pair_t *p = start; p < top && rc == 0; p++) {
        yaml_node_t *k = mf_node(c, p->key);
        bool dup = false;
        if (!k || k->type != YAML_SCALAR_NODE)
            continue;
        if (keys) {
            if (hmap_get_bin(keys, k->data.scalar.value, k->data.scalar.length))
                dup = true;
            else if (hmap_set_bin(keys, k->data.scalar.value, k->data.scalar.length, p) != 0)
                rc = mf_walk_fail(w, depth, "out of memory");
        } else {
            for (yaml_node_pair_t *q = start; q < p; q++) {
                yaml_node_t *k2 = mf_node(c, q->key);
                if (k2 && k2->type == YAML_SCALAR_NODE &&
                    k2->data.scalar.length == k->data.scalar.length &&
                    !memcmp(k2->data.scalar.value, k->data.scalar.value, k->data.scalar.length)) {
                    dup = true;
                    break;
                }
            }
        }
        if (dup && rc == 0)
            rc = mf_walk_fail(w, depth, "duplicate key \"%.*s\"",
                              (int)(k->data.scalar.length > 60 ? 60 : k->data.scalar.length),
                              (const char *)k->data.scalar.value);
    }
    hmap_free(keys);
    return rc;
}

static int mf_walk_node(struct mf_walk *w, yaml_node_t *n, int depth)
{
    struct mf_ctx *c = w->c;

    if (!n)
        return mf_walk_fail(w, depth, "malformed document");
    if (depth > MF_MAX_DEPTH)
        return mf_walk_fail(w, depth, "nested more than %d levels deep", MF_MAX_DEPTH);
    /* An anchor used inside its own node makes libyaml build a cycle. */
    for (int i = 0; i < depth; i++)
        if (w->stack[i] == n)
            return mf_walk_fail(w, depth, "alias refers to a node that contains it");
    if (++c->visits > c->max_visits)
        return mf_walk_fail(w, depth, "too many nodes after expanding aliases");
    w->stack[depth] = n;
    mf_mix_byte(w, (uint8_t)n->type);
    mf_mix_tag(w, n->tag);
    switch (n->type) {
    case YAML_SCALAR_NODE:
        mf_mix_byte(w, n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
        mf_mix_len(w, n->data.scalar.length);
        mf_mix(w, n->data.scalar.value, n->data.scalar.length);
        return 0;
    case YAML_SEQUENCE_NODE: {
        size_t i = 0;
        mf_mix_len(w, (size_t)(n->data.sequence.items.top - n->data.sequence.items.start));
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++, i++) {
            w->via_key[depth + 1] = NULL;
            w->via_idx[depth + 1] = i;
            if (mf_walk_node(w, mf_node(c, *it), depth + 1))
                return -1;
        }
        return 0;
    }
    case YAML_MAPPING_NODE:
        mf_mix_len(w, (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start));
        if (mf_walk_dupkeys(w, n, depth))
            return -1;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = mf_node(c, p->key);
            /* the key's own path is its mapping's; the value's adds the key */
            w->via_key[depth + 1] = k;
            if (mf_walk_node(w, k, depth + 1) || mf_walk_node(w, mf_node(c, p->value), depth + 1))
                return -1;
        }
        return 0;
    default:
        return mf_walk_fail(w, depth, "malformed document");
    }
}

/* Checks limits and duplicate keys of an object tree; sets its fingerprint. */
static int mf_fingerprint(struct mf_ctx *c, yaml_node_t *n, uint64_t *out)
{
    struct mf_walk w;

    memset(&w, 0, sizeof(w));
    w.c = c;
    w.hash = HMAP_HASH_SEED;
    if (mf_walk_node(&w, n, 0))
        return -1;
    *out = w.hash;
    return 0;
}

/* ---- metadata ------------------------------------------------------------- */

static int mf_meta(struct mf_ctx *c, yaml_node_t *root, bool subdomain_name,
                   struct svcd_meta *m)
{
    yaml_node_t *md = mf_get(c, root, "metadata"), *n;
    const char *s;

    if (!md)
        return mf_fail(c, "metadata", "required");
    if (mf_want_map(c, md, "metadata"))
        return -1;
    if (mf_dns_field(c, md, "metadata", "name", subdomain_name, &m->name))
        return -1;
    if (!m->name)
        return mf_fail(c, "metadata.name", "required");
    if (mf_dns_field(c, md, "metadata", "namespace", false, &m->ns))
        return -1;
    if (!m->ns && !(m->ns = strdup("default")))
        return mf_fail(c, "metadata.namespace", "out of memory");
    if ((n = mf_get(c, md, "labels")) && mf_kvmap(c, n, "metadata.labels", &m->labels))
        return -1;
    if ((n = mf_get(c, md, "annotations")) &&
        mf_kvmap(c, n, "metadata.annotations", &m->annotations))
        return -1;
    if ((n = mf_get(c, md, "uid")) && mf_str(c, n, "metadata.uid", &m->uid))
        return -1;
    if ((n = mf_get(c, md, "deletionTimestamp"))) {
        int64_t t;
        if (mf_str(c, n, "metadata.deletionTimestamp", &m->deletion_timestamp))
            return -1;
        if (mf_rfc3339(m->deletion_timestamp, &t) != 0)
            return mf_fail(c, "metadata.deletionTimestamp", "must be an RFC 3339 time (got \"%s\")",
                           m->deletion_timestamp);
    }
    m->created = c->now;
    if ((n = mf_get(c, md, "creationTimestamp"))) {
        if (mf_text(c, n, "metadata.creationTimestamp", &s))
            return -1;
        if (mf_rfc3339(s, &m->created) != 0)
            return mf_fail(c, "metadata.creationTimestamp", "must be an RFC 3339 time (got \"%s\")",
                           s);
    }
    return 0;
}

/* ---- Service -------------------------------------------------------------- */

static int mf_policy(struct mf_ctx *c, yaml_node_t *spec, const char *key,
                     enum svcd_traffic_policy *out)
{
    char p[MF_PATH_MAX];
    yaml_node_t *n = mf_get(c, spec, key);
    const char *s;

    *out = SVCD_POLICY_CLUSTER;
    if (!n)
        return 0;
    mf_path(p, "spec", key);
    if (mf_text(c, n, p, &s))
        return -1;
    if (!strcmp(s, "Local"))
        *out = SVCD_POLICY_LOCAL;
    else if (strcmp(s, "Cluster") != 0)
        return mf_fail(c, p, "must be Cluster or Local (got \"%s\")", s);
    return 0;
}

static int mf_svc_type(struct mf_ctx *c, yaml_node_t *spec, enum svcd_svc_type *out)
{
    static const char *const names[] = { "ClusterIP", "NodePort", "LoadBalancer",
                                         "ExternalName" };
    yaml_node_t *n = mf_get(c, spec, "type");
    const char *s;

    *out = SVCD_SVC_CLUSTER_IP;
    if (!n)
        return 0;
    if (mf_text(c, n, "spec.type", &s))
        return -1;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(s, names[i])) {
            *out = (enum svcd_svc_type)i;
            return 0;
        }
    }
    return mf_fail(c, "spec.type", "must be ClusterIP, NodePort, LoadBalancer or ExternalName "
                   "(got \"%s\")", s);
}

/* spec.clusterIP / spec.clusterIPs / spec.ipFamilies / spec.ipFamilyPolicy */
static int mf_svc_ips(struct mf_ctx *c, yaml_node_t *spec, struct svcd_service *s)
{
    yaml_node_t *one = mf_get(c, spec, "clusterIP"), *list = mf_get(c, spec, "clusterIPs");
    yaml_node_t *fam = mf_get(c, spec, "ipFamilies"), *pol = mf_get(c, spec, "ipFamilyPolicy");
    const char *ones = NULL, *t;
    char p[MF_PATH_MAX];
    yaml_node_item_t *items;
    size_t n;
    bool single = false;

    if (one) {
        if (mf_text(c, one, "spec.clusterIP", &ones))
            return -1;
        if (!*ones) {
            ones = NULL;
        } else if (!strcmp(ones, "None")) {
            s->headless = true;
        } else {
            if (svcd_ip_parse(ones, &s->cluster_ips[0]) != 0)
                return mf_fail(c, "spec.clusterIP",
                               "must be a valid IP address or None (got \"%s\")", ones);
            s->n_cluster_ips = 1;
        }
    }
    if (list) {
        if (mf_want_seq(c, list, "spec.clusterIPs", &items, &n))
            return -1;
        if (n > 2)
            return mf_fail(c, "spec.clusterIPs", "may hold at most 2 addresses");
        for (size_t i = 0; i < n; i++) {
            struct svcd_ip ip;
            mf_path_idx(p, "spec.clusterIPs", i);
            if (mf_text(c, mf_node(c, items[i]), p, &t))
                return -1;
            if (!strcmp(t, "None")) {
                if (n != 1)
                    return mf_fail(c, p, "may be None only when it is the only entry");
                if (ones && !s->headless)
                    return mf_fail(c, p, "must match spec.clusterIP (\"%s\")", ones);
                s->headless = true;
                continue;
            }
            if (svcd_ip_parse(t, &ip) != 0)
                return mf_fail(c, p, "must be a valid IP address or None (got \"%s\")", t);
            if (i == 0 && ones && (s->headless || !svcd_ip_equal(&ip, &s->cluster_ips[0])))
                return mf_fail(c, p, "must match spec.clusterIP (\"%s\")", ones);
            if (i == 1 && ip.family == s->cluster_ips[0].family)
                return mf_fail(c, p, "must be of a different IP family than spec.clusterIPs[0]");
            s->cluster_ips[i] = ip;
            s->n_cluster_ips = i + 1;
        }
    }
    if (fam) {
        if (mf_want_seq(c, fam, "spec.ipFamilies", &items, &n))
            return -1;
        if (n > 2)
            return mf_fail(c, "spec.ipFamilies", "may hold at most 2 entries");
        for (size_t i = 0; i < n; i++) {
            int f;
            mf_path_idx(p, "spec.ipFamilies", i);
            if (mf_text(c, mf_node(c, items[i]), p, &t))
                return -1;
            if (!strcmp(t, "IPv4"))
                f = AF_INET;
            else if (!strcmp(t, "IPv6"))
                f = AF_INET6;
            else
                return mf_fail(c, p, "must be IPv4 or IPv6 (got \"%s\")", t);
            if (i == 1 && f == s->ip_families[0])
                return mf_fail(c, p, "duplicate %s", t);
            if (i < s->n_cluster_ips && s->cluster_ips[i].family != f) {
                char ipbuf[INET6_ADDRSTRLEN];
                return mf_fail(c, p, "must match the family of spec.clusterIPs[%zu] "
                               "(got %s for \"%s\")", i, t,
                               svcd_ip_format(&s->cluster_ips[i], ipbuf, sizeof(ipbuf)));
            }
            s->ip_families[i] = f;
            s->n_ip_families = i + 1;
        }
    }
    if (s->n_ip_families == 0) {
        /* Derived from the addresses, as the API server fills it in. */
        for (size_t i = 0; i < s->n_cluster_ips; i++)
            s->ip_families[i] = s->cluster_ips[i].family;
        s->n_ip_families = s->n_cluster_ips;
    }
    if (pol) {
        if (mf_text(c, pol, "spec.ipFamilyPolicy", &t))
            return -1;
        if (!strcmp(t, "SingleStack"))
            single = true;
        else if (!strcmp(t, "PreferDualStack"))
            s->ip_family_policy = SVCD_IPFP_PREFER_DUAL;
        else if (!strcmp(t, "RequireDualStack"))
            s->ip_family_policy = SVCD_IPFP_REQUIRE_DUAL;
        else
            return mf_fail(c, "spec.ipFamilyPolicy", "must be SingleStack, PreferDualStack or "
                           "RequireDualStack (got \"%s\")", t);
        if (single && (s->n_cluster_ips > 1 || s->n_ip_families > 1))
            return mf_fail(c, "spec.ipFamilyPolicy", "SingleStack allows only one IP family");
    } else if (s->n_cluster_ips > 1 || s->n_ip_families > 1) {
        /* The API server infers RequireDualStack from two families. */
        s->ip_family_policy = SVCD_IPFP_REQUIRE_DUAL;
    }
    return 0;
}

static int mf_svc_ports(struct mf_ctx *c, yaml_node_t *spec, struct svcd_service *s)
{
    yaml_node_t *ports = mf_get(c, spec, "ports");
    yaml_node_item_t *items;
    size_t n;
    char pp[MF_PATH_MAX], p[MF_PATH_MAX];
    bool node_ports_ok = s->type == SVCD_SVC_NODE_PORT || s->type == SVCD_SVC_LOAD_BALANCER;

    if (!ports)
        return 0;
    if (mf_want_seq(c, ports, "spec.ports", &items, &n))
        return -1;
    if (n == 0)
        return 0;
    if (!(s->ports = calloc(n, sizeof(*s->ports))))
        return mf_fail(c, "spec.ports", "out of memory");
    s->n_ports = n;
    for (size_t i = 0; i < n; i++) {
        struct svcd_service_port *sp = &s->ports[i];
        yaml_node_t *pn = mf_node(c, items[i]), *v;
        mf_path_idx(pp, "spec.ports", i);
        if (mf_want_map(c, pn, pp))
            return -1;
        if (mf_dns_field(c, pn, pp, "name", false, &sp->name))
            return -1;
        if (!sp->name && n > 1)
            return mf_fail(c, mf_path(p, pp, "name"),
                           "required when the Service has more than one port");
        if (mf_proto(c, pn, pp, &sp->protocol))
            return -1;
        if (!(v = mf_get(c, pn, "port")))
            return mf_fail(c, mf_path(p, pp, "port"), "required");
        if (mf_port(c, v, mf_path(p, pp, "port"), &sp->port))
            return -1;
        sp->target_port = sp->port;
        if ((v = mf_get(c, pn, "targetPort")) &&
            mf_int_or_name(c, v, mf_path(p, pp, "targetPort"), &sp->target_port,
                           &sp->target_port_name))
            return -1;
        if ((v = mf_get(c, pn, "nodePort"))) {
            long long np;
            mf_path(p, pp, "nodePort");
            if (mf_int(c, v, p, &np))
                return -1;
            if (!node_ports_ok)
                return mf_fail(c, p, "may only be set for type NodePort or LoadBalancer");
            /* The range (--node-port-range) is checked by the allocator. */
            if (np < 1 || np > 65535)
                return mf_fail(c, p, "must be 1-65535");
            sp->node_port = (uint16_t)np;
        }
        for (size_t j = 0; j < i; j++) {
            const struct svcd_service_port *o = &s->ports[j];
            if (sp->name && o->name && !strcmp(sp->name, o->name))
                return mf_fail(c, mf_path(p, pp, "name"), "duplicate \"%s\"", sp->name);
            if (sp->port == o->port && sp->protocol == o->protocol)
                return mf_fail(c, pp, "duplicate port %u/%s (also spec.ports[%zu])",
                               sp->port, svcd_proto_name(sp->protocol), j);
            if (sp->node_port && sp->node_port == o->node_port && sp->protocol == o->protocol)
                return mf_fail(c, mf_path(p, pp, "nodePort"),
                               "duplicate %u/%s (also spec.ports[%zu])", sp->node_port,
                               svcd_proto_name(sp->protocol), j);
        }
    }
    return 0;
}

static int mf_ip_list(struct mf_ctx *c, yaml_node_t *n, const char *path,
                      struct svcd_ip **out, size_t *count)
{
    yaml_node_item_t *items;
    size_t k;
    char p[MF_PATH_MAX];

    if (mf_want_seq(c, n, path, &items, &k))
        return -1;
    if (k == 0)
        return 0;
    if (!(*out = calloc(k, sizeof(**out))))
        return mf_fail(c, path, "out of memory");
    for (size_t i = 0; i < k; i++) {
        if (mf_ip_text(c, mf_node(c, items[i]), mf_path_idx(p, path, i), &(*out)[i]))
            return -1;
        *count = i + 1;
    }
    return 0;
}

static int mf_svc_lb_status(struct mf_ctx *c, yaml_node_t *root, struct svcd_service *s)
{
    yaml_node_t *st = mf_get(c, root, "status"), *lb, *ing;
    yaml_node_item_t *items;
    size_t k;
    char pp[MF_PATH_MAX], p[MF_PATH_MAX];

    if (!st)
        return 0;
    if (mf_want_map(c, st, "status"))
        return -1;
    if (!(lb = mf_get(c, st, "loadBalancer")))
        return 0;
    if (mf_want_map(c, lb, "status.loadBalancer"))
        return -1;
    if (!(ing = mf_get(c, lb, "ingress")))
        return 0;
    if (mf_want_seq(c, ing, "status.loadBalancer.ingress", &items, &k))
        return -1;
    if (k == 0)
        return 0;
    if (!(s->lb_ingress_ips = calloc(k, sizeof(*s->lb_ingress_ips))))
        return mf_fail(c, "status", "out of memory");
    for (size_t i = 0; i < k; i++) {
        yaml_node_t *e = mf_node(c, items[i]), *ip;
        mf_path_idx(pp, "status.loadBalancer.ingress", i);
        if (mf_want_map(c, e, pp))
            return -1;
        if (!(ip = mf_get(c, e, "ip")))
            continue;           /* hostname-only ingress: nothing to route */
        if (mf_ip_text(c, ip, mf_path(p, pp, "ip"), &s->lb_ingress_ips[s->n_lb_ingress_ips]))
            return -1;
        s->n_lb_ingress_ips++;
    }
    return 0;
}

static int mf_service(struct mf_ctx *c, yaml_node_t *root, struct svcd_service *s)
{
    yaml_node_t *spec, *n;
    const char *t;

    if (mf_meta(c, root, false, &s->meta))
        return -1;
    s->affinity_timeout = 10800;
    if (!(spec = mf_get(c, root, "spec")))
        return mf_fail(c, "spec", "required");
    if (mf_want_map(c, spec, "spec") || mf_svc_type(c, spec, &s->type) ||
        mf_svc_ips(c, spec, s) || mf_svc_ports(c, spec, s))
        return -1;
    if ((n = mf_get(c, spec, "selector"))) {
        if (mf_kvmap(c, n, "spec.selector", &s->selector))
            return -1;
        s->has_selector = s->selector.n > 0;
    }
    if ((n = mf_get(c, spec, "sessionAffinity"))) {
        if (mf_text(c, n, "spec.sessionAffinity", &t))
            return -1;
        if (!strcmp(t, "ClientIP"))
            s->affinity_client_ip = true;
        else if (strcmp(t, "None") != 0)
            return mf_fail(c, "spec.sessionAffinity", "must be None or ClientIP (got \"%s\")", t);
    }
    if ((n = mf_get(c, spec, "sessionAffinityConfig"))) {
        yaml_node_t *cip;
        long long to;
        if (mf_want_map(c, n, "spec.sessionAffinityConfig"))
            return -1;
        if ((cip = mf_get(c, n, "clientIP"))) {
            yaml_node_t *ts;
            if (mf_want_map(c, cip, "spec.sessionAffinityConfig.clientIP"))
                return -1;
            if ((ts = mf_get(c, cip, "timeoutSeconds"))) {
                const char *tp = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
                if (mf_int(c, ts, tp, &to))
                    return -1;
                if (to < 1 || to > 86400)
                    return mf_fail(c, tp, "must be 1-86400");
                s->affinity_timeout = (uint32_t)to;
            }
        }
    }
    if ((n = mf_get(c, spec, "publishNotReadyAddresses")) &&
        mf_bool(c, n, "spec.publishNotReadyAddresses", &s->publish_not_ready))
        return -1;
    if ((n = mf_get(c, spec, "externalIPs")) &&
        mf_ip_list(c, n, "spec.externalIPs", &s->external_ips, &s->n_external_ips))
        return -1;
    if (mf_policy(c, spec, "internalTrafficPolicy", &s->internal_policy) ||
        mf_policy(c, spec, "externalTrafficPolicy", &s->external_policy))
        return -1;
    if ((n = mf_get(c, spec, "healthCheckNodePort"))) {
        long long hc;
        if (mf_int(c, n, "spec.healthCheckNodePort", &hc))
            return -1;
        if (s->type != SVCD_SVC_LOAD_BALANCER || s->external_policy != SVCD_POLICY_LOCAL)
            return mf_fail(c, "spec.healthCheckNodePort", "may only be set for type "
                           "LoadBalancer with externalTrafficPolicy Local");
        if (hc < 1 || hc > 65535)
            return mf_fail(c, "spec.healthCheckNodePort", "must be 1-65535");
        s->health_check_node_port = (uint16_t)hc;
    }
    if (s->type == SVCD_SVC_EXTERNAL_NAME) {
        char *name;
        if (!(n = mf_get(c, spec, "externalName")))
            return mf_fail(c, "spec.externalName", "required for type ExternalName");
        if (mf_str(c, n, "spec.externalName", &s->external_name))
            return -1;
        name = s->external_name;
        if (*name && name[strlen(name) - 1] == '.')
            name[strlen(name) - 1] = '\0';   /* a trailing dot is allowed */
        if (!mf_is_dns_subdomain(name))
            return mf_fail(c, "spec.externalName", "must be a DNS name (lowercase "
                           "RFC 1123 subdomain) (got \"%s\")", name);
        if (s->headless || s->n_cluster_ips)
            return mf_fail(c, "spec.clusterIP", "must be empty for type ExternalName");
    } else {
        if (s->headless && s->type != SVCD_SVC_CLUSTER_IP)
            return mf_fail(c, "spec.clusterIP", "may not be None for type %s",
                           svcd_svc_type_name(s->type));
        if (!s->headless && s->n_ports == 0)
            return mf_fail(c, "spec.ports", "required");
    }
    return mf_svc_lb_status(c, root, s);
}

/* ---- Pod ------------------------------------------------------------------ */

static int mf_probe(struct mf_ctx *c, yaml_node_t *n, const char *path, bool only_one_success,
                    struct svcd_probe *pr)
{
    static const char *const handlers[] = { "exec", "tcpSocket", "httpGet", "grpc" };
    yaml_node_t *h = NULL, *v;
    const char *which = NULL;
    char hp[MF_PATH_MAX], p[MF_PATH_MAX];
    int count = 0;

    if (mf_want_map(c, n, path))
        return -1;
    for (size_t i = 0; i < 4; i++) {
        yaml_node_t *x = mf_get(c, n, handlers[i]);
        if (x) {
            h = x;
            which = handlers[i];
            count++;
        }
    }
    if (count != 1)
        return mf_fail(c, path, "must specify exactly one of exec, tcpSocket, httpGet, grpc");
    mf_path(hp, path, which);
    if (mf_want_map(c, h, hp))
        return -1;
    if (!strcmp(which, "exec")) {
        yaml_node_item_t *items;
        size_t k;
        pr->kind = SVCD_PROBE_EXEC;
        if (!(v = mf_get(c, h, "command")))
            return mf_fail(c, mf_path(p, hp, "command"), "required");
        if (mf_want_seq(c, v, mf_path(p, hp, "command"), &items, &k))
            return -1;
        if (k == 0)
            return mf_fail(c, p, "required");
        if (!(pr->exec_argv = calloc(k + 1, sizeof(char *))))
            return mf_fail(c, p, "out of memory");
        for (size_t i = 0; i < k; i++) {
            char ip[MF_PATH_MAX];
            if (mf_str(c, mf_node(c, items[i]), mf_path_idx(ip, p, i), &pr->exec_argv[i]))
                return -1;
        }
    } else if (!strcmp(which, "grpc")) {
        pr->kind = SVCD_PROBE_GRPC;
        if (!(v = mf_get(c, h, "port")))
            return mf_fail(c, mf_path(p, hp, "port"), "required");
        if (mf_port(c, v, mf_path(p, hp, "port"), &pr->port))
            return -1;
        if ((v = mf_get(c, h, "service")) && mf_str(c, v, mf_path(p, hp, "service"),
                                                   &pr->grpc_service))
            return -1;
    } else {
        bool http = !strcmp(which, "httpGet");
        pr->kind = http ? SVCD_PROBE_HTTP : SVCD_PROBE_TCP;
        if (!(v = mf_get(c, h, "port")))
            return mf_fail(c, mf_path(p, hp, "port"), "required");
        if (mf_int_or_name(c, v, mf_path(p, hp, "port"), &pr->port, &pr->port_name))
            return -1;
        if ((v = mf_get(c, h, "host")) && mf_str(c, v, mf_path(p, hp, "host"), &pr->host))
            return -1;
        if (http) {
            yaml_node_item_t *items;
            size_t k;
            if ((v = mf_get(c, h, "path")) && mf_str(c, v, mf_path(p, hp, "path"), &pr->path))
                return -1;
            if (!pr->path && !(pr->path = strdup("/")))
                return mf_fail(c, hp, "out of memory");
            if ((v = mf_get(c, h, "scheme"))) {
                if (mf_str(c, v, mf_path(p, hp, "scheme"), &pr->scheme))
                    return -1;
                if (strcmp(pr->scheme, "HTTP") != 0 && strcmp(pr->scheme, "HTTPS") != 0)
                    return mf_fail(c, p, "must be HTTP or HTTPS (got \"%s\")", pr->scheme);
            }
            if (!pr->scheme && !(pr->scheme = strdup("HTTP")))
                return mf_fail(c, hp, "out of memory");
            if ((v = mf_get(c, h, "httpHeaders"))) {
                if (mf_want_seq(c, v, mf_path(p, hp, "httpHeaders"), &items, &k))
                    return -1;
                for (size_t i = 0; i < k; i++) {
                    yaml_node_t *e = mf_node(c, items[i]), *hn, *hv;
                    char ep[MF_PATH_MAX], fp[MF_PATH_MAX];
                    const char *name, *value = "";
                    mf_path_idx(ep, p, i);
                    if (mf_want_map(c, e, ep))
                        return -1;
                    if (!(hn = mf_get(c, e, "name")))
                        return mf_fail(c, mf_path(fp, ep, "name"), "required");
                    if (mf_text(c, hn, mf_path(fp, ep, "name"), &name))
                        return -1;
                    if ((hv = mf_get(c, e, "value")) &&
                        mf_text(c, hv, mf_path(fp, ep, "value"), &value))
                        return -1;
                    if (svcd_kvmap_set(&pr->http_headers, name, value) != 0)
                        return mf_fail(c, ep, "out of memory");
                }
            }
        }
    }
    pr->period_s = 10;
    pr->timeout_s = 1;
    pr->success_threshold = 1;
    pr->failure_threshold = 3;
    if (mf_u32_field(c, n, path, "initialDelaySeconds", 0, &pr->initial_delay_s) ||
        mf_u32_field(c, n, path, "periodSeconds", 1, &pr->period_s) ||
        mf_u32_field(c, n, path, "timeoutSeconds", 1, &pr->timeout_s) ||
        mf_u32_field(c, n, path, "successThreshold", 1, &pr->success_threshold) ||
        mf_u32_field(c, n, path, "failureThreshold", 1, &pr->failure_threshold))
        return -1;
    if (only_one_success && pr->success_threshold != 1)
        return mf_fail(c, mf_path(p, path, "successThreshold"),
                       "must be 1 for liveness and startup probes");
    return 0;
}

static int mf_container(struct mf_ctx *c, yaml_node_t *n, const char *path,
                        struct svcd_container *ct)
{
    yaml_node_t *ports, *v;
    yaml_node_item_t *items;
    size_t k;
    char p[MF_PATH_MAX], pp[MF_PATH_MAX], fp[MF_PATH_MAX];

    if (mf_want_map(c, n, path))
        return -1;
    if (mf_dns_field(c, n, path, "name", false, &ct->name))
        return -1;
    if (!ct->name)
        return mf_fail(c, mf_path(p, path, "name"), "required");
    if ((ports = mf_get(c, n, "ports"))) {
        if (mf_want_seq(c, ports, mf_path(p, path, "ports"), &items, &k))
            return -1;
        if (k && !(ct->ports = calloc(k, sizeof(*ct->ports))))
            return mf_fail(c, p, "out of memory");
        ct->n_ports = k;
        for (size_t i = 0; i < k; i++) {
            struct svcd_container_port *cp = &ct->ports[i];
            yaml_node_t *pn = mf_node(c, items[i]);
            mf_path_idx(pp, p, i);
            if (mf_want_map(c, pn, pp))
                return -1;
            if ((v = mf_get(c, pn, "name"))) {
                if (mf_str(c, v, mf_path(fp, pp, "name"), &cp->name))
                    return -1;
                if (!mf_is_iana_svc_name(cp->name))
                    return mf_fail(c, fp, MF_IANA_MSG " (got \"%s\")", cp->name);
            }
            if (!(v = mf_get(c, pn, "containerPort")))
                return mf_fail(c, mf_path(fp, pp, "containerPort"), "required");
            if (mf_port(c, v, mf_path(fp, pp, "containerPort"), &cp->container_port))
                return -1;
            if (mf_proto(c, pn, pp, &cp->protocol))
                return -1;
            for (size_t j = 0; cp->name && j < i; j++)
                if (ct->ports[j].name && !strcmp(ct->ports[j].name, cp->name))
                    return mf_fail(c, mf_path(fp, pp, "name"), "duplicate \"%s\"", cp->name);
        }
    }
    if ((v = mf_get(c, n, "readinessProbe")) &&
        mf_probe(c, v, mf_path(p, path, "readinessProbe"), false, &ct->readiness))
        return -1;
    if ((v = mf_get(c, n, "livenessProbe")) &&
        mf_probe(c, v, mf_path(p, path, "livenessProbe"), true, &ct->liveness))
        return -1;
    if ((v = mf_get(c, n, "startupProbe")) &&
        mf_probe(c, v, mf_path(p, path, "startupProbe"), true, &ct->startup))
        return -1;
    return 0;
}

static int mf_pod_status(struct mf_ctx *c, yaml_node_t *root, struct svcd_pod *pod)
{
    static const char *const phases[] = { "Pending", "Running", "Succeeded", "Failed",
                                          "Unknown" };
    yaml_node_t *st = mf_get(c, root, "status"), *v;
    yaml_node_item_t *items;
    size_t k;
    const char *t;
    char pp[MF_PATH_MAX], p[MF_PATH_MAX];

    pod->phase = SVCD_PHASE_PENDING;
    if (!st)
        return 0;
    if (mf_want_map(c, st, "status"))
        return -1;
    if ((v = mf_get(c, st, "phase"))) {
        size_t i;
        if (mf_text(c, v, "status.phase", &t))
            return -1;
        for (i = 0; i < 5 && strcmp(t, phases[i]) != 0; i++)
            ;
        if (i == 5)
            return mf_fail(c, "status.phase", "must be Pending, Running, Succeeded, Failed or "
                           "Unknown (got \"%s\")", t);
        pod->phase = (enum svcd_pod_phase)i;
    }
    if ((v = mf_get(c, st, "podIP"))) {
        if (mf_ip_text(c, v, "status.podIP", &pod->ips[0]))
            return -1;
        pod->n_ips = 1;
    }
    if ((v = mf_get(c, st, "podIPs"))) {
        bool had = pod->n_ips == 1;
        if (mf_want_seq(c, v, "status.podIPs", &items, &k))
            return -1;
        if (k > 2)
            return mf_fail(c, "status.podIPs", "may hold at most 2 addresses");
        for (size_t i = 0; i < k; i++) {
            yaml_node_t *e = mf_node(c, items[i]), *ipn;
            struct svcd_ip ip;
            mf_path_idx(pp, "status.podIPs", i);
            if (mf_want_map(c, e, pp))
                return -1;
            if (!(ipn = mf_get(c, e, "ip")))
                return mf_fail(c, mf_path(p, pp, "ip"), "required");
            if (mf_ip_text(c, ipn, mf_path(p, pp, "ip"), &ip))
                return -1;
            if (i == 0 && had && !svcd_ip_equal(&ip, &pod->ips[0]))
                return mf_fail(c, p, "must match status.podIP");
            if (i == 1 && ip.family == pod->ips[0].family)
                return mf_fail(c, p, "must be of a different IP family than status.podIPs[0]");
            pod->ips[i] = ip;
            pod->n_ips = i + 1;
        }
    }
    if ((v = mf_get(c, st, "conditions"))) {
        if (mf_want_seq(c, v, "status.conditions", &items, &k))
            return -1;
        for (size_t i = 0; i < k; i++) {
            yaml_node_t *e = mf_node(c, items[i]), *tn, *sn;
            mf_path_idx(pp, "status.conditions", i);
            if (mf_want_map(c, e, pp))
                return -1;
            if (!(tn = mf_get(c, e, "type")))
                return mf_fail(c, mf_path(p, pp, "type"), "required");
            if (mf_text(c, tn, mf_path(p, pp, "type"), &t))
                return -1;
            if (strcmp(t, "Ready") != 0)
                continue;
            if (!(sn = mf_get(c, e, "status")))
                return mf_fail(c, mf_path(p, pp, "status"), "required");
            if (mf_text(c, sn, mf_path(p, pp, "status"), &t))
                return -1;
            if (!strcmp(t, "True"))
                pod->ready_condition = SVCD_TRUE;
            else if (!strcmp(t, "False"))
                pod->ready_condition = SVCD_FALSE;
            else if (!strcmp(t, "Unknown"))
                pod->ready_condition = SVCD_UNKNOWN;
            else
                return mf_fail(c, p, "must be True, False or Unknown (got \"%s\")", t);
        }
    }
    return 0;
}

static int mf_pod(struct mf_ctx *c, yaml_node_t *root, struct svcd_pod *pod)
{
    yaml_node_t *spec, *cs;
    yaml_node_item_t *items;
    size_t k;
    char p[MF_PATH_MAX];

    if (mf_meta(c, root, true, &pod->meta))
        return -1;
    if (!(spec = mf_get(c, root, "spec")))
        return mf_fail(c, "spec", "required");
    if (mf_want_map(c, spec, "spec"))
        return -1;
    if (mf_dns_field(c, spec, "spec", "hostname", false, &pod->hostname) ||
        mf_dns_field(c, spec, "spec", "subdomain", false, &pod->subdomain) ||
        mf_dns_field(c, spec, "spec", "nodeName", true, &pod->node_name))
        return -1;
    if (!(cs = mf_get(c, spec, "containers")))
        return mf_fail(c, "spec.containers", "required");
    if (mf_want_seq(c, cs, "spec.containers", &items, &k))
        return -1;
    if (k == 0)
        return mf_fail(c, "spec.containers", "required");
    if (!(pod->containers = calloc(k, sizeof(*pod->containers))))
        return mf_fail(c, "spec.containers", "out of memory");
    pod->n_containers = k;
    for (size_t i = 0; i < k; i++) {
        char np[MF_PATH_MAX];
        mf_path_idx(p, "spec.containers", i);
        if (mf_container(c, mf_node(c, items[i]), p, &pod->containers[i]))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(pod->containers[j].name, pod->containers[i].name))
                return mf_fail(c, mf_path(np, p, "name"), "duplicate \"%s\"",
                               pod->containers[i].name);
    }
    if (mf_pod_status(c, root, pod))
        return -1;
    if (pod->n_ips == 0 && pod->phase != SVCD_PHASE_SUCCEEDED && pod->phase != SVCD_PHASE_FAILED)
        return mf_warn(c, "Pod %s/%s has no status.podIP, so it is no Service endpoint: svcd "
                       "does not run pods; write its status (phase, podIP) or run it with "
                       "`podman kube play` and use the podman source", pod->meta.ns,
                       pod->meta.name);
    return 0;
}

/* ---- EndpointSlice -------------------------------------------------------- */

static int mf_slice_endpoint(struct mf_ctx *c, yaml_node_t *n, const char *path,
                             int family, struct svcd_slice_endpoint *ep)
{
    yaml_node_t *v, *cond;
    yaml_node_item_t *items;
    size_t k;
    char p[MF_PATH_MAX], ap[MF_PATH_MAX];
    bool have_serving = false;

    if (mf_want_map(c, n, path))
        return -1;
    if (!(v = mf_get(c, n, "addresses")))
        return mf_fail(c, mf_path(p, path, "addresses"), "required");
    if (mf_want_seq(c, v, mf_path(p, path, "addresses"), &items, &k))
        return -1;
    if (k == 0)
        return mf_fail(c, p, "required");
    if (k > 100)
        return mf_fail(c, p, "may hold at most 100 addresses");
    if (!(ep->addresses = calloc(k, sizeof(*ep->addresses))))
        return mf_fail(c, p, "out of memory");
    for (size_t i = 0; i < k; i++) {
        mf_path_idx(ap, p, i);
        if (mf_ip_text(c, mf_node(c, items[i]), ap, &ep->addresses[i]))
            return -1;
        if (ep->addresses[i].family != family) {
            char buf[INET6_ADDRSTRLEN];
            return mf_fail(c, ap, "must be an %s address (got \"%s\")", mf_family_name(family),
                           svcd_ip_format(&ep->addresses[i], buf, sizeof(buf)));
        }
        ep->n_addresses = i + 1;
    }
    ep->ready = true;
    ep->terminating = false;
    if ((cond = mf_get(c, n, "conditions"))) {
        if (mf_want_map(c, cond, mf_path(p, path, "conditions")))
            return -1;
        if ((v = mf_get(c, cond, "ready")) && mf_bool(c, v, mf_path(ap, p, "ready"), &ep->ready))
            return -1;
        if ((v = mf_get(c, cond, "serving"))) {
            if (mf_bool(c, v, mf_path(ap, p, "serving"), &ep->serving))
                return -1;
            have_serving = true;
        }
        if ((v = mf_get(c, cond, "terminating")) &&
            mf_bool(c, v, mf_path(ap, p, "terminating"), &ep->terminating))
            return -1;
    }
    if (!have_serving)
        ep->serving = ep->ready;
    if (mf_dns_field(c, n, path, "hostname", false, &ep->hostname) ||
        mf_dns_field(c, n, path, "nodeName", true, &ep->node_name))
        return -1;
    return 0;
}

static int mf_slice(struct mf_ctx *c, yaml_node_t *root, struct svcd_endpoint_slice *sl,
                    bool *skip)
{
    const char *lp = "metadata.labels[kubernetes.io/service-name]";
    const char *svc, *t;
    yaml_node_t *v;
    yaml_node_item_t *items;
    size_t k;
    char p[MF_PATH_MAX], pp[MF_PATH_MAX];

    if (mf_meta(c, root, true, &sl->meta))
        return -1;
    svc = svcd_kvmap_get(&sl->meta.labels, "kubernetes.io/service-name");
    if (!svc)
        return mf_fail(c, lp, "required");
    if (!mf_is_dns_label(svc))
        return mf_fail(c, lp, MF_LABEL_MSG " (got \"%s\")", svc);
    if (!(sl->service_name = strdup(svc)))
        return mf_fail(c, lp, "out of memory");
    if (!(v = mf_get(c, root, "addressType")))
        return mf_fail(c, "addressType", "required");
    if (mf_text(c, v, "addressType", &t))
        return -1;
    if (!strcmp(t, "IPv4")) {
        sl->address_family = AF_INET;
    } else if (!strcmp(t, "IPv6")) {
        sl->address_family = AF_INET6;
    } else if (!strcmp(t, "FQDN")) {
        *skip = true;
        return mf_warn(c, "EndpointSlice %s/%s: addressType FQDN ignored", sl->meta.ns,
                       sl->meta.name);
    } else {
        return mf_fail(c, "addressType", "must be IPv4, IPv6 or FQDN (got \"%s\")", t);
    }
    if ((v = mf_get(c, root, "endpoints"))) {
        if (mf_want_seq(c, v, "endpoints", &items, &k))
            return -1;
        if (k && !(sl->endpoints = calloc(k, sizeof(*sl->endpoints))))
            return mf_fail(c, "endpoints", "out of memory");
        sl->n_endpoints = k;
        for (size_t i = 0; i < k; i++)
            if (mf_slice_endpoint(c, mf_node(c, items[i]), mf_path_idx(p, "endpoints", i),
                                  sl->address_family, &sl->endpoints[i]))
                return -1;
    }
    if ((v = mf_get(c, root, "ports"))) {
        if (mf_want_seq(c, v, "ports", &items, &k))
            return -1;
        if (k && !(sl->ports = calloc(k, sizeof(*sl->ports))))
            return mf_fail(c, "ports", "out of memory");
        sl->n_ports = k;
        for (size_t i = 0; i < k; i++) {
            struct svcd_slice_port *sp = &sl->ports[i];
            yaml_node_t *pn = mf_node(c, items[i]), *x;
            mf_path_idx(pp, "ports", i);
            if (mf_want_map(c, pn, pp))
                return -1;
            if ((x = mf_get(c, pn, "name"))) {
                if (mf_str(c, x, mf_path(p, pp, "name"), &sp->name))
                    return -1;
                if (!*sp->name) {
                    free(sp->name);
                    sp->name = NULL;
                } else if (!mf_is_dns_label(sp->name)) {
                    return mf_fail(c, p, MF_LABEL_MSG " (got \"%s\")", sp->name);
                }
            }
            if (mf_proto(c, pn, pp, &sp->protocol))
                return -1;
            if ((x = mf_get(c, pn, "port")) && mf_port(c, x, mf_path(p, pp, "port"), &sp->port))
                return -1;
        }
    }
    return 0;
}

/* ---- documents ------------------------------------------------------------ */

enum mf_kind { MF_SERVICE, MF_POD, MF_SLICE, MF_LIST, MF_OTHER };

static enum mf_kind mf_kind_of(const char *kind, const char **item_kind)
{
    *item_kind = NULL;
    if (!strcmp(kind, "Service"))
        return MF_SERVICE;
    if (!strcmp(kind, "Pod"))
        return MF_POD;
    if (!strcmp(kind, "EndpointSlice"))
        return MF_SLICE;
    if (!strcmp(kind, "List"))
        return MF_LIST;
    if (!strcmp(kind, "ServiceList"))
        *item_kind = "Service";
    else if (!strcmp(kind, "PodList"))
        *item_kind = "Pod";
    else if (!strcmp(kind, "EndpointSliceList"))
        *item_kind = "EndpointSlice";
    return *item_kind ? MF_LIST : MF_OTHER;
}

/* Records kind/ns/name; fails on a second definition in this file. */
static int mf_note_key(struct mf_ctx *c, const char *kind, const struct svcd_meta *m)
{
    char key[600];
    uintptr_t where = ((uintptr_t)c->docno << 24) | ((uintptr_t)c->item & 0xffffff);
    void *prev;

    snprintf(key, sizeof(key), "%s/%s/%s", kind, m->ns, m->name);
    prev = hmap_get(c->seen, key);
    if (prev) {
        uintptr_t w = (uintptr_t)prev - 1;
        unsigned pdoc = (unsigned)(w >> 24), pitem = (unsigned)(w & 0xffffff);
        if (pitem)
            return mf_fail(c, "", "%s %s/%s is defined twice in this file (also document %u "
                           "item %u)", kind, m->ns, m->name, pdoc, pitem);
        return mf_fail(c, "", "%s %s/%s is defined twice in this file (also document %u)",
                       kind, m->ns, m->name, pdoc);
    }
    if (hmap_set(c->seen, key, (void *)(where + 1)) != 0)
        return mf_fail(c, "", "out of memory");
    return 0;
}

static int mf_object(struct mf_ctx *c, yaml_node_t *n, const char *dflt_kind);

static int mf_list(struct mf_ctx *c, yaml_node_t *n, const char *item_kind)
{
    yaml_node_t *items_node = mf_get(c, n, "items");
    yaml_node_item_t *items;
    size_t k;

    if (c->item)
        return mf_fail(c, "", "a List may not contain a List");
    if (!items_node)
        return 0;
    if (mf_want_seq(c, items_node, "items", &items, &k))
        return -1;
    for (size_t i = 0; i < k; i++) {
        int rc;
        c->item = (int)i + 1;
        rc = mf_object(c, mf_node(c, items[i]), item_kind);
        if (rc)
            return rc;
    }
    c->item = 0;
    return 0;
}

static char *mf_raw_meta(struct mf_ctx *c, yaml_node_t *n, const char *key);

/* Kinds whose pods a controller would run: svcd runs none. */
static bool mf_is_workload(const char *kind)
{
    static const char *const kinds[] = { "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet",
                                         "Job", "CronJob", "ReplicationController" };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(kind, kinds[i]))
            return true;
    return false;
}

static int mf_object_body(struct mf_ctx *c, yaml_node_t *n, const char *dflt_kind)
{
    yaml_node_t *kn, *an;
    const char *kind = dflt_kind, *api = NULL, *item_kind, *want_api, *group;
    enum mf_kind k;
    uint64_t fp = 0;
    int rc = -1;

    if (!n)
        return mf_fail(c, "", "malformed document");
    if (mf_is_null(n) && !c->item)
        return 0;                         /* empty document */
    if (mf_want_map(c, n, ""))
        return -1;
    if ((kn = mf_get(c, n, "kind")) && mf_text(c, kn, "kind", &kind))
        return -1;
    if (!kind)
        return mf_fail(c, "kind", "required");
    if ((an = mf_get(c, n, "apiVersion")) && mf_text(c, an, "apiVersion", &api))
        return -1;
    if (!api && !dflt_kind)
        return mf_fail(c, "apiVersion", "required");
    k = mf_kind_of(kind, &item_kind);
    if (k == MF_LIST)
        return mf_list(c, n, item_kind);
    if (k == MF_OTHER && mf_is_workload(kind)) {
        char *name = mf_raw_meta(c, n, "name"), *ns = mf_raw_meta(c, n, "namespace");
        int wrc = mf_warn(c, "%s %s/%s: svcd does not run workloads; run its pods with "
                          "`podman kube play` and use the podman source (docs/PODMAN.md)", kind,
                          ns ? ns : "default", name ? name : "?");
        free(name);
        free(ns);
        return wrc;
    }
    if (k == MF_OTHER)
        return mf_warn(c, "kind %s ignored", kind);
    want_api = k == MF_SLICE ? "discovery.k8s.io/v1" : "v1";
    group = k == MF_SLICE ? "discovery.k8s.io/" : NULL;
    if (api && strcmp(api, want_api) != 0) {
        /* Same kind name in another API group (e.g. a Knative Service). */
        bool other_group = group ? strncmp(api, group, strlen(group)) != 0
                                 : strchr(api, '/') != NULL;
        if (other_group)
            return mf_warn(c, "kind %s of apiVersion %s ignored", kind, api);
        return mf_fail(c, "apiVersion", "must be %s for kind %s (got \"%s\")", want_api, kind,
                       api);
    }
    if (mf_fingerprint(c, n, &fp)) {
        c->fatal = true;          /* limits of the whole file */
        return -1;
    }
    if (k == MF_SERVICE) {
        struct svcd_service *s = calloc(1, sizeof(*s));
        if (!s)
            return mf_fail(c, "", "out of memory");
        if (mf_service(c, n, s) || mf_note_key(c, "Service", &s->meta))
            goto svc_out;
        s->meta.fingerprint = fp;
        if (MF_PUSH(c->out->services, c->out->n_services, s) != 0) {
            mf_fail(c, "", "out of memory");
            goto svc_out;
        }
        return 0;
svc_out:
        model_service_free(s);
        return -1;
    }
    if (k == MF_POD) {
        struct svcd_pod *p = calloc(1, sizeof(*p));
        if (!p)
            return mf_fail(c, "", "out of memory");
        if (mf_pod(c, n, p) || mf_note_key(c, "Pod", &p->meta))
            goto pod_out;
        p->meta.fingerprint = fp;
        if (MF_PUSH(c->out->pods, c->out->n_pods, p) != 0) {
            mf_fail(c, "", "out of memory");
            goto pod_out;
        }
        return 0;
pod_out:
        model_pod_free(p);
        return -1;
    }
    {
        struct svcd_endpoint_slice *sl = calloc(1, sizeof(*sl));
        bool skip = false;
        if (!sl)
            return mf_fail(c, "", "out of memory");
        if (mf_slice(c, n, sl, &skip))
            goto slice_out;
        if (skip) {
            rc = 0;
            goto slice_out;
        }
        if (mf_note_key(c, "EndpointSlice", &sl->meta))
            goto slice_out;
        sl->meta.fingerprint = fp;
        if (MF_PUSH(c->out->slices, c->out->n_slices, sl) != 0) {
            mf_fail(c, "", "out of memory");
            goto slice_out;
        }
        return 0;
slice_out:
        model_slice_free(sl);
        return rc;
    }
}

/* metadata.<key> as text for a rejection message, without validating. */
static char *mf_raw_meta(struct mf_ctx *c, yaml_node_t *n, const char *key)
{
    yaml_node_t *v = mf_get(c, mf_get(c, n, "metadata"), key);
    if (!v || v->type != YAML_SCALAR_NODE || v->data.scalar.length > 253)
        return NULL;
    return strndup((const char *)v->data.scalar.value, v->data.scalar.length);
}

/* One object (or List). In per-object mode an invalid object becomes an
 * entry of out->rejects and parsing goes on; limits of the whole file and
 * running out of memory still fail it. */
static int mf_object(struct mf_ctx *c, yaml_node_t *n, const char *dflt_kind)
{
    yaml_node_t *kn;
    struct manifest_reject rj;
    int rc = mf_object_body(c, n, dflt_kind);

    if (rc == 0 || !c->each || c->fatal)
        return rc;
    memset(&rj, 0, sizeof(rj));
    kn = mf_get(c, n, "kind");
    if (kn && kn->type == YAML_SCALAR_NODE && kn->data.scalar.length < 64)
        rj.kind = strndup((const char *)kn->data.scalar.value, kn->data.scalar.length);
    else if (dflt_kind)
        rj.kind = strdup(dflt_kind);
    rj.name = mf_raw_meta(c, n, "name");
    rj.ns = mf_raw_meta(c, n, "namespace");
    if (!rj.ns && rj.name)
        rj.ns = strdup("default");
    rj.error = strdup(c->err && c->errlen ? c->err : "invalid");
    if (!rj.error || MF_PUSH(c->out->rejects, c->out->n_rejects, rj) != 0) {
        free(rj.kind);
        free(rj.name);
        free(rj.ns);
        free(rj.error);
        c->fatal = true;
        return -1;
    }
    c->failed = false;
    if (c->err && c->errlen)
        c->err[0] = '\0';
    return 0;
}

/* ---- entry points --------------------------------------------------------- */

static void mf_syntax_error(const yaml_parser_t *parser, char *err, size_t errlen)
{
    const char *problem = parser->problem ? parser->problem : "invalid YAML";

    if (!err || !errlen)
        return;
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        snprintf(err, errlen, "out of memory");
        break;
    case YAML_READER_ERROR:
        snprintf(err, errlen, "byte %zu: %s", parser->problem_offset, problem);
        break;
    default:
        if (parser->context)
            snprintf(err, errlen, "line %zu column %zu: %s (%s at line %zu)",
                     parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem,
                     parser->context, parser->context_mark.line + 1);
        else
            snprintf(err, errlen, "line %zu column %zu: %s", parser->problem_mark.line + 1,
                     parser->problem_mark.column + 1, problem);
        break;
    }
}

static int mf_parse(const char *data, size_t len, int64_t now_unix, bool each,
                    struct manifest_objs *out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    struct mf_ctx c;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.each = each;
    c.now = now_unix;
    c.max_visits = MF_MAX_NODES + (data ? len : 0);
    c.err = err;
    c.errlen = errlen;
    c.out = out;
    if (!(c.seen = hmap_new())) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        hmap_free(c.seen);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""),
                                 data ? len : 0);
    for (int docno = 1;; docno++) {
        yaml_document_t doc;
        yaml_node_t *root;
        int r;

        if (!yaml_parser_load(&parser, &doc)) {
            mf_syntax_error(&parser, err, errlen);
            goto out;
        }
        root = yaml_document_get_root_node(&doc);
        if (!root) {                       /* end of stream */
            yaml_document_delete(&doc);
            break;
        }
        c.doc = &doc;
        c.docno = docno;
        c.item = 0;
        r = mf_object(&c, root, NULL);
        yaml_document_delete(&doc);
        c.doc = NULL;
        if (r)
            goto out;
    }
    rc = 0;
out:
    yaml_parser_delete(&parser);
    hmap_free(c.seen);
    if (rc != 0)
        manifest_objs_free(out);
    return rc;
}

int manifest_parse_each(const char *data, size_t len, int64_t now_unix,
                        struct manifest_objs *out, char *err, size_t errlen)
{
    return mf_parse(data, len, now_unix, true, out, err, errlen);
}

int manifest_parse(const char *data, size_t len, int64_t now_unix,
                   struct manifest_objs *out, char *err, size_t errlen)
{
    return mf_parse(data, len, now_unix, false, out, err, errlen);
}

void manifest_objs_free(struct manifest_objs *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < out->n_rejects; i++) {
        free(out->rejects[i].kind);
        free(out->rejects[i].ns);
        free(out->rejects[i].name);
        free(out->rejects[i].error);
    }
    free(out->rejects);
    for (size_t i = 0; i < out->n_services; i++)
        model_service_free(out->services ? out->services[i] : NULL);
    for (size_t i = 0; i < out->n_pods; i++)
        model_pod_free(out->pods ? out->pods[i] : NULL);
    for (size_t i = 0; i < out->n_slices; i++)
        model_slice_free(out->slices ? out->slices[i] : NULL);
    for (size_t i = 0; i < out->n_warnings; i++)
        free(out->warnings ? out->warnings[i] : NULL);
    free(out->services);
    free(out->pods);
    free(out->slices);
    free(out->warnings);
    memset(out, 0, sizeof(*out));
}
