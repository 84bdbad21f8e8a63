/*
 * reflector: a UDP "DNS server" that does no DNS work, the ceiling reference for
 * bench/compare. One thread, one SO_REUSEPORT socket, recvmmsg/sendmmsg in batches of up
 * to 64; every query is answered with its ID and question copied and one fixed A record
 * (192.0.2.1, TTL 60, owner compressed to the question name). EDNS is dropped.
 *
 *   reflector [-a ADDR] [-p PORT] [-c CPU] [-t MAX_SECONDS]
 *
 * Defaults: 127.0.0.1, port 5399, not pinned, exits after 3600 s (or on SIGINT/SIGTERM).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUF 1232

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Build the reply in out; returns its length or 0 to drop the packet. */
static size_t reflect(const uint8_t *q, size_t len, uint8_t *out)
{
    if (len < 12 + 5 || (q[2] & 0x80))
        return 0;
    size_t o = 12;
    while (o < len && q[o] != 0) {
        if (q[o] & 0xc0)
            return 0;
        o += (size_t)q[o] + 1;
    }
    o += 1 + 4; /* root label, type, class */
    if (o > len || o + 16 > BUF)
        return 0;
    memcpy(out, q, o);
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD copied */
    out[3] = 0;
    out[4] = 0;
    out[5] = 1; /* QDCOUNT */
    out[6] = 0;
    out[7] = 1; /* ANCOUNT */
    memset(out + 8, 0, 4);
    static const uint8_t rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
    memcpy(out + o, rr, sizeof rr);
    return o + sizeof rr;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 5399, cpu = -1, maxsec = 3600, opt;
    while ((opt = getopt(argc, argv, "a:p:c:t:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': cpu = atoi(optarg); break;
        case 't': maxsec = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: reflector [-a ADDR] [-p PORT] [-c CPU] [-t MAX_SECONDS]\n");
            return 2;
        }
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) {
            perror("sched_setaffinity");
            return 2;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sslen = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *s6;
    } else {
        fprintf(stderr, "reflector: bad address %s\n", addr);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        perror("reflector: socket/bind");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a signal interrupts recvmmsg */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)maxsec); /* bounded lifetime */

    static uint8_t rbuf[BATCH][BUF], sbuf[BATCH][BUF];
    static struct sockaddr_storage peers[BATCH];
    static struct iovec riov[BATCH], siov[BATCH];
    static struct mmsghdr rmsg[BATCH], smsg[BATCH];
    for (int i = 0; i < BATCH; i++) {
        riov[i].iov_base = rbuf[i];
        riov[i].iov_len = BUF;
        siov[i].iov_base = sbuf[i];
    }
    unsigned long long packets = 0;
    while (!stop_flag) {
        for (int i = 0; i < BATCH; i++) {
            rmsg[i].msg_hdr.msg_name = &peers[i];
            rmsg[i].msg_hdr.msg_namelen = sizeof peers[i];
            rmsg[i].msg_hdr.msg_iov = &riov[i];
            rmsg[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("recvmmsg");
            return 1;
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            size_t len = reflect(rbuf[i], rmsg[i].msg_len, sbuf[m]);
            if (!len)
                continue;
            siov[m].iov_len = len;
            smsg[m].msg_hdr.msg_name = &peers[i];
            smsg[m].msg_hdr.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
            smsg[m].msg_hdr.msg_iov = &siov[m];
            smsg[m].msg_hdr.msg_iovlen = 1;
            m++;
        }
        packets += (unsigned long long)n;
        int off = 0;
        while (off < m) {
            int r = sendmmsg(fd, smsg + off, (unsigned)(m - off), 0);
            if (r < 0) {
                if (errno == EINTR && !stop_flag)
                    continue;
                break; /* drop the rest of this batch */
            }
            off += r;
        }
    }
    fprintf(stderr, "reflector: %llu packets\n", packets);
    return 0;
}
