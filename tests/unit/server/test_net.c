/*
 * server/net: UDP batching over several workers, replies from the queried address on
 * wildcard sockets, TCP framing, pipelining, limits and timeouts, start/stop, errors.
 *
 * srv_query_process is stubbed here (this object is linked before libgeocast.a, so the
 * archive's query.o is never pulled in):
 *   first byte 0xFF  drop (return 0)
 *   first byte 0xFE  a 60000-byte answer (TCP slow-reader test)
 *   otherwise        echo the query with QR set, followed by the client's port (2 bytes,
 *                    network order) and 1 if the query came over TCP, else 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "server/net.h"
#include "tap.h"

#define BIG_ANSWER 60000

static atomic_ulong stub_calls, stub_udp, stub_tcp;
static atomic_ulong stub_by_worker[64];

size_t srv_query_process(srv_worker_t *w, const uint8_t *q, size_t qlen, uint8_t *resp,
                         size_t resp_max, const struct sockaddr *src, bool tcp)
{
    atomic_fetch_add(&stub_calls, 1);
    atomic_fetch_add(&stub_by_worker[w->id % 64], 1);
    if (tcp) {
        atomic_fetch_add(&stub_tcp, 1);
        __atomic_fetch_add(&w->stats.tcp_queries, 1, __ATOMIC_RELAXED);
    } else {
        atomic_fetch_add(&stub_udp, 1);
        __atomic_fetch_add(&w->stats.udp_queries, 1, __ATOMIC_RELAXED);
    }
    if (resp_max < 512 || (tcp && resp_max < 65535))
        return 0;
    if (qlen < 3 || q[0] == 0xFF)
        return 0;
    if (q[0] == 0xFE) {
        memset(resp, 0xAB, BIG_ANSWER);
        return BIG_ANSWER;
    }
    if (qlen + 3 > resp_max)
        return 0;
    memcpy(resp, q, qlen);
    resp[2] |= 0x80;
    uint16_t port = src->sa_family == AF_INET ? ((const struct sockaddr_in *)src)->sin_port
                                               : ((const struct sockaddr_in6 *)src)->sin6_port;
    memcpy(resp + qlen, &port, 2);
    resp[qlen + 2] = tcp;
    return qlen + 3;
}

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static socklen_t mkaddr(struct sockaddr_storage *ss, const char *host, int port)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        return sizeof(*sin);
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        return sizeof(*sin6);
    }
    abort();
}

static int addr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *addr_host(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    return inet_ntop(ss->ss_family, a, buf, (socklen_t)len);
}

static srv_net_conf_t base_conf(void)
{
    srv_net_conf_t c = { 0 };
    c.workers = 2;
    c.tcp_max_clients = 16;
    c.tcp_idle_timeout_ms = 2000;
    c.tcp_max_queries = 0;
    return c;
}

/* Start on hosts[] at one random high port, retrying while the port is taken. Returns the
 * port, or -1. */
static int start_on(srv_net_conf_t conf, const char *const *hosts, size_t n)
{
    srv_listen_t ls[8];
    char err[256];
    for (int attempt = 0; attempt < 50; attempt++) {
        int port = 20000 + rand() % 40000;
        for (size_t i = 0; i < n; i++)
            ls[i].addrlen = mkaddr(&ls[i].addr, hosts[i], port);
        conf.listen = ls;
        conf.nlisten = n;
        int rc = srv_net_start(&conf, err, sizeof(err));
        if (rc == 0)
            return port;
        if (!strstr(err, "Address already in use")) {
            printf("# srv_net_start: %d %s\n", rc, err);
            return -1;
        }
    }
    return -1;
}

static int udp_client(const char *bind_host)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, bind_host, 0);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int udp_send(int fd, const char *host, int port, const uint8_t *q, size_t qlen)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, host, port);
    return sendto(fd, q, qlen, 0, (struct sockaddr *)&ss, len) == (ssize_t)qlen ? 0 : -1;
}

/* Wait for one datagram. Returns its length, or -1 on timeout. */
static ssize_t udp_recv(int fd, uint8_t *buf, size_t max, int timeout_ms,
                        struct sockaddr_storage *from)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    socklen_t flen = sizeof(*from);
    return recvfrom(fd, buf, max, 0, (struct sockaddr *)from, &flen);
}

static size_t mkq(uint8_t *q, uint16_t id)
{
    /* flags RD, QDCOUNT 1, QNAME www., QTYPE A, QCLASS IN */
    static const uint8_t tail[] = { 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                                    3,    'w',  'w', 'w', 0, 0, 1, 0, 1 };
    q[0] = (uint8_t)(id >> 8);
    q[1] = (uint8_t)id;
    memcpy(q + 2, tail, sizeof(tail));
    return 2 + sizeof(tail);
}

/* Check an echo answer to mkq(id) sent from local port lport. */
static int answer_ok(const uint8_t *r, ssize_t rlen, uint16_t id, int lport, int tcp)
{
    uint8_t q[64];
    size_t qlen = mkq(q, id);
    uint16_t p = htons((uint16_t)lport);
    return rlen == (ssize_t)qlen + 3 && r[0] == q[0] && r[1] == q[1] && (r[2] & 0x80) &&
           memcmp(r + qlen, &p, 2) == 0 && r[qlen + 2] == tcp;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    return addr_port(&ss);
}

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len = mkaddr(&ss, host, port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes within timeout_ms. Returns len, 0 on EOF, -1 on error/timeout. */
static ssize_t read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    size_t got = 0;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (got < len) {
        uint64_t now = now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (now >= end || poll(&pfd, 1, (int)(end - now)) != 1)
            return -1;
        ssize_t n = recv(fd, p + got, len - got, 0);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        got += (size_t)n;
    }
    return (ssize_t)len;
}

/* Read one framed answer. Returns its length, 0 on EOF, -1 on error/timeout. */
static ssize_t tcp_answer(int fd, uint8_t *buf, size_t max, int timeout_ms)
{
    uint8_t hdr[2];
    ssize_t r = read_full(fd, hdr, 2, timeout_ms);
    if (r <= 0)
        return r;
    size_t len = (size_t)hdr[0] << 8 | hdr[1];
    if (len > max)
        return -1;
    r = read_full(fd, buf, len, timeout_ms);
    return r <= 0 ? -1 : r;
}

/* Whether the server closes fd (EOF or reset) within timeout_ms; data is read away. */
static int wait_closed(int fd, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    static uint8_t sink[65536];
    for (;;) {
        uint64_t now = now_ms();
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (now >= end || poll(&pfd, 1, (int)(end - now)) != 1)
            return 0;
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

static size_t frame(uint8_t *out, const uint8_t *q, size_t qlen)
{
    out[0] = (uint8_t)(qlen >> 8);
    out[1] = (uint8_t)qlen;
    memcpy(out + 2, q, qlen);
    return qlen + 2;
}

/* One framed query and its answer on a new connection. */
static int tcp_roundtrip(const char *host, int port, uint16_t id)
{
    int fd = tcp_connect(host, port);
    if (fd < 0)
        return 0;
    uint8_t q[64], f[70], r[256];
    size_t flen = frame(f, q, mkq(q, id));
    int good = write_all(fd, f, flen) == 0 &&
               answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), id, local_port(fd), 1);
    close(fd);
    return good;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static bool have_ipv6(void)
{
    int fd = udp_client("::1");
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_errors(void)
{
    char err[256];
    srv_net_conf_t c = base_conf();
    srv_listen_t l[2];
    l[0].addrlen = mkaddr(&l[0].addr, "127.0.0.1", 5353);
    c.listen = l;
    c.nlisten = 1;
    c.workers = 0;
    is_int(srv_net_start(&c, err, sizeof(err)), ERR_INVAL, "workers 0 is rejected: %s", err);
    c = base_conf();
    c.listen = l;
    c.nlisten = 0;
    is_int(srv_net_start(&c, err, sizeof(err)), ERR_INVAL, "no listen address is rejected");

    int fds = count_fds();
    /* A valid address then one that is not on this machine: nothing may stay open. */
    const char *hosts[] = { "127.0.0.1", "192.0.2.1" };
    int port = 0, rc = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        port = 20000 + rand() % 40000;
        for (int i = 0; i < 2; i++)
            l[i].addrlen = mkaddr(&l[i].addr, hosts[i], port);
        c = base_conf();
        c.listen = l;
        c.nlisten = 2;
        rc = srv_net_start(&c, err, sizeof(err));
        if (!strstr(err, "Address already in use"))
            break;
    }
    is_int(rc, ERR_IO, "binding an address not on this machine fails");
    char want[64];
    snprintf(want, sizeof(want), "cannot bind 192.0.2.1@%d: ", port);
    ok(strncmp(err, want, strlen(want)) == 0, "error names the address: %s", err);
    is_int(count_fds(), fds, "no descriptor left open after a failed start");

    /* The first address's sockets were closed: the same port binds again. */
    c.nlisten = 1;
    rc = srv_net_start(&c, err, sizeof(err));
    is_int(rc, 0, "the same port binds after the failure: %s", rc ? err : "ok");
    is_int(srv_net_start(&c, err, sizeof(err)), ERR_EXISTS, "a second start is refused");
    srv_net_stop();
    srv_net_stop(); /* no-op */
    is_int(count_fds(), fds, "no descriptor left open after stop");
}

static void test_udp_workers(void)
{
    srv_net_conf_t c = base_conf();
    c.workers = 4;
    const char *hosts[] = { "127.0.0.1" };
    int port = start_on(c, hosts, 1);
    ok(port > 0, "UDP: started with 4 workers on 127.0.0.1@%d", port);
    if (port <= 0)
        return;
    unsigned long before[64];
    for (int i = 0; i < 64; i++)
        before[i] = atomic_load(&stub_by_worker[i]);

    enum { NCLI = 64 };
    int fds[NCLI];
    uint8_t q[64], r[512];
    size_t qlen = mkq(q, 0);
    for (int i = 0; i < NCLI; i++) {
        fds[i] = udp_client("127.0.0.1");
        qlen = mkq(q, (uint16_t)(0x1000 + i));
        udp_send(fds[i], "127.0.0.1", port, q, qlen);
    }
    int good = 0;
    for (int i = 0; i < NCLI; i++) {
        struct sockaddr_storage from;
        ssize_t n = udp_recv(fds[i], r, sizeof(r), 2000, &from);
        good += answer_ok(r, n, (uint16_t)(0x1000 + i), local_port(fds[i]), 0) &&
                addr_port(&from) == port;
    }
    is_int(good, NCLI, "UDP: every client got its own answer from the server port");
    int used = 0;
    for (int i = 0; i < 4; i++)
        used += atomic_load(&stub_by_worker[i]) > before[i];
    ok(used >= 2, "UDP: queries spread over %d of 4 workers", used);

    /* A burst on one socket: exercises batches larger than one message. */
    for (int i = 0; i < 200; i++) {
        qlen = mkq(q, (uint16_t)(0x2000 + i));
        udp_send(fds[0], "127.0.0.1", port, q, qlen);
    }
    int burst = 0;
    struct sockaddr_storage from;
    for (int i = 0; i < 200; i++) {
        ssize_t n = udp_recv(fds[0], r, sizeof(r), 2000, &from);
        if (n < 0)
            break;
        burst += answer_ok(r, n, (uint16_t)(0x2000 + i), local_port(fds[0]), 0);
    }
    is_int(burst, 200, "UDP: a burst of 200 queries on one socket, answered in order");

    /* Dropped query: no answer, and the socket keeps working. */
    q[0] = 0xFF;
    udp_send(fds[1], "127.0.0.1", port, q, qlen);
    ok(udp_recv(fds[1], r, sizeof(r), 200, &from) < 0, "UDP: a dropped query gets no answer");
    qlen = mkq(q, 0x3000);
    udp_send(fds[1], "127.0.0.1", port, q, qlen);
    ok(answer_ok(r, udp_recv(fds[1], r, sizeof(r), 2000, &from), 0x3000, local_port(fds[1]), 0),
       "UDP: the next query is answered");

    /* Idle workers are offline: a grace period does not wait for them. */
    uint64_t t0 = now_ms();
    synchronize_rcu();
    uint64_t dt = now_ms() - t0;
    ok(dt < 500, "synchronize_rcu with idle workers returns (%llu ms)", (unsigned long long)dt);

    /* Grace periods while the workers are busy. */
    for (int i = 0; i < 100; i++) {
        qlen = mkq(q, (uint16_t)(0x4000 + i));
        udp_send(fds[i % NCLI], "127.0.0.1", port, q, qlen);
        if (i % 10 == 0)
            synchronize_rcu();
    }
    int busy = 0;
    for (int i = 0; i < 100; i++) {
        ssize_t n = udp_recv(fds[i % NCLI], r, sizeof(r), 2000, &from);
        busy += answer_ok(r, n, (uint16_t)(0x4000 + i), local_port(fds[i % NCLI]), 0);
    }
    is_int(busy, 100, "UDP: answers keep flowing across grace periods");

    for (int i = 0; i < NCLI; i++)
        close(fds[i]);
    t0 = now_ms();
    srv_net_stop();
    dt = now_ms() - t0;
    ok(dt < 300, "stop returns quickly (%llu ms)", (unsigned long long)dt);
}

static void test_wildcard(void)
{
    bool v6 = have_ipv6();
    srv_net_conf_t c = base_conf();
    const char *hosts[] = { "0.0.0.0", "::" };
    int port = start_on(c, hosts, v6 ? 2 : 1);
    ok(port > 0, "wildcard: started on 0.0.0.0%s@%d", v6 ? " and ::" : "", port);
    if (port <= 0)
        return;
    uint8_t q[64], r[512];
    char host[INET6_ADDRSTRLEN];
    struct sockaddr_storage from;
    /* The client is bound to 127.0.0.1: without pktinfo the kernel would answer from it. */
    const char *targets[] = { "127.0.0.2", "127.0.0.3", "127.0.0.1" };
    for (size_t i = 0; i < 3; i++) {
        int fd = udp_client("127.0.0.1");
        size_t qlen = mkq(q, (uint16_t)(0x5000 + i));
        udp_send(fd, targets[i], port, q, qlen);
        ssize_t n = udp_recv(fd, r, sizeof(r), 2000, &from);
        ok(answer_ok(r, n, (uint16_t)(0x5000 + i), local_port(fd), 0), "wildcard: answer for %s",
           targets[i]);
        ok(n > 0 && strcmp(addr_host(&from, host, sizeof(host)), targets[i]) == 0 &&
               addr_port(&from) == port,
           "wildcard: the answer comes from %s (got %s)", targets[i], n > 0 ? host : "nothing");
        close(fd);
    }
    if (v6) {
        int fd = udp_client("::1");
        size_t qlen = mkq(q, 0x5100);
        udp_send(fd, "::1", port, q, qlen);
        ssize_t n = udp_recv(fd, r, sizeof(r), 2000, &from);
        ok(answer_ok(r, n, 0x5100, local_port(fd), 0) && from.ss_family == AF_INET6 &&
               strcmp(addr_host(&from, host, sizeof(host)), "::1") == 0,
           "wildcard: IPv6 answer from ::1");
        close(fd);
        ok(tcp_roundtrip("::1", port, 0x5101), "wildcard: TCP over IPv6");
    }
    ok(tcp_roundtrip("127.0.0.4", port, 0x5102), "wildcard: TCP to 127.0.0.4");
    srv_net_stop();
}

static void test_specific_v6(void)
{
    if (!have_ipv6()) {
        ok(1, "# SKIP no ::1");
        return;
    }
    srv_net_conf_t c = base_conf();
    const char *hosts[] = { "127.0.0.1", "::1" };
    int port = start_on(c, hosts, 2);
    ok(port > 0, "two listen addresses 127.0.0.1 and ::1 @%d", port);
    if (port <= 0)
        return;
    uint8_t q[64], r[512];
    struct sockaddr_storage from;
    for (int i = 0; i < 2; i++) {
        int fd = udp_client(hosts[i]);
        size_t qlen = mkq(q, (uint16_t)(0x5200 + i));
        udp_send(fd, hosts[i], port, q, qlen);
        ok(answer_ok(r, udp_recv(fd, r, sizeof(r), 2000, &from), (uint16_t)(0x5200 + i),
                     local_port(fd), 0),
           "UDP answer on %s", hosts[i]);
        close(fd);
        ok(tcp_roundtrip(hosts[i], port, (uint16_t)(0x5210 + i)), "TCP answer on %s", hosts[i]);
    }
    srv_net_stop();
}

static void test_tcp(void)
{
    srv_net_conf_t c = base_conf();
    c.tcp_max_clients = 2;
    c.tcp_idle_timeout_ms = 300;
    const char *hosts[] = { "127.0.0.1" };
    int port = start_on(c, hosts, 1);
    ok(port > 0, "TCP: started (cap 2, idle 300 ms) @%d", port);
    if (port <= 0)
        return;
    uint8_t q[64], f[8192], r[512];
    srv_stats_t st0, st1;
    srv_net_stats(&st0);

    /* Two pipelined queries in one write, answered in order. */
    int fd = tcp_connect("127.0.0.1", port);
    size_t flen = frame(f, q, mkq(q, 0x6001));
    flen += frame(f + flen, q, mkq(q, 0x6002));
    write_all(fd, f, flen);
    int lp = local_port(fd);
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6001, lp, 1), "TCP: first answer");
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6002, lp, 1), "TCP: second answer");

    /* One query split over several writes, the length prefix too. */
    flen = frame(f, q, mkq(q, 0x6003));
    size_t cuts[] = { 1, 2, 7, flen };
    size_t prev = 0;
    for (size_t i = 0; i < 4; i++) {
        write_all(fd, f + prev, cuts[i] - prev);
        prev = cuts[i];
        sleep_ms(20);
    }
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6003, lp, 1), "TCP: split query");

    /* Half-close after the query: answered, then closed. */
    int fd2 = tcp_connect("127.0.0.1", port);
    flen = frame(f, q, mkq(q, 0x6010));
    write_all(fd2, f, flen);
    shutdown(fd2, SHUT_WR);
    ok(answer_ok(r, tcp_answer(fd2, r, sizeof(r), 2000), 0x6010, local_port(fd2), 1),
       "TCP: answer after the client's half-close");
    is_int(tcp_answer(fd2, r, sizeof(r), 2000), 0, "TCP: ... then closed");
    close(fd2);
    sleep_ms(50);

    /* Connection cap: a third connection is closed at once. */
    fd2 = tcp_connect("127.0.0.1", port);
    flen = frame(f, q, mkq(q, 0x6004));
    write_all(fd2, f, flen);
    ok(answer_ok(r, tcp_answer(fd2, r, sizeof(r), 2000), 0x6004, local_port(fd2), 1),
       "TCP: second connection served");
    int fd3 = tcp_connect("127.0.0.1", port);
    ok(fd3 >= 0 && wait_closed(fd3, 1000), "TCP: third connection closed (cap 2)");
    if (fd3 >= 0)
        close(fd3);
    close(fd);
    close(fd2);
    srv_net_stats(&st1);
    is_int(st1.tcp_conns_rejected - st0.tcp_conns_rejected, 1, "TCP: one rejection counted");
    is_int(st1.tcp_conns_accepted - st0.tcp_conns_accepted, 3, "TCP: three accepts counted");
    is_int(st1.tcp_queries - st0.tcp_queries, 5, "TCP: five queries counted");

    /* Wait for the server to see the closes, then the cap has room again. */
    sleep_ms(100);
    ok(tcp_roundtrip("127.0.0.1", port, 0x6005), "TCP: room again after closes");

    /* Idle timeout. */
    srv_net_stats(&st0);
    fd = tcp_connect("127.0.0.1", port);
    uint64_t t0 = now_ms();
    int closed = wait_closed(fd, 3000);
    uint64_t dt = now_ms() - t0;
    ok(closed && dt >= 250 && dt < 2000, "TCP: idle connection closed after %llu ms",
       (unsigned long long)dt);
    close(fd);

    /* A trickle that never completes a query does not keep the connection. */
    fd = tcp_connect("127.0.0.1", port);
    uint8_t hdr[2] = { 0x03, 0xE8 }; /* a 1000-byte message, sent one byte at a time */
    write_all(fd, hdr, 2);
    t0 = now_ms();
    closed = 0;
    for (int i = 0; i < 60 && !closed; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
            closed = 1;
            break;
        }
        closed = wait_closed(fd, 50);
    }
    if (!closed)
        closed = wait_closed(fd, 1000);
    dt = now_ms() - t0;
    ok(closed && dt < 2000, "TCP: trickling client closed after %llu ms",
       (unsigned long long)dt);
    close(fd);
    srv_net_stats(&st1);
    is_int(st1.tcp_timeouts - st0.tcp_timeouts, 2, "TCP: two timeouts counted");

    /* A zero-length message closes the connection. */
    fd = tcp_connect("127.0.0.1", port);
    write_all(fd, "\0\0", 2);
    ok(wait_closed(fd, 1000), "TCP: zero-length message closes");
    close(fd);

    /* A dropped query closes the connection, after the answers before it. */
    fd = tcp_connect("127.0.0.1", port);
    flen = frame(f, q, mkq(q, 0x6006));
    mkq(q, 0xFF00);
    flen += frame(f + flen, q, 21);
    write_all(fd, f, flen);
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6006, local_port(fd), 1),
       "TCP: answer before the dropped query");
    ok(wait_closed(fd, 1000), "TCP: dropped query closes");
    close(fd);

    /* A client that does not read: its connection stalls and times out; others are
     * served meanwhile. */
    srv_net_stats(&st0);
    fd = tcp_connect("127.0.0.1", port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    flen = 0;
    for (int i = 0; i < 200; i++) {
        mkq(q, 0xFE00);
        flen += frame(f + flen, q, 21);
    }
    write_all(fd, f, flen);
    sleep_ms(50);
    t0 = now_ms();
    ok(tcp_roundtrip("127.0.0.1", port, 0x6007), "TCP: others served while one does not read");
    dt = now_ms() - t0;
    ok(dt < 500, "TCP: ... promptly (%llu ms)", (unsigned long long)dt);
    for (int i = 0; i < 40; i++) {
        srv_net_stats(&st1);
        if (st1.tcp_timeouts > st0.tcp_timeouts)
            break;
        sleep_ms(50);
    }
    is_int(st1.tcp_timeouts - st0.tcp_timeouts, 1, "TCP: the non-reading client timed out");
    ok(wait_closed(fd, 2000), "TCP: ... and its connection is closed");
    close(fd);
    srv_net_stop();

    /* tcp_max_queries: closed after that many answers. */
    c.tcp_max_queries = 2;
    c.tcp_idle_timeout_ms = 2000;
    port = start_on(c, hosts, 1);
    ok(port > 0, "TCP: started with max_queries 2");
    if (port <= 0)
        return;
    fd = tcp_connect("127.0.0.1", port);
    lp = local_port(fd);
    flen = 0;
    for (int i = 0; i < 3; i++)
        flen += frame(f + flen, q, mkq(q, (uint16_t)(0x6100 + i)));
    write_all(fd, f, flen);
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6100, lp, 1), "max_queries: answer 1");
    ok(answer_ok(r, tcp_answer(fd, r, sizeof(r), 2000), 0x6101, lp, 1), "max_queries: answer 2");
    is_int(tcp_answer(fd, r, sizeof(r), 2000), 0, "max_queries: then closed");
    close(fd);
    srv_net_stop();
}

static void test_restart(void)
{
    srv_stats_t a, b;
    srv_net_stats(&a);
    unsigned long calls0 = atomic_load(&stub_udp) + atomic_load(&stub_tcp);
    for (int round = 0; round < 2; round++) {
        srv_net_conf_t c = base_conf();
        c.workers = 3;
        const char *hosts[] = { "127.0.0.1" };
        int port = start_on(c, hosts, 1);
        ok(port > 0, "restart %d: started", round);
        if (port <= 0)
            return;
        int fd = udp_client("127.0.0.1");
        uint8_t q[64], r[512];
        struct sockaddr_storage from;
        size_t qlen = mkq(q, (uint16_t)(0x7000 + round));
        udp_send(fd, "127.0.0.1", port, q, qlen);
        ok(answer_ok(r, udp_recv(fd, r, sizeof(r), 2000, &from), (uint16_t)(0x7000 + round),
                     local_port(fd), 0),
           "restart %d: UDP answer", round);
        ok(tcp_roundtrip("127.0.0.1", port, (uint16_t)(0x7010 + round)), "restart %d: TCP answer",
           round);
        srv_net_stop();
        udp_send(fd, "127.0.0.1", port, q, qlen);
        ok(udp_recv(fd, r, sizeof(r), 200, &from) < 0, "restart %d: no answer after stop", round);
        int tfd = tcp_connect("127.0.0.1", port);
        ok(tfd < 0, "restart %d: TCP refused after stop", round);
        if (tfd >= 0)
            close(tfd);
        close(fd);
    }
    srv_net_stats(&b);
    unsigned long calls = atomic_load(&stub_udp) + atomic_load(&stub_tcp) - calls0;
    is_int((b.udp_queries + b.tcp_queries) - (a.udp_queries + a.tcp_queries), calls,
           "stats keep the counts of stopped instances");
}

int main(void)
{
    srand((unsigned)(getpid() ^ time(NULL)));
    test_errors();
    test_udp_workers();
    test_wildcard();
    test_specific_v6();
    test_tcp();
    test_restart();
    srv_stats_t s;
    srv_net_stats(&s);
    is_int(s.udp_queries, atomic_load(&stub_udp), "all UDP queries counted");
    is_int(s.tcp_queries, atomic_load(&stub_tcp), "all TCP queries counted");
    return done_testing();
}
