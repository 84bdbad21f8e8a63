#include "server/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "server/net_internal.h"
#include "server/dnstap.h"
#include "server/rrl.h"

/*
 * UDP workers and the start/stop/stats plumbing. The TCP thread is in net_tcp.c.
 *
 * Each UDP worker owns one SO_REUSEPORT socket per listen address, all in its own epoll
 * set together with the shared stop eventfd. On readiness it drains a socket in batches
 * of NET_UDP_BATCH messages: recvmmsg, srv_query_process on each, one sendmmsg for the
 * replies, rcu_quiescent_state. It sleeps in epoll_wait offline (rcu_thread_offline), so
 * synchronize_rcu never waits for an idle worker. A worker with a single socket sleeps
 * in recvmmsg itself instead (blocking socket, MSG_WAITFORONE, a receive timeout to see
 * the stop flag), also offline.
 */

#define NET_UDP_BATCH 64       /* messages per recvmmsg/sendmmsg */
#define NET_UDP_STOP_POLL_US 100000 /* a blocking worker looks at the stop flag this often */
#define NET_UDP_DRAIN 8        /* batches per socket per wakeup, then look at the others */
#define NET_UDP_BUFSZ 65535    /* rx and tx slot capacity: any datagram, any response */
/* Slot stride: not a multiple of 4 KiB, so the slot heads do not all land in the same
 * cache sets. 2 x 64 x 64 KiB of address space per worker, but only the pages the kernel
 * and query.c actually write become resident. */
#define NET_UDP_STRIDE (65536 + 64)
#define NET_SOCKBUF (4 << 20)  /* SO_RCVBUF/SO_SNDBUF wish; the kernel may clamp it */
#define NET_TCP_BACKLOG 1024

/* UDP generic segmentation offload (Linux 4.18): several replies to one client, of one
 * size, leave in one sendmsg with a UDP_SEGMENT cmsg and cross the IP stack once as one
 * buffer; the kernel (or the NIC) cuts it into ordinary datagrams at the end. */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define NET_GSO_MAX_SEG 1232      /* larger replies go alone: a segment must fit the path MTU */
#define NET_GSO_MAX_BYTES 60000   /* one GSO send stays under the 64 KiB IP datagram */
#define NET_GSO_LOOKBACK 8        /* open groups a reply is compared with */
#define NET_GSO_MAX_REFUSED 8     /* GSO sends the kernel may refuse before a worker stops */

typedef union {
    struct cmsghdr align;
    uint8_t buf[2 * CMSG_SPACE(sizeof(struct in6_pktinfo))];
} net_cmsg_buf_t;

/* A GSO send's control data: the reply's pktinfo (wildcard sockets) and UDP_SEGMENT. */
typedef union {
    struct cmsghdr align;
    uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
} net_gso_ctl_t;

/* Replies grouped for GSO: group k is giov[first[k], first[k] + count[k]). */
struct net_gso {
    struct mmsghdr msg[NET_UDP_BATCH];
    struct iovec iov[NET_UDP_BATCH];
    net_gso_ctl_t ctl[NET_UDP_BATCH];
    uint8_t group[NET_UDP_BATCH];      /* reply i belongs to group[i] */
    uint8_t lead[NET_UDP_BATCH];       /* group k's first reply (its address, its pktinfo) */
    uint8_t first[NET_UDP_BATCH], count[NET_UDP_BATCH];
    uint16_t size[NET_UDP_BATCH];      /* group k's segment size */
    uint32_t bytes[NET_UDP_BATCH];
};

struct net_udp_bufs {
    struct mmsghdr rx[NET_UDP_BATCH], tx[NET_UDP_BATCH];
    struct iovec rxiov[NET_UDP_BATCH], txiov[NET_UDP_BATCH];
    struct sockaddr_storage peer[NET_UDP_BATCH];
    net_cmsg_buf_t rxctl[NET_UDP_BATCH], txctl[NET_UDP_BATCH];
    struct net_gso gso;
    uint8_t *rxbuf, *txbuf; /* NET_UDP_BATCH slots of NET_UDP_STRIDE bytes each */
};

/* The running instance, if any, and the counters of instances already stopped (so the
 * totals srv_net_stats reports never go backwards). Both under net_lock. */
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;
static net_state_t *net_cur;
static srv_stats_t net_retired;

_Static_assert(sizeof(srv_stats_t) % sizeof(uint64_t) == 0,
               "srv_stats_t must hold only uint64_t counters (summed as an array)");

uint64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void net_addr_fmt(const struct sockaddr *addr, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        port = ntohs(sin->sin_port);
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
    }
    snprintf(buf, len, "%s@%u", host, port);
}

static bool addr_is_wildcard(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET)
        return ((const struct sockaddr_in *)addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)addr)->sin6_addr);
}

/* Fill err with "<what> ADDR@PORT: <strerror(errno)><suffix>". */
static void sock_err(char *err, size_t errlen, const char *what, const srv_listen_t *l,
                     const char *suffix)
{
    int e = errno;
    char a[INET6_ADDRSTRLEN + 8], ebuf[128];
    net_addr_fmt((const struct sockaddr *)&l->addr, a, sizeof(a));
    snprintf(err, errlen, "%s %s: %s%s", what, a, strerror_r(e, ebuf, sizeof(ebuf)), suffix);
}

static int setopt_int(int fd, int level, int name, int val)
{
    return setsockopt(fd, level, name, &val, sizeof(val));
}

/* Open, configure and bind one UDP or TCP socket for l. Returns the fd, or -1 with err
 * filled in (nothing left open). */
static int sock_open(const srv_listen_t *l, bool tcp, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&l->addr;
    int family = sa->sa_family;
    const char *suffix = tcp ? " (tcp)" : "";
    int fd = socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sock_err(err, errlen, "cannot create a socket for", l, suffix);
        return -1;
    }
    const char *what = "cannot set socket options for";
    if (setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
        goto fail;
    if (!tcp && setopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0)
        goto fail;
    if (family == AF_INET6 && setopt_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
        goto fail;
    if (!tcp) {
        if (addr_is_wildcard(sa)) {
            int rc = family == AF_INET ? setopt_int(fd, IPPROTO_IP, IP_PKTINFO, 1)
                                       : setopt_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
            if (rc < 0)
                goto fail;
        }
        /* Best effort: bigger buffers absorb bursts; no PMTU state for UDP replies (a
         * spoofed ICMP "fragmentation needed" must not shrink what we send). */
        (void)setopt_int(fd, SOL_SOCKET, SO_RCVBUF, NET_SOCKBUF);
        (void)setopt_int(fd, SOL_SOCKET, SO_SNDBUF, NET_SOCKBUF);
        if (family == AF_INET)
            (void)setopt_int(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_OMIT);
        else
            (void)setopt_int(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_OMIT);
    }
    what = "cannot bind";
    if (bind(fd, sa, l->addrlen) < 0)
        goto fail;
    what = "cannot listen on";
    if (tcp && listen(fd, NET_TCP_BACKLOG) < 0)
        goto fail;
    return fd;
fail:
    sock_err(err, errlen, what, l, suffix);
    close(fd);
    return -1;
}

/* ---- UDP worker ---------------------------------------------------------------------- */

static struct net_udp_bufs *udp_bufs_new(void)
{
    struct net_udp_bufs *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    /* malloc, not calloc: the slots need no zeroing, and untouched pages stay virtual. */
    b->rxbuf = malloc((size_t)NET_UDP_BATCH * NET_UDP_STRIDE);
    b->txbuf = malloc((size_t)NET_UDP_BATCH * NET_UDP_STRIDE);
    if (!b->rxbuf || !b->txbuf) {
        free(b->rxbuf);
        free(b->txbuf);
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < NET_UDP_BATCH; i++) {
        b->rxiov[i].iov_base = b->rxbuf + i * NET_UDP_STRIDE;
        b->rxiov[i].iov_len = NET_UDP_BUFSZ;
        b->rx[i].msg_hdr.msg_iov = &b->rxiov[i];
        b->rx[i].msg_hdr.msg_iovlen = 1;
        b->rx[i].msg_hdr.msg_name = &b->peer[i];
    }
    return b;
}

static void udp_bufs_free(struct net_udp_bufs *b)
{
    if (!b)
        return;
    free(b->rxbuf);
    free(b->txbuf);
    free(b);
}

/*
 * Make the reply in out leave from the address the query in `in` was sent to. Wildcard
 * sockets only. IPv4: ipi_spec_dst is the local address the kernel matched (the
 * destination itself for unicast); ifindex 0 lets the routing table pick the way out,
 * which matters on multi-homed anycast nodes. IPv6: ipi6_addr is the destination; the
 * interface is pinned only for link-scope addresses, which need it. No pktinfo found:
 * no cmsg, the kernel chooses.
 */
static void udp_reply_src(struct msghdr *in, struct msghdr *out, net_cmsg_buf_t *ctl)
{
    if (in->msg_controllen == 0)
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR(in, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi, o;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memset(&o, 0, sizeof(o));
            o.ipi_spec_dst = pi.ipi_spec_dst;
            out->msg_control = ctl->buf;
            out->msg_controllen = CMSG_SPACE(sizeof(o));
            struct cmsghdr *oc = CMSG_FIRSTHDR(out);
            oc->cmsg_level = IPPROTO_IP;
            oc->cmsg_type = IP_PKTINFO;
            oc->cmsg_len = CMSG_LEN(sizeof(o));
            memcpy(CMSG_DATA(oc), &o, sizeof(o));
            return;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi, o;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr))
                return;
            memset(&o, 0, sizeof(o));
            o.ipi6_addr = pi.ipi6_addr;
            if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                o.ipi6_ifindex = pi.ipi6_ifindex;
            out->msg_control = ctl->buf;
            out->msg_controllen = CMSG_SPACE(sizeof(o));
            struct cmsghdr *oc = CMSG_FIRSTHDR(out);
            oc->cmsg_level = IPPROTO_IPV6;
            oc->cmsg_type = IPV6_PKTINFO;
            oc->cmsg_len = CMSG_LEN(sizeof(o));
            memcpy(CMSG_DATA(oc), &o, sizeof(o));
            return;
        }
    }
}

/* Send tx[0, n) with as few sendmmsg calls as possible; a message the kernel refuses
 * (e.g. no route) is counted and skipped, a full send buffer drops the rest. */
static void udp_send(net_udp_worker_t *uw, int fd, struct mmsghdr *tx, unsigned n)
{
    unsigned i = 0;
    while (i < n) {
        int r = sendmmsg(fd, tx + i, n - i, MSG_DONTWAIT);
        if (r > 0) {
            i += (unsigned)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            for (; i < n; i++)
                SRV_STAT_INC(uw->send_errors);
        } else {
            SRV_STAT_INC(uw->send_errors);
            i++;
        }
    }
}

/* Whether replies a and b go to the same client from the same local address. */
static bool udp_same_dest(const struct msghdr *a, const struct msghdr *b)
{
    return a->msg_namelen == b->msg_namelen && a->msg_controllen == b->msg_controllen &&
           memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0 &&
           (a->msg_controllen == 0 || memcmp(a->msg_control, b->msg_control,
                                              a->msg_controllen) == 0);
}

/* Group tx[0, n) by client and size into g; returns the number of groups. A reply joins
 * one of the last NET_GSO_LOOKBACK groups when it has the same destination and size and
 * the group has room; else it opens a group. */
static unsigned udp_gso_group(struct net_udp_bufs *b, unsigned n)
{
    struct net_gso *g = &b->gso;
    unsigned ng = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = b->txiov[i].iov_len;
        unsigned k = ng;
        if (len <= NET_GSO_MAX_SEG) {
            unsigned low = ng > NET_GSO_LOOKBACK ? ng - NET_GSO_LOOKBACK : 0;
            for (unsigned j = ng; j-- > low;) {
                if (g->size[j] == len && g->bytes[j] + len <= NET_GSO_MAX_BYTES &&
                    udp_same_dest(&b->tx[g->lead[j]].msg_hdr, &b->tx[i].msg_hdr)) {
                    k = j;
                    break;
                }
            }
        }
        if (k == ng) {
            g->lead[k] = (uint8_t)i;
            g->size[k] = len <= NET_GSO_MAX_SEG ? (uint16_t)len : 0;
            g->count[k] = 0;
            g->bytes[k] = 0;
            ng++;
        }
        g->group[i] = (uint8_t)k;
        g->count[k]++;
        g->bytes[k] += (uint32_t)len;
    }
    return ng;
}

/* Build group k's message: the lead's address and pktinfo, the members' iovecs, and a
 * UDP_SEGMENT cmsg when it has more than one. */
static void udp_gso_msg(struct net_udp_bufs *b, unsigned k)
{
    struct net_gso *g = &b->gso;
    const struct msghdr *lead = &b->tx[g->lead[k]].msg_hdr;
    struct msghdr *h = &g->msg[k].msg_hdr;
    *h = *lead;
    h->msg_iov = &g->iov[g->first[k]];
    h->msg_iovlen = g->count[k];
    if (g->count[k] < 2)
        return;
    uint8_t *ctl = g->ctl[k].buf;
    if (lead->msg_controllen)
        memcpy(ctl, lead->msg_control, lead->msg_controllen);
    struct cmsghdr *c = (struct cmsghdr *)(void *)(ctl + lead->msg_controllen);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(c), &g->size[k], sizeof(uint16_t));
    h->msg_control = ctl;
    h->msg_controllen = lead->msg_controllen + CMSG_SPACE(sizeof(uint16_t));
}

/* The kernel refused group k of tx[0, n) as a GSO send: send its replies one by one, as
 * their own messages. After NET_GSO_MAX_REFUSED refusals (no UDP_SEGMENT in this kernel, a
 * route without checksum offload or through IPsec, a segment over the MTU) the worker
 * stops grouping. */
static void udp_gso_refused(net_udp_worker_t *uw, int fd, struct net_udp_bufs *b, unsigned n,
                            unsigned k, int err)
{
    struct mmsghdr one[NET_UDP_BATCH];
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++)
        if (b->gso.group[i] == k)
            one[m++] = b->tx[i];
    udp_send(uw, fd, one, m);
    SRV_STAT_INC(uw->w.stats.udp_gso_refused);
    if (++uw->gso_refused == NET_GSO_MAX_REFUSED) {
        char ebuf[128];
        uw->gso = false;
        log_warn("UDP worker %u: the kernel refused %u grouped (GSO) sends, last with \"%s\"; "
                 "this worker now sends every reply on its own",
                 uw->w.id, NET_GSO_MAX_REFUSED, strerror_r(err, ebuf, sizeof(ebuf)));
    }
}

/* Send tx[0, n), replies to one client of one size grouped into GSO sends. Falls back to
 * udp_send when nothing groups (every client distinct: the usual case with resolvers,
 * which pick a new port per query). */
static void udp_send_gso(net_udp_worker_t *uw, int fd, struct net_udp_bufs *b, unsigned n)
{
    struct net_gso *g = &b->gso;
    unsigned ng = udp_gso_group(b, n);
    if (ng == n) {
        udp_send(uw, fd, b->tx, n);
        return;
    }
    unsigned at = 0;
    for (unsigned k = 0; k < ng; k++) {
        g->first[k] = (uint8_t)at;
        at += g->count[k];
        g->count[k] = 0; /* refilled below */
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned k = g->group[i];
        g->iov[g->first[k] + g->count[k]++] = b->txiov[i];
    }
    for (unsigned k = 0; k < ng; k++)
        udp_gso_msg(b, k);

    unsigned k = 0;
    while (k < ng) {
        int r = sendmmsg(fd, g->msg + k, ng - k, MSG_DONTWAIT);
        if (r > 0) {
            for (unsigned e = k + (unsigned)r; k < e; k++) {
                if (g->count[k] > 1) {
                    SRV_STAT_INC(uw->w.stats.udp_gso_sends);
                    SRV_STAT_ADD(uw->w.stats.udp_gso_replies, g->count[k]);
                }
            }
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            for (; k < ng; k++)
                SRV_STAT_ADD(uw->send_errors, g->count[k]);
        } else if (g->count[k] > 1) {
            udp_gso_refused(uw, fd, b, n, k, errno);
            k++;
        } else {
            SRV_STAT_INC(uw->send_errors);
            k++;
        }
    }
}

/* Receive, answer and send one batch. Returns the number of messages received (0 when
 * the socket is drained or failed). */
static unsigned udp_batch(net_udp_worker_t *uw, const net_udp_sock_t *s, bool block)
{
    struct net_udp_bufs *b = uw->bufs;
    for (unsigned i = 0; i < NET_UDP_BATCH; i++) {
        struct msghdr *h = &b->rx[i].msg_hdr;
        h->msg_namelen = sizeof(b->peer[i]);
        h->msg_control = s->wildcard ? b->rxctl[i].buf : NULL;
        h->msg_controllen = s->wildcard ? sizeof(b->rxctl[i].buf) : 0;
        h->msg_flags = 0;
    }
    int n;
    if (block) { /* wait for the first datagram (or the timeout), then take what is there */
        rcu_thread_offline();
        n = recvmmsg(s->fd, b->rx, NET_UDP_BATCH, MSG_WAITFORONE, NULL);
        rcu_thread_online();
    } else {
        do {
            n = recvmmsg(s->fd, b->rx, NET_UDP_BATCH, MSG_DONTWAIT, NULL);
        } while (n < 0 && errno == EINTR);
    }
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            SRV_STAT_INC(uw->recv_errors);
        return 0;
    }

    if (uw->w.tap) {
        srv_tap_set_local(uw->w.tap, (const struct sockaddr *)&s->bound.addr,
                          s->bound.addrlen);
        srv_tap_batch_received(uw->w.tap);
    }
    unsigned ntx = 0;
    for (unsigned i = 0; i < (unsigned)n; i++) {
        struct msghdr *rh = &b->rx[i].msg_hdr;
        if (rh->msg_flags & MSG_TRUNC) {
            SRV_STAT_INC(uw->w.stats.dropped);
            continue;
        }
        uint8_t *resp = b->txbuf + (size_t)i * NET_UDP_STRIDE;
        size_t len = srv_query_process(&uw->w, b->rxiov[i].iov_base, b->rx[i].msg_len, resp,
                                       NET_UDP_BUFSZ, (const struct sockaddr *)&b->peer[i],
                                       false);
        if (len == 0)
            continue;
        struct msghdr *th = &b->tx[ntx].msg_hdr;
        b->txiov[ntx].iov_base = resp;
        b->txiov[ntx].iov_len = len;
        th->msg_name = &b->peer[i];
        th->msg_namelen = rh->msg_namelen;
        th->msg_iov = &b->txiov[ntx];
        th->msg_iovlen = 1;
        th->msg_control = NULL;
        th->msg_controllen = 0;
        th->msg_flags = 0;
        if (s->wildcard)
            udp_reply_src(rh, th, &b->txctl[ntx]);
        ntx++;
    }
    if (uw->w.tap)
        srv_tap_flush(uw->w.tap); /* before the replies: a log line never lags its answer */
    if (ntx > 1 && uw->gso)
        udp_send_gso(uw, s->fd, b, ntx);
    else if (ntx)
        udp_send(uw, s->fd, b->tx, ntx);
    return (unsigned)n;
}

static void *udp_main(void *arg)
{
    net_udp_worker_t *uw = arg;
    struct epoll_event ev[16];

    rcu_register_thread();
    while (uw->blocking && !atomic_load_explicit(uw->stop, memory_order_relaxed)) {
        udp_batch(uw, &uw->socks[0], true);
        rcu_quiescent_state();
    }
    while (!uw->blocking && !atomic_load_explicit(uw->stop, memory_order_relaxed)) {
        rcu_thread_offline();
        int n = epoll_wait(uw->epfd, ev, (int)ARRAY_SIZE(ev), -1);
        rcu_thread_online();
        if (n < 0)
            continue; /* EINTR; nothing else can fail on a valid epoll fd */
        for (int i = 0; i < n; i++) {
            const net_ev_t *e = ev[i].data.ptr;
            if (e->kind != NET_EV_UDP)
                continue; /* the stop eventfd: the loop condition exits */
            const net_udp_sock_t *s = (const net_udp_sock_t *)e;
            for (unsigned round = 0; round < NET_UDP_DRAIN; round++) {
                unsigned got = udp_batch(uw, s, false);
                rcu_quiescent_state();
                if (got < NET_UDP_BATCH)
                    break;
            }
        }
    }
    rcu_unregister_thread();
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

/* Close and free everything in st (threads already joined or never started). */
static void net_free(net_state_t *st)
{
    if (!st)
        return;
    for (unsigned i = 0; st->udp && i < st->nworkers; i++) {
        net_udp_worker_t *uw = &st->udp[i];
        if (uw->epfd >= 0)
            close(uw->epfd);
        for (size_t k = 0; uw->socks && k < st->nlisten; k++)
            if (uw->socks[k].fd >= 0)
                close(uw->socks[k].fd);
        free(uw->socks);
        udp_bufs_free(uw->bufs);
        srv_rrl_free(uw->w.rrl);
        srv_loc_cache_free(uw->w.loc);
    }
    free(st->udp);
    if (st->tcp) {
        net_tcp_clear(st->tcp);
        srv_loc_cache_free(st->tcp->w.loc);
        free(st->tcp);
    }
    if (st->stop_fd >= 0)
        close(st->stop_fd);
    free(st);
}

/* Tell every thread of st to finish and join those that started. */
static void net_join(net_state_t *st)
{
    atomic_store(&st->stop, true);
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(st->stop_fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
    for (unsigned i = 0; i < st->nworkers; i++)
        if (st->udp[i].started)
            pthread_join(st->udp[i].thread, NULL);
    if (st->tcp->started)
        pthread_join(st->tcp->thread, NULL);
}

static void stats_add(srv_stats_t *out, const srv_stats_t *in)
{
    uint64_t *o = (uint64_t *)out;
    const uint64_t *c = (const uint64_t *)in;
    for (size_t k = 0; k < sizeof(*in) / sizeof(uint64_t); k++)
        o[k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
}

static int epoll_add(int epfd, int fd, net_ev_t *tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void *aligned_zalloc(size_t n)
{
    size_t size = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, size);
    if (p)
        memset(p, 0, size);
    return p;
}

/* Allocate st and its tables; every fd starts at -1, so net_free can run at any point. */
static int net_alloc(net_state_t **out, const srv_net_conf_t *conf)
{
    net_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return ERR_NOMEM;
    st->stop_fd = -1;
    st->stop_ev.kind = NET_EV_STOP;
    atomic_init(&st->stop, false);
    st->nlisten = conf->nlisten;
    st->udp = aligned_zalloc(conf->workers * sizeof(net_udp_worker_t));
    st->tcp = aligned_zalloc(sizeof(net_tcp_t));
    if (st->udp) {
        st->nworkers = conf->workers;
        for (unsigned i = 0; i < conf->workers; i++) {
            st->udp[i].w.id = i;
            st->udp[i].w.tap = srv_tap_for(i);
            st->udp[i].w.loc = srv_loc_cache_new(); /* NULL: no cache */
            st->udp[i].epfd = -1;
            st->udp[i].stop = &st->stop;
            st->udp[i].gso = conf->udp_gso;
        }
    }
    if (st->tcp) {
        st->tcp->w.id = conf->workers;
        st->tcp->w.tap = srv_tap_for(conf->workers);
        st->tcp->w.loc = srv_loc_cache_new();
        st->tcp->epfd = -1;
    }
    if (!st->udp || !st->tcp)
        goto nomem;
    for (unsigned i = 0; i < conf->workers; i++) {
        net_udp_worker_t *uw = &st->udp[i];
        uw->socks = calloc(conf->nlisten, sizeof(*uw->socks));
        if (!uw->socks)
            goto nomem;
        for (size_t k = 0; k < conf->nlisten; k++)
            uw->socks[k].fd = -1;
    }
    st->tcp->listeners = calloc(conf->nlisten, sizeof(*st->tcp->listeners));
    if (!st->tcp->listeners)
        goto nomem;
    st->tcp->nlisteners = conf->nlisten;
    for (size_t k = 0; k < conf->nlisten; k++) {
        st->tcp->listeners[k].ev.kind = NET_EV_LISTEN;
        st->tcp->listeners[k].fd = -1;
    }
    *out = st;
    return 0;
nomem:
    net_free(st);
    return ERR_NOMEM;
}

static int conf_check(const srv_net_conf_t *conf, char *err, size_t errlen)
{
    if (!conf->listen || conf->nlisten == 0) {
        snprintf(err, errlen, "no listen address");
        return ERR_INVAL;
    }
    if (conf->workers == 0) {
        snprintf(err, errlen, "workers must be at least 1");
        return ERR_INVAL;
    }
    if (conf->tcp_max_clients == 0) {
        snprintf(err, errlen, "tcp_max_clients must be at least 1");
        return ERR_INVAL;
    }
    if (conf->tcp_idle_timeout_ms == 0) {
        snprintf(err, errlen, "tcp_idle_timeout_ms must be at least 1");
        return ERR_INVAL;
    }
    for (size_t k = 0; k < conf->nlisten; k++) {
        int f = conf->listen[k].addr.ss_family;
        socklen_t want = f == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        if ((f != AF_INET && f != AF_INET6) || conf->listen[k].addrlen < want) {
            snprintf(err, errlen, "listen address %zu is not IPv4 or IPv6", k);
            return ERR_INVAL;
        }
    }
    return 0;
}

/* Open and bind every socket, build the epoll sets and buffers. */
static int net_setup(net_state_t *st, const srv_net_conf_t *conf, char *err, size_t errlen)
{
    for (size_t k = 0; k < conf->nlisten; k++) {
        const srv_listen_t *l = &conf->listen[k];
        bool wild = addr_is_wildcard((const struct sockaddr *)&l->addr);
        for (unsigned i = 0; i < conf->workers; i++) {
            net_udp_sock_t *s = &st->udp[i].socks[k];
            s->ev.kind = NET_EV_UDP;
            s->wildcard = wild;
            s->family = l->addr.ss_family;
            s->bound = *l;
            s->fd = sock_open(l, false, err, errlen);
            if (s->fd < 0)
                return ERR_IO;
        }
        st->tcp->listeners[k].fd = sock_open(l, true, err, errlen);
        if (st->tcp->listeners[k].fd < 0)
            return ERR_IO;
    }

    char ebuf[128];
    st->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (st->stop_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
        return ERR_IO;
    }
    for (unsigned i = 0; i < conf->workers; i++) {
        net_udp_worker_t *uw = &st->udp[i];
        uw->bufs = udp_bufs_new();
        if (!uw->bufs) {
            snprintf(err, errlen, "out of memory for UDP buffers");
            return ERR_NOMEM;
        }
        uw->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (uw->epfd < 0 || epoll_add(uw->epfd, st->stop_fd, &st->stop_ev) < 0) {
            snprintf(err, errlen, "epoll: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
            return ERR_IO;
        }
        for (size_t k = 0; k < conf->nlisten; k++) {
            if (epoll_add(uw->epfd, uw->socks[k].fd, &uw->socks[k].ev) < 0) {
                snprintf(err, errlen, "epoll: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
                return ERR_IO;
            }
        }
        /* With one socket the worker sleeps in recvmmsg, as gdnsd does: one system call
         * less per wakeup than epoll_wait + recvmmsg, which counts below saturation (a few
         * queries per wakeup). The receive timeout bounds how long a stop waits. */
        if (conf->nlisten == 1) {
            int fd = uw->socks[0].fd, fl = fcntl(fd, F_GETFL);
            struct timeval tv = {.tv_sec = 0, .tv_usec = NET_UDP_STOP_POLL_US};
            uw->blocking = fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0 &&
                           setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
            if (!uw->blocking && fl >= 0)
                (void)fcntl(fd, F_SETFL, fl); /* stay on epoll */
        }
    }
    int rc = net_tcp_init(st, st->tcp, conf);
    if (rc < 0)
        snprintf(err, errlen, "cannot set up the TCP thread: %s",
                 rc == ERR_IO ? strerror_r(errno, ebuf, sizeof(ebuf)) : err_str(rc));
    return rc;
}

/* Start every thread with the asynchronous signals blocked, so they reach the main
 * thread (signalfd, sigwait or plain handlers) and never interrupt an I/O thread. */
static int net_spawn(net_state_t *st, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);

    int e = 0;
    for (unsigned i = 0; i < st->nworkers && !e; i++) {
        e = pthread_create(&st->udp[i].thread, NULL, udp_main, &st->udp[i]);
        if (!e) {
            st->udp[i].started = true;
            char name[16];
            snprintf(name, sizeof(name), "gc-udp-%u", i % 100000u);
            pthread_setname_np(st->udp[i].thread, name);
        }
    }
    if (!e) {
        e = pthread_create(&st->tcp->thread, NULL, net_tcp_main, st);
        if (!e) {
            st->tcp->started = true;
            pthread_setname_np(st->tcp->thread, "gc-tcp");
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        char ebuf[128];
        snprintf(err, errlen, "cannot start an I/O thread: %s", strerror_r(e, ebuf, sizeof(ebuf)));
        return ERR_IO;
    }
    return 0;
}

int srv_net_start(const srv_net_conf_t *conf, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (!conf) {
        snprintf(err, errlen, "no network configuration");
        return ERR_INVAL;
    }
    int rc = conf_check(conf, err, errlen);
    if (rc < 0)
        return rc;
    srv_stats_min_slots(conf->workers + 1); /* per-snapshot counter rows: UDP, then TCP */

    pthread_mutex_lock(&net_lock);
    if (net_cur) {
        pthread_mutex_unlock(&net_lock);
        snprintf(err, errlen, "network I/O already started");
        return ERR_EXISTS;
    }
    net_state_t *st = NULL;
    rc = net_alloc(&st, conf);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
    } else {
        rc = net_setup(st, conf, err, errlen);
        if (rc == 0 && conf->after_bind)
            rc = conf->after_bind(conf->after_bind_ctx, err, errlen);
        if (rc == 0) {
            rc = net_spawn(st, err, errlen);
            if (rc < 0)
                net_join(st);
        }
        if (rc < 0)
            net_free(st);
        else
            net_cur = st;
    }
    pthread_mutex_unlock(&net_lock);
    return rc;
}

void srv_net_stop(void)
{
    pthread_mutex_lock(&net_lock);
    net_state_t *st = net_cur;
    if (st) {
        net_join(st);
        for (unsigned i = 0; i < st->nworkers; i++)
            stats_add(&net_retired, &st->udp[i].w.stats);
        stats_add(&net_retired, &st->tcp->w.stats);
        net_cur = NULL;
        net_free(st);
    }
    pthread_mutex_unlock(&net_lock);
}

void srv_net_stats(srv_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&net_lock);
    stats_add(out, &net_retired);
    net_state_t *st = net_cur;
    if (st) {
        for (unsigned i = 0; i < st->nworkers; i++)
            stats_add(out, &st->udp[i].w.stats);
        stats_add(out, &st->tcp->w.stats);
    }
    pthread_mutex_unlock(&net_lock);
}
