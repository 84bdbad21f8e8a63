/* geocastd: the authoritative GeoDNS daemon. Runs in the foreground. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/log.h"
#include "conf/conf.h"
#include "server/net.h"
#include "server/snapshot.h"

#define VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: geocastd -c FILE [--check] [-v|-q]\n"
            "\n"
            "Authoritative DNS server whose answers depend on where the client is.\n"
            "\n"
            "  -c, --config FILE   YAML configuration (see docs/config.md)\n"
            "      --check         load and validate the configuration and every zone, then exit\n"
            "                      (0: valid; 1: invalid, with FILE:LINE: reason on stderr)\n"
            "  -v, --verbose       log debug messages\n"
            "  -q, --quiet         log only warnings and errors\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          this help\n"
            "\n"
            "Signals: SIGHUP reloads the configuration, zones and data (a failed reload keeps\n"
            "the old data serving); SIGTERM and SIGINT stop the server.\n");
}

static void warn_log(void *ctx, const char *msg)
{
    (void)ctx;
    log_warn("%s", msg);
}

/* Load config, zones and GeoIP data into a new snapshot (which owns the config).
 * Returns NULL (error logged) on failure. */
static snapshot_t *load(const char *path)
{
    char err[1024];
    conf_t *conf = conf_load(path, err, sizeof(err));
    if (!conf) {
        log_err("%s", err);
        return NULL;
    }
    snapshot_t *s = snapshot_build(conf, warn_log, NULL, err, sizeof(err));
    if (!s) {
        log_err("%s", err);
        conf_free(conf);
        return NULL;
    }
    return s;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
        { "verbose", no_argument, NULL, 'v' },      { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:vqVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'C': check = true; break;
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

    snapshot_t *snap = load(config);
    if (!snap)
        return 1;
    const conf_t *conf = snap->conf;
    if (check) {
        printf("%s: ok (%zu zones, %zu records, %zu routes in %zu policies)\n", config,
               conf->nzones, snap->nrecords, pol_set_route_count(snap->pol),
               pol_set_policy_count(snap->pol));
        snapshot_free(snap);
        return 0;
    }
    snapshot_publish(snap);

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
        .tcp_max_clients = conf->tcp_max_clients,
        .tcp_idle_timeout_ms = conf->tcp_idle_timeout_ms,
        .tcp_max_queries = conf->tcp_max_queries,
    };
    char err[512];
    if (srv_net_start(&nc, err, sizeof(err)) < 0) {
        log_err("%s", err);
        return 1;
    }
    free(listen);
    log_info("serving %zu zones (%zu records, %zu routes) on %zu addresses with %u workers",
             conf->nzones, snap->nrecords, pol_set_route_count(snap->pol), conf->nlisten,
             nc.workers);

    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            /* Listen addresses and worker counts need a restart; everything else is in
             * the snapshot and swapped whole. */
            snapshot_t *ns = load(config);
            if (!ns) {
                log_err("reload failed; still serving the previous data");
                continue;
            }
            snapshot_t *old = snapshot_publish(ns);
            synchronize_rcu();
            snapshot_free(old);
            snap = ns;
            log_info("reloaded: %zu zones, %zu records, %zu routes (generation %llu)",
                     ns->conf->nzones, ns->nrecords, pol_set_route_count(ns->pol),
                     (unsigned long long)ns->generation);
            continue;
        }
        log_info("signal %d: stopping", sig);
        break;
    }
    srv_net_stop();
    snapshot_free(snapshot_publish(NULL));
    return 0;
}
