/*
 * Query logs: the dnstap output (libfstrm I/O thread, one SPSC input queue per I/O
 * thread) and the text query log. See server/dnstap.h.
 */
#include "server/dnstap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fstrm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "dns/dname.h"
#include "dns/rrtype.h"
#include "server/snapshot.h"

#define TEXT_BUF (64 * 1024)   /* text log bytes buffered per thread */
#define TEXT_LINE 1024         /* longest line we write */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"

struct srv_tap {
    struct fstrm_iothr_queue *q;   /* NULL: no dnstap */
    bool queries, responses;
    int logfd;                     /* text log, or -1 */
    size_t len;                    /* bytes in buf */
    char *buf;                     /* TEXT_BUF bytes when logfd >= 0 */
    struct sockaddr_storage local; /* where the queries arrive (response address) */
    bool has_local;
};

static struct {
    struct fstrm_iothr *iothr;
    srv_tap_t *taps;
    unsigned n;
    int logfd;
    uint8_t *identity, *version;
    size_t identity_len, version_len;
} g = { .logfd = -1 };

static int start_dnstap(const conf_t *conf, unsigned nthreads, char *err, size_t errlen)
{
    struct fstrm_writer_options *wopt = fstrm_writer_options_init();
    fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE));
    struct fstrm_writer *w = NULL;
    if (conf->dnstap_socket) {
        struct fstrm_unix_writer_options *uo = fstrm_unix_writer_options_init();
        fstrm_unix_writer_options_set_socket_path(uo, conf->dnstap_path);
        w = fstrm_unix_writer_init(uo, wopt);
        fstrm_unix_writer_options_destroy(&uo);
    } else {
        /* fstrm opens the file itself ("wb"): check first that we can, for a clear error. */
        int fd = open(conf->dnstap_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "logging.dnstap.file: cannot open %s: %s", conf->dnstap_path,
                     strerror(errno));
            fstrm_writer_options_destroy(&wopt);
            return ERR_IO;
        }
        close(fd);
        struct fstrm_file_options *fo = fstrm_file_options_init();
        fstrm_file_options_set_file_path(fo, conf->dnstap_path);
        w = fstrm_file_writer_init(fo, wopt);
        fstrm_file_options_destroy(&fo);
    }
    fstrm_writer_options_destroy(&wopt);
    if (!w) {
        snprintf(err, errlen, "logging.dnstap: cannot open %s", conf->dnstap_path);
        return ERR_IO;
    }
    struct fstrm_iothr_options *io = fstrm_iothr_options_init();
    fstrm_iothr_options_set_num_input_queues(io, nthreads);
    fstrm_iothr_options_set_input_queue_size(io, conf->dnstap_queue);
    fstrm_iothr_options_set_queue_model(io, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
    /* A socket collector that is not there yet (or restarts) is retried every second. */
    fstrm_iothr_options_set_reopen_interval(io, 1);
    g.iothr = fstrm_iothr_init(io, &w);
    fstrm_iothr_options_destroy(&io);
    if (!g.iothr) {
        fstrm_writer_destroy(&w);
        snprintf(err, errlen, "logging.dnstap: cannot start the fstrm I/O thread");
        return ERR_IO;
    }
    return 0;
}

int srv_tap_start(const conf_t *conf, unsigned nthreads, char *err, size_t errlen)
{
    if (!conf->dnstap_path && !conf->query_log)
        return 0;
    if (conf->query_log) {
        g.logfd = open(conf->query_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (g.logfd < 0) {
            snprintf(err, errlen, "logging.query_log: cannot open %s: %s", conf->query_log,
                     strerror(errno));
            return ERR_IO;
        }
    }
    if (conf->dnstap_path && start_dnstap(conf, nthreads, err, errlen) < 0) {
        srv_tap_stop();
        return ERR_IO;
    }
    const char *id = conf->dnstap_identity ? conf->dnstap_identity : conf->identity;
    const char *ver = conf->dnstap_version ? conf->dnstap_version : conf->version;
    if (id) {
        g.identity_len = strlen(id);
        g.identity = (uint8_t *)xstrdup(id);
    }
    if (ver) {
        g.version_len = strlen(ver);
        g.version = (uint8_t *)xstrdup(ver);
    }
    g.n = nthreads;
    g.taps = xcalloc(nthreads, sizeof(*g.taps));
    for (unsigned i = 0; i < nthreads; i++) {
        srv_tap_t *t = &g.taps[i];
        t->logfd = g.logfd;
        t->buf = g.logfd >= 0 ? xmalloc(TEXT_BUF) : NULL;
        t->queries = conf->dnstap_queries;
        t->responses = conf->dnstap_responses;
        t->q = g.iothr ? fstrm_iothr_get_input_queue_idx(g.iothr, i) : NULL;
    }
    return 0;
}

srv_tap_t *srv_tap_for(unsigned id)
{
    return id < g.n ? &g.taps[id] : NULL;
}

void srv_tap_set_local(srv_tap_t *tap, const struct sockaddr *sa, socklen_t len)
{
    if (!tap)
        return;
    tap->has_local = len <= sizeof(tap->local);
    if (tap->has_local)
        memcpy(&tap->local, sa, len);
}

void srv_tap_flush(srv_tap_t *tap)
{
    if (!tap || tap->logfd < 0 || tap->len == 0)
        return;
    size_t off = 0;
    while (off < tap->len) {
        ssize_t n = write(tap->logfd, tap->buf + off, tap->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk loses log lines, never queries */
        off += (size_t)n;
    }
    tap->len = 0;
}

void srv_tap_stop(void)
{
    for (unsigned i = 0; i < g.n; i++) {
        srv_tap_flush(&g.taps[i]);
        free(g.taps[i].buf);
    }
    free(g.taps);
    g.taps = NULL;
    g.n = 0;
    if (g.iothr)
        fstrm_iothr_destroy(&g.iothr); /* flushes what is queued, joins the thread */
    if (g.logfd >= 0)
        close(g.logfd);
    g.logfd = -1;
    free(g.identity);
    free(g.version);
    g.identity = g.version = NULL;
}

/* ---- the decision text --------------------------------------------------------------- */

static const uint8_t *sa_addr(const struct sockaddr *sa, int *family, uint16_t *port)
{
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        *family = AF_INET;
        *port = ntohs(s->sin_port);
        return (const uint8_t *)&s->sin_addr;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        *family = AF_INET6;
        *port = ntohs(s->sin6_port);
        return (const uint8_t *)&s->sin6_addr;
    }
    *family = 0;
    *port = 0;
    return NULL;
}

#define APPEND(...)                                                                        \
    do {                                                                                   \
        if (n < len) {                                                                     \
            int k_ = snprintf(buf + n, len - n, __VA_ARGS__);                              \
            n = k_ < 0 ? len : MIN(len, n + (size_t)k_);                                   \
        }                                                                                  \
    } while (0)

size_t srv_tap_decision(const srv_tap_event_t *ev, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = 0;
    const snapshot_t *s = ev->snap;
    if (s && s->geo && ev->addr) {
        const geo_location_t *l =
            geo_location(s->geo, geo_lookup(s->geo, ev->family, ev->addr, NULL));
        if (l && l->country[0])
            APPEND("loc=%s/%s/%s", l->country, l->subdivision[0] ? l->subdivision : "-",
                   l->city && *l->city ? l->city : "-");
        else
            APPEND("loc=-");
    } else {
        APPEND("loc=-");
    }
    if (ev->zone)
        APPEND(" zone=%s", ev->zone->name);
    if (ev->route) {
        char name[DNS_TEXT_MAX], tb[16];
        size_t nl = dns_dname_to_text(ev->route->owner, name);
        if (nl > 1 && name[nl - 1] == '.')
            name[nl - 1] = 0;
        const char *t = ev->route->type == CONF_T_ALIAS ? "ALIAS"
                                                        : dns_rrtype_to_text(ev->route->type, tb);
        APPEND(" route=%s/%s", name, t);
        const conf_route_t *cr = ev->route->conf;
        if (ev->answer >= 0 && cr && (size_t)ev->answer < cr->nanswers) {
            const conf_answer_t *ca = &cr->answers[ev->answer];
            APPEND(" answer=%s boundary=%s", ca->value, ca->boundary ? ca->boundary : "-");
        } else {
            APPEND(" answer=-");
        }
    }
    const dns_query_t *q = ev->q;
    if (q && q->ecs_present) {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(q->ecs.family == 1 ? AF_INET : AF_INET6, q->ecs.addr, a, sizeof(a));
        APPEND(" ecs=%s/%u%s", a, q->ecs.source, ev->ecs_used ? "" : "(unused)");
    }
    APPEND(" scope=%u", ev->scope);
    return n < len ? n : len - 1;
}

/* ---- logging one query ---------------------------------------------------------------- */

static void dnstap_submit(srv_worker_t *w, srv_tap_t *t, const srv_dnstap_msg_t *m)
{
    size_t cap = srv_dnstap_size(m);
    uint8_t *buf = malloc(cap);
    if (!buf) {
        SRV_STAT_INC(w->stats.dnstap_dropped);
        return;
    }
    size_t len = srv_dnstap_encode(buf, cap, m);
    if (len == 0 ||
        fstrm_iothr_submit(g.iothr, t->q, buf, len, fstrm_free_wrapper, NULL) != fstrm_res_success) {
        free(buf);
        SRV_STAT_INC(w->stats.dnstap_dropped);
        return;
    }
    SRV_STAT_INC(w->stats.dnstap_sent);
}

static void text_line(srv_tap_t *t, const srv_tap_event_t *ev, const char *decision)
{
    if (t->len + TEXT_LINE > TEXT_BUF)
        srv_tap_flush(t);
    char *p = t->buf + t->len;
    struct tm tm;
    gmtime_r(&ev->qtime.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    int family;
    uint16_t port;
    const uint8_t *addr = sa_addr(ev->src, &family, &port);
    char client[INET6_ADDRSTRLEN] = "-";
    if (addr)
        inet_ntop(family, addr, client, sizeof(client));
    char qname[DNS_TEXT_MAX] = "-", tb[16] = "-";
    const char *qtype = tb;
    if (ev->q->has_question) {
        dns_dname_to_text(ev->q->qname_lc, qname);
        qtype = dns_rrtype_to_text(ev->q->qtype, tb);
    }
    static const char *const rcodes[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                          "NOTIMP",  "REFUSED", "YXDOMAIN" };
    char rc[16];
    if (ev->rcode >= 0 && ev->rcode < (int)ARRAY_SIZE(rcodes))
        snprintf(rc, sizeof(rc), "%s", rcodes[ev->rcode]);
    else
        snprintf(rc, sizeof(rc), "RCODE%d", ev->rcode);
    int k = snprintf(p, TEXT_LINE, "%s.%06ldZ %s@%u %s %s %s %s %s%s\n", when,
                     ev->qtime.tv_nsec / 1000, client, port, ev->tcp ? "tcp" : "udp", qname,
                     qtype, rc, decision, ev->resp ? "" : " dropped");
    if (k < 0)
        return;
    if (k >= TEXT_LINE) { /* cut, keep the newline */
        k = TEXT_LINE - 1;
        p[k - 1] = '\n';
    }
    t->len += (size_t)k;
}

void srv_tap_log(srv_worker_t *w, const srv_tap_event_t *ev)
{
    srv_tap_t *t = w->tap;
    char decision[512];
    size_t dlen = srv_tap_decision(ev, decision, sizeof(decision));
    if (t->logfd >= 0)
        text_line(t, ev, decision);
    if (!t->q)
        return;
    srv_dnstap_msg_t m = {
        .identity = g.identity, .identity_len = g.identity_len,
        .version = g.version, .version_len = g.version_len,
        .extra = (const uint8_t *)decision, .extra_len = dlen,
        .tcp = ev->tcp, .query_time = ev->qtime,
    };
    int family, lfamily = 0;
    uint16_t lport = 0;
    m.query_addr = sa_addr(ev->src, &family, &m.query_port);
    const uint8_t *laddr =
        t->has_local ? sa_addr((const struct sockaddr *)&t->local, &lfamily, &lport) : NULL;
    m.family = family ? family : lfamily;
    if (laddr && lfamily == m.family) {
        m.response_addr = laddr;
        m.response_port = lport;
    }
    if (t->queries) {
        m.type = SRV_DNSTAP_AUTH_QUERY;
        m.message = ev->query;
        m.message_len = ev->qlen;
        dnstap_submit(w, t, &m);
    }
    if (t->responses && ev->resp && ev->rlen) {
        m.type = SRV_DNSTAP_AUTH_RESPONSE;
        srv_tap_clock(&m.response_time);
        m.message = ev->resp;
        m.message_len = ev->rlen;
        dnstap_submit(w, t, &m);
    }
}
