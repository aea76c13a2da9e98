/*
 * test_dns_forward: the forwarder against real upstream servers.
 *
 * The test moves itself into a private network namespace
 * (unshare(CLONE_NEWNET)), brings lo up and starts two dnsmasq processes on
 * 127.0.0.1 with local data only. Everything it starts dies with it; the
 * namespace vanishes when the process exits. Upstream query counts come
 * from dnsmasq's own query log, not from the forwarder's counters.
 *
 *   upstream A (port pa): *.x.test A 1.2.3.4, *.sub.corp.test A 9.9.9.9,
 *                         big.x.test TXT of ~800 bytes (forces TC -> TCP)
 *   upstream B (port pb): *.corp.test A 5.6.7.8
 *   stubs: corp.test -> B, sub.corp.test -> A (longest suffix must win)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "svcd/config.h"
#include "svcd/dns_forward.h"

static int g_pass, g_fail;

#define CHECK(cond, ...) do { \
    if (cond) { g_pass++; } else { g_fail++; \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static char g_dir[64];
static pid_t g_pid_a = -1, g_pid_b = -1;
static uint16_t g_port_a, g_port_b, g_port_silent, g_port_closed;

/* ---- environment -------------------------------------------------------- */

static int net_private(void)
{
    struct ifreq ifr;
    int s;

    if (unshare(CLONE_NEWNET) < 0) {
        perror("unshare(CLONE_NEWNET) (needs root)");
        return -1;
    }
    s = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return -1;
    close(s);
    return 0;
}

static bool tcp_listening(const char *addr, uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int s = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    inet_pton(AF_INET, addr, &sa.sin_addr);
    ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(s);
    return ok;
}

static pid_t dnsmasq_start_at(const char *addr, uint16_t port, const char *log,
                              const char *const *extra)
{
    char a_port[32], a_log[128], a_listen[64];
    const char *argv[32];
    int n = 0;
    pid_t pid;

    snprintf(a_port, sizeof(a_port), "--port=%u", port);
    snprintf(a_log, sizeof(a_log), "--log-facility=%s", log);
    argv[n++] = "dnsmasq";
    argv[n++] = "--keep-in-foreground";
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = "--pid-file=";
    argv[n++] = "--user=root";
    snprintf(a_listen, sizeof(a_listen), "--listen-address=%s", addr);
    argv[n++] = a_listen;
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--cache-size=0";
    argv[n++] = "--log-queries";
    argv[n++] = "--local-ttl=300";
    argv[n++] = a_port;
    argv[n++] = a_log;
    while (*extra && n < 30)
        argv[n++] = *extra++;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        execvp("dnsmasq", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 100 && pid > 0; i++) {   /* up to 2 s */
        if (tcp_listening(addr, port))
            return pid;
        usleep(20000);
    }
    fprintf(stderr, "dnsmasq on %s port %u did not start\n", addr, port);
    return -1;
}

static pid_t dnsmasq_start(uint16_t port, const char *log, const char *const *extra)
{
    return dnsmasq_start_at("127.0.0.1", port, log, extra);
}

static void stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

/* Lines in a dnsmasq log saying it received `what` (e.g. "query[A] a.x.test "). */
static int log_count(const char *log, const char *what)
{
    char line[1024];
    int n = 0;
    FILE *fp;

    usleep(50000);    /* dnsmasq writes its log right away; give it a moment */
    fp = fopen(log, "r");
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp))
        if (strcasestr(line, what))
            n++;
    fclose(fp);
    return n;
}

/* ---- queries ------------------------------------------------------------ */

struct pkt {
    uint8_t b[512];
    size_t n;
};

static void mkquery(struct pkt *p, uint16_t id, const char *name, uint16_t type, bool edns_do)
{
    p->n = 0;
    uint8_t h[12] = { (uint8_t)(id >> 8), (uint8_t)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0,
                      edns_do ? 1 : 0 };
    memcpy(p->b, h, 12);
    p->n = 12;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p->b[p->n++] = (uint8_t)l;
        memcpy(p->b + p->n, name, l);
        p->n += l;
        name += l;
        if (*name == '.')
            name++;
    }
    p->b[p->n++] = 0;
    p->b[p->n++] = (uint8_t)(type >> 8);
    p->b[p->n++] = (uint8_t)type;
    p->b[p->n++] = 0;
    p->b[p->n++] = 1;
    if (edns_do) {
        uint8_t opt[11] = { 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0 };
        memcpy(p->b + p->n, opt, 11);
        p->n += 11;
    }
}

struct result {
    int calls;
    bool servfail;
    uint8_t b[4096];
    size_t n;
    struct timespec at;
};

static int g_done;

static void on_answer(void *ctx, const uint8_t *answer, size_t len)
{
    struct result *r = ctx;

    r->calls++;
    g_done++;
    clock_gettime(CLOCK_MONOTONIC, &r->at);
    r->servfail = answer == NULL;
    r->n = len < sizeof(r->b) ? len : 0;
    if (answer && r->n)
        memcpy(r->b, answer, r->n);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void on_tick(evutil_socket_t fd, short what, void *arg) { }

/* Runs the loop until g_done reaches target or ms pass. */
static void run_until(struct event_base *base, int target, int ms)
{
    struct timespec t0;
    struct timeval tick = { 0, 20000 };
    struct event *ev = event_new(base, -1, EV_PERSIST, on_tick, NULL);

    event_add(ev, &tick);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (g_done < target && ms_since(&t0) < ms)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(ev);
}

/* First A address in an answer (walks: header, question, answers). */
static uint32_t first_a(const uint8_t *b, size_t n)
{
    size_t pos = 12;
    unsigned an;

    if (n < 12)
        return 0;
    an = (unsigned)b[6] << 8 | b[7];
    while (pos < n && b[pos])
        pos += b[pos] + 1u;
    pos += 5;
    for (unsigned i = 0; i < an && pos + 10 <= n; i++) {
        if (b[pos] >= 0xc0) pos += 2;
        else { while (pos < n && b[pos]) pos += b[pos] + 1u; pos++; }
        if (pos + 10 > n)
            break;
        unsigned type = (unsigned)b[pos] << 8 | b[pos + 1];
        unsigned rdlen = (unsigned)b[pos + 8] << 8 | b[pos + 9];
        if (type == 1 && rdlen == 4 && pos + 14 <= n)
            return (uint32_t)b[pos + 10] << 24 | (uint32_t)b[pos + 11] << 16 |
                   (uint32_t)b[pos + 12] << 8 | b[pos + 13];
        pos += 10u + rdlen;
    }
    return 0;
}

static unsigned rcode(const struct result *r) { return r->n >= 4 ? (r->b[3] & 0xf) : 99; }
static unsigned rid(const struct result *r) { return r->n >= 2 ? (unsigned)r->b[0] << 8 | r->b[1] : 0; }

static void hp(struct svcd_hostport *h, uint16_t port)
{
    memset(h, 0, sizeof(*h));
    h->ip.family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &h->ip.u.v4);
    h->port = port;
    snprintf(h->text, sizeof(h->text), "127.0.0.1:%u", port);
}

static void base_config(struct svcd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->dns_cache_size = 1000;
    c->dns_cache_min_ttl = 0;
    c->dns_cache_max_ttl = 3600;
}

/* ---- tests -------------------------------------------------------------- */

static void test_acl(void)
{
    struct svcd_config cfg;
    struct event_base *base = event_base_new();
    struct dns_forwarder *f;
    struct { const char *ip; bool allowed; } cases[] = {
        { "127.0.0.1", true }, { "127.9.9.9", true }, { "::1", true },
        { "::ffff:127.0.0.1", true }, { "10.96.0.10", true }, { "10.111.255.255", true },
        { "10.112.0.1", false }, { "10.244.3.7", true }, { "192.168.5.5", true },
        { "192.168.6.5", false }, { "8.8.8.8", false }, { "fd00::1", false },
        { "fd10::5", true },
    };

    base_config(&cfg);
    hp(&cfg.upstream[0], g_port_a);
    cfg.n_upstream = 1;
    svcd_cidr_parse("10.96.0.0/12", &cfg.service_cidr[0]);
    cfg.n_service_cidr = 1;
    svcd_cidr_parse("10.244.0.0/16", &cfg.pod_cidr[0]);
    svcd_cidr_parse("fd10::/64", &cfg.pod_cidr[1]);
    cfg.n_pod_cidr = 2;
    svcd_cidr_parse("192.168.5.0/24", &cfg.dns_allow[0]);
    cfg.n_dns_allow = 1;
    f = dns_forwarder_new(base, &cfg);
    CHECK(f != NULL, "forwarder for ACL");
    for (size_t i = 0; f && i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct svcd_ip ip;
        CHECK(svcd_ip_parse(cases[i].ip, &ip) == 0, "parse %s", cases[i].ip);
        CHECK(dns_forwarder_allowed(f, &ip) == cases[i].allowed, "acl %s want %d",
              cases[i].ip, cases[i].allowed);
    }
    dns_forwarder_free(f);
    event_base_free(base);
}

static void test_forwarding(const char *log_a, const char *log_b)
{
    struct svcd_config cfg;
    struct event_base *base = event_base_new();
    struct dns_forwarder *f;
    struct pkt q;
    static struct result r[40];
    struct dns_forward_stats st;

    base_config(&cfg);
    hp(&cfg.upstream[0], g_port_a);
    cfg.n_upstream = 1;
    strcpy(cfg.stub[0].domain, "corp.test");
    hp(&cfg.stub[0].servers[0], g_port_b);
    cfg.stub[0].n_servers = 1;
    strcpy(cfg.stub[1].domain, "sub.corp.test");
    hp(&cfg.stub[1].servers[0], g_port_a);
    cfg.stub[1].n_servers = 1;
    cfg.n_stub = 2;
    f = dns_forwarder_new(base, &cfg);
    CHECK(f != NULL, "forwarder");
    if (!f)
        return;

    /* 1. forwarding works, the client's ID comes back */
    memset(r, 0, sizeof(r));
    g_done = 0;
    mkquery(&q, 0x4242, "www.x.test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]) == 0, "query accepted");
    run_until(base, 1, 3000);
    CHECK(r[0].calls == 1 && !r[0].servfail, "answered");
    CHECK(rid(&r[0]) == 0x4242, "client ID restored: %04x", rid(&r[0]));
    CHECK(rcode(&r[0]) == 0, "rcode NOERROR");
    CHECK(first_a(r[0].b, r[0].n) == 0x01020304, "A 1.2.3.4 from upstream A");
    CHECK(log_count(log_a, "query[A] www.x.test ") == 1, "upstream saw one query");

    /* 2. a repeat is a cache hit: answered before query() returns, new ID
     *    and the client's case, upstream not asked again */
    memset(&r[1], 0, sizeof(r[1]));
    mkquery(&q, 0x0777, "WWW.X.Test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[1]) == 0 && r[1].calls == 1,
          "cache hit answered synchronously");
    CHECK(rid(&r[1]) == 0x0777, "hit has the new client's ID");
    CHECK(r[1].n > 24 && memcmp(r[1].b + 12, q.b + 12, 12) == 0, "hit has the client's case");
    CHECK(first_a(r[1].b, r[1].n) == 0x01020304, "hit answer");
    CHECK(log_count(log_a, "query[A] www.x.test ") == 1, "upstream still saw one query");

    /* 2b. the cache-only fast path */
    {
        uint8_t out[1024];
        struct dns_forward_stats st0, st1;
        dns_forwarder_get_stats(f, &st0);
        mkquery(&q, 0x0888, "www.X.test", 1, false);
        size_t n = dns_forwarder_cached(f, q.b, q.n, out, sizeof(out));
        CHECK(n > 12 && out[0] == 0x08 && out[1] == 0x88 && first_a(out, n) == 0x01020304,
              "dns_forwarder_cached hit (%zu)", n);
        mkquery(&q, 0x0889, "nothere.x.test", 1, false);
        CHECK(dns_forwarder_cached(f, q.b, q.n, out, sizeof(out)) == 0, "cached miss is 0");
        dns_forwarder_get_stats(f, &st1);
        CHECK(st1.upstream_queries == st0.upstream_queries && st1.pending == 0,
              "cached() never goes upstream");
        CHECK(log_count(log_a, "nothere.x.test") == 0, "upstream not asked by cached()");
    }

    /* 3. EDNS DO is kept: a DO query is a different question (miss) and the
     *    answer carries an OPT */
    memset(&r[2], 0, sizeof(r[2]));
    g_done = 0;
    mkquery(&q, 0x0102, "www.x.test", 1, true);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[2]);
    run_until(base, 1, 3000);
    CHECK(r[2].calls == 1 && r[2].n > 12 && (r[2].b[10] << 8 | r[2].b[11]) == 1,
          "OPT in the answer to an EDNS query (arcount %d)",
          r[2].n > 12 ? (r[2].b[10] << 8 | r[2].b[11]) : -1);
    CHECK(log_count(log_a, "query[A] www.x.test ") == 2, "EDNS query went upstream");

    /* 4. stub domains: longest suffix wins */
    memset(r, 0, sizeof(r));
    g_done = 0;
    mkquery(&q, 1, "a.corp.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
    mkquery(&q, 2, "q.sub.corp.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[1]);
    mkquery(&q, 3, "corp.test.x.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[2]);
    run_until(base, 3, 3000);
    CHECK(first_a(r[0].b, r[0].n) == 0x05060708, "a.corp.test via stub B");
    CHECK(first_a(r[1].b, r[1].n) == 0x09090909, "q.sub.corp.test via stub sub -> A");
    CHECK(first_a(r[2].b, r[2].n) == 0x01020304, "corp.test.x.test via default");
    CHECK(log_count(log_b, "query[A] a.corp.test ") == 1, "B saw a.corp.test");
    CHECK(log_count(log_a, "a.corp.test ") == 0, "A did not see a.corp.test");
    CHECK(log_count(log_b, "q.sub.corp.test") == 0, "B did not see q.sub.corp.test");

    /* 5. coalescing: 30 identical questions, different IDs and case, in one
     *    loop turn -> one upstream query, 30 answers with their own IDs */
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < 30; i++) {
        mkquery(&q, (uint16_t)(0x1000 + i), (i & 1) ? "COAL.x.test" : "coal.x.test", 1, false);
        CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[i]) == 0, "coalesce query %d", i);
    }
    run_until(base, 30, 3000);
    {
        int ok = 0;
        for (int i = 0; i < 30; i++)
            if (r[i].calls == 1 && rid(&r[i]) == 0x1000u + (unsigned)i &&
                first_a(r[i].b, r[i].n) == 0x01020304 && r[i].b[13] == ((i & 1) ? 'C' : 'c'))
                ok++;
        CHECK(ok == 30, "all 30 waiters answered with own ID and case (%d)", ok);
    }
    CHECK(log_count(log_a, "query[A] coal.x.test ") == 1, "one upstream query for 30 (%d)",
          log_count(log_a, "query[A] coal.x.test "));
    dns_forwarder_get_stats(f, &st);
    CHECK(st.coalesced == 29, "coalesced counter %llu", (unsigned long long)st.coalesced);

    /* 5b. two different questions with the same client ID at once: both
     *     answered (upstream IDs are ours, not the clients') */
    memset(r, 0, sizeof(r));
    g_done = 0;
    mkquery(&q, 0x3333, "dup1.x.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
    mkquery(&q, 0x3333, "dup2.sub.corp.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[1]);
    mkquery(&q, 0x3333, "dup3.x.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[2]);
    run_until(base, 3, 3000);
    CHECK(g_done == 3 && first_a(r[0].b, r[0].n) == 0x01020304 &&
          first_a(r[1].b, r[1].n) == 0x09090909 && first_a(r[2].b, r[2].n) == 0x01020304 &&
          rid(&r[0]) == 0x3333 && rid(&r[2]) == 0x3333, "same client ID, three questions");
    CHECK(ms_since(&r[0].at) < 100000, "answered");

    /* 6. truncated UDP answer -> TCP retry -> full answer */
    memset(r, 0, sizeof(r));
    g_done = 0;
    mkquery(&q, 0x7c7c, "big.x.test", 16, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
    run_until(base, 1, 5000);
    CHECK(r[0].calls == 1 && !r[0].servfail, "big TXT answered");
    CHECK(r[0].n > 512, "answer larger than 512 bytes (%zu)", r[0].n);
    CHECK(r[0].n > 3 && !(r[0].b[2] & 0x02), "TC clear (came over TCP)");
    CHECK(rid(&r[0]) == 0x7c7c, "ID restored on the TCP answer");
    CHECK(log_count(log_a, "query[TXT] big.x.test ") == 2, "asked over UDP then TCP (%d)",
          log_count(log_a, "query[TXT] big.x.test "));

    /* 7. upstream gone: cached names still answered */
    stop(&g_pid_a);
    memset(r, 0, sizeof(r));
    mkquery(&q, 0x5151, "www.x.test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]) == 0 && r[0].calls == 1 &&
          first_a(r[0].b, r[0].n) == 0x01020304 && rid(&r[0]) == 0x5151,
          "cached answer with upstream down");
    mkquery(&q, 0x5152, "coal.x.test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[1]) == 0 && r[1].calls == 1,
          "coalesced answer was cached");

    /* 8. malformed input is refused, callback never called */
    memset(r, 0, sizeof(r));
    CHECK(dns_forwarder_query(f, q.b, 7, on_answer, &r[0]) == -1 && r[0].calls == 0,
          "short query refused");
    dns_forwarder_free(f);
    event_base_free(base);
}

/* Upstream down: SERVFAIL fast when refused, within the deadline when
 * silent. */
static void test_upstream_down(void)
{
    struct svcd_config cfg;
    struct event_base *base = event_base_new();
    struct dns_forwarder *f;
    struct pkt q;
    struct result r[2];
    struct timespec t0;
    int silent;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(g_port_silent) };

    /* a bound UDP socket that never reads: queries vanish (no ICMP) */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(bind(silent, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind silent upstream");

    base_config(&cfg);
    hp(&cfg.upstream[0], g_port_closed);
    cfg.n_upstream = 1;
    strcpy(cfg.stub[0].domain, "silent.test");
    hp(&cfg.stub[0].servers[0], g_port_silent);
    cfg.stub[0].n_servers = 1;
    cfg.n_stub = 1;
    f = dns_forwarder_new(base, &cfg);
    CHECK(f != NULL, "forwarder (down)");
    if (!f)
        goto out;

    memset(r, 0, sizeof(r));
    g_done = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mkquery(&q, 9, "refused.x.test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]) == 0, "accepted (refused)");
    run_until(base, 1, 6000);
    CHECK(r[0].calls == 1 && r[0].servfail, "closed port -> SERVFAIL");
    /* Not a speed check: a try that times out ends no earlier than
     * DNS_FORWARD_TRY_MS, so an answer before that came from the refusal. */
    CHECK(ms_since(&t0) < DNS_FORWARD_TRY_MS, "closed port answered by the refusal (%.0f ms)",
          ms_since(&t0));

    g_done = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mkquery(&q, 10, "a.silent.test", 1, false);
    CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[1]) == 0, "accepted (silent)");
    run_until(base, 1, DNS_FORWARD_DEADLINE_MS + 3000);
    double took = (double)(r[1].at.tv_sec - t0.tv_sec) * 1e3 +
                  (double)(r[1].at.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(r[1].calls == 1 && r[1].servfail, "silent upstream -> SERVFAIL");
    /* The deadline timer fires at DNS_FORWARD_DEADLINE_MS; the upper bound
     * only shows that it fired at all (run_until stops 3 s later). */
    CHECK(took >= DNS_FORWARD_TRY_MS && took <= DNS_FORWARD_DEADLINE_MS + 3000,
          "silent upstream answered after %.0f ms (bounded)", took);
    /* SERVFAIL is not cached: asking again goes upstream again (fails fast
     * for the closed port). */
    struct dns_forward_stats st;
    dns_forwarder_get_stats(f, &st);
    uint64_t before = st.upstream_queries;
    g_done = 0;
    memset(r, 0, sizeof(r));
    mkquery(&q, 11, "refused.x.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
    run_until(base, 1, 3000);
    dns_forwarder_get_stats(f, &st);
    CHECK(st.upstream_queries == before + 1 && r[0].servfail, "SERVFAIL not cached");
    CHECK(st.upstream_failures >= 3, "failures counted (%llu)",
          (unsigned long long)st.upstream_failures);
    /* freeing with a query in flight: no callback, no leak (ASan) */
    memset(r, 0, sizeof(r));
    mkquery(&q, 12, "b.silent.test", 1, false);
    dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
    dns_forwarder_free(f);
    CHECK(r[0].calls == 0, "no callback after free");
out:
    close(silent);
    event_base_free(base);
}

/* n_upstream == 0: servers come from /etc/resolv.conf, minus svcd's own
 * listeners (a node whose resolv.conf names svcd must not loop). The test
 * bind-mounts its own resolv.conf in a private mount namespace, so the
 * machine's file is never touched. */
static void test_resolv_conf(void)
{
    struct svcd_config cfg;
    struct event_base *base = event_base_new();
    char path[128];
    FILE *fp;
    int silent = -1;
    pid_t pid_c = -1;
    struct result r[2];
    struct pkt q;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };

    snprintf(path, sizeof(path), "%s/resolv.conf", g_dir);
    fp = fopen(path, "w");
    fprintf(fp, "nameserver 127.0.0.1\nnameserver 127.0.0.2\n");
    fclose(fp);
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) {
        CHECK(0, "private mount of resolv.conf: %s", strerror(errno));
        goto out;
    }
    /* 127.0.0.1:53 = "svcd itself": a socket that never answers */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    silent = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(bind(silent, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind 127.0.0.1:53");
    {
        const char *extra[] = { "--address=/rc.test/7.7.7.7", NULL };
        char log[128];
        snprintf(log, sizeof(log), "%s/c.log", g_dir);
        pid_c = dnsmasq_start_at("127.0.0.2", 53, log, extra);
    }
    CHECK(pid_c > 0, "dnsmasq on 127.0.0.2:53");

    base_config(&cfg);
    hp(&cfg.dns_listen[0], 53);
    cfg.n_dns_listen = 1;
    struct dns_forwarder *f = dns_forwarder_new(base, &cfg);
    CHECK(f != NULL, "forwarder from resolv.conf");
    if (f) {
        memset(r, 0, sizeof(r));
        g_done = 0;
        mkquery(&q, 0x2121, "a.rc.test", 1, false);
        dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]);
        run_until(base, 1, 6000);
        CHECK(first_a(r[0].b, r[0].n) == 0x07070707, "answered by the resolv.conf server");
        /* "svcd itself" (127.0.0.1:53, which never answers) was not asked:
         * nothing arrived on that socket. */
        uint8_t junk[512];
        CHECK(recv(silent, junk, sizeof(junk), MSG_DONTWAIT) < 0 && errno == EAGAIN,
              "svcd's own address skipped (no query reached it)");
        dns_forwarder_free(f);
    }
    /* resolv.conf naming only svcd: forwarder works, answers SERVFAIL */
    fp = fopen(path, "w");
    fprintf(fp, "nameserver 127.0.0.1\n");
    fclose(fp);
    f = dns_forwarder_new(base, &cfg);
    CHECK(f != NULL, "forwarder with only itself in resolv.conf");
    if (f) {
        memset(r, 0, sizeof(r));
        g_done = 0;
        mkquery(&q, 0x2122, "b.rc.test", 1, false);
        CHECK(dns_forwarder_query(f, q.b, q.n, on_answer, &r[0]) == -1 && r[0].calls == 0,
              "no upstream: refused at once (caller answers SERVFAIL), no loop");
        dns_forwarder_free(f);
    }
out:
    stop(&pid_c);
    if (silent >= 0)
        close(silent);
    event_base_free(base);
}

int main(void)
{
    char log_a[96], log_b[96], big[900];
    unsigned seed = (unsigned)getpid();

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (net_private() < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/svcd-fwdtest.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    g_port_a = (uint16_t)(20000 + seed % 20000);
    g_port_b = g_port_a + 1;
    g_port_silent = g_port_a + 2;
    g_port_closed = g_port_a + 3;
    snprintf(log_a, sizeof(log_a), "%s/a.log", g_dir);
    snprintf(log_b, sizeof(log_b), "%s/b.log", g_dir);

    /* ~800 bytes of TXT: 3 strings of 250 characters */
    {
        char s[251];
        memset(s, 'z', 250);
        s[250] = 0;
        snprintf(big, sizeof(big), "--txt-record=big.x.test,%s,%s,%s", s, s, s);
    }
    const char *extra_a[] = { "--address=/x.test/1.2.3.4", "--address=/sub.corp.test/9.9.9.9",
                              big, NULL };
    const char *extra_b[] = { "--address=/corp.test/5.6.7.8", NULL };
    g_pid_a = dnsmasq_start(g_port_a, log_a, extra_a);
    g_pid_b = dnsmasq_start(g_port_b, log_b, extra_b);
    CHECK(g_pid_a > 0 && g_pid_b > 0, "upstreams started");
    if (g_pid_a > 0 && g_pid_b > 0) {
        test_acl();
        test_forwarding(log_a, log_b);
        test_upstream_down();
        test_resolv_conf();
    }
    stop(&g_pid_a);
    stop(&g_pid_b);
    if (!g_fail) {
        char p[128];
        unlink(log_a);
        unlink(log_b);
        snprintf(p, sizeof(p), "%s/c.log", g_dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/resolv.conf", g_dir);
        unlink(p);
        rmdir(g_dir);
    } else {
        fprintf(stderr, "upstream logs kept in %s\n", g_dir);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
