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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "dns/dname.h"
#include "dns/rrtype.h"
#include "server/snapshot.h"
#include "server/stats.h"

#define TEXT_BUF (64 * 1024)   /* text log bytes buffered per thread */
#define TEXT_LINE 1024         /* longest line we write */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
#define OUTQ_FRAMES 512        /* frames per writev at most */

/*
 * Frame buffers for one I/O thread: a byte ring. The I/O thread takes each frame at the
 * head, right after the previous one; the fstrm writer thread gives frames back once
 * written, in the order they were queued (fstrm frees the entries of one input queue in
 * queue order: after each writev, or at once when its output is closed), so giving
 * back a frame releases everything before it too: single producer, single consumer, no
 * lock, no malloc. Each frame is preceded by RING_HDR bytes holding the ring position
 * where it ends. A frame that does not fit before the end of the memory starts over at
 * the beginning (the gap is released with it). Frames sit next to each other, so the
 * memory the two threads touch is the bytes in flight, not one 512-byte slot per frame.
 */
#define RING_HDR 8
#define RING_PER_FRAME 320     /* ring bytes per frame of the queue (ours: ~100-300) */

typedef struct {
    uint8_t *mem;
    uint64_t size;
    uint64_t head;                 /* bytes taken so far (I/O thread) */
    uint64_t last;                 /* head before the last take (I/O thread) */
    _Alignas(64) _Atomic uint64_t tail; /* bytes given back so far (writer thread) */
} ring_t;

#define MID_SLOTS 64           /* decision text middles cached per thread (a power of 2) */
#define MID_MAX 192            /* longest middle cached */

typedef struct {
    uint64_t gen;                  /* snapshot generation; 0: empty */
    const void *zone, *route;
    int answer;
    uint16_t len;
    char text[MID_MAX];
} mid_t;

#define LOC_BITS 11            /* location texts cached per thread: 2048 */

typedef struct {
    uint64_t gen;                  /* snapshot generation; 0: empty */
    uint32_t loc;
    uint8_t len;
    char text[51];                 /* 64 bytes per entry */
} loc_text_t;

struct srv_tap {
    struct fstrm_iothr_queue *q;   /* NULL: no dnstap */
    ring_t *ring;                  /* frame buffers (dnstap only) */
    bool queries, responses;
    int logfd;                     /* text log, or -1 */
    size_t len;                    /* bytes in buf */
    char *buf;                     /* TEXT_BUF bytes when logfd >= 0 */
    struct sockaddr_storage local; /* where the queries arrive (response address) */
    bool has_local;
    mid_t mid[MID_SLOTS];          /* decision text cache (put_middle_cached) */
    loc_text_t loc[1u << LOC_BITS]; /* location text cache (put_loc_cached) */
};

static struct {
    struct fstrm_iothr *iothr;
    srv_tap_t *taps;
    unsigned n;
    int logfd;
    unsigned queue;              /* frames per input queue */
    uint8_t *identity, *version;
    size_t identity_len, version_len;
} g = { .logfd = -1 };

static ring_t *ring_new(size_t size)
{
    ring_t *r = xcalloc(1, sizeof(*r));
    r->size = size;
    r->mem = xmalloc(size); /* pages become resident as they are used */
    atomic_init(&r->tail, 0);
    return r;
}

static void ring_free(ring_t *r)
{
    if (!r)
        return;
    free(r->mem);
    free(r);
}

/* len bytes at the head, or NULL when the ring is full (or len does not fit at all). */
static uint8_t *ring_take(ring_t *r, size_t len)
{
    uint64_t need = (RING_HDR + len + 7) & ~(uint64_t)7;
    uint64_t pos = r->head, off = pos % r->size;
    if (off + need > r->size) { /* start over at the beginning */
        pos += r->size - off;
        off = 0;
    }
    if (need > r->size ||
        pos + need - atomic_load_explicit(&r->tail, memory_order_acquire) > r->size)
        return NULL;
    uint64_t end = pos + need;
    memcpy(r->mem + off, &end, sizeof(end));
    r->last = r->head;
    r->head = end;
    return r->mem + off + RING_HDR;
}

/* The frame just taken was not queued: back to the ring (I/O thread). */
static void ring_untake(ring_t *r)
{
    r->head = r->last;
}

/* fstrm's free callback, on the writer thread: this frame and all before it are done. */
static void ring_give(void *buf, void *ctx)
{
    ring_t *r = ctx;
    uint64_t end;
    memcpy(&end, (uint8_t *)buf - RING_HDR, sizeof(end));
    atomic_store_explicit(&r->tail, end, memory_order_release);
}

/*
 * The file output: our own fstrm read/write object instead of fstrm's file writer, which
 * goes through stdio (a copy of every frame, and a write(2) per stdio buffer). Here each
 * batch the writer thread hands over (up to 512 frames) is one writev(2).
 */
typedef struct {
    char *path;
    int fd;
    bool opened;       /* once: later opens (after a write error) append */
} file_out_t;

static fstrm_res file_open(void *obj)
{
    file_out_t *f = obj;
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC | (f->opened ? O_APPEND : O_TRUNC),
                 0640);
    f->opened |= f->fd >= 0;
    return f->fd < 0 ? fstrm_res_failure : fstrm_res_success;
}

static fstrm_res file_close(void *obj)
{
    file_out_t *f = obj;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    return fstrm_res_success;
}

static fstrm_res file_destroy(void *obj)
{
    file_out_t *f = obj;
    file_close(f);
    free(f->path);
    free(f);
    return fstrm_res_success;
}

static fstrm_res file_write(void *obj, const struct iovec *iov, int iovcnt)
{
    file_out_t *f = obj;
    while (iovcnt > 0) {
        ssize_t n = writev(f->fd, iov, iovcnt < IOV_MAX ? iovcnt : IOV_MAX);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fstrm_res_failure;
        size_t done = (size_t)n;
        for (; iovcnt > 0 && done >= iov->iov_len; iov++, iovcnt--)
            done -= iov->iov_len;
        if (iovcnt > 0 && done > 0) { /* a partial iovec: finish it, then go on */
            const char *p = (const char *)iov->iov_base + done;
            size_t left = iov->iov_len - done;
            while (left) {
                ssize_t k = write(f->fd, p, left);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0)
                    return fstrm_res_failure;
                p += k;
                left -= (size_t)k;
            }
            iov++;
            iovcnt--;
        }
    }
    return fstrm_res_success;
}

static struct fstrm_writer *file_writer(const char *path, const struct fstrm_writer_options *wopt)
{
    file_out_t *f = xcalloc(1, sizeof(*f));
    f->path = xstrdup(path);
    f->fd = -1;
    struct fstrm_rdwr *rw = fstrm_rdwr_init(f);
    fstrm_rdwr_set_open(rw, file_open);
    fstrm_rdwr_set_close(rw, file_close);
    fstrm_rdwr_set_destroy(rw, file_destroy);
    fstrm_rdwr_set_write(rw, file_write);
    return fstrm_writer_init(wopt, &rw);
}

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
        w = file_writer(conf->dnstap_path, wopt);
    }
    fstrm_writer_options_destroy(&wopt);
    if (!w) {
        snprintf(err, errlen, "logging.dnstap: cannot open %s", conf->dnstap_path);
        return ERR_IO;
    }
    struct fstrm_iothr_options *io = fstrm_iothr_options_init();
    fstrm_iothr_options_set_num_input_queues(io, nthreads);
    /* fstrm refuses bigger queues (and would silently keep its default, 512). */
    unsigned queue = conf->dnstap_queue < FSTRM_IOTHR_INPUT_QUEUE_SIZE_MAX
                         ? conf->dnstap_queue
                         : FSTRM_IOTHR_INPUT_QUEUE_SIZE_MAX;
    fstrm_iothr_options_set_input_queue_size(io, queue);
    fstrm_iothr_options_set_queue_model(io, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
    /* A socket collector that is not there yet (or restarts) is retried every second. */
    fstrm_iothr_options_set_reopen_interval(io, 1);
    /* Fewer, larger writes: up to 512 frames or 64 KiB per writev (fstrm's defaults, 64
     * frames and 8 KiB, meant a writev per ~30 of our frames). */
    fstrm_iothr_options_set_output_queue_size(io, OUTQ_FRAMES);
    fstrm_iothr_options_set_buffer_hint(io, FSTRM_IOTHR_BUFFER_HINT_MAX);
    /* When to wake the writer thread. fstrm signals it when a queue's *free* slots fall
     * to queue_notify_threshold (libfstrm 0.6: my_queue insert reports the space left),
     * else the writer looks every flush_timeout (1 s). Its default, 32, wakes the writer
     * only when the queue is nearly full: under load the queue then overflows while the
     * writer gets going, and messages are dropped. Wake it when an eighth of the queue
     * is used instead (512 frames of 4096), which still batches hundreds of frames per
     * wake-up. Queues under 64 frames keep fstrm's default. */
    if (queue >= 64) {
        unsigned used = queue / 8 < 32 ? 32 : queue / 8;
        fstrm_iothr_options_set_queue_notify_threshold(io, queue - 1 - used);
    }
    g.queue = queue;
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
        /* Frames in flight: the thread's queue plus the writer's output queue. */
        t->ring = t->q ? ring_new((size_t)(g.queue + OUTQ_FRAMES) * RING_PER_FRAME) : NULL;
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
    if (g.iothr)
        fstrm_iothr_destroy(&g.iothr); /* writes what is queued, joins the thread */
    for (unsigned i = 0; i < g.n; i++)
        ring_free(g.taps[i].ring);  /* every frame given back by now */
    free(g.taps);
    g.taps = NULL;
    g.n = 0;
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

/* Appending without printf: the query path formats this for every logged query. */
typedef struct {
    char *p, *end;
} out_t;

static void put_mem(out_t *o, const char *s, size_t n)
{
    if (n > (size_t)(o->end - o->p))
        n = (size_t)(o->end - o->p);
    memcpy(o->p, s, n);
    o->p += n;
}

static void put_str(out_t *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_uint(out_t *o, unsigned v)
{
    char t[12];
    int n = sizeof(t);
    do {
        t[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_mem(o, t + n, sizeof(t) - (size_t)n);
}

static void put_addr(out_t *o, int family, const uint8_t *a)
{
    if (family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            if (i)
                put_mem(o, ".", 1);
            put_uint(o, a[i]);
        }
        return;
    }
    char t[INET6_ADDRSTRLEN];
    put_str(o, inet_ntop(AF_INET6, a, t, sizeof(t)) ? t : "?");
}

/* " zone=Z route=R answer=A boundary=B": everything the snapshot decides, the same for
 * every query that got the same answer of the same route. */
static void put_middle(out_t *o, const srv_tap_event_t *ev)
{
    const snapshot_t *s = ev->snap;
    if (ev->zone) {
        put_str(o, " zone=");
        put_str(o, ev->zone->name);
    }
    if (ev->route) {
        put_str(o, " route=");
        put_str(o, s && s->stats ? srv_snapstats_route_label(s->stats, ev->route) : "?");
        const conf_route_t *cr = ev->route->conf;
        if (ev->answer >= 0 && cr && (size_t)ev->answer < cr->nanswers) {
            const conf_answer_t *ca = &cr->answers[ev->answer];
            put_str(o, " answer=");
            put_str(o, ca->value);
            put_str(o, " boundary=");
            put_str(o, ca->boundary ? ca->boundary : "-");
        } else {
            put_str(o, " answer=-");
        }
    }
}

/* The middle, from the thread's cache when the same (snapshot, zone, route, answer) was
 * seen before; a key that does not fit (text over MID_MAX) is formatted every time. */
static void put_middle_cached(out_t *o, srv_tap_t *t, const srv_tap_event_t *ev)
{
    if (!t || !ev->snap || (!ev->zone && !ev->route)) {
        put_middle(o, ev);
        return;
    }
    uintptr_t h = ((uintptr_t)ev->route >> 4) ^ ((uintptr_t)ev->zone >> 4) ^
                  (uintptr_t)(ev->answer + 1) * 0x9E3779B9u;
    mid_t *m = &t->mid[(h ^ h >> 7) & (MID_SLOTS - 1)];
    if (m->gen != ev->snap->generation || m->zone != ev->zone || m->route != ev->route ||
        m->answer != ev->answer) {
        out_t mo = { m->text, m->text + MID_MAX };
        put_middle(&mo, ev);
        if (mo.p == mo.end) { /* maybe cut: do not keep it */
            m->gen = 0;
            put_middle(o, ev);
            return;
        }
        m->gen = ev->snap->generation;
        m->zone = ev->zone;
        m->route = ev->route;
        m->answer = ev->answer;
        m->len = (uint16_t)(mo.p - m->text);
    }
    put_mem(o, m->text, m->len);
}

/* "loc=COUNTRY/SUBDIVISION/CITY" or "loc=-". */
static void put_loc(out_t *o, const srv_tap_event_t *ev)
{
    const snapshot_t *s = ev->snap;
    const geo_location_t *l = s && s->geo ? geo_location(s->geo, ev->loc) : NULL;
    if (l && l->country[0]) {
        put_mem(o, "loc=", 4);
        put_str(o, l->country);
        put_mem(o, "/", 1);
        put_str(o, l->subdivision[0] ? l->subdivision : "-");
        put_mem(o, "/", 1);
        put_str(o, l->city && *l->city ? l->city : "-");
    } else {
        put_mem(o, "loc=-", 5);
    }
}

/* The location text from the thread's cache: reading a location and its city name for
 * a client seen before costs two cache misses in the location table (perf: 80 % of the
 * decision text's time before this cache); the cache is 128 KiB per thread. */
static void put_loc_cached(out_t *o, srv_tap_t *t, const srv_tap_event_t *ev)
{
    if (!t || !ev->snap || !ev->snap->geo || ev->loc == 0) {
        put_loc(o, ev);
        return;
    }
    loc_text_t *c = &t->loc[(ev->loc * 2654435761u) >> (32 - LOC_BITS)];
    if (c->gen != ev->snap->generation || c->loc != ev->loc) {
        out_t co = { c->text, c->text + sizeof(c->text) };
        put_loc(&co, ev);
        if (co.p == co.end) { /* maybe cut: do not keep it */
            c->gen = 0;
            put_loc(o, ev);
            return;
        }
        c->gen = ev->snap->generation;
        c->loc = ev->loc;
        c->len = (uint8_t)(co.p - c->text);
    }
    put_mem(o, c->text, c->len);
}

static size_t decision(srv_tap_t *t, const srv_tap_event_t *ev, char *buf, size_t len)
{
    out_t o = { buf, buf + len - 1 };
    put_loc_cached(&o, t, ev);
    put_middle_cached(&o, t, ev);
    const dns_query_t *q = ev->q;
    if (q && q->ecs_present) {
        put_mem(&o, " ecs=", 5);
        put_addr(&o, q->ecs.family == 1 ? AF_INET : AF_INET6, q->ecs.addr);
        put_mem(&o, "/", 1);
        put_uint(&o, q->ecs.source);
        if (!ev->ecs_used)
            put_str(&o, "(unused)");
    }
    put_mem(&o, " scope=", 7);
    put_uint(&o, ev->scope);
    *o.p = 0;
    return (size_t)(o.p - buf);
}

size_t srv_tap_decision(const srv_tap_event_t *ev, char *buf, size_t len)
{
    return decision(NULL, ev, buf, len);
}

/* ---- logging one query ---------------------------------------------------------------- */

static void dnstap_submit(srv_worker_t *w, srv_tap_t *t, const srv_dnstap_msg_t *m)
{
    size_t cap = srv_dnstap_size(m);
    uint8_t *buf = ring_take(t->ring, cap);
    if (!buf) {
        SRV_STAT_INC(w->stats.dnstap_dropped);
        return;
    }
    size_t len = srv_dnstap_encode(buf, cap, m);
    if (len == 0 ||
        fstrm_iothr_submit(g.iothr, t->q, buf, len, ring_give, t->ring) != fstrm_res_success) {
        ring_untake(t->ring); /* not queued: still ours (fstrm frees nothing then) */
        SRV_STAT_INC(w->stats.dnstap_dropped);
        return;
    }
    SRV_STAT_INC(w->stats.dnstap_sent);
}

static void text_line(srv_tap_t *t, const srv_tap_event_t *ev, const char *dtext)
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
                     qtype, rc, dtext, ev->resp ? "" : " dropped");
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
    char decision_text[512];
    size_t dlen = decision(t, ev, decision_text, sizeof(decision_text));
    if (t->logfd >= 0)
        text_line(t, ev, decision_text);
    if (!t->q)
        return;
    srv_dnstap_msg_t m = {
        .identity = g.identity, .identity_len = g.identity_len,
        .version = g.version, .version_len = g.version_len,
        .extra = (const uint8_t *)decision_text, .extra_len = dlen,
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
    bool respond = t->responses && ev->resp && ev->rlen;
    if (t->queries) {
        m.type = SRV_DNSTAP_AUTH_QUERY;
        m.message = ev->query;
        m.message_len = ev->qlen;
        /* The decision once per query: in the response when there is one to log (it
         * is what the decision produced), else in the query. */
        if (respond)
            m.extra = NULL;
        dnstap_submit(w, t, &m);
        m.extra = (const uint8_t *)decision_text;
    }
    if (respond) {
        m.type = SRV_DNSTAP_AUTH_RESPONSE;
        srv_tap_clock(&m.response_time);
        m.message = ev->resp;
        m.message_len = ev->rlen;
        dnstap_submit(w, t, &m);
    }
}
