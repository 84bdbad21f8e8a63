/* Health checks: the checker thread, the states, overrides, and applying them to the
 * published snapshot's routes (health.h). */
#include "ctl/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "ctl/ctl_internal.h"
#include "dns/dname.h"

#define HTTP_MAX 16384        /* bytes of an HTTP response read (status line, head, body) */
#define FILE_MAX 65536        /* bytes of a state file read */
#define RETRY_MS 20           /* retry applying a change this often while a reload runs */

/* ---- the threshold state machine and the file format (pure) ------------------------- */

void hc_fsm_init(hc_fsm_t *f)
{
    f->up = true;
    f->known = false;
    f->streak = 0;
}

bool hc_fsm_step(hc_fsm_t *f, bool ok, unsigned up_thresh, unsigned down_thresh)
{
    if (!f->known) {
        f->known = true;
        f->streak = 0;
        bool changed = f->up != ok;
        f->up = ok;
        return changed;
    }
    if (ok == f->up) {
        f->streak = 0;
        return false;
    }
    if (++f->streak < (ok ? up_thresh : down_thresh))
        return false;
    f->up = ok;
    f->streak = 0;
    return true;
}

/* "up"/"down" (any case) as 1/0, else -1. */
static int word_state(const char *w, size_t n)
{
    if (n == 2 && !strncasecmp(w, "up", 2))
        return 1;
    if (n == 4 && !strncasecmp(w, "down", 4))
        return 0;
    return -1;
}

int hc_file_state(const char *text, size_t len, const char *target)
{
    int global = -1, own = -1;
    size_t tlen = strlen(target);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(le - p));
        const char *e = hash ? hash : le;
        /* Up to two words. */
        const char *w[3];
        size_t wl[3], nw = 0;
        for (const char *q = p; q < e && nw < 3;) {
            while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            if (q >= e)
                break;
            const char *s = q;
            while (q < e && *q != ' ' && *q != '\t' && *q != '\r')
                q++;
            w[nw] = s;
            wl[nw++] = (size_t)(q - s);
        }
        if (nw == 1 && word_state(w[0], wl[0]) >= 0)
            global = word_state(w[0], wl[0]);
        else if (nw == 2 && wl[0] == tlen && !memcmp(w[0], target, tlen) &&
                 word_state(w[1], wl[1]) >= 0)
            own = word_state(w[1], wl[1]);
        p = nl ? nl + 1 : end;
    }
    return own >= 0 ? own : global;
}

/* ---- state ---------------------------------------------------------------------------- */

enum { PH_IDLE, PH_CONNECT, PH_SEND, PH_READ };
enum { OV_PAIR, OV_ADDR, OV_MON };

/* One checked (monitor, target) pair. */
typedef struct {
    char *mon;                /* monitor name */
    char *addr;               /* target: a normalized address, or a file monitor's token */
    conf_monitor_t m;         /* a copy of the monitor's settings (strings owned) */
    int family;               /* AF_INET / AF_INET6, 0 when addr is not an address */
    uint8_t a[16];
    hc_fsm_t fsm;
    bool eff_up;              /* the state applied to the routes (checks and overrides) */
    bool used;
    uint64_t flaps;           /* checked-state changes (the first result excluded) */
    uint64_t checks, failures;
    bool last_ok;
    char last[200];           /* the last result, "" before the first */
    time_t last_at, changed_at;
    /* The check in progress. */
    int phase;
    int fd;
    uint64_t started_ms, deadline_ms, next_ms;
    char *buf;                /* http: request, then response; dns: the query */
    size_t blen, sent;
    uint16_t qid;
} target_t;

typedef struct {
    char *what;               /* as the operator gave it, normalized */
    int kind;
    char *mon, *addr;         /* the parts (NULL when absent) */
    bool up;
    time_t at;
} ovr_t;

/* A route of the bound snapshot and the target of each of its answers (NULL: unchecked). */
typedef struct {
    const pol_route_t *r;
    target_t **t;
} bound_t;

static struct {
    pthread_mutex_t lock;
    target_t **t;
    size_t n;
    ovr_t *o;
    size_t no;
    bound_t *b;
    size_t nb;
    const snapshot_t *bound;  /* the snapshot b points into */
    size_t fail_open;         /* bound routes with every answer down */
    uint64_t gen;             /* bumped when targets are added or freed */
    bool dirty;               /* effective states changed, not yet applied */
    bool stop;
    int wake[2];
    pthread_t th;
    bool running;
    uint64_t rng;
} hc = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = { -1, -1 } };

static const char *const type_names[] = { "", "tcp", "http", "dns", "file" };

static uint64_t now_ms(void)
{
    return ctl_now_ms();
}

static uint16_t rand16(void)
{
    if (!hc.rng)
        hc.rng = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    hc.rng ^= hc.rng << 13;
    hc.rng ^= hc.rng >> 7;
    hc.rng ^= hc.rng << 17;
    return (uint16_t)(hc.rng >> 16);
}

static void wake(void)
{
    if (hc.wake[1] >= 0) {
        ssize_t n;
        do
            n = write(hc.wake[1], "w", 1);
        while (n < 0 && errno == EINTR);
    }
}

/* Normalize an address's text ("::0001" -> "::1"); other text is copied. */
static void normalize(const char *s, char *out, size_t len, int *family, uint8_t a[16])
{
    uint8_t tmp[16];
    int fam = 0;
    if (!a)
        a = tmp;
    memset(a, 0, 16);
    if (inet_pton(AF_INET, s, a) == 1)
        fam = AF_INET;
    else if (inet_pton(AF_INET6, s, a) == 1)
        fam = AF_INET6;
    if (family)
        *family = fam;
    if (!fam || !inet_ntop(fam, a, out, (socklen_t)len))
        snprintf(out, len, "%s", s);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void mon_copy(conf_monitor_t *d, const conf_monitor_t *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->path = dup_or_null(s->path);
    d->host = dup_or_null(s->host);
    d->body = dup_or_null(s->body);
    d->qname = dup_or_null(s->qname);
    d->file = dup_or_null(s->file);
}

static void mon_clear(conf_monitor_t *m)
{
    free(m->name);
    free(m->path);
    free(m->host);
    free(m->body);
    free(m->qname);
    free(m->file);
    memset(m, 0, sizeof(*m));
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The settings that decide what a check does (the line does not). */
static bool mon_equal(const conf_monitor_t *a, const conf_monitor_t *b)
{
    return a->type == b->type && a->port == b->port && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->up == b->up && a->down == b->down &&
           a->expect == b->expect && a->qtype == b->qtype && a->rcode == b->rcode &&
           str_eq(a->path, b->path) && str_eq(a->host, b->host) && str_eq(a->body, b->body) &&
           str_eq(a->qname, b->qname) && str_eq(a->file, b->file);
}

static void check_abort(target_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    free(t->buf);
    t->buf = NULL;
    t->blen = t->sent = 0;
    t->phase = PH_IDLE;
}

/* A first check soon, spread over up to a second so that a reload does not fire every
 * check at once. */
static void schedule_first(target_t *t, uint64_t now)
{
    uint64_t spread = t->m.interval_ms < 1000 ? t->m.interval_ms : 1000;
    t->next_ms = now + (spread ? rand16() % spread : 0);
}

static void target_reset(target_t *t, const conf_monitor_t *m)
{
    check_abort(t);
    mon_clear(&t->m);
    mon_copy(&t->m, m);
    hc_fsm_init(&t->fsm);
    t->last[0] = 0;
    t->last_at = 0;
    t->changed_at = time(NULL);
    schedule_first(t, now_ms());
}

static target_t *target_new(const conf_monitor_t *m, const char *addr)
{
    target_t *t = xcalloc(1, sizeof(*t));
    t->mon = xstrdup(m->name);
    char norm[256];
    normalize(addr, norm, sizeof(norm), &t->family, t->a);
    t->addr = xstrdup(norm);
    t->fd = -1;
    t->eff_up = true;
    target_reset(t, m);
    return t;
}

static void target_free(target_t *t)
{
    if (!t)
        return;
    check_abort(t);
    mon_clear(&t->m);
    free(t->mon);
    free(t->addr);
    free(t);
}

static target_t *target_find(const char *mon, const char *addr)
{
    for (size_t i = 0; i < hc.n; i++)
        if (!strcmp(hc.t[i]->mon, mon) && !strcmp(hc.t[i]->addr, addr))
            return hc.t[i];
    return NULL;
}

static bool ovr_matches(const ovr_t *o, const target_t *t)
{
    return (o->kind == OV_PAIR && !strcmp(o->mon, t->mon) && !strcmp(o->addr, t->addr)) ||
           (o->kind == OV_ADDR && !strcmp(o->addr, t->addr)) ||
           (o->kind == OV_MON && !strcmp(o->mon, t->mon));
}

/* The override that applies to t (most specific first), or NULL. */
static const ovr_t *override_of(const target_t *t)
{
    const ovr_t *best = NULL;
    for (size_t i = 0; i < hc.no; i++) {
        const ovr_t *o = &hc.o[i];
        if (ovr_matches(o, t) && (!best || o->kind < best->kind))
            best = o;
    }
    return best;
}

static bool effective_up(const target_t *t)
{
    const ovr_t *o = override_of(t);
    return o ? o->up : t->fsm.up;
}

/* Recompute the effective states; true when one changed. Changes are logged when
 * verbose (after an override; a check's result is logged by finish()). Health lock held. */
static bool refresh_effective(bool verbose)
{
    bool changed = false;
    for (size_t i = 0; i < hc.n; i++) {
        target_t *t = hc.t[i];
        bool up = effective_up(t);
        if (up == t->eff_up)
            continue;
        const ovr_t *o = override_of(t);
        if (verbose)
            log_info("health: %s %s is now %s (%s%s)", t->mon, t->addr, up ? "up" : "down",
                     o ? "override on " : "as checked", o ? o->what : "");
        t->eff_up = up;
        changed = true;
    }
    return changed;
}

/* Mark the down answers of the bound snapshot's routes. Reload lock and health lock held;
 * s is the bound snapshot. */
static void apply(snapshot_t *s)
{
    size_t fail_open = 0;
    for (size_t i = 0; i < hc.nb; i++) {
        const pol_route_t *r = hc.b[i].r;
        uint64_t down = 0;
        for (uint16_t j = 0; j < r->nanswers; j++)
            if (hc.b[i].t[j] && !hc.b[i].t[j]->eff_up)
                down |= (uint64_t)1 << j;
        uint64_t all = r->nanswers >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << r->nanswers) - 1;
        fail_open += down == all;
        if (pol_route_set_down(s->pol, r, down) < 0)
            log_err("health: cannot apply the state of route %s (a bug)", r->conf->name);
    }
    hc.fail_open = fail_open;
    hc.dirty = false;
}

/* Apply to the published snapshot if it is the bound one. Both locks held. */
static void apply_current(void)
{
    const snapshot_t *cur = snapshot_current();
    if (cur && cur == hc.bound)
        apply((snapshot_t *)cur);
}

/* ---- binding to a snapshot ------------------------------------------------------------ */

static void free_bindings(void)
{
    for (size_t i = 0; i < hc.nb; i++)
        free(hc.b[i].t);
    free(hc.b);
    hc.b = NULL;
    hc.nb = 0;
}

void hc_prepare(snapshot_t *s)
{
    pthread_mutex_lock(&hc.lock);
    for (size_t i = 0; i < hc.n; i++)
        hc.t[i]->used = false;
    size_t nr = pol_set_route_count(s->pol);
    bound_t *b = xcalloc(nr ? nr : 1, sizeof(*b));
    size_t nb = 0;
    bool added = false;
    for (size_t ri = 0; ri < nr; ri++) {
        const pol_route_t *r = pol_set_route(s->pol, ri);
        const conf_route_t *cr = r->conf;
        target_t **tt = NULL;
        for (size_t i = 0; i < cr->nanswers; i++) {
            const conf_monitor_t *m = conf_answer_monitor(s->conf, cr, i);
            if (!m)
                continue;
            const conf_answer_t *a = &cr->answers[i];
            char norm[256];
            normalize(a->target ? a->target : a->value, norm, sizeof(norm), NULL, NULL);
            target_t *t = target_find(m->name, norm);
            if (!t) {
                t = target_new(m, norm);
                hc.t = xrealloc(hc.t, (hc.n + 1) * sizeof(*hc.t));
                hc.t[hc.n++] = t;
                added = true;
                log_info("health: checking %s with %s monitor %s", t->addr, type_names[m->type],
                         m->name);
            } else if (!t->used && !mon_equal(&t->m, m)) {
                log_info("health: monitor %s changed: %s starts afresh", m->name, t->addr);
                target_reset(t, m);
                added = true;
            }
            t->used = true;
            if (!tt)
                tt = xcalloc(cr->nanswers, sizeof(*tt));
            tt[i] = t;
        }
        if (tt) {
            b[nb].r = r;
            b[nb++].t = tt;
        }
    }
    /* Drop the pairs no route uses any more. */
    size_t k = 0;
    for (size_t i = 0; i < hc.n; i++) {
        if (hc.t[i]->used) {
            hc.t[k++] = hc.t[i];
        } else {
            log_info("health: no longer checking %s (monitor %s)", hc.t[i]->addr, hc.t[i]->mon);
            target_free(hc.t[i]);
            added = true;
        }
    }
    hc.n = k;
    if (added)
        hc.gen++;
    free_bindings();
    hc.b = b;
    hc.nb = nb;
    hc.bound = s;
    refresh_effective(true);
    apply(s);
    pthread_mutex_unlock(&hc.lock);
    wake();
}

/* ---- checks --------------------------------------------------------------------------- */

/* Record a result; the check is over. Health lock held. */
static void finish(target_t *t, bool ok, uint64_t now, const char *fmt, ...)
    ATTR_PRINTF(4, 5);
static void finish(target_t *t, bool ok, uint64_t now, const char *fmt, ...)
{
    check_abort(t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->last, sizeof(t->last), fmt, ap);
    va_end(ap);
    t->last_ok = ok;
    t->last_at = time(NULL);
    t->checks++;
    t->failures += !ok;
    /* Keep the cadence: the next check is an interval after this one started. */
    uint64_t next = t->started_ms + t->m.interval_ms;
    t->next_ms = next > now ? next : now;
    bool first = !t->fsm.known;
    if (hc_fsm_step(&t->fsm, ok, t->m.up, t->m.down)) {
        t->changed_at = t->last_at;
        if (!first)
            t->flaps++;
        const ovr_t *o = override_of(t);
        log_info("health: %s %s %s%s: %s%s%s", t->mon, t->addr, t->fsm.up ? "up" : "down",
                 first ? " (first result)" : "", t->last, o ? "; still overridden by " : "",
                 o ? o->what : "");
    }
    if (refresh_effective(false))
        hc.dirty = true;
}

static void check_file(target_t *t, uint64_t now)
{
    FILE *f = fopen(t->m.file, "rb");
    if (!f) {
        finish(t, false, now, "cannot open %s: %s", t->m.file, strerror(errno));
        return;
    }
    char *text = xmalloc(FILE_MAX);
    size_t n = fread(text, 1, FILE_MAX, f);
    bool err = ferror(f);
    fclose(f);
    int st = err ? -1 : hc_file_state(text, n, t->addr);
    free(text);
    if (err)
        finish(t, false, now, "cannot read %s", t->m.file);
    else if (st < 0)
        finish(t, false, now, "%s says nothing about %s", t->m.file, t->addr);
    else
        finish(t, st == 1, now, "%s says %s", t->m.file, st ? "up" : "down");
}

static socklen_t target_sockaddr(const target_t *t, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (t->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(t->m.port);
        memcpy(&sin->sin_addr, t->a, 4);
        return sizeof(*sin);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(t->m.port);
    memcpy(&sin6->sin6_addr, t->a, 16);
    return sizeof(*sin6);
}

static void http_request(target_t *t)
{
    char host[300];
    if (t->m.host)
        snprintf(host, sizeof(host), "%s", t->m.host);
    else
        snprintf(host, sizeof(host), t->family == AF_INET6 ? "[%s]" : "%s", t->addr);
    char port[8] = "";
    if (t->m.port != 80)
        snprintf(port, sizeof(port), ":%u", t->m.port);
    size_t cap = strlen(t->m.path) + strlen(host) + 128;
    t->buf = xmalloc(cap > HTTP_MAX + 1 ? cap : HTTP_MAX + 1);
    t->blen = (size_t)snprintf(t->buf, cap,
                               "GET %s HTTP/1.0\r\nHost: %s%s\r\nUser-Agent: geocast-health\r\n"
                               "Accept: */*\r\nConnection: close\r\n\r\n",
                               t->m.path, host, port);
    t->sent = 0;
    t->phase = PH_SEND;
}

static void dns_query(target_t *t, uint64_t now)
{
    uint8_t name[DNS_NAME_MAX];
    int nl = dns_dname_from_text(t->m.qname, strlen(t->m.qname), (const uint8_t *)"", name);
    if (nl < 0) {
        finish(t, false, now, "bad name %s", t->m.qname);
        return;
    }
    t->buf = xmalloc(12 + (size_t)nl + 4);
    uint8_t *p = (uint8_t *)t->buf;
    t->qid = rand16();
    memset(p, 0, 12);
    p[0] = (uint8_t)(t->qid >> 8);
    p[1] = (uint8_t)t->qid;
    p[5] = 1; /* QDCOUNT */
    memcpy(p + 12, name, (size_t)nl);
    p += 12 + nl;
    p[0] = (uint8_t)(t->m.qtype >> 8);
    p[1] = (uint8_t)t->m.qtype;
    p[2] = 0;
    p[3] = 1; /* IN */
    t->blen = 12 + (size_t)nl + 4;
    t->sent = 0;
    t->phase = PH_SEND;
}

static void check_start(target_t *t, uint64_t now)
{
    t->started_ms = now;
    t->deadline_ms = now + t->m.timeout_ms;
    if (t->m.type == CONF_MON_FILE) {
        check_file(t, now);
        return;
    }
    if (!t->family) {
        finish(t, false, now, "'%s' is not an address", t->addr);
        return;
    }
    bool udp = t->m.type == CONF_MON_DNS;
    t->fd = socket(t->family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0) {
        finish(t, false, now, "socket: %s", strerror(errno));
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = target_sockaddr(t, &ss);
    if (connect(t->fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS) {
            finish(t, false, now, "connect: %s", strerror(errno));
            return;
        }
        t->phase = PH_CONNECT;
        return;
    }
    if (t->m.type == CONF_MON_TCP)
        finish(t, true, now, "connected");
    else if (t->m.type == CONF_MON_HTTP)
        http_request(t);
    else
        dns_query(t, now);
}

/* Judge an HTTP response read so far. Returns 1 ok, 0 failed, -1 undecided (read more);
 * eof: nothing more will come. */
static int http_judge(target_t *t, bool eof, char *why, size_t wlen)
{
    t->buf[t->blen] = 0;
    char *eol = strstr(t->buf, "\r\n");
    if (!eol && !eof && t->blen < HTTP_MAX)
        return -1;
    unsigned status = 0;
    if (strncmp(t->buf, "HTTP/", 5) || sscanf(t->buf, "HTTP/%*u.%*u %u", &status) != 1) {
        snprintf(why, wlen, "not an HTTP response");
        return 0;
    }
    if (status != t->m.expect) {
        snprintf(why, wlen, "status %u, expected %u", status, t->m.expect);
        return 0;
    }
    if (!t->m.body) {
        snprintf(why, wlen, "status %u", status);
        return 1;
    }
    char *body = strstr(t->buf, "\r\n\r\n");
    if (body && memmem(body + 4, t->blen - (size_t)(body + 4 - t->buf), t->m.body,
                       strlen(t->m.body))) {
        snprintf(why, wlen, "status %u, body matches", status);
        return 1;
    }
    if (!eof && t->blen < HTTP_MAX)
        return -1;
    snprintf(why, wlen, "status %u, the body lacks '%s'", status, t->m.body);
    return 0;
}

/* Move a check on after poll said its socket is ready. */
static void check_progress(target_t *t, short revents, uint64_t now)
{
    if (t->phase == PH_CONNECT) {
        int e = 0;
        socklen_t el = sizeof(e);
        if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
            e = errno;
        if (e) {
            finish(t, false, now, "connect: %s", strerror(e));
            return;
        }
        if (!(revents & POLLOUT))
            return;
        if (t->m.type == CONF_MON_TCP) {
            finish(t, true, now, "connected");
            return;
        }
        if (t->m.type == CONF_MON_HTTP)
            http_request(t);
        else
            dns_query(t, now);
        if (t->phase != PH_SEND)
            return;
    }
    if (t->phase == PH_SEND) {
        while (t->sent < t->blen) {
            ssize_t n = send(t->fd, t->buf + t->sent, t->blen - t->sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0) {
                finish(t, false, now, "send: %s", strerror(errno));
                return;
            }
            t->sent += (size_t)n;
            if (t->m.type == CONF_MON_DNS)
                break; /* one datagram */
        }
        t->phase = PH_READ;
        if (t->m.type == CONF_MON_HTTP)
            t->blen = 0;
        return; /* wait for POLLIN */
    }
    if (t->phase != PH_READ)
        return;
    if (t->m.type == CONF_MON_DNS) {
        uint8_t r[512];
        ssize_t n = recv(t->fd, r, sizeof(r), 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n < 0) {
            finish(t, false, now, "recv: %s", strerror(errno));
            return;
        }
        if (n < 12 || ((unsigned)r[0] << 8 | r[1]) != t->qid || !(r[2] & 0x80))
            return; /* not our answer: keep waiting until the deadline */
        unsigned rcode = r[3] & 0x0f;
        static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL",
                                             "NXDOMAIN", "NOTIMP", "REFUSED" };
        char got[16], want[16];
        snprintf(got, sizeof(got), "%s", rcode < 6 ? names[rcode] : "");
        if (!got[0])
            snprintf(got, sizeof(got), "rcode %u", rcode);
        snprintf(want, sizeof(want), "%s", t->m.rcode < 6 ? names[t->m.rcode] : "");
        if (!want[0])
            snprintf(want, sizeof(want), "rcode %u", t->m.rcode);
        if (rcode == t->m.rcode)
            finish(t, true, now, "%s", got);
        else
            finish(t, false, now, "%s, expected %s", got, want);
        return;
    }
    /* http */
    bool eof = false;
    while (t->blen < HTTP_MAX) {
        ssize_t n = recv(t->fd, t->buf + t->blen, HTTP_MAX - t->blen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            finish(t, false, now, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        t->blen += (size_t)n;
    }
    char why[160];
    int v = http_judge(t, eof, why, sizeof(why));
    if (v >= 0)
        finish(t, v == 1, now, "%s", why);
    else if (eof)
        finish(t, false, now, "the connection closed mid-response");
}

/* ---- the thread ------------------------------------------------------------------------ */

static void *hc_main(void *arg)
{
    (void)arg;
    struct pollfd *pfd = NULL;
    target_t **who = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&hc.lock);
    while (!hc.stop) {
        uint64_t now = now_ms();
        for (size_t i = 0; i < hc.n; i++) {
            target_t *t = hc.t[i];
            if (t->phase == PH_IDLE && now >= t->next_ms)
                check_start(t, now);
            else if (t->phase != PH_IDLE && now >= t->deadline_ms)
                finish(t, false, now, "no answer within %ums", t->m.timeout_ms);
        }
        int timeout = 1000;
        if (hc.dirty) {
            if (ctl_reload_trylock() == 0) {
                apply_current();
                ctl_reload_unlock();
            } else {
                timeout = RETRY_MS;
            }
        }
        if (cap < hc.n + 1) {
            cap = hc.n + 16;
            pfd = xrealloc(pfd, cap * sizeof(*pfd));
            who = xrealloc(who, cap * sizeof(*who));
        }
        size_t np = 0;
        pfd[np++] = (struct pollfd){ .fd = hc.wake[0], .events = POLLIN };
        for (size_t i = 0; i < hc.n; i++) {
            target_t *t = hc.t[i];
            uint64_t when = t->phase == PH_IDLE ? t->next_ms : t->deadline_ms;
            uint64_t left = when > now ? when - now : 0;
            if (left < (uint64_t)timeout)
                timeout = (int)left;
            if (t->phase == PH_IDLE)
                continue;
            who[np] = t;
            pfd[np++] = (struct pollfd){
                .fd = t->fd, .events = t->phase == PH_READ ? POLLIN : POLLOUT,
            };
        }
        uint64_t gen = hc.gen;
        pthread_mutex_unlock(&hc.lock);
        int rc = poll(pfd, np, timeout);
        pthread_mutex_lock(&hc.lock);
        if (rc <= 0)
            continue;
        if (pfd[0].revents) {
            char drain[64];
            while (read(hc.wake[0], drain, sizeof(drain)) > 0)
                ;
        }
        if (gen != hc.gen)
            continue; /* targets came or went: the entries may be stale, poll again */
        now = now_ms();
        for (size_t i = 1; i < np; i++)
            if (pfd[i].revents && who[i]->fd == pfd[i].fd && who[i]->phase != PH_IDLE)
                check_progress(who[i], pfd[i].revents, now);
    }
    pthread_mutex_unlock(&hc.lock);
    free(pfd);
    free(who);
    return NULL;
}

int hc_start(char *err, size_t errlen)
{
    if (pipe2(hc.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "health: pipe: %s", strerror(errno));
        return ERR_IO;
    }
    ctl_reload_lock();
    snapshot_t *s = (snapshot_t *)snapshot_current();
    if (s)
        hc_prepare(s);
    ctl_reload_unlock();
    hc.stop = false;
    if (pthread_create(&hc.th, NULL, hc_main, NULL) != 0) {
        snprintf(err, errlen, "health: cannot start a thread");
        hc_stop();
        return ERR_NOMEM;
    }
    hc.running = true;
    return 0;
}

void hc_stop(void)
{
    pthread_mutex_lock(&hc.lock);
    hc.stop = true;
    pthread_mutex_unlock(&hc.lock);
    wake();
    if (hc.running)
        pthread_join(hc.th, NULL);
    hc.running = false;
    pthread_mutex_lock(&hc.lock);
    for (size_t i = 0; i < hc.n; i++)
        target_free(hc.t[i]);
    free(hc.t);
    hc.t = NULL;
    hc.n = 0;
    free_bindings();
    hc.bound = NULL;
    for (size_t i = 0; i < hc.no; i++) {
        free(hc.o[i].what);
        free(hc.o[i].mon);
        free(hc.o[i].addr);
    }
    free(hc.o);
    hc.o = NULL;
    hc.no = 0;
    for (int i = 0; i < 2; i++) {
        if (hc.wake[i] >= 0)
            close(hc.wake[i]);
        hc.wake[i] = -1;
    }
    pthread_mutex_unlock(&hc.lock);
}

/* ---- overrides ----------------------------------------------------------------------- */

static bool is_monitor(const char *name)
{
    const snapshot_t *s = hc.bound;
    if (s && conf_monitor_find(s->conf, name))
        return true;
    for (size_t i = 0; i < hc.n; i++)
        if (!strcmp(hc.t[i]->mon, name))
            return true;
    return false;
}

int hc_set_state(const char *what, const char *state, FILE *out, char *err, size_t errlen)
{
    int want = !strcmp(state, "up")     ? 1
               : !strcmp(state, "down") ? 0
               : !strcmp(state, "auto") ? -1
                                        : -2;
    if (want == -2) {
        snprintf(err, errlen, "bad state '%s' (up, down or auto)", state);
        return ERR_INVAL;
    }
    if (strlen(what) > 250) {
        snprintf(err, errlen, "name too long");
        return ERR_INVAL;
    }
    ctl_reload_lock();
    pthread_mutex_lock(&hc.lock);
    ovr_t o = { 0 };
    char norm[256];
    const char *colon = strchr(what, ':');
    char mon[256] = "";
    if (colon && (size_t)(colon - what) < sizeof(mon)) {
        memcpy(mon, what, (size_t)(colon - what));
        mon[colon - what] = 0;
    }
    if (is_monitor(what)) {
        o.kind = OV_MON;
        o.mon = xstrdup(what);
        o.what = xstrdup(what);
    } else if (colon && colon[1] && is_monitor(mon)) {
        normalize(colon + 1, norm, sizeof(norm), NULL, NULL);
        o.kind = OV_PAIR;
        o.mon = xstrdup(mon);
        o.addr = xstrdup(norm);
        size_t n = strlen(mon) + strlen(norm) + 2;
        o.what = xmalloc(n);
        snprintf(o.what, n, "%s:%s", mon, norm);
    } else {
        normalize(what, norm, sizeof(norm), NULL, NULL);
        o.kind = OV_ADDR;
        o.addr = xstrdup(norm);
        o.what = xstrdup(norm);
    }
    size_t matched = 0;
    for (size_t i = 0; i < hc.n; i++)
        matched += ovr_matches(&o, hc.t[i]);
    size_t at;
    for (at = 0; at < hc.no; at++)
        if (!strcmp(hc.o[at].what, o.what))
            break;
    int rc = 0;
    if (want == -1) {
        if (at < hc.no) {
            free(hc.o[at].what);
            free(hc.o[at].mon);
            free(hc.o[at].addr);
            hc.o[at] = hc.o[--hc.no];
            fprintf(out, "%s: override removed\n", o.what);
            log_info("health: override on %s removed", o.what);
        } else {
            fprintf(out, "%s: no override was set\n", o.what);
        }
    } else if (!matched && o.kind != OV_MON) {
        snprintf(err, errlen, "nothing checks '%s' (give a monitor, an address or "
                 "MONITOR:ADDRESS from `geocastctl state`)", what);
        rc = ERR_NOTFOUND;
    } else {
        o.up = want == 1;
        o.at = time(NULL);
        if (at < hc.no) {
            hc.o[at].up = o.up;
            hc.o[at].at = o.at;
        } else {
            hc.o = xrealloc(hc.o, (hc.no + 1) * sizeof(*hc.o));
            hc.o[hc.no++] = (ovr_t){ .what = xstrdup(o.what), .kind = o.kind,
                                     .mon = dup_or_null(o.mon), .addr = dup_or_null(o.addr),
                                     .up = o.up, .at = o.at };
        }
        fprintf(out, "%s: override %s\n", what, state);
        log_info("health: override on %s: %s", what, state);
    }
    if (rc == 0) {
        refresh_effective(true);
        apply_current();
        for (size_t i = 0; i < hc.n; i++) {
            const target_t *t = hc.t[i];
            if (!ovr_matches(&o, t))
                continue;
            const ovr_t *eff = override_of(t);
            fprintf(out, "  %s %s: %s (%s%s)\n", t->mon, t->addr, t->eff_up ? "up" : "down",
                    eff ? "override on " : "checked", eff ? eff->what : "");
        }
    }
    free(o.what);
    free(o.mon);
    free(o.addr);
    pthread_mutex_unlock(&hc.lock);
    ctl_reload_unlock();
    return rc;
}

/* ---- state and metrics ---------------------------------------------------------------- */

static void fmt_when(time_t t, time_t now, char *buf, size_t len)
{
    struct tm tm;
    char iso[32];
    if (t == 0 || !gmtime_r(&t, &tm) || !strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
        snprintf(buf, len, "never");
        return;
    }
    snprintf(buf, len, "%s (%llds ago)", iso, (long long)(now - t));
}


void hc_write_state(FILE *f, bool json)
{
    pthread_mutex_lock(&hc.lock);
    time_t now = time(NULL);
    if (json) {
        fprintf(f, "{\"targets\":[");
        for (size_t i = 0; i < hc.n; i++) {
            const target_t *t = hc.t[i];
            const ovr_t *o = override_of(t);
            fprintf(f, "%s{\"monitor\":", i ? "," : "");
            json_str(f, t->mon);
            fprintf(f, ",\"type\":\"%s\",\"target\":", type_names[t->m.type]);
            json_str(f, t->addr);
            fprintf(f, ",\"state\":\"%s\",\"checked\":\"%s\",\"override\":",
                    t->eff_up ? "up" : "down",
                    !t->fsm.known ? "unknown" : t->fsm.up ? "up" : "down");
            if (o) {
                fprintf(f, "{\"on\":");
                json_str(f, o->what);
                fprintf(f, ",\"state\":\"%s\"}", o->up ? "up" : "down");
            } else {
                fprintf(f, "null");
            }
            fprintf(f, ",\"last_result\":");
            if (t->last_at) {
                fprintf(f, "{\"ok\":%s,\"detail\":", t->last_ok ? "true" : "false");
                json_str(f, t->last);
                fprintf(f, ",\"at\":%lld}", (long long)t->last_at);
            } else {
                fprintf(f, "null");
            }
            fprintf(f, ",\"last_change\":%lld,\"flaps\":%llu,\"checks\":%llu,\"failures\":%llu}",
                    (long long)t->changed_at, (unsigned long long)t->flaps,
                    (unsigned long long)t->checks, (unsigned long long)t->failures);
        }
        fprintf(f, "],\"overrides\":[");
        for (size_t i = 0; i < hc.no; i++) {
            fprintf(f, "%s{\"on\":", i ? "," : "");
            json_str(f, hc.o[i].what);
            fprintf(f, ",\"state\":\"%s\",\"at\":%lld}", hc.o[i].up ? "up" : "down",
                    (long long)hc.o[i].at);
        }
        fprintf(f, "],\"fail_open_routes\":%zu}\n", hc.fail_open);
        pthread_mutex_unlock(&hc.lock);
        return;
    }
    if (hc.n == 0)
        fprintf(f, "no monitored answers\n");
    else
        fprintf(f, "%-12s %-5s %-20s %-5s %-7s %-20s %-5s %-34s %s\n", "MONITOR", "TYPE", "TARGET",
                "STATE", "CHECKED", "OVERRIDE", "FLAPS", "LAST CHANGE", "LAST RESULT");
    for (size_t i = 0; i < hc.n; i++) {
        const target_t *t = hc.t[i];
        const ovr_t *o = override_of(t);
        char ov[300], changed[64], last[300], when[64];
        if (o)
            snprintf(ov, sizeof(ov), "%s(%s)", o->up ? "up" : "down", o->what);
        else
            snprintf(ov, sizeof(ov), "-");
        fmt_when(t->changed_at, now, changed, sizeof(changed));
        if (t->last_at) {
            fmt_when(t->last_at, now, when, sizeof(when));
            snprintf(last, sizeof(last), "%s: %s, %s", t->last_ok ? "ok" : "fail", t->last, when);
        } else {
            snprintf(last, sizeof(last), "none yet");
        }
        fprintf(f, "%-12s %-5s %-20s %-5s %-7s %-20s %-5llu %-34s %s\n", t->mon,
                type_names[t->m.type], t->addr, t->eff_up ? "up" : "down",
                !t->fsm.known ? "unknown" : t->fsm.up ? "up" : "down", ov,
                (unsigned long long)t->flaps, changed, last);
    }
    for (size_t i = 0; i < hc.no; i++) {
        char when[64];
        fmt_when(hc.o[i].at, now, when, sizeof(when));
        fprintf(f, "override %s %s (set %s)\n", hc.o[i].what, hc.o[i].up ? "up" : "down", when);
    }
    if (hc.fail_open)
        fprintf(f, "%zu route%s with every answer down: serving all of them (fail open)\n",
                hc.fail_open, hc.fail_open == 1 ? "" : "s");
    pthread_mutex_unlock(&hc.lock);
}

/* A Prometheus label value: escape \, " and newline. */
static void label(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

void hc_write_metrics(FILE *f)
{
    pthread_mutex_lock(&hc.lock);
    fprintf(f, "# HELP geocast_monitor_up 1 when the monitored target is up (checks and "
               "overrides), 0 when down.\n# TYPE geocast_monitor_up gauge\n");
    for (size_t i = 0; i < hc.n; i++) {
        fprintf(f, "geocast_monitor_up{monitor=\"");
        label(f, hc.t[i]->mon);
        fprintf(f, "\",target=\"");
        label(f, hc.t[i]->addr);
        fprintf(f, "\"} %d\n", hc.t[i]->eff_up ? 1 : 0);
    }
    fprintf(f, "# HELP geocast_monitor_flaps_total Changes of the checked state (after the "
               "thresholds; the first result excluded).\n"
               "# TYPE geocast_monitor_flaps_total counter\n");
    for (size_t i = 0; i < hc.n; i++) {
        fprintf(f, "geocast_monitor_flaps_total{monitor=\"");
        label(f, hc.t[i]->mon);
        fprintf(f, "\",target=\"");
        label(f, hc.t[i]->addr);
        fprintf(f, "\"} %llu\n", (unsigned long long)hc.t[i]->flaps);
    }
    fprintf(f, "# HELP geocast_routes_fail_open Routes whose every answer is down, served all "
               "of them (fail open).\n# TYPE geocast_routes_fail_open gauge\n"
               "geocast_routes_fail_open %zu\n", hc.fail_open);
    pthread_mutex_unlock(&hc.lock);
}
