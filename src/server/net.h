#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "server/query.h"

/*
 * Sockets and I/O threads: one SO_REUSEPORT UDP socket per (listen address, worker),
 * received and answered in batches (recvmmsg/sendmmsg); replies to queries received on a
 * wildcard address leave from the address the query was sent to (IP_PKTINFO /
 * IPV6_RECVPKTINFO). TCP runs on its own thread with an epoll loop: length framing,
 * pipelined queries, idle timeout, connection cap. Every I/O thread registers with
 * liburcu-qsbr and announces quiescent states between batches, so a published snapshot
 * can be freed after synchronize_rcu().
 */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
} srv_listen_t;

typedef struct {
    const srv_listen_t *listen;  /* borrowed for the duration of srv_net_start */
    size_t nlisten;
    unsigned workers;            /* UDP worker threads (>= 1) */
    bool udp_gso;                /* group replies to one client and size (UDP_SEGMENT) */
    unsigned tcp_max_clients;    /* open TCP connections allowed at once */
    unsigned tcp_idle_timeout_ms;/* close a connection idle this long */
    unsigned tcp_max_queries;    /* queries per connection before close; 0: unlimited */
    /* Called once every socket is bound and before any thread starts (e.g. to drop
     * privileges, so that no query is answered as root); a negative return stops the
     * start with that error (its message in err). NULL: none. */
    int (*after_bind)(void *ctx, char *err, size_t errlen);
    void *after_bind_ctx;
} srv_net_conf_t;

/* Bind every socket (fails before starting any thread if one cannot be bound; err says
 * which address and why), call conf->after_bind, then start the threads. Returns 0 or a
 * negative ERR_* (or after_bind's). */
int srv_net_start(const srv_net_conf_t *conf, char *err, size_t errlen);

/* Ask the threads to finish, join them and close the sockets. */
void srv_net_stop(void);

/* Sum of every I/O thread's counters (relaxed reads; for metrics and stats). */
void srv_net_stats(srv_stats_t *out);
