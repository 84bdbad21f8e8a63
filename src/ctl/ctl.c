/* Control plane: the reload path, and starting/stopping the control and HTTP threads. */
#include "ctl/ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "ctl/ctl_internal.h"
#include "ctl/health.h"

/* ---- reload ---------------------------------------------------------------------- */

/* reload_lock serializes whole reloads (and so every snapshot_publish after start-up);
 * info_lock guards the bookkeeping, held only to copy it, so status never waits for a
 * reload in progress. */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t info_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *config_path;
static ctl_reload_info_t info;

static void warn_log(void *ctx, const char *msg)
{
    (void)ctx;
    log_warn("%s", msg);
}

snapshot_t *ctl_load(const char *path, char *err, size_t errlen)
{
    conf_t *conf = conf_load(path, err, errlen);
    if (!conf)
        return NULL;
    snapshot_t *s = snapshot_build(conf, warn_log, NULL, err, errlen);
    if (!s) {
        conf_free(conf);
        return NULL;
    }
    return s;
}

static void notify_serving(void)
{
    /* Only reload_lock holders (or main before any reload) publish: current is stable. */
    const snapshot_t *s = snapshot_current();
    if (s)
        sd_notifyf(0,
                   "READY=1\nSTATUS=serving %zu zones, %zu records, %zu routes (generation %llu)",
                   s->conf->nzones, s->nrecords, pol_set_route_count(s->pol),
                   (unsigned long long)s->generation);
}

void ctl_notify_ready(void)
{
    /* Under the reload lock: a reload's RELOADING=1 cannot interleave with it. */
    pthread_mutex_lock(&reload_lock);
    sd_notifyf(0, "MAINPID=%lu", (unsigned long)getpid());
    notify_serving();
    pthread_mutex_unlock(&reload_lock);
}

void ctl_init(const char *path)
{
    config_path = path;
    info.started = time(NULL);
}

void ctl_reload_info(ctl_reload_info_t *out)
{
    pthread_mutex_lock(&info_lock);
    *out = info;
    pthread_mutex_unlock(&info_lock);
}

void ctl_reload_lock(void)
{
    pthread_mutex_lock(&reload_lock);
}

int ctl_reload_trylock(void)
{
    return pthread_mutex_trylock(&reload_lock);
}

void ctl_reload_unlock(void)
{
    pthread_mutex_unlock(&reload_lock);
}

static void record(const char *trigger, bool ok, const char *err)
{
    pthread_mutex_lock(&info_lock);
    info.reloads++;
    info.failures += !ok;
    info.last_at = time(NULL);
    info.last_ok = ok;
    snprintf(info.last_trigger, sizeof(info.last_trigger), "%s", trigger);
    snprintf(info.last_error, sizeof(info.last_error), "%s", ok ? "" : err);
    pthread_mutex_unlock(&info_lock);
}

/* Settings that only a restart applies; say so instead of silently ignoring them. */
static void warn_restart_only(const conf_t *old, const conf_t *new)
{
    bool listen = old->nlisten != new->nlisten || old->workers != new->workers;
    for (size_t i = 0; !listen && i < old->nlisten; i++)
        listen = strcmp(old->listen[i].text, new->listen[i].text) != 0;
    if (listen)
        log_warn("server.listen or server.workers changed: restart geocastd to apply");
    bool ctl = (old->control_socket == NULL) != (new->control_socket == NULL) ||
               (old->control_socket && strcmp(old->control_socket, new->control_socket)) ||
               (old->control_http == NULL) != (new->control_http == NULL) ||
               (old->control_http && strcmp(old->control_http, new->control_http));
    if (ctl)
        log_warn("control.socket or control.http changed: restart geocastd to apply");
#define STR_DIFF(a, b) (((a) == NULL) != ((b) == NULL) || ((a) && strcmp((a), (b))))
    bool logging = STR_DIFF(old->dnstap_path, new->dnstap_path) ||
                   STR_DIFF(old->query_log, new->query_log) ||
                   STR_DIFF(old->dnstap_identity, new->dnstap_identity) ||
                   STR_DIFF(old->dnstap_version, new->dnstap_version) ||
                   old->dnstap_socket != new->dnstap_socket ||
                   old->dnstap_queries != new->dnstap_queries ||
                   old->dnstap_responses != new->dnstap_responses ||
                   old->dnstap_queue != new->dnstap_queue;
#undef STR_DIFF
    if (logging)
        log_warn("logging changed: restart geocastd to apply");
}

/* systemd's Type=notify(-reload) protocol: RELOADING=1 with the CLOCK_MONOTONIC time in
 * microseconds when a reload starts, READY=1 when it is over, either way. No-ops without
 * $NOTIFY_SOCKET. */
static void notify_reloading(const char *trigger)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading (%s)",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000,
               trigger);
}

int ctl_reload(const char *trigger, char *err, size_t errlen)
{
    pthread_mutex_lock(&reload_lock);
    notify_reloading(trigger);
    /* Only reload_lock holders publish, so the current snapshot cannot be freed under
     * us here even though this thread is not in a read-side section. */
    const snapshot_t *cur = snapshot_current();
    snapshot_t *ns = ctl_load(config_path, err, errlen);
    if (!ns) {
        log_err("reload failed (%s), still serving generation %llu: %s", trigger,
                cur ? (unsigned long long)cur->generation : 0ULL, err);
        record(trigger, false, err);
        sd_notifyf(0, "READY=1\nSTATUS=serving generation %llu; last reload (%s) failed: %.200s",
                   cur ? (unsigned long long)cur->generation : 0ULL, trigger, err);
        pthread_mutex_unlock(&reload_lock);
        return ERR_INVAL;
    }
    if (cur)
        warn_restart_only(cur->conf, ns->conf);
    /* Log and count before publishing: whoever sees the new data (a query, a scrape)
     * also finds the reload in the log and the counters. */
    log_info("reloaded (%s): %zu zones, %zu records, %zu routes (generation %llu)", trigger,
             ns->conf->nzones, ns->nrecords, pol_set_route_count(ns->pol),
             (unsigned long long)ns->generation);
    record(trigger, true, NULL);
    ctl_watch_update(ns->conf);
    /* The health states (kept across reloads, outside the snapshot) go into the new
     * routes before anyone can query them. */
    hc_prepare(ns);
    snapshot_t *old = snapshot_publish(ns);
    synchronize_rcu();
    snapshot_free(old);
    /* Give the old generation's memory back to the system now: tens of MiB of GeoIP and
     * policy tables per reload otherwise stay in the heap as free space. */
    malloc_trim(0);
    notify_serving();
    pthread_mutex_unlock(&reload_lock);
    return 0;
}

/* ---- bounded socket I/O ------------------------------------------------------------ */

uint64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for events on fd, or stop_fd readable, until deadline. 1: ready; 0: timeout or
 * stop; -1: error. */
static int wait_fd(int fd, short events, uint64_t deadline_ms, int stop_fd)
{
    for (;;) {
        uint64_t now = ctl_now_ms();
        if (now >= deadline_ms)
            return 0;
        struct pollfd p[2] = { { .fd = fd, .events = events }, { .fd = stop_fd, .events = POLLIN } };
        uint64_t left = deadline_ms - now;
        int n = poll(p, 2, left > 60000 ? 60000 : (int)left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            continue;
        if (p[1].revents)
            return 0;
        if (p[0].revents)
            return 1;
    }
}

int ctl_write_all(int fd, const char *buf, size_t len, uint64_t deadline_ms, int stop_fd)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, deadline_ms, stop_fd) <= 0)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}

ssize_t ctl_read_some(int fd, char *buf, size_t len, uint64_t deadline_ms, int stop_fd)
{
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(fd, POLLIN, deadline_ms, stop_fd) <= 0)
            return -1;
    }
}

/* ---- threads ------------------------------------------------------------------------ */

static struct {
    int stop[2];                /* pipe: a byte written to stop[1] stops both threads */
    int sock_fd, http_fd;
    pthread_t sock_th, http_th;
    bool sock_running, http_running;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t path_dev;             /* the socket file we created (removed only if unchanged) */
    ino_t path_ino;
} st = { .stop = { -1, -1 }, .sock_fd = -1, .http_fd = -1 };

static void *sock_main(void *arg)
{
    (void)arg;
    rcu_register_thread();
    rcu_thread_offline();
    ctl_sock_serve(st.sock_fd, st.stop[0]);
    rcu_unregister_thread();
    return NULL;
}

static void *http_main(void *arg)
{
    (void)arg;
    rcu_register_thread();
    rcu_thread_offline();
    ctl_http_serve(st.http_fd, st.stop[0]);
    rcu_unregister_thread();
    return NULL;
}

/* mkdir -p for the socket's directory (0755; existing directories are left alone).
 * *created: whether the socket's own directory was made here. */
static int make_parent_dirs(const char *path, bool *created, char *err, size_t errlen)
{
    *created = false;
    char dir[sizeof(st.path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char c = *p;
        *p = 0;
        int rc = mkdir(dir, 0755);
        if (rc < 0 && errno != EEXIST) {
            snprintf(err, errlen, "control socket %s: cannot create directory %s: %s", path, dir,
                     strerror(errno));
            return ERR_IO;
        }
        *created = rc == 0 && !c;
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

static int bind_unix(const ctl_conf_t *conf, char *err, size_t errlen)
{
    const char *path = conf->socket;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "control socket %s: path too long", path);
        return ERR_INVAL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    bool created;
    if (make_parent_dirs(path, &created, err, errlen) < 0)
        return ERR_IO;
    if (created && conf->chown) {
        char dir[sizeof(st.path)];
        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = 0;
        if (chown(dir, conf->owner, conf->group) < 0) {
            snprintf(err, errlen, "control socket %s: cannot give %s to the server's user: %s",
                     path, dir, strerror(errno));
            return ERR_IO;
        }
    }

    /* A file already there: a live daemon answers connect(), a stale socket refuses. */
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            snprintf(err, errlen, "control socket %s: the file exists and is not a socket", path);
            return ERR_EXISTS;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (probe < 0) {
            snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
            return ERR_IO;
        }
        int rc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        close(probe);
        if (rc == 0 || (e != ECONNREFUSED && e != ENOENT)) {
            snprintf(err, errlen, "control socket %s: another geocastd is running (%s)", path,
                     rc == 0 ? "it accepts connections" : strerror(e));
            return ERR_EXISTS;
        }
        if (unlink(path) < 0 && errno != ENOENT) {
            snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                     strerror(errno));
            return ERR_IO;
        }
        log_info("control socket %s: replaced a stale socket file", path);
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    /* Create the file as 0660 from the start (no window with wider permissions); only
     * the main thread creates files at this point. */
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (rc < 0) {
        snprintf(err, errlen, "control socket %s: %s%s", path, strerror(e),
                 e == EADDRINUSE ? " (another geocastd is running)" : "");
        close(fd);
        return ERR_IO;
    }
    if (chmod(path, 0660) < 0 || (conf->chown && chown(path, conf->owner, conf->group) < 0) ||
        listen(fd, 16) < 0 || lstat(path, &sb) < 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return ERR_IO;
    }
    snprintf(st.path, sizeof(st.path), "%s", path);
    st.path_dev = sb.st_dev;
    st.path_ino = sb.st_ino;
    st.sock_fd = fd;
    return 0;
}

static int bind_http(const struct sockaddr *addr, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, addr, len) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "control.http: cannot listen: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return ERR_IO;
    }
    st.http_fd = fd;
    return 0;
}

static void remove_socket_file(void)
{
    struct stat sb;
    if (st.path[0] && lstat(st.path, &sb) == 0 && sb.st_dev == st.path_dev &&
        sb.st_ino == st.path_ino)
        unlink(st.path);
    st.path[0] = 0;
}

int ctl_start(const ctl_conf_t *conf, char *err, size_t errlen)
{
    if (!conf->socket && !conf->http)
        return 0;
    if (pipe2(st.stop, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "control: pipe: %s", strerror(errno));
        return ERR_IO;
    }
    int rc = 0;
    if (conf->socket)
        rc = bind_unix(conf, err, errlen);
    if (rc == 0 && conf->http)
        rc = bind_http(conf->http, conf->http_len, err, errlen);
    if (rc == 0 && st.sock_fd >= 0) {
        if (pthread_create(&st.sock_th, NULL, sock_main, NULL) != 0) {
            snprintf(err, errlen, "control: cannot start a thread");
            rc = ERR_NOMEM;
        } else {
            st.sock_running = true;
        }
    }
    if (rc == 0 && st.http_fd >= 0) {
        if (pthread_create(&st.http_th, NULL, http_main, NULL) != 0) {
            snprintf(err, errlen, "control: cannot start a thread");
            rc = ERR_NOMEM;
        } else {
            st.http_running = true;
        }
    }
    if (rc < 0) {
        ctl_stop();
        return rc;
    }
    if (st.sock_fd >= 0)
        log_info("control socket on %s", st.path);
    if (st.http_fd >= 0) {
        char host[INET6_ADDRSTRLEN] = "?";
        const struct sockaddr *a = conf->http;
        unsigned port = 0;
        if (a->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)a;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        } else if (a->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)a;
            inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
            port = ntohs(sin6->sin6_port);
        }
        log_info("metrics on http://%s%s%s:%u/metrics", a->sa_family == AF_INET6 ? "[" : "",
                 host, a->sa_family == AF_INET6 ? "]" : "", port);
    }
    return 0;
}

void ctl_stop(void)
{
    if (st.stop[1] >= 0) {
        ssize_t n;
        do
            n = write(st.stop[1], "x", 1);
        while (n < 0 && errno == EINTR);
    }
    if (st.sock_running)
        pthread_join(st.sock_th, NULL);
    if (st.http_running)
        pthread_join(st.http_th, NULL);
    st.sock_running = st.http_running = false;
    if (st.sock_fd >= 0)
        close(st.sock_fd);
    if (st.http_fd >= 0)
        close(st.http_fd);
    st.sock_fd = st.http_fd = -1;
    remove_socket_file();
    for (int i = 0; i < 2; i++) {
        if (st.stop[i] >= 0)
            close(st.stop[i]);
        st.stop[i] = -1;
    }
}

void ctl_accept_loop(int lfd, int stop_fd, const char *what, void (*serve)(int fd, int stop_fd))
{
    for (;;) {
        struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_err("%s: poll: %s", what, strerror(errno));
            return;
        }
        if (p[1].revents)
            return;
        if (!p[0].revents)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(100000); /* do not spin while out of descriptors */
            continue;
        }
        serve(fd, stop_fd);
    }
}
