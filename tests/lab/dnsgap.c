/*
 * dnsgap: a DNS client for the chaos tests. It asks one name over UDP every
 * INTERVAL ms (a fresh query ID each time, no retries) and reports the
 * longest time without an answer, so a test can see whether svcd's event
 * loop stalled while something else was going on.
 *
 *   dnsgap [-i INTERVAL_MS] [-t MAX_SECONDS] SERVER PORT NAME
 *
 * It runs until SIGINT/SIGTERM or MAX_SECONDS (default 60; the loop is
 * always bounded), then prints one line:
 *
 *   sent=N answered=N max_gap_ms=G
 *
 * max_gap_ms is the longest interval between consecutive answers, counting
 * from the first answer to the end of the run (the start-up wait before the
 * first answer is not a gap). Exit status 0, or 1 if nothing was answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Builds a query for name/A with id into buf; returns its length or 0. */
static size_t build_query(uint8_t *buf, size_t cap, uint16_t id, const char *name)
{
    if (cap < 12 + strlen(name) + 6)
        return 0;
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = 0x01;                      /* RD */
    buf[5] = 1;                         /* QDCOUNT */
    size_t n = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63)
            return 0;
        buf[n++] = (uint8_t)l;
        memcpy(buf + n, p, l);
        n += l;
        p += l;
        if (*p == '.')
            p++;
    }
    buf[n++] = 0;
    buf[n++] = 0; buf[n++] = 1;          /* A */
    buf[n++] = 0; buf[n++] = 1;          /* IN */
    return n;
}

int main(int argc, char **argv)
{
    int interval = 10, max_s = 60, opt;
    while ((opt = getopt(argc, argv, "i:t:")) != -1) {
        if (opt == 'i')
            interval = atoi(optarg);
        else if (opt == 't')
            max_s = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 3 || interval <= 0 || max_s <= 0) {
        fprintf(stderr, "usage: dnsgap [-i INTERVAL_MS] [-t MAX_SECONDS] SERVER PORT NAME\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, argv[optind], &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)atoi(argv[optind + 1]));
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, argv[optind], &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)atoi(argv[optind + 1]));
        sl = sizeof(*s6);
    } else {
        fprintf(stderr, "dnsgap: bad server address %s\n", argv[optind]);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        perror("dnsgap: socket");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    uint8_t q[512], r[4096];
    uint16_t id = (uint16_t)getpid();
    unsigned long sent = 0, answered = 0;
    double start = now_ms(), end = start + max_s * 1000.0;
    double next = start, last_answer = -1, max_gap = 0;
    while (!stop) {
        double t = now_ms();
        if (t >= end)
            break;
        if (t >= next) {
            size_t n = build_query(q, sizeof(q), ++id, argv[optind + 2]);
            if (n == 0) {
                fprintf(stderr, "dnsgap: bad name\n");
                return 2;
            }
            if (send(fd, q, n, 0) >= 0)
                sent++;
            next += interval;
            if (next < t)               /* we were descheduled: no burst */
                next = t + interval;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int wait = (int)(next - now_ms());
        if (poll(&pfd, 1, wait > 0 ? wait : 0) > 0) {
            ssize_t k;
            while ((k = recv(fd, r, sizeof(r), 0)) >= 12) {
                /* any answer to one of our queries (QR set) counts */
                if (!(r[2] & 0x80))
                    continue;
                double a = now_ms();
                if (last_answer >= 0 && a - last_answer > max_gap)
                    max_gap = a - last_answer;
                last_answer = a;
                answered++;
            }
        }
    }
    double fin = now_ms();
    if (last_answer >= 0 && fin - last_answer > max_gap)
        max_gap = fin - last_answer;
    printf("sent=%lu answered=%lu max_gap_ms=%.0f\n", sent, answered, max_gap);
    return answered ? 0 : 1;
}
