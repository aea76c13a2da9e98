/*
 * nftpkt: sends COUNT new-connection packets (UDP, one new source port /
 * source address each, so every packet creates a conntrack entry and runs
 * the nat chains) from SRC to DST:PORT through a raw socket, and prints
 * the sender's CPU time (user + system, getrusage) per packet in ns. The
 * OUTPUT and POSTROUTING hooks run in the sender's context, so their
 * nftables cost is in that figure. Used by bench/nft-dispatch/run.sh,
 * inside a network namespace.
 *
 *   nftpkt SRC DST PORT COUNT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: nftpkt SRC DST PORT COUNT\n");
        return 2;
    }
    struct in_addr src, dst;
    if (inet_pton(AF_INET, argv[1], &src) != 1 || inet_pton(AF_INET, argv[2], &dst) != 1) {
        fprintf(stderr, "nftpkt: bad address\n");
        return 2;
    }
    int port = atoi(argv[3]);
    long count = atol(argv[4]);
    if (port <= 0 || port > 65535 || count <= 0 || count > 10000000) {
        fprintf(stderr, "nftpkt: bad port or count (1..10000000)\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) {
        perror("nftpkt: socket");
        return 1;
    }
    struct {
        struct iphdr ip;
        struct udphdr udp;
        char payload[8];
    } pkt;
    memset(&pkt, 0, sizeof(pkt));
    pkt.ip.version = 4;
    pkt.ip.ihl = 5;
    pkt.ip.ttl = 64;
    pkt.ip.protocol = IPPROTO_UDP;
    pkt.ip.tot_len = htons(sizeof(pkt));
    pkt.ip.daddr = dst.s_addr;
    pkt.udp.dest = htons((uint16_t)port);
    pkt.udp.len = htons(sizeof(pkt.udp) + sizeof(pkt.payload));
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = dst };
    long fails = 0;
    double t0 = cpu_ns();
    for (long i = 0; i < count; i++) {
        /* a new 5-tuple per packet: source port 1024..65023, then the next
         * source address */
        uint32_t s = ntohl(src.s_addr) + (uint32_t)(i / 64000);
        pkt.ip.saddr = htonl(s);
        pkt.udp.source = htons((uint16_t)(1024 + i % 64000));
        if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
            fails++;
    }
    double t1 = cpu_ns();
    close(fd);
    printf("%.0f\n", (t1 - t0) / (double)count);
    if (fails)
        fprintf(stderr, "nftpkt: %ld of %ld sends failed\n", fails, count);
    return 0;
}
