#pragma once

/*
 * Query logs (docs/operations.md, "Query logs"): dnstap and a text log.
 *
 * dnstap: AUTH_QUERY and AUTH_RESPONSE messages, protobuf-encoded by srv_dnstap_encode
 * (our own encoder of the published dnstap schema: only the fields we send, with their
 * field numbers and wire types) straight into a per-I/O-thread byte ring as Frame Streams
 * data frames; one writer thread writes each ring's new bytes with one writev to a file
 * or a Unix socket (Frame Streams control frames and the collector handshake through
 * libfstrm's control API). When a ring is full the message is dropped and counted
 * (srv_stats_t.dnstap_dropped), never waited for. The geo decision goes in the
 * `extra` field as short text, once per query: in AUTH_RESPONSE when that is logged,
 * else in AUTH_QUERY.
 *
 * Text log: one line per query (time, client, transport, qname, qtype, rcode, decision,
 * scope), buffered per I/O thread and appended with write(2) at the end of each batch.
 *
 * Both are off by default; then srv_worker_t.tap is NULL and the query path tests it twice.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "conf/conf.h"
#include "dns/pkt.h"
#include "server/query.h"

struct snapshot;

/* What srv_query_process knows about one query, for the logs. All borrowed. */
typedef struct {
    struct timespec qtime;            /* when the query was received (CLOCK_REALTIME) */
    const uint8_t *query;             /* the query as received */
    size_t qlen;
    const uint8_t *resp;              /* the response, or NULL when none is sent */
    size_t rlen;
    const struct sockaddr *src;       /* the client */
    bool tcp;
    const dns_query_t *q;             /* parsed query */
    int rcode;
    const struct snapshot *snap;
    const zone_t *zone;               /* the zone that answered, or NULL */
    const pol_route_t *route;         /* the routed decision, or NULL */
    int answer;                       /* first answer sent (index in route), -1: none */
    int family;                       /* the address the decision used */
    const uint8_t *addr;
    bool ecs_used;                    /* ... was the ECS address */
    uint8_t scope;                    /* ECS SCOPE of the reply */
    uint32_t loc;                     /* GeoIP location id of addr (0: unknown) */
} srv_tap_event_t;

/* Start the query logs configured in conf (logging.dnstap, logging.query_log) for
 * nthreads I/O threads (ids 0 .. nthreads-1). Returns 0 (also when both are off) or a
 * negative ERR_* with the reason in err. Main thread, before srv_net_start. */
int srv_tap_start(const conf_t *conf, unsigned nthreads, char *err, size_t errlen);

/* The per-thread log state for thread id, or NULL when the logs are off. */
srv_tap_t *srv_tap_for(unsigned id);

/* The local address of the socket the next queries of this thread arrive on (the
 * dnstap response address). tap may be NULL. */
void srv_tap_set_local(srv_tap_t *tap, const struct sockaddr *sa, socklen_t len);

/* The queries a UDP worker has just read in one batch arrived now: their query time
 * (one clock read per batch instead of one per query), until srv_tap_flush. */
void srv_tap_batch_received(srv_tap_t *tap);

/* The receive time of the query being processed: the batch's, else now. */
void srv_tap_query_time(srv_tap_t *tap, struct timespec *ts);

/* Write the thread's buffered text log lines (and end the batch). Called by its own
 * thread at the end of each batch. */
void srv_tap_flush(srv_tap_t *tap);

/* Stop: flush and close the text log, drain the dnstap queues and close the output.
 * After srv_net_stop. */
void srv_tap_stop(void);

/* dnstap messages the writer threw away because no output was open (a collector
 * not connected, a file that could not be reopened). */
uint64_t srv_tap_discarded(void);

/* Wall-clock time for dnstap timestamps. */
static inline void srv_tap_clock(struct timespec *ts)
{
    clock_gettime(CLOCK_REALTIME, ts);
}

/* Log one query (query path, on w's own thread; w->tap is not NULL). Never blocks. */
void srv_tap_log(srv_worker_t *w, const srv_tap_event_t *ev);

/* Start loading the location text srv_tap_log will want for location id loc: a miss in
 * the thread's 512 KiB text cache otherwise, taken while the reply is finished. */
void srv_tap_prefetch_loc(const srv_tap_t *t, uint32_t loc);

/* Fill buf with the decision text carried in dnstap's `extra` field and the text log
 * ("loc=US/US-CA/Los Angeles route=www.example.com/A answer=192.0.2.1 boundary=usa
 * ecs=198.51.100.0/24 scope=24"). Returns the length (truncated to len - 1). */
size_t srv_tap_decision(const srv_tap_event_t *ev, char *buf, size_t len);

/* ---- the dnstap encoder ---------------------------------------------------------------- */

enum { SRV_DNSTAP_AUTH_QUERY = 1, SRV_DNSTAP_AUTH_RESPONSE = 2 };

typedef struct {
    const uint8_t *identity, *version, *extra; /* NULL: absent */
    size_t identity_len, version_len, extra_len;
    int type;                          /* SRV_DNSTAP_AUTH_* */
    int family;                        /* AF_INET, AF_INET6 */
    bool tcp;
    const uint8_t *query_addr, *response_addr; /* 4 or 16 bytes, network order */
    uint16_t query_port, response_port;
    struct timespec query_time;
    struct timespec response_time;     /* AUTH_RESPONSE only */
    const uint8_t *message;            /* query (AUTH_QUERY) or response (AUTH_RESPONSE) */
    size_t message_len;
} srv_dnstap_msg_t;

/* The encoded size of m (exact). */
size_t srv_dnstap_size(const srv_dnstap_msg_t *m);

/* Encode m as a dnstap.Dnstap protobuf message into buf (cap bytes). Returns the length,
 * or 0 when it does not fit. Never allocates. */
size_t srv_dnstap_encode(uint8_t *buf, size_t cap, const srv_dnstap_msg_t *m);

/* The two in one size pass, for the query path: srv_dnstap_measure gives the exact size
 * and fills *len for srv_dnstap_encode_measured, which writes exactly that many bytes
 * into buf (the caller made room). */
typedef struct {
    size_t total, inner;
} srv_dnstap_len_t;
size_t srv_dnstap_measure(const srv_dnstap_msg_t *m, srv_dnstap_len_t *len);
void srv_dnstap_encode_measured(uint8_t *buf, const srv_dnstap_msg_t *m,
                                const srv_dnstap_len_t *len);
