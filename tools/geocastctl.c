/* geocastctl: geocast's control tool. Online commands talk to the running daemon over its
 * control socket (docs/operations.md); offline ones read the configuration directly. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "dns/rrtype.h"
#include "server/snapshot.h"

#define VERSION CTL_VERSION
#define DEFAULT_CONFIG "/etc/geocast/geocast.yaml"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: geocastctl [-s SOCKET | -c FILE] [-j] COMMAND [ARGS]\n"
            "\n"
            "Commands for the running server (over its control socket):\n"
            "  status                    version, uptime, data generation, counts, last reload\n"
            "  reload                    reload configuration, zones and GeoIP data now; exits 1\n"
            "                            with the reason when the reload failed (the previous\n"
            "                            data keeps serving)\n"
            "  stats                     query and response counters since start\n"
            "  state                     every health-checked (monitor, target): state, checked\n"
            "                            state, override, flaps, last change, last result\n"
            "  set-state WHAT up|down|auto\n"
            "                            override health for maintenance; WHAT is a monitor, an\n"
            "                            address (every monitor checking it) or MONITOR:ADDRESS;\n"
            "                            auto removes the override; kept across reloads\n"
            "  drain                     mark this node down in server.state_file (a routing\n"
            "                            daemon withdraws it) while it keeps answering\n"
            "  undrain                   mark it up again\n"
            "\n"
            "Commands on the running server with -s (or when the default socket exists and no\n"
            "-c is given), else offline on the configuration file:\n"
            "  lookup ADDRESS            what the GeoIP data says about an address\n"
            "  explain NAME TYPE CLIENT  how a routed name is answered for CLIENT (an address\n"
            "                            or a subnet such as 192.0.2.0/24): location, each\n"
            "                            boundary tested, distances, weights, answer, ECS scope\n"
            "\n"
            "Offline commands (they read the configuration, not the running server):\n"
            "  check                     validate the configuration, zones and GeoIP data\n"
            "  geodiff OLD.mmdb NEW.mmdb how much address space gets another answer, per\n"
            "                            route, with NEW instead of OLD (IPv4 addresses, IPv6\n"
            "                            /64s); run it before a new GeoIP database goes live\n"
            "  zones                     list the zones with their serial and record counts\n"
            "  version                   print the version\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH   control socket (default " CTL_DEFAULT_SOCKET ")\n"
            "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
            "  -j, --json          JSON output (status, stats, state, lookup, explain,\n"
            "                      geodiff)\n"
            "  -t, --timeout SECS  how long to wait for the server (default 30; reload 300)\n"
            "  -h, --help          this help\n");
}

static void warn_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

static snapshot_t *load(const char *path)
{
    char err[1024];
    conf_t *conf = conf_load(path, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    snapshot_t *s = snapshot_build(conf, warn_stderr, NULL, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "%s\n", err);
        conf_free(conf);
        return NULL;
    }
    return s;
}

/* ---- online: the control socket ------------------------------------------------------ */

/* Send one request line and print the response: the body to stdout, an error status to
 * stderr. Returns the exit status: 0 ok, 1 error or no server. */
static int online(const char *path, const char *line, int timeout_s)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "geocastctl: socket path too long: %s\n", path);
        return 1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        fprintf(stderr, "geocastctl: cannot connect to %s: %s \xe2\x80\x94 is geocastd running?\n",
                path, strerror(e));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    size_t len = strlen(line);
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "geocastctl: %s: send: %s\n", path, strerror(errno));
            close(fd);
            return 1;
        }
        off += (size_t)n;
    }
    /* Read the whole response: a status line, body lines, a line ".". */
    char *buf = NULL;
    size_t blen = 0, cap = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool done = false;
    while (!done) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = timeout_s * 1000L - ((now.tv_sec - t0.tv_sec) * 1000L +
                                         (now.tv_nsec - t0.tv_nsec) / 1000000L);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            fprintf(stderr, "geocastctl: %s: no complete answer within %d seconds\n", path,
                    timeout_s);
            break;
        }
        if (cap - blen < 4096) {
            cap = cap ? cap * 2 : 16384;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + blen, cap - blen - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "geocastctl: %s: the server closed the connection mid-answer\n",
                    path);
            break;
        }
        blen += (size_t)n;
        buf[blen] = 0;
        done = (blen == 2 && !memcmp(buf, ".\n", 2)) ||
               (blen >= 3 && !memcmp(buf + blen - 3, "\n.\n", 3));
    }
    close(fd);
    if (!done) {
        free(buf);
        return 1;
    }
    char *nl = strchr(buf, '\n');
    *nl = 0;
    int rc = 0;
    if (!strcmp(buf, "ok")) {
        rc = 0;
    } else if (!strncmp(buf, "error ", 6)) {
        rc = 1;
    } else {
        fprintf(stderr, "geocastctl: %s: unexpected answer '%s'\n", path, buf);
        free(buf);
        return 1;
    }
    /* Body: undo the dot-stuffing; stop at the lone ".". */
    for (char *l = nl + 1; *l;) {
        char *e = strchr(l, '\n');
        *e = 0;
        if (!strcmp(l, "."))
            break;
        fputs(l[0] == '.' ? l + 1 : l, stdout);
        fputc('\n', stdout);
        l = e + 1;
    }
    fflush(stdout);
    if (rc)
        fprintf(stderr, "geocastctl: %s\n", buf + 6);
    free(buf);
    return rc;
}

/* ---- offline ------------------------------------------------------------------------- */

static int offline_result(int rc, const char *err)
{
    if (rc == 0)
        return 0;
    fprintf(stderr, "geocastctl: %s\n", err);
    return rc == ERR_INVAL ? 2 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *sock = NULL;
    bool json = false;
    int timeout_s = 0;
    int c;
    while ((c = getopt_long(argc, argv, "c:s:jt:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'j': json = true; break;
        case 't':
            timeout_s = atoi(optarg);
            if (timeout_s <= 0 || timeout_s > 86400) {
                fprintf(stderr, "geocastctl: bad timeout '%s' (seconds, 1 to 86400)\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (!strcmp(cmd, "version")) {
        printf("geocastctl %s\n", VERSION);
        return 0;
    }
    /* where: 0 offline only, 1 online only, 2 either. */
    static const struct {
        const char *name;
        int nargs, where;
    } cmds[] = { { "check", 0, 0 },  { "zones", 0, 0 },  { "lookup", 1, 2 }, { "explain", 3, 2 },
                 { "status", 0, 1 }, { "reload", 0, 1 }, { "stats", 0, 1 },
                 { "drain", 0, 1 },  { "undrain", 0, 1 }, { "state", 0, 1 },
                 { "set-state", 2, 1 }, { "geodiff", 2, 0 } };
    size_t ci;
    for (ci = 0; ci < ARRAY_SIZE(cmds); ci++)
        if (!strcmp(cmd, cmds[ci].name))
            break;
    if (ci == ARRAY_SIZE(cmds)) {
        fprintf(stderr, "geocastctl: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (nargs != cmds[ci].nargs) {
        fprintf(stderr, "geocastctl: %s takes %d argument%s\n", cmd, cmds[ci].nargs,
                cmds[ci].nargs == 1 ? "" : "s");
        return 2;
    }

    /* Online when the command needs the server, when -s was given, or (lookup, explain)
     * when the default socket exists and no -c was given. */
    bool use_socket = cmds[ci].where == 1 || (cmds[ci].where == 2 && sock) ||
                      (cmds[ci].where == 2 && !config && access(CTL_DEFAULT_SOCKET, F_OK) == 0);
    if (use_socket) {
        if (cmds[ci].where == 0 || (sock && config)) {
            fprintf(stderr, "geocastctl: %s\n",
                    cmds[ci].where == 0 ? "this command reads the configuration: use -c, not -s"
                                        : "give -s (the running server) or -c (a configuration),"
                                          " not both");
            return 2;
        }
        char line[CTL_REQUEST_MAX];
        size_t off = (size_t)snprintf(line, sizeof(line), "%s", cmd);
        for (int i = 0; i < nargs; i++) {
            if (!*args[i] || strpbrk(args[i], " \t\r\n")) {
                fprintf(stderr, "geocastctl: bad argument '%s'\n", args[i]);
                return 2;
            }
            off += (size_t)snprintf(line + off, sizeof(line) - MIN(off, sizeof(line)), " %s",
                                    args[i]);
        }
        if (json && strcmp(cmd, "set-state"))
            off += (size_t)snprintf(line + off, sizeof(line) - MIN(off, sizeof(line)), " json");
        if (off + 2 > sizeof(line)) {
            fprintf(stderr, "geocastctl: the request is too long\n");
            return 2;
        }
        line[off++] = '\n';
        line[off] = 0;
        if (!timeout_s)
            timeout_s = !strcmp(cmd, "reload") ? 300 : 30;
        return online(sock ? sock : CTL_DEFAULT_SOCKET, line, timeout_s);
    }
    if (sock) {
        fprintf(stderr, "geocastctl: %s reads the configuration: use -c, not -s\n", cmd);
        return 2;
    }

    if (!config)
        config = DEFAULT_CONFIG;
    char err[512];
    if (!strcmp(cmd, "geodiff")) {
        /* The routes only: no zones, and the config's own GeoIP data is not read. */
        conf_t *conf = conf_load(config, err, sizeof(err));
        if (!conf) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        int rc = ctl_geodiff(conf, args[0], args[1], json, stdout, err, sizeof(err));
        conf_free(conf);
        return offline_result(rc, err) ? 1 : 0;
    }
    if (!strcmp(cmd, "lookup")) {
        /* The GeoIP sources only, read once in full: no zones, no routes. */
        conf_t *conf = conf_load(config, err, sizeof(err));
        if (!conf) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        int rc = offline_result(ctl_lookup_conf(conf, args[0], json, stdout, err, sizeof(err)),
                                err);
        conf_free(conf);
        return rc;
    }
    snapshot_t *s = load(config);
    if (!s)
        return 1;
    int rc = 0;
    if (!strcmp(cmd, "check")) {
        printf("%s: ok (%zu zones, %zu records, %zu routes in %zu policies)\n", config,
               s->conf->nzones, s->nrecords, pol_set_route_count(s->pol),
               pol_set_policy_count(s->pol));
    } else if (!strcmp(cmd, "zones")) {
        for (size_t i = 0; i < s->zones.n; i++) {
            const zone_t *z = s->zones.zones[i];
            const uint8_t *soa = zone_rd_data(z->soa->rdata[0]);
            uint16_t len = zone_rd_len(z->soa->rdata[0]);
            uint32_t serial = len >= 20 ? rd_u32(soa + len - 20) : 0;
            printf("%-30s serial %-10u %8zu records %8zu names\n", z->name, serial, z->nrecords,
                   z->nnodes);
        }
    } else {
        rc = offline_result(
            ctl_explain(s, args[0], args[1], args[2], json, stdout, err, sizeof(err)), err);
    }
    snapshot_free(s);
    return rc;
}
