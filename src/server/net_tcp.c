#include "server/net_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "server/dnstap.h"
#include "common/util.h"

/*
 * The TCP thread (RFC 1035 4.2.2, RFC 7766): one epoll set, level-triggered, over the
 * listening sockets, the stop eventfd and every connection.
 *
 * Per connection: an input buffer that holds one maximal framed message and an output
 * buffer that holds one maximal framed answer plus NET_TCP_COALESCE bytes, so pipelined
 * answers go out in one send. Queries are answered in order, only while the output
 * buffer has room for a worst-case answer; otherwise the connection stops reading
 * (EPOLLIN off) until the client drains its answers, so a client that does not read can
 * only hold its own connection, until the idle timeout.
 *
 * Timeouts, swept every NET_TCP_TICK_MS: idle (no complete query within idle_ms, counted
 * from accept or the last query) and a total lifetime limit (max(4 x idle, 10 s)), so a
 * client that keeps a connection busy with a trickle cannot hold it forever.
 */

#define NET_TCP_MSGMAX 65535
#define NET_TCP_INCAP (2 + NET_TCP_MSGMAX)
#define NET_TCP_COALESCE 16384
#define NET_TCP_OUTCAP (2 + NET_TCP_MSGMAX + NET_TCP_COALESCE)
#define NET_TCP_TICK_MS 100
#define NET_TCP_TOTAL_MIN_MS 10000
#define NET_TCP_ACCEPT_BURST 64
#define NET_TCP_EVENTS 64

typedef struct net_conn {
    net_ev_t ev;             /* NET_EV_CONN */
    int fd;
    uint32_t events;         /* current epoll interest */
    size_t slot;             /* index in net_tcp_t.conns */
    uint64_t start_ms;       /* accepted at */
    uint64_t last_ms;        /* accept or last complete query */
    unsigned answered;
    bool eof;                /* the client shut down its side */
    bool closing;            /* answer nothing more; close once the output is flushed */
    struct sockaddr_storage peer;
    size_t inlen;            /* bytes in in[] */
    size_t outoff, outlen;   /* out[outoff, outlen) is still to be sent */
    uint8_t in[NET_TCP_INCAP];
    uint8_t out[NET_TCP_OUTCAP];
} net_conn_t;

int net_tcp_init(net_state_t *st, net_tcp_t *tcp, const srv_net_conf_t *conf)
{
    tcp->max_clients = conf->tcp_max_clients;
    tcp->max_queries = conf->tcp_max_queries;
    tcp->idle_ms = conf->tcp_idle_timeout_ms;
    tcp->total_ms = MAX(4 * tcp->idle_ms, (uint64_t)NET_TCP_TOTAL_MIN_MS);
    tcp->conns = calloc(tcp->max_clients, sizeof(*tcp->conns));
    if (!tcp->conns)
        return ERR_NOMEM;
    tcp->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (tcp->epfd < 0)
        return ERR_IO;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &st->stop_ev };
    if (epoll_ctl(tcp->epfd, EPOLL_CTL_ADD, st->stop_fd, &ev) < 0)
        return ERR_IO;
    for (size_t k = 0; k < tcp->nlisteners; k++) {
        ev.data.ptr = &tcp->listeners[k].ev;
        if (epoll_ctl(tcp->epfd, EPOLL_CTL_ADD, tcp->listeners[k].fd, &ev) < 0)
            return ERR_IO;
    }
    return 0;
}

void net_tcp_clear(net_tcp_t *tcp)
{
    for (size_t i = 0; tcp->conns && i < tcp->nconns; i++) {
        close(tcp->conns[i]->fd);
        free(tcp->conns[i]);
    }
    free(tcp->conns);
    tcp->conns = NULL;
    tcp->nconns = 0;
    if (tcp->epfd >= 0)
        close(tcp->epfd);
    tcp->epfd = -1;
    for (size_t k = 0; tcp->listeners && k < tcp->nlisteners; k++)
        if (tcp->listeners[k].fd >= 0)
            close(tcp->listeners[k].fd);
    free(tcp->listeners);
    tcp->listeners = NULL;
    tcp->nlisteners = 0;
}

/* Arm (EPOLLIN) or disarm (no events) every listener. */
static void listeners_arm(net_tcp_t *t, bool on)
{
    for (size_t k = 0; k < t->nlisteners; k++) {
        struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &t->listeners[k].ev };
        (void)epoll_ctl(t->epfd, EPOLL_CTL_MOD, t->listeners[k].fd, &ev);
    }
    t->accept_paused = !on;
}

/* Remove c from the table, close and free it. graceful: first read away what the client
 * already sent, so the close is a FIN and not an RST that could destroy answers still in
 * flight. */
static void conn_close(net_tcp_t *t, net_conn_t *c, bool graceful)
{
    if (graceful) {
        for (int k = 0; k < 4; k++)
            if (recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT) <= 0)
                break;
    }
    close(c->fd); /* also drops it from the epoll set */
    size_t last = --t->nconns;
    if (c->slot != last) {
        t->conns[c->slot] = t->conns[last];
        t->conns[c->slot]->slot = c->slot;
    }
    t->conns[last] = NULL;
    free(c);
}

static void tcp_accept(net_tcp_t *t, const net_listener_t *l, uint64_t now)
{
    for (int k = 0; k < NET_TCP_ACCEPT_BURST; k++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                listeners_arm(t, false); /* level-triggered: would spin; retry next tick */
            return;
        }
        if (t->nconns >= t->max_clients) {
            SRV_STAT_INC(t->w.stats.tcp_conns_rejected); /* counted before the client sees it */
            close(fd);
            continue;
        }
        /* Per connection, not per query; malloc, not calloc: the buffers need no zeroing
         * and their untouched pages stay virtual. */
        net_conn_t *c = malloc(sizeof(*c));
        if (!c) {
            close(fd);
            SRV_STAT_INC(t->w.stats.tcp_conns_rejected);
            continue;
        }
        c->ev.kind = NET_EV_CONN;
        c->fd = fd;
        c->events = EPOLLIN;
        c->start_ms = c->last_ms = now;
        c->answered = 0;
        c->eof = c->closing = false;
        memcpy(&c->peer, &peer, sizeof(peer));
        c->inlen = c->outoff = c->outlen = 0;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->ev };
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            SRV_STAT_INC(t->w.stats.tcp_conns_rejected);
            continue;
        }
        c->slot = t->nconns;
        t->conns[t->nconns++] = c;
        SRV_STAT_INC(t->w.stats.tcp_conns_accepted);
    }
}

/* Whether out[] can take one more worst-case framed answer (compacting it if needed). */
static bool out_room(net_conn_t *c)
{
    if (c->outoff == c->outlen) {
        c->outoff = c->outlen = 0;
    } else if (NET_TCP_OUTCAP - c->outlen < 2 + NET_TCP_MSGMAX && c->outoff > 0) {
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
    }
    return NET_TCP_OUTCAP - c->outlen >= 2 + NET_TCP_MSGMAX;
}

/* Answer the complete queries in in[] while out[] has room. Returns whether any query
 * was consumed. */
static bool conn_answer(net_tcp_t *t, net_conn_t *c, uint64_t now)
{
    size_t pos = 0;
    if (t->w.tap) {
        struct sockaddr_storage local;
        socklen_t llen = sizeof(local);
        if (getsockname(c->fd, (struct sockaddr *)&local, &llen) == 0)
            srv_tap_set_local(t->w.tap, (const struct sockaddr *)&local, llen);
    }
    while (!c->closing && c->inlen - pos >= 2) {
        size_t mlen = rd_u16(c->in + pos);
        if (mlen == 0) {
            c->closing = true; /* a zero-length message is not DNS */
            break;
        }
        if (c->inlen - pos < 2 + mlen || !out_room(c))
            break;
        size_t rlen = srv_query_process(&t->w, c->in + pos + 2, mlen, c->out + c->outlen + 2,
                                        NET_TCP_MSGMAX, (const struct sockaddr *)&c->peer, true);
        pos += 2 + mlen;
        c->last_ms = now;
        if (rlen == 0 || rlen > NET_TCP_MSGMAX) {
            c->closing = true; /* dropped: the stream cannot stay in step */
            break;
        }
        wr_u16(c->out + c->outlen, (uint16_t)rlen);
        c->outlen += 2 + rlen;
        if (t->max_queries && ++c->answered >= t->max_queries)
            c->closing = true;
    }
    if (t->w.tap)
        srv_tap_flush(t->w.tap);
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return pos > 0;
}

/* Send what out[] holds. Returns 1 if bytes were sent, 0 if none could be, -1 if the
 * connection failed. */
static int conn_flush(net_conn_t *c)
{
    if (c->outoff == c->outlen)
        return 0;
    ssize_t n;
    do {
        n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->outoff += (size_t)n;
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    return n > 0;
}

/* Answer and send until stuck, then close or set the epoll interest to match. */
static void conn_run(net_tcp_t *t, net_conn_t *c, uint64_t now)
{
    for (;;) {
        bool answered = conn_answer(t, c, now);
        int sent = conn_flush(c);
        if (sent < 0) {
            conn_close(t, c, false);
            return;
        }
        if (!answered && !sent)
            break;
    }
    bool pending = c->outoff < c->outlen;
    if (!pending && (c->closing || c->eof)) {
        conn_close(t, c, true);
        return;
    }
    uint32_t want = pending ? EPOLLOUT : 0;
    if (!c->closing && !c->eof && c->inlen < NET_TCP_INCAP && out_room(c))
        want |= EPOLLIN;
    if (want != c->events) {
        struct epoll_event ev = { .events = want, .data.ptr = &c->ev };
        if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            conn_close(t, c, false);
            return;
        }
        c->events = want;
    }
}

static void conn_event(net_tcp_t *t, net_conn_t *c, uint32_t events, uint64_t now)
{
    if (events & EPOLLERR) {
        conn_close(t, c, false);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && (c->events & EPOLLIN)) {
        ssize_t n;
        do {
            n = recv(c->fd, c->in + c->inlen, NET_TCP_INCAP - c->inlen, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n > 0) {
            c->inlen += (size_t)n;
        } else if (n == 0) {
            c->eof = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(t, c, false);
            return;
        }
    }
    conn_run(t, c, now);
}

static void tcp_sweep(net_tcp_t *t, uint64_t now)
{
    for (size_t i = 0; i < t->nconns;) {
        net_conn_t *c = t->conns[i];
        if (now - c->last_ms >= t->idle_ms || now - c->start_ms >= t->total_ms) {
            SRV_STAT_INC(t->w.stats.tcp_timeouts); /* before the client sees the close */
            if (c->outoff < c->outlen) {
                /* A client that does not read: reset, so the kernel does not keep
                 * trying to deliver its queued answers to it. */
                struct linger lg = { .l_onoff = 1, .l_linger = 0 };
                (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            conn_close(t, c, false); /* moves the last connection into slot i */
            continue;
        }
        i++;
    }
    if (t->accept_paused)
        listeners_arm(t, true);
}

void *net_tcp_main(void *arg)
{
    net_state_t *st = arg;
    net_tcp_t *t = st->tcp;
    struct epoll_event ev[NET_TCP_EVENTS];
    uint64_t next_sweep = net_now_ms() + NET_TCP_TICK_MS;

    rcu_register_thread();
    while (!atomic_load_explicit(&st->stop, memory_order_relaxed)) {
        uint64_t now = net_now_ms();
        int timeout = next_sweep > now ? (int)(next_sweep - now) : 0;
        rcu_thread_offline();
        int n = epoll_wait(t->epfd, ev, NET_TCP_EVENTS, timeout);
        rcu_thread_online();
        now = net_now_ms();
        for (int i = 0; i < n; i++) {
            net_ev_t *e = ev[i].data.ptr;
            if (e->kind == NET_EV_LISTEN)
                tcp_accept(t, (const net_listener_t *)e, now);
            else if (e->kind == NET_EV_CONN)
                conn_event(t, (net_conn_t *)e, ev[i].events, now);
            /* NET_EV_STOP: the loop condition exits */
        }
        rcu_quiescent_state();
        if (now >= next_sweep) {
            tcp_sweep(t, now);
            next_sweep = now + NET_TCP_TICK_MS;
        }
    }
    rcu_unregister_thread();
    return NULL;
}
