/* geoip.watch: reload when a GeoIP file is replaced (renamed into place, as geoipupdate
 * does, or rewritten and closed). One thread, an inotify descriptor on the directories of
 * the configured files, and the same ctl_reload() as SIGHUP. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "ctl/ctl_internal.h"

typedef struct {
    char *dir, *name;           /* the watched file, split */
    int wd;                     /* its directory's watch, or -1 */
} wfile_t;

static struct {
    pthread_mutex_t lock;       /* guards files/nfiles/delay_ms/changed (the wish list) */
    wfile_t *files;
    size_t nfiles;
    unsigned delay_ms;
    bool changed;
    int wake[2];                /* pipe: a byte in means "look at the wish list again" */
    int stop[2];                /* pipe: a byte in means "stop" */
    pthread_t th;
    bool running;
} w = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = { -1, -1 }, .stop = { -1, -1 } };

static void free_files(wfile_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].dir);
        free(f[i].name);
    }
    free(f);
}

static void add_file(wfile_t **f, size_t *n, const char *path)
{
    const char *slash = strrchr(path, '/');
    *f = xrealloc(*f, (*n + 1) * sizeof(**f));
    wfile_t *e = &(*f)[(*n)++];
    if (slash) {
        size_t len = slash == path ? 1 : (size_t)(slash - path); /* "/x": the root */
        e->dir = xstrdup(path);
        e->dir[len] = 0;
    } else {
        e->dir = xstrdup(".");
    }
    e->name = xstrdup(slash ? slash + 1 : path);
    e->wd = -1;
}

void ctl_watch_update(const conf_t *conf)
{
    wfile_t *f = NULL;
    size_t n = 0;
    if (conf->geoip_watch) {
        for (size_t i = 0; i < conf->ngeo; i++) {
            const conf_geo_source_t *g = &conf->geo[i];
            if (g->kind == CONF_GEO_MMDB) {
                add_file(&f, &n, g->path);
                continue;
            }
            for (char **b = g->blocks; b && *b; b++)
                add_file(&f, &n, *b);
            add_file(&f, &n, g->locations);
        }
    }
    pthread_mutex_lock(&w.lock);
    free_files(w.files, w.nfiles);
    w.files = f;
    w.nfiles = n;
    w.delay_ms = conf->geoip_watch_delay_ms;
    w.changed = true;
    pthread_mutex_unlock(&w.lock);
    if (w.wake[1] >= 0) {
        ssize_t r;
        do
            r = write(w.wake[1], "x", 1);
        while (r < 0 && errno == EINTR);
    }
}

/* The thread's own copy of the wish list, with the inotify watches that serve it. */
typedef struct {
    int fd;                     /* inotify, or -1 */
    wfile_t *files;
    size_t nfiles;
    unsigned delay_ms;
} watcher_t;

static void drain(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* Take the wish list and update the watches for it. The inotify descriptor stays: events
 * already queued (a file replaced during a reload) must not be lost. */
static void resync(watcher_t *wt)
{
    pthread_mutex_lock(&w.lock);
    bool same = wt->nfiles == w.nfiles;
    for (size_t i = 0; same && i < w.nfiles; i++)
        same = !strcmp(wt->files[i].dir, w.files[i].dir) &&
               !strcmp(wt->files[i].name, w.files[i].name);
    wfile_t *old = wt->files;
    size_t nold = wt->nfiles;
    wt->files = xcalloc(w.nfiles ? w.nfiles : 1, sizeof(*wt->files));
    wt->nfiles = w.nfiles;
    for (size_t i = 0; i < w.nfiles; i++) {
        wt->files[i].dir = xstrdup(w.files[i].dir);
        wt->files[i].name = xstrdup(w.files[i].name);
        wt->files[i].wd = -1;
    }
    wt->delay_ms = w.delay_ms;
    w.changed = false;
    pthread_mutex_unlock(&w.lock);

    if (wt->fd >= 0) {
        /* inotify gives the same descriptor for the same directory (the mask is
         * replaced), so files in one directory share it and a directory watched before
         * keeps its watch. */
        for (size_t i = 0; i < wt->nfiles; i++) {
            wt->files[i].wd = inotify_add_watch(wt->fd, wt->files[i].dir,
                                                IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR);
            if (wt->files[i].wd < 0)
                log_err("geoip.watch: cannot watch %s: %s", wt->files[i].dir, strerror(errno));
            else if (!same)
                log_info("geoip.watch: watching %s/%s", wt->files[i].dir, wt->files[i].name);
        }
        for (size_t i = 0; i < nold; i++) {
            bool kept = old[i].wd < 0;
            for (size_t j = 0; !kept && j < wt->nfiles; j++)
                kept = wt->files[j].wd == old[i].wd;
            for (size_t j = 0; !kept && j < i; j++)
                kept = old[j].wd == old[i].wd; /* removed already */
            if (!kept)
                inotify_rm_watch(wt->fd, old[i].wd);
        }
    }
    if (!same && !wt->nfiles && nold)
        log_info("geoip.watch: off");
    free_files(old, nold);
}

/* Read the pending events; true when one of them replaced a watched file. */
static bool read_events(watcher_t *wt)
{
    bool hit = false;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(wt->fd, buf, sizeof(buf));
        if (n <= 0)
            return hit;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                log_warn("geoip.watch: event queue overflow: reloading to be safe");
                hit = true;
                continue;
            }
            if (!ev->len)
                continue;
            for (size_t i = 0; i < wt->nfiles; i++)
                if (wt->files[i].wd == ev->wd && !strcmp(wt->files[i].name, ev->name)) {
                    log_info("geoip.watch: %s/%s replaced; reloading in %u ms",
                             wt->files[i].dir, ev->name, wt->delay_ms);
                    hit = true;
                    break;
                }
        }
    }
}

static void *watch_main(void *arg)
{
    (void)arg;
    watcher_t wt = { .fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC) };
    if (wt.fd < 0)
        log_err("geoip.watch: inotify: %s; GeoIP files cannot be watched", strerror(errno));
    resync(&wt);
    uint64_t due = 0; /* when a reload is pending: its time (ms, monotonic) */
    for (;;) {
        struct pollfd p[3] = { { .fd = w.stop[0], .events = POLLIN },
                               { .fd = w.wake[0], .events = POLLIN },
                               { .fd = wt.fd, .events = POLLIN } };
        int timeout = -1;
        if (due) {
            uint64_t now = ctl_now_ms();
            timeout = due > now ? (int)MIN(due - now, 60000u) : 0;
        }
        int n = poll(p, wt.fd >= 0 ? 3 : 2, timeout);
        if (n < 0 && errno != EINTR) {
            log_err("geoip.watch: poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && p[0].revents)
            break;
        if (n > 0 && p[1].revents) {
            drain(w.wake[0]);
            pthread_mutex_lock(&w.lock);
            bool changed = w.changed;
            pthread_mutex_unlock(&w.lock);
            if (changed)
                resync(&wt);
        }
        /* Every replacement pushes the reload back by the settle time, so a burst of
         * files (City and ASN databases, CSV blocks and locations) makes one reload. */
        if (n > 0 && wt.fd >= 0 && p[2].revents && read_events(&wt))
            due = ctl_now_ms() + wt.delay_ms;
        if (due && ctl_now_ms() >= due) {
            due = 0;
            char err[1024];
            ctl_reload("GeoIP file watch", err, sizeof(err)); /* logs either way */
        }
    }
    if (wt.fd >= 0)
        close(wt.fd);
    free_files(wt.files, wt.nfiles);
    return NULL;
}

int ctl_watch_start(char *err, size_t errlen)
{
    if (pipe2(w.stop, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(w.wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "geoip.watch: pipe: %s", strerror(errno));
        ctl_watch_stop();
        return ERR_IO;
    }
    if (pthread_create(&w.th, NULL, watch_main, NULL) != 0) {
        snprintf(err, errlen, "geoip.watch: cannot start a thread");
        ctl_watch_stop();
        return ERR_NOMEM;
    }
    w.running = true;
    return 0;
}

void ctl_watch_stop(void)
{
    if (w.running) {
        ssize_t r;
        do
            r = write(w.stop[1], "x", 1);
        while (r < 0 && errno == EINTR);
        pthread_join(w.th, NULL);
        w.running = false;
    }
    for (int i = 0; i < 2; i++) {
        if (w.stop[i] >= 0)
            close(w.stop[i]);
        if (w.wake[i] >= 0)
            close(w.wake[i]);
        w.stop[i] = w.wake[i] = -1;
    }
    pthread_mutex_lock(&w.lock);
    free_files(w.files, w.nfiles);
    w.files = NULL;
    w.nfiles = 0;
    pthread_mutex_unlock(&w.lock);
}
