/*
 * Query logs: the dnstap output (a byte ring of Frame Streams frames per I/O thread,
 * written out by one writer thread; control frames through libfstrm) and the text query
 * log. See server/dnstap.h.
 */
#include "server/dnstap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fstrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
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

/*
 * dnstap frames of one I/O thread: a byte ring holding them exactly as they go out, in
 * the Frame Streams data frame format (a 4-byte big-endian length, then the message), one
 * after the other with no gap; a frame that reaches the end of the memory goes on at its
 * beginning. Single producer (the I/O thread moves head), single consumer (the writer
 * thread moves tail), no lock, no allocation: the writer writes everything between tail
 * and head with one writev of at most two pieces, however many frames that is.
 *
 * ring_huge: the ring and the writer's O_DIRECT stage live in transparent huge pages
 * (xhuge_alloc, rounded up to 2 MiB). Under load ~120 MB/s of frames stream through them;
 * in 4 KiB pages that is a new TLB entry every 4 KiB on both sides, evicting the entries
 * of the query path's route and cache tables. bench/observability, ten alternating
 * pairs: dnstap's throughput cost 11.7 % against 12.6 % (docs/performance.md).
 */
#define RING_PER_FRAME 320          /* ring bytes per frame of logging.dnstap.queue */
#define RING_MIN (512 * 1024)       /* smallest ring: a 64 KiB TCP response still fits */
#define FRAME_HDR 4

typedef struct {
    uint8_t *mem;
    uint64_t size, mask;           /* size: a power of 2 */
    uint64_t head;                 /* bytes written so far (I/O thread) */
    uint64_t tail_seen;            /* tail as the I/O thread last read it */
    uint64_t wake_at;              /* used bytes above which the writer is woken */
    uint8_t *scratch;              /* size / 4 bytes: a frame that wraps is built here */
    /* the frames' lengths in order (FRAME_HDR + payload), so the writer can count and
     * place frames without reading their headers back (a cache miss each): frame k is
     * flen[k & fmask]; the I/O thread has written nframes, the writer taken ftaken */
    uint32_t *flen;
    uint64_t fmask, nframes, ftaken_seen;
    _Alignas(64) _Atomic uint64_t pub_head; /* head, published (I/O thread) */
    _Alignas(64) _Atomic uint64_t tail;     /* bytes written out or discarded (writer) */
    _Atomic uint64_t ftaken;       /* frames written out or discarded (writer) */
} ring_t;

#define RING_FRAME_MIN 32          /* flen has an entry per RING_FRAME_MIN ring bytes */

#define MID_SLOTS 64           /* decision text middles cached per thread (a power of 2) */
#define MID_MAX 192            /* longest middle cached */

typedef struct {
    uint64_t gen;                  /* snapshot generation; 0: empty */
    const void *zone, *route;
    int answer;
    uint16_t len;
    char text[MID_MAX];
} mid_t;

#define LOC_BITS 13            /* location texts cached per thread: 8192 */

typedef struct {
    uint64_t gen;                  /* snapshot generation; 0: empty */
    uint32_t loc;
    uint8_t len;
    char text[51];                 /* 64 bytes per entry */
} loc_text_t;

struct srv_tap {
    ring_t *ring;                  /* dnstap frames, or NULL: no dnstap */
    bool queries, responses;
    int logfd;                     /* text log, or -1 */
    size_t len;                    /* bytes in buf */
    char *buf;                     /* TEXT_BUF bytes when logfd >= 0 */
    struct sockaddr_storage local; /* where the queries arrive (response address) */
    bool has_local;
    bool has_rx;                   /* rx: when this batch of queries was read */
    struct timespec rx;
    mid_t mid[MID_SLOTS];          /* decision text cache (put_middle_cached) */
    loc_text_t loc[1u << LOC_BITS]; /* location text cache (put_loc_cached) */
};

/*
 * A file is written with O_DIRECT where the file system allows it: the frames are copied
 * into an aligned staging buffer and go to the file in whole blocks, without passing
 * through the page cache. Through the cache, every megabyte logged is a megabyte of new
 * cache pages to allocate, copy into and write back; under a busy query log that was most
 * of the writer's CPU (on a VM that backs guest memory lazily, 5-8 us per fresh page).
 * The partial last block is written through a second, ordinary descriptor whenever the
 * writer goes idle, so the file is complete up to the last frame a moment after traffic.
 */
#define DIO_ALIGN 4096u             /* offset, length and memory alignment of direct writes */
#define DIO_STAGE (1u << 20)        /* staging buffer */
#define DIO_BATCH (256u * 1024)     /* write whole blocks once this much is staged */
#define DIO_FRAMES (1u << 15)       /* frame ends remembered: a 1 MiB stage of frames >= 32 B */

/* Where the writer thread sends the frames. */
typedef struct {
    char *path;
    bool socket;                   /* a Frame Streams collector (bidirectional) */
    int fd;                        /* -1: not open */
    bool opened;                   /* a file was opened once: later opens append */
    struct timespec retry;         /* not before this (CLOCK_MONOTONIC) */
    /* a file opened with O_DIRECT (fd); bfd: the same file without it, -1 when the
     * output is not direct (dio_on) */
    int bfd;
    uint8_t *stage;                /* DIO_STAGE bytes: the file from offset base on */
    size_t fill;                   /* bytes in stage, all but the last partial block unwritten */
    uint64_t base;                 /* file offset of stage[0] (a multiple of DIO_ALIGN) */
    uint64_t durable;              /* the file holds every byte before this offset */
    /* where the staged data frames end (file offsets, low 32 bits), oldest first: the
     * frames a failed write loses are counted as discarded, like those of a failed writev */
    uint32_t *fend;
    uint32_t fhead, ftail;
} tap_out_t;

static struct {
    srv_tap_t *taps;
    unsigned n;
    int logfd;
    size_t ring_size;
    uint8_t *identity, *version;
    size_t identity_len, version_len;
    /* the writer thread */
    bool running;
    pthread_t thread;
    tap_out_t out;
    int efd;                       /* eventfd: wakes the writer */
    _Atomic bool stop;
    _Alignas(64) _Atomic bool sleeping; /* the writer is waiting (I/O threads wake it) */
    _Atomic uint64_t discarded;    /* frames thrown away with no output open */
} g = { .logfd = -1, .efd = -1, .out = { .fd = -1, .bfd = -1 } };

static ring_t *ring_new(size_t size)
{
    ring_t *r = xcalloc(1, sizeof(*r));
    r->size = size;
    r->mask = size - 1;
    r->wake_at = size / 4;
    r->mem = xhuge_alloc(HUGE_ROUND(size)); /* see ring_huge */
    r->scratch = xmalloc(size / 4);
    r->fmask = size / RING_FRAME_MIN - 1;
    r->flen = xmalloc((r->fmask + 1) * sizeof(*r->flen));
    atomic_init(&r->pub_head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->ftaken, 0);
    return r;
}

static void ring_free(ring_t *r)
{
    if (!r)
        return;
    xhuge_free(r->mem, HUGE_ROUND(r->size));
    free(r->scratch);
    free(r->flen);
    free(r);
}

static void wake_writer(void)
{
    if (atomic_load_explicit(&g.sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&g.sleeping, false, memory_order_acq_rel)) {
        uint64_t one = 1;
        ssize_t n = write(g.efd, &one, sizeof(one));
        (void)n; /* a full eventfd counter is awake anyway */
    }
}

/* Append m, encoded (len from srv_dnstap_measure), as a frame. False when the ring has
 * no room for it (I/O thread). */
static bool ring_put(ring_t *r, const srv_dnstap_msg_t *m, const srv_dnstap_len_t *len)
{
    size_t cap = len->total;
    uint64_t need = FRAME_HDR + cap;
    if (need > r->size / 4)
        return false;
    if (r->head + need - r->tail_seen > r->size) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->head + need - r->tail_seen > r->size)
            return false;
    }
    if (r->nframes - r->ftaken_seen > r->fmask) { /* only with frames under 32 bytes */
        r->ftaken_seen = atomic_load_explicit(&r->ftaken, memory_order_acquire);
        if (r->nframes - r->ftaken_seen > r->fmask)
            return false;
    }
    r->flen[r->nframes++ & r->fmask] = (uint32_t)need;
    uint64_t off = r->head & r->mask;
    uint8_t *p = off + need <= r->size ? r->mem + off : r->scratch;
    p[0] = (uint8_t)(cap >> 24);
    p[1] = (uint8_t)(cap >> 16);
    p[2] = (uint8_t)(cap >> 8);
    p[3] = (uint8_t)cap;
    srv_dnstap_encode_measured(p + FRAME_HDR, m, len);
    if (p == r->scratch) { /* wraps: the end of the memory, then its beginning */
        size_t first = (size_t)(r->size - off);
        memcpy(r->mem + off, p, first);
        memcpy(r->mem, p + first, need - first);
    }
    r->head += need;
    atomic_store_explicit(&r->pub_head, r->head, memory_order_release);
    if (r->head - r->tail_seen > r->wake_at) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->head - r->tail_seen > r->wake_at) {
            /* Order the head store before reading g.sleeping, against the writer's
             * store of g.sleeping and its look at the rings (rare: a quarter full). */
            atomic_thread_fence(memory_order_seq_cst);
            wake_writer();
        }
    }
    return true;
}

/* ---- the writer thread: Frame Streams output ------------------------------------------ */

/* writev, or for a socket sendmsg without SIGPIPE (a collector gone away is an error,
 * whatever the process does with the signal). */
static bool write_all(int fd, bool sock, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
        ssize_t n = sock ? sendmsg(fd, &mh, MSG_NOSIGNAL) : writev(fd, iov, iovcnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false; /* an error, or a collector too slow for SO_SNDTIMEO */
        size_t done = (size_t)n;
        for (; iovcnt > 0 && done >= iov->iov_len; iov++, iovcnt--)
            done -= iov->iov_len;
        if (iovcnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return true;
}

/* Encode a control frame (with our content type for READY and START) into buf, of
 * CONTROL_BUF bytes; iov: the frame. */
#define CONTROL_BUF (FSTRM_CONTROL_FRAME_LENGTH_MAX + 8)
static bool control_frame(fstrm_control_type type, uint8_t *buf, struct iovec *iov)
{
    struct fstrm_control *c = fstrm_control_init();
    size_t len = CONTROL_BUF;
    bool ok = fstrm_control_set_type(c, type) == fstrm_res_success &&
              (type == FSTRM_CONTROL_STOP ||
               fstrm_control_add_field_content_type(c, (const uint8_t *)CONTENT_TYPE,
                                                    strlen(CONTENT_TYPE)) ==
                   fstrm_res_success) &&
              fstrm_control_encode(c, buf, &len, FSTRM_CONTROL_FLAG_WITH_HEADER) ==
                  fstrm_res_success;
    fstrm_control_destroy(&c);
    *iov = (struct iovec){ buf, len };
    return ok;
}

static bool control_send(int fd, bool sock, fstrm_control_type type)
{
    uint8_t buf[CONTROL_BUF];
    struct iovec iov;
    return control_frame(type, buf, &iov) && write_all(fd, sock, &iov, 1);
}

/* ---- direct file output --------------------------------------------------------------- */

static inline bool dio_on(const tap_out_t *o)
{
    return o->bfd >= 0;
}

/* pwrite until done or an error: the bytes written (len when all were). */
static size_t pwrite_n(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

static void dio_durable(tap_out_t *o, uint64_t end)
{
    if (end > o->durable)
        o->durable = end;
    while (o->ftail != o->fhead && (int32_t)(o->fend[o->ftail % DIO_FRAMES] -
                                             (uint32_t)o->durable) <= 0)
        o->ftail++;
}

/* Data frames staged and not on the file yet: what a failed write loses. */
static uint64_t dio_unwritten(const tap_out_t *o)
{
    uint64_t n = 0;
    for (uint32_t i = o->ftail; i != o->fhead; i++)
        n += (int32_t)(o->fend[i % DIO_FRAMES] - (uint32_t)o->durable) > 0;
    return n;
}

/* Leave direct output (the file system refused a direct write): what is staged goes out
 * through the ordinary descriptor, which becomes the output. */
static bool dio_fall_back(tap_out_t *o)
{
    if (pwrite_n(o->bfd, o->stage, o->fill, o->base) != o->fill ||
        lseek(o->bfd, (off_t)(o->base + o->fill), SEEK_SET) < 0)
        return false;
    close(o->fd);
    o->fd = o->bfd;
    o->bfd = -1;
    o->fill = 0;
    o->ftail = o->fhead;
    return true;
}

/* Write the staged whole blocks (with `all`, also the partial last block, through bfd). */
static bool dio_flush(tap_out_t *o, bool all)
{
    size_t whole = o->fill & ~(size_t)(DIO_ALIGN - 1);
    if (whole) {
        ssize_t n;
        do
            n = pwrite(o->fd, o->stage, whole, (off_t)o->base);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EINVAL) /* alignment the file system does not take */
            return dio_fall_back(o);
        size_t done = n > 0 ? (size_t)n : 0;
        if (done && done < whole) /* short (a full disk): the rest, while it goes */
            done += pwrite_n(o->fd, o->stage + done, whole - done, o->base + done);
        dio_durable(o, o->base + done);
        if (done < whole)
            return false;
        o->base += whole;
        o->fill -= whole;
        memmove(o->stage, o->stage + whole, o->fill);
    }
    /* the partial block stays staged: the next direct write of its block rewrites it */
    if (!all || !o->fill)
        return true;
    size_t done = pwrite_n(o->bfd, o->stage, o->fill, o->base);
    dio_durable(o, o->base + done);
    return done == o->fill;
}

/* Stage bytes for the file; whole blocks go out once DIO_BATCH is staged. */
static bool dio_write(tap_out_t *o, const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len) {
            size_t n = MIN(len, (size_t)DIO_STAGE - o->fill);
            memcpy(o->stage + o->fill, p, n);
            o->fill += n;
            p += n;
            len -= n;
            if (o->fill == DIO_STAGE && !dio_flush(o, false))
                return false;
            if (!dio_on(o)) { /* fell back: the rest the usual way (iovcnt <= 2) */
                struct iovec rest[2];
                int k = 0;
                if (len)
                    rest[k++] = (struct iovec){ (void *)p, len };
                for (int j = i + 1; j < iovcnt && k < 2; j++)
                    rest[k++] = iov[j];
                return k == 0 || write_all(o->fd, false, rest, k);
            }
        }
    }
    return o->fill < DIO_BATCH || dio_flush(o, false);
}

/* Everything to the output: frames for a socket or an ordinary file are written at once. */
static bool out_write(tap_out_t *o, struct iovec *iov, int iovcnt)
{
    if (dio_on(o))
        return dio_write(o, iov, iovcnt);
    return write_all(o->fd, o->socket, iov, iovcnt);
}

static bool out_control(tap_out_t *o, fstrm_control_type type)
{
    uint8_t buf[CONTROL_BUF];
    struct iovec iov;
    return control_frame(type, buf, &iov) && out_write(o, &iov, 1);
}

/* Open the file for direct output (fd, bfd, stage) at its end, or return false and leave
 * the output for an ordinary open. */
static bool dio_open(tap_out_t *o)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o->opened ? 0 : O_TRUNC);
    int bfd = open(o->path, flags, 0640);
    if (bfd < 0)
        return false;
    int fd = open(o->path, (flags & ~O_TRUNC & ~O_CREAT) | O_DIRECT);
    struct stat st;
    if (fd < 0 || fstat(bfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        close(bfd);
        return false;
    }
    if (!o->stage) {
        o->stage = huge_alloc(HUGE_ROUND(DIO_STAGE)); /* see ring_huge */
        if (!o->stage) {
            close(fd);
            close(bfd);
            return false;
        }
        memset(o->stage, 0, DIO_STAGE); /* resident from the start */
        o->fend = xmalloc(DIO_FRAMES * sizeof(*o->fend));
    }
    /* appending: the partial last block is staged again, to be rewritten whole */
    o->base = (uint64_t)st.st_size & ~(uint64_t)(DIO_ALIGN - 1);
    o->fill = (size_t)((uint64_t)st.st_size - o->base);
    if (o->fill && pread(bfd, o->stage, o->fill, (off_t)o->base) != (ssize_t)o->fill) {
        close(fd);
        close(bfd);
        return false;
    }
    o->fd = fd;
    o->bfd = bfd;
    o->durable = (uint64_t)st.st_size;
    o->fhead = o->ftail = 0;
    return true;
}

static bool read_all(int fd, uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Read the collector's control frame and check that it is `type` (ACCEPT: with our
 * content type). */
static bool control_expect(int fd, fstrm_control_type type)
{
    uint8_t hdr[8], body[FSTRM_CONTROL_FRAME_LENGTH_MAX];
    if (!read_all(fd, hdr, sizeof(hdr)))
        return false;
    uint32_t esc = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
    uint32_t len = (uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7];
    if (esc != 0 || len > sizeof(body) || !read_all(fd, body, len))
        return false;
    struct fstrm_control *c = fstrm_control_init();
    fstrm_control_type got;
    bool ok = fstrm_control_decode(c, body, len, 0) == fstrm_res_success &&
              fstrm_control_get_type(c, &got) == fstrm_res_success && got == type &&
              (type != FSTRM_CONTROL_ACCEPT ||
               fstrm_control_match_field_content_type(c, (const uint8_t *)CONTENT_TYPE,
                                                      strlen(CONTENT_TYPE)) ==
                   fstrm_res_success);
    fstrm_control_destroy(&c);
    return ok;
}

static void out_close(tap_out_t *o, bool finish)
{
    if (o->fd < 0)
        return;
    if (finish && out_control(o, FSTRM_CONTROL_STOP) && o->socket)
        control_expect(o->fd, FSTRM_CONTROL_FINISH);
    if (finish && dio_on(o))
        dio_flush(o, true);
    close(o->fd);
    o->fd = -1;
    if (o->bfd >= 0)
        close(o->bfd);
    o->bfd = -1;
    o->fill = 0;
    o->fhead = o->ftail = 0;
    clock_gettime(CLOCK_MONOTONIC, &o->retry);
    o->retry.tv_sec += 1; /* the collector is retried every second */
}

static int connect_collector(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path))
        return -1;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A collector that stops reading costs a dropped connection, not a stuck writer. */
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        !control_send(fd, true, FSTRM_CONTROL_READY) ||
        !control_expect(fd, FSTRM_CONTROL_ACCEPT)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Open the output if it is closed and its retry time has come; then START. */
static void out_open(tap_out_t *o)
{
    if (o->fd >= 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < o->retry.tv_sec ||
        (now.tv_sec == o->retry.tv_sec && now.tv_nsec < o->retry.tv_nsec))
        return;
    if (o->socket) {
        o->fd = connect_collector(o->path);
    } else {
        if (!dio_open(o))
            o->fd = open(o->path,
                         O_WRONLY | O_CREAT | O_CLOEXEC | (o->opened ? O_APPEND : O_TRUNC), 0640);
        o->opened |= o->fd >= 0;
    }
    if (o->fd >= 0 && !out_control(o, FSTRM_CONTROL_START))
        out_close(o, false);
    if (o->fd < 0) {
        o->retry = now;
        o->retry.tv_sec += 1;
    }
}

/* Frames in ring bytes [from, to), the first being frame number k: only counted when
 * they are thrown away. */
static uint64_t count_frames(const ring_t *r, uint64_t k, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    for (uint64_t at = from; at < to; at += r->flen[(k + n++) & r->fmask])
        ;
    return n;
}

/*
 * For direct output: remember where the frames of ring bytes [from, to) (the first being
 * frame number k), staged from file offset fstart on, end; with `failed`, return how
 * many of them the file does not hold instead.
 */
static uint64_t dio_note_frames(tap_out_t *o, const ring_t *r, uint64_t k, uint64_t from,
                                uint64_t to, uint64_t fstart, bool failed)
{
    uint64_t lost = 0, end = fstart, last = fstart + (to - from);
    while (end < last) {
        end += r->flen[k++ & r->fmask];
        if (failed) {
            lost += end > o->durable;
            continue;
        }
        if (o->fhead - o->ftail == DIO_FRAMES) /* only with frames under 32 bytes */
            o->ftail++;
        o->fend[o->fhead++ % DIO_FRAMES] = (uint32_t)end;
    }
    return lost;
}

/* Write out (or, with no output, throw away) what the ring holds. Returns the bytes. */
static uint64_t drain(ring_t *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->pub_head, memory_order_acquire);
    if (head == tail)
        return 0;
    uint64_t k = atomic_load_explicit(&r->ftaken, memory_order_relaxed), frames;
    if (g.out.fd >= 0) {
        uint64_t off = tail & r->mask, len = head - tail;
        uint64_t first = len < r->size - off ? len : r->size - off;
        struct iovec iov[2] = { { r->mem + off, first }, { r->mem, len - first } };
        bool direct = dio_on(&g.out);
        uint64_t fstart = g.out.base + g.out.fill;
        frames = count_frames(r, k, tail, head);
        if (out_write(&g.out, iov, len > first ? 2 : 1)) {
            if (dio_on(&g.out))
                dio_note_frames(&g.out, r, k, tail, head, fstart, false);
        } else {
            uint64_t lost = direct && dio_on(&g.out)
                                ? dio_unwritten(&g.out) +
                                      dio_note_frames(&g.out, r, k, tail, head, fstart, true)
                                : frames;
            out_close(&g.out, false); /* the stream is cut mid-frame: no STOP */
            atomic_fetch_add_explicit(&g.discarded, lost, memory_order_relaxed);
        }
    } else {
        frames = count_frames(r, k, tail, head);
        atomic_fetch_add_explicit(&g.discarded, frames, memory_order_relaxed);
    }
    atomic_store_explicit(&r->ftaken, k + frames, memory_order_release);
    atomic_store_explicit(&r->tail, head, memory_order_release);
    return head - tail;
}

static bool any_ring_full(void)
{
    for (unsigned i = 0; i < g.n; i++) {
        ring_t *r = g.taps[i].ring;
        if (atomic_load_explicit(&r->pub_head, memory_order_acquire) -
                atomic_load_explicit(&r->tail, memory_order_relaxed) >
            r->wake_at)
            return true;
    }
    return false;
}

/*
 * The writer: drain every ring, then sleep. Under load it wakes every millisecond (or
 * when an I/O thread finds its ring a quarter full) and writes what a millisecond of
 * queries produced in one writev per ring; with little traffic it sleeps longer, up to
 * 100 ms, so an idle server does not spin.
 */
static void *writer_main(void *arg)
{
    (void)arg;
    int idle = 1;
    for (;;) {
        bool stop = atomic_load_explicit(&g.stop, memory_order_acquire);
        out_open(&g.out);
        uint64_t bytes = 0;
        for (unsigned i = 0; i < g.n; i++)
            bytes += drain(g.taps[i].ring);
        if (stop)
            break; /* the I/O threads had stopped: everything is out */
        int timeout;
        if (bytes >= 64 * 1024)
            timeout = idle = 1;
        else if (bytes)
            timeout = idle = 10;
        else
            timeout = idle = idle * 2 < 100 ? idle * 2 : 100;
        if (g.out.fd < 0 && timeout > 100)
            timeout = 100;
        if (timeout > 1 && dio_on(&g.out) && g.out.fill && !dio_flush(&g.out, true)) {
            /* not busy: the file gets its last frames now */
            atomic_fetch_add_explicit(&g.discarded, dio_unwritten(&g.out), memory_order_relaxed);
            out_close(&g.out, false);
        }
        atomic_store(&g.sleeping, true);
        if (!any_ring_full() && !atomic_load(&g.stop)) {
            struct pollfd p = { .fd = g.efd, .events = POLLIN };
            poll(&p, 1, timeout);
        }
        atomic_store(&g.sleeping, false);
        uint64_t v;
        ssize_t n = read(g.efd, &v, sizeof(v)); /* non-blocking: clears a wake-up */
        (void)n;
    }
    out_close(&g.out, true);
    return NULL;
}

static size_t ring_bytes(unsigned frames)
{
    size_t want = (size_t)frames * RING_PER_FRAME, size = RING_MIN;
    while (size < want)
        size *= 2;
    return size;
}

static int start_dnstap(const conf_t *conf, char *err, size_t errlen)
{
    g.out.path = xstrdup(conf->dnstap_path);
    g.out.socket = conf->dnstap_socket;
    if (!g.out.socket) { /* open the file now, for a clear error */
        out_open(&g.out);
        if (g.out.fd < 0) {
            snprintf(err, errlen, "logging.dnstap.file: cannot open %s: %s", conf->dnstap_path,
                     strerror(errno));
            return ERR_IO;
        }
    } else if (strlen(conf->dnstap_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "logging.dnstap.socket: path too long: %s", conf->dnstap_path);
        return ERR_IO;
    }
    g.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g.efd < 0) {
        snprintf(err, errlen, "logging.dnstap: eventfd: %s", strerror(errno));
        return ERR_IO;
    }
    g.ring_size = ring_bytes(conf->dnstap_queue);
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
    if (conf->dnstap_path && start_dnstap(conf, err, errlen) < 0) {
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
        t->ring = g.ring_size ? ring_new(g.ring_size) : NULL;
    }
    if (g.ring_size) {
        atomic_store(&g.stop, false);
        int rc = pthread_create(&g.thread, NULL, writer_main, NULL);
        if (rc) {
            snprintf(err, errlen, "logging.dnstap: cannot start the writer thread: %s",
                     strerror(rc));
            srv_tap_stop();
            return ERR_IO;
        }
        g.running = true;
    }
    return 0;
}

uint64_t srv_tap_discarded(void)
{
    return atomic_load_explicit(&g.discarded, memory_order_relaxed);
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

void srv_tap_batch_received(srv_tap_t *tap)
{
    srv_tap_clock(&tap->rx);
    tap->has_rx = true;
}

void srv_tap_query_time(srv_tap_t *tap, struct timespec *ts)
{
    if (tap->has_rx)
        *ts = tap->rx;
    else
        srv_tap_clock(ts);
}

void srv_tap_flush(srv_tap_t *tap)
{
    if (!tap)
        return;
    tap->has_rx = false;
    if (tap->logfd < 0 || tap->len == 0)
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
    if (g.running) { /* it writes what the rings hold, then STOP */
        atomic_store(&g.stop, true);
        uint64_t one = 1;
        ssize_t n = write(g.efd, &one, sizeof(one));
        (void)n;
        pthread_join(g.thread, NULL);
        g.running = false;
    }
    out_close(&g.out, true); /* opened at start, the writer never ran */
    for (unsigned i = 0; i < g.n; i++)
        ring_free(g.taps[i].ring);
    free(g.taps);
    g.taps = NULL;
    g.n = 0;
    g.ring_size = 0;
    free(g.out.path);
    xhuge_free(g.out.stage, HUGE_ROUND(DIO_STAGE));
    free(g.out.fend);
    g.out = (tap_out_t){ .fd = -1, .bfd = -1 };
    if (g.efd >= 0)
        close(g.efd);
    g.efd = -1;
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

/* "0" .. "255": the digits, then their count in the last byte. */
static const char dec3[256][4] = {
#define D1(n) { '0' + (n), 0, 0, 1 }
#define D2(n) { '0' + (n) / 10, '0' + (n) % 10, 0, 2 }
#define D3(n) { '0' + (n) / 100, '0' + (n) / 10 % 10, '0' + (n) % 10, 3 }
#define R10(D, n) D(n), D(n + 1), D(n + 2), D(n + 3), D(n + 4), D(n + 5), D(n + 6), D(n + 7), \
                  D(n + 8), D(n + 9)
    R10(D1, 0),
    R10(D2, 10), R10(D2, 20), R10(D2, 30), R10(D2, 40), R10(D2, 50), R10(D2, 60), R10(D2, 70),
    R10(D2, 80), R10(D2, 90),
    R10(D3, 100), R10(D3, 110), R10(D3, 120), R10(D3, 130), R10(D3, 140), R10(D3, 150),
    R10(D3, 160), R10(D3, 170), R10(D3, 180), R10(D3, 190), R10(D3, 200), R10(D3, 210),
    R10(D3, 220), R10(D3, 230), R10(D3, 240),
    D3(250), D3(251), D3(252), D3(253), D3(254), D3(255),
#undef R10
#undef D3
#undef D2
#undef D1
};

/* v < 256 (an IPv4 octet, a prefix length, a scope): digits from the table. */
static inline void put_small_uint(out_t *o, unsigned v)
{
    if (o->end - o->p < 3 || v > 255) {
        put_uint(o, v);
        return;
    }
    memcpy(o->p, dec3[v], 3); /* all three: what lands past the digits is past o->p */
    o->p += dec3[v][3];
}

static void put_addr4(out_t *o, const uint8_t *a)
{
    if (o->end - o->p < 16) {
        for (int i = 0; i < 4; i++) {
            if (i)
                put_mem(o, ".", 1);
            put_small_uint(o, a[i]);
        }
        return;
    }
    char *p = o->p;
    for (int i = 0; i < 4; i++) {
        memcpy(p, dec3[a[i]], 4); /* the count byte is overwritten by the dot */
        p += dec3[a[i]][3];
        *p++ = '.';
    }
    o->p = p - 1;
}

/* IPv6 text exactly as glibc's inet_ntop writes it (RFC 5952: lower-case hex without
 * leading zeros, the first longest run of two or more zero groups as "::", and the
 * IPv4-compatible and -mapped forms in dotted quads), without its sprintf per group:
 * inet_ntop was 2 % of the server's samples with IPv6 ECS logged. */
static void put_addr6(out_t *o, const uint8_t *a)
{
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    int best = -1, blen = 0, cur = -1, clen = 0;
    for (int i = 0; i < 8; i++) {
        w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
        if (w[i] == 0) {
            if (cur < 0) {
                cur = i;
                clen = 0;
            }
            if (++clen > blen) {
                best = cur;
                blen = clen;
            }
        } else {
            cur = -1;
        }
    }
    if (blen < 2)
        best = -1;
    char t[INET6_ADDRSTRLEN], *p = t;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + blen) {
            if (i == best)
                *p++ = ':';
            continue;
        }
        if (i)
            *p++ = ':';
        if (i == 6 && best == 0 && (blen == 6 || (blen == 5 && w[5] == 0xffff))) {
            put_mem(o, t, (size_t)(p - t));
            put_addr4(o, a + 12);
            return;
        }
        bool lead = true;
        for (int sh = 12; sh >= 0; sh -= 4) {
            unsigned d = w[i] >> sh & 15;
            if (d || !lead || sh == 0) {
                *p++ = hex[d];
                lead = false;
            }
        }
    }
    if (best >= 0 && best + blen == 8)
        *p++ = ':';
    put_mem(o, t, (size_t)(p - t));
}

static void put_addr(out_t *o, int family, const uint8_t *a)
{
    if (family == AF_INET)
        put_addr4(o, a);
    else
        put_addr6(o, a);
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

static inline uint32_t loc_text_slot(uint32_t loc)
{
    return (loc * 2654435761u) >> (32 - LOC_BITS);
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
 * decision text's time before this cache); the cache is 512 KiB per thread (8,192
 * entries of 64 bytes). */
static void put_loc_cached(out_t *o, srv_tap_t *t, const srv_tap_event_t *ev)
{
    if (!t || !ev->snap || !ev->snap->geo || ev->loc == 0) {
        put_loc(o, ev);
        return;
    }
    loc_text_t *c = &t->loc[loc_text_slot(ev->loc)];
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

void srv_tap_prefetch_loc(const srv_tap_t *t, uint32_t loc)
{
    __builtin_prefetch(&t->loc[loc_text_slot(loc)]);
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
        put_small_uint(&o, q->ecs.source);
        if (!ev->ecs_used)
            put_str(&o, "(unused)");
    }
    put_mem(&o, " scope=", 7);
    put_small_uint(&o, ev->scope);
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
    srv_dnstap_len_t len;
    srv_dnstap_measure(m, &len);
    if (ring_put(t->ring, m, &len))
        SRV_STAT_INC(w->stats.dnstap_sent);
    else
        SRV_STAT_INC(w->stats.dnstap_dropped);
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
    if (!t->ring)
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
