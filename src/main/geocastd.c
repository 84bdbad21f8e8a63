/* geocastd: the authoritative GeoDNS daemon. Runs in the foreground. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "ctl/health.h"
#include "ctl/state.h"
#include "server/dnstap.h"
#include "server/net.h"
#include "server/snapshot.h"

#define VERSION CTL_VERSION

/* The user and group to run as (server.user / --user), looked up before anything is bound
 * so that a typo stops the start (or --check) with a clear message. */
typedef struct {
    const char *user, *group;
    uid_t uid;
    gid_t gid;
} run_as_t;

static int resolve_user(run_as_t *ra, bool check_only, char *err, size_t errlen)
{
    errno = 0;
    struct passwd *pw = getpwnam(ra->user);
    if (!pw) {
        snprintf(err, errlen, "server.user: no such user '%s'%s%s", ra->user,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        return -1;
    }
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    if (ra->group) {
        errno = 0;
        struct group *gr = getgrnam(ra->group);
        if (!gr) {
            snprintf(err, errlen, "server.group: no such group '%s'%s%s", ra->group,
                     errno ? ": " : "", errno ? strerror(errno) : "");
            return -1;
        }
        ra->gid = gr->gr_gid;
    }
    if (!check_only && geteuid() != 0 && (geteuid() != ra->uid || getegid() != ra->gid)) {
        snprintf(err, errlen, "server.user: switching to %s needs root (running as uid %u)",
                 ra->user, (unsigned)geteuid());
        return -1;
    }
    return 0;
}

/* setgroups, setgid, setuid, in that order (glibc applies each to every thread), then
 * make sure root cannot be regained. */
static int drop_privileges(const run_as_t *ra, char *err, size_t errlen)
{
    if (geteuid() != 0)
        return 0; /* already that user (resolve_user checked) */
    if (setgroups(1, &ra->gid) < 0 || setgid(ra->gid) < 0 || setuid(ra->uid) < 0) {
        snprintf(err, errlen, "cannot switch to user %s: %s", ra->user, strerror(errno));
        return -1;
    }
    if (ra->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        snprintf(err, errlen, "switched to user %s but could regain root: refusing to run",
                 ra->user);
        return -1;
    }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* Sanitizer builds only (tests): the leak checker ptraces the process at exit, which
     * the kernel refuses once a uid change has made it non-dumpable. */
    prctl(PR_SET_DUMPABLE, 1);
#endif
    return 0;
}

/* srv_net_conf_t.after_bind: every DNS socket is bound, no query thread runs yet. */
static int drop_after_bind(void *ctx, char *err, size_t errlen)
{
    const run_as_t *ra = ctx;
    if (drop_privileges(ra, err, errlen) < 0)
        return ERR_IO;
    log_info("running as user %s (uid %u, gid %u)", ra->user, (unsigned)ra->uid,
             (unsigned)ra->gid);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: geocastd -c FILE [--check] [--control PATH] [--user USER [--group GROUP]]\n"
            "                [-v|-q]\n"
            "\n"
            "Authoritative DNS server whose answers depend on where the client is.\n"
            "\n"
            "  -c, --config FILE   YAML configuration (see docs/config.md)\n"
            "      --check         load and validate the configuration and every zone, then exit\n"
            "                      (0: valid; 1: invalid, with FILE:LINE: reason on stderr)\n"
            "      --control PATH  serve the control socket on PATH (overrides control.socket;\n"
            "                      \"none\" turns it off)\n"
            "  -u, --user USER     after binding the sockets, run as USER (overrides\n"
            "                      server.user; needs root); reloads then read files as USER\n"
            "  -g, --group GROUP   and as GROUP (overrides server.group; default: USER's group)\n"
            "  -v, --verbose       log debug messages\n"
            "  -q, --quiet         log only warnings and errors\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          this help\n"
            "\n"
            "Signals: SIGHUP reloads the configuration, zones and data (a failed reload keeps\n"
            "the old data serving), as `geocastctl reload` does; SIGTERM and SIGINT stop the\n"
            "server, after server.drain (state file down, still answering) when set.\n"
            "See docs/operations.md.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
        { "verbose", no_argument, NULL, 'v' },      { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { "control", required_argument, NULL, 'S' }, { "user", required_argument, NULL, 'u' },
        { "group", required_argument, NULL, 'g' },   { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *control = NULL, *user = NULL, *group = NULL;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:u:g:vqVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'C': check = true; break;
        case 'S': control = optarg; break;
        case 'u': user = optarg; break;
        case 'g': group = optarg; break;
        case 'v': log_set_level(LOG_DEBUG); break;
        case 'q': log_set_level(LOG_WARN); break;
        case 'V': printf("geocastd %s\n", VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Large tables (GeoIP, decision tables) are rebuilt on every reload: keep them in
     * their own mappings, returned to the system when freed. Setting the threshold also
     * stops glibc from raising it after the first free, which would move later tables
     * onto the heap, where freed space is kept. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    char err[1024];
    snapshot_t *snap = ctl_load(config, err, sizeof(err));
    if (!snap) {
        log_err("%s", err);
        return 1;
    }
    const conf_t *conf = snap->conf;
    run_as_t ra = { .user = user ? user : conf->user, .group = group ? group : conf->group };
    if (ra.group && !ra.user) {
        log_err("server.group (or --group) needs server.user (or --user)");
        snapshot_free(snap);
        return 1;
    }
    if (ra.user && resolve_user(&ra, check, err, sizeof(err)) < 0) {
        log_err("%s", err);
        snapshot_free(snap);
        return 1;
    }
    if (check) {
        printf("%s: ok (%zu zones, %zu records, %zu routes in %zu policies)\n", config,
               conf->nzones, snap->nrecords, pol_set_route_count(snap->pol),
               pol_set_policy_count(snap->pol));
        snapshot_free(snap);
        return 0;
    }
    /* The names live in conf, which a reload may free: keep copies for the log. */
    char run_user[256] = "", run_group[256] = "";
    if (ra.user) {
        snprintf(run_user, sizeof(run_user), "%s", ra.user);
        snprintf(run_group, sizeof(run_group), "%s", ra.group ? ra.group : "");
        ra.user = run_user;
        ra.group = ra.group ? run_group : NULL;
    }
    snapshot_publish(snap);
    /* Loading left free heap behind (the YAML document, build scratch): give it back, as
     * after a reload. */
    malloc_trim(0);

    /* Signals are taken synchronously by this thread; block them before any thread
     * starts so workers inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    srv_listen_t *listen = calloc(conf->nlisten, sizeof(*listen));
    if (!listen)
        return 1;
    for (size_t i = 0; i < conf->nlisten; i++) {
        listen[i].addr = conf->listen[i].addr;
        listen[i].addrlen = conf->listen[i].addrlen;
    }
    srv_net_conf_t nc = {
        .listen = listen,
        .nlisten = conf->nlisten,
        .workers = conf->workers ? conf->workers : (unsigned)(cores > 0 ? cores : 1),
        .udp_gso = conf->udp_gso,
        .tcp_max_clients = conf->tcp_max_clients,
        .tcp_idle_timeout_ms = conf->tcp_idle_timeout_ms,
        .tcp_max_queries = conf->tcp_max_queries,
    };
    unsigned drain_ms = conf->drain_ms;
    if (ctl_state_init(conf->state_file, err, sizeof(err)) < 0) {
        log_err("%s", err);
        free(listen);
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    /* Query logs (logging.*): like the listen addresses, read once; a change needs a
     * restart. */
    if (srv_tap_start(conf, nc.workers + 1, err, sizeof(err)) < 0) {
        log_err("%s", err);
        free(listen);
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    size_t nzones = conf->nzones, nrecords = snap->nrecords;
    size_t nroutes = pol_set_route_count(snap->pol);

    /* The control plane first, so that a second daemon given the same control socket
     * stops before it binds (SO_REUSEPORT would let it share) the DNS ports. From here
     * on every reload goes through ctl_reload, for SIGHUP and the control socket alike,
     * and a reload may free the first snapshot at any time: conf and snap are not used
     * after ctl_start. The control settings are read once, like the listen addresses. */
    ctl_init(config);
    /* Health checks before anything can reload: from here on the states reach every
     * snapshot ctl_reload publishes. */
    if (hc_start(err, sizeof(err)) < 0) {
        log_err("%s", err);
        free(listen);
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    ctl_conf_t cc = {
        .socket = control ? (strcmp(control, "none") ? control : NULL) : conf->control_socket,
        .chown = ra.user && geteuid() == 0,
        .owner = ra.uid,
        .group = ra.gid,
        .http = conf->control_http ? (const struct sockaddr *)&conf->control_http_addr : NULL,
        .http_len = conf->control_http_addrlen,
    };
    ctl_watch_update(conf);
    conf = NULL;
    snap = NULL;
    if (ctl_start(&cc, err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_watch_stop();
        free(listen);
        hc_stop();
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    if (ra.user) {
        nc.after_bind = drop_after_bind;
        nc.after_bind_ctx = &ra;
    }
    if (srv_net_start(&nc, err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_watch_stop();
        free(listen);
        ctl_stop();
        hc_stop();
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    free(listen);
    /* Every socket was bound, then (after_bind) the process became server.user before
     * any query thread started: from here on the server runs as that user, and so do the
     * reloads (the files they read must be readable by that user). */
    if (ctl_watch_start(err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_stop();
        hc_stop();
        srv_net_stop();
        snapshot_free(snapshot_publish(NULL));
        return 1;
    }
    log_info("serving %zu zones (%zu records, %zu routes) on %zu addresses with %u workers",
             nzones, nrecords, nroutes, nc.nlisten, nc.workers);
    ctl_state_serving(true);
    ctl_notify_ready();

    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            /* Listen addresses, worker counts and the control settings need a restart;
             * everything else is in the snapshot and swapped whole. */
            ctl_reload("SIGHUP", err, sizeof(err)); /* logs the outcome either way */
            continue;
        }
        log_info("signal %d: stopping", sig);
        break;
    }
    sd_notify(0, drain_ms ? "STOPPING=1\nSTATUS=draining" : "STOPPING=1\nSTATUS=stopping");
    /* Drain: tell the routing daemon first, keep answering while the routes move away,
     * then stop. A second SIGTERM or SIGINT cuts the wait short. */
    ctl_state_serving(false);
    if (drain_ms) {
        log_info("draining: answering for %u ms more", drain_ms);
        struct timespec ts = { drain_ms / 1000, (long)(drain_ms % 1000) * 1000000L };
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        while (sigtimedwait(&stop, NULL, &ts) < 0 && errno == EINTR)
            ;
    }
    ctl_watch_stop();
    ctl_stop();
    hc_stop();
    srv_net_stop();
    srv_tap_stop();
    snapshot_free(snapshot_publish(NULL));
    return 0;
}
