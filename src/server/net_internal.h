#pragma once

/*
 * Private to server/net*.c: the state shared by the UDP workers (net.c) and the TCP
 * thread (net_tcp.c). Nothing here is part of the public API.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/net.h"

/* Tag at the start of every object registered in an epoll set (epoll_data.ptr). */
typedef enum {
    NET_EV_STOP = 1,   /* the shared stop eventfd */
    NET_EV_UDP,        /* a UDP socket of this worker */
    NET_EV_LISTEN,     /* a TCP listening socket */
    NET_EV_CONN,       /* a TCP connection */
} net_ev_kind_t;

typedef struct {
    net_ev_kind_t kind;
} net_ev_t;

/* The UDP sockets of one worker, one per listen address. */
typedef struct {
    net_ev_t ev;       /* NET_EV_UDP */
    int fd;
    bool wildcard;     /* bound to 0.0.0.0 or ::: replies carry a pktinfo cmsg */
    int family;
    srv_listen_t bound;  /* the address it is bound to (for the query logs) */
} net_udp_sock_t;

/* A TCP listening socket. */
typedef struct {
    net_ev_t ev;       /* NET_EV_LISTEN */
    int fd;
} net_listener_t;

struct net_udp_bufs;
struct net_conn;

/* One UDP worker thread: its counters, its sockets, its batch buffers. */
typedef struct {
    srv_worker_t w;               /* first: 64-byte aligned counters */
    pthread_t thread;
    bool started;
    const atomic_bool *stop;      /* the instance's stop flag */
    int epfd;
    bool blocking;                /* one socket: sleep in recvmmsg itself (no epoll_wait) */
    net_udp_sock_t *socks;        /* nlisten entries */
    struct net_udp_bufs *bufs;    /* allocated once at start */
    uint64_t recv_errors, send_errors; /* relaxed atomics; not in srv_stats_t */
    bool gso;                     /* group replies to one client into UDP_SEGMENT sends */
    unsigned gso_refused;         /* GSO sends refused so far; at a limit, gso is cleared */
} net_udp_worker_t;

/* The TCP thread: listeners, connection table, timeouts. */
typedef struct {
    srv_worker_t w;               /* first: 64-byte aligned counters */
    pthread_t thread;
    bool started;
    int epfd;
    net_listener_t *listeners;    /* nlisten entries */
    size_t nlisteners;
    bool accept_paused;           /* listeners disarmed after EMFILE and the like */
    struct net_conn **conns;      /* tcp_max_clients slots, [0, nconns) used */
    size_t nconns;
    unsigned max_clients, max_queries;
    uint64_t idle_ms, total_ms;   /* idle timeout, total lifetime limit */
} net_tcp_t;

/* One running instance (srv_net_start .. srv_net_stop). */
typedef struct {
    atomic_bool stop;             /* set by srv_net_stop, read by every thread */
    net_ev_t stop_ev;             /* NET_EV_STOP, for the eventfd below */
    int stop_fd;                  /* eventfd watched (never read) by every epoll set */
    net_udp_worker_t *udp;        /* nworkers entries, 64-byte aligned */
    unsigned nworkers;
    size_t nlisten;
    net_tcp_t *tcp;               /* 64-byte aligned */
} net_state_t;

/* Relaxed counter helpers: each counter has exactly one writer (its thread). */
#define NET_STAT_LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Monotonic milliseconds. */
uint64_t net_now_ms(void);

/* Format addr as "ADDR@PORT" into buf (always NUL-terminated). */
void net_addr_fmt(const struct sockaddr *addr, char *buf, size_t len);

/* Prepare the TCP thread state for st (listeners already bound and listening in
 * tcp->listeners): epoll set, connection table. Returns 0 or ERR_NOMEM / ERR_IO. */
int net_tcp_init(net_state_t *st, net_tcp_t *tcp, const srv_net_conf_t *conf);

/* Thread body of the TCP thread (arg: net_state_t *). */
void *net_tcp_main(void *arg);

/* Close every connection, the epoll set and the listeners; free the table. Only after
 * the thread was joined (or never started). */
void net_tcp_clear(net_tcp_t *tcp);
