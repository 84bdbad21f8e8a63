/*
 * The control socket's line protocol (docs/operations.md):
 *
 *   request  = COMMAND *(" " ARG) "\n"          at most CTL_REQUEST_MAX bytes, printable ASCII
 *   response = STATUS "\n" *(LINE "\n") ".\n"
 *   STATUS   = "ok" / "error " MESSAGE
 *
 * Body lines that begin with "." are sent with one more "." in front (dot-stuffing, as in
 * SMTP and NNTP), so a line holding only "." always ends the response. A connection may
 * carry several requests in turn; it is closed after an idle timeout, a request that is too
 * long, or when the server stops. One client is served at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/log.h"
#include "ctl/ctl.h"
#include "ctl/ctl_internal.h"
#include "ctl/health.h"
#include "ctl/state.h"

#define IDLE_MS 5000     /* a client has this long to send each request line */
#define WRITE_MS 10000   /* and to read each response */
#define MAX_ARGS 8

typedef struct {
    FILE *body;          /* the response body (memstream) */
    char status[768];    /* "ok" or "error ..." */
} reply_t;

ATTR_PRINTF(2, 3)
static void fail(reply_t *r, const char *fmt, ...)
{
    int k = snprintf(r->status, sizeof(r->status), "error ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->status + k, sizeof(r->status) - (size_t)k, fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds. */
    for (char *p = r->status; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* The optional trailing "json" argument. */
static bool want_json(reply_t *r, int argc, char **argv, int fixed)
{
    if (argc <= fixed)
        return false;
    if (strcmp(argv[fixed], "json") != 0)
        fail(r, "%s: unexpected argument '%s' (only 'json' may follow)", argv[0], argv[fixed]);
    return true;
}

static void c_status(reply_t *r, int argc, char **argv)
{
    bool json = want_json(r, argc, argv, 1);
    if (strcmp(r->status, "ok"))
        return;
    rcu_thread_online();
    ctl_write_status(r->body, snapshot_current(), json);
    rcu_thread_offline();
}

static void c_stats(reply_t *r, int argc, char **argv)
{
    bool json = want_json(r, argc, argv, 1);
    if (strcmp(r->status, "ok"))
        return;
    ctl_write_stats(r->body, json);
}

static void c_reload(reply_t *r, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char err[1024];
    /* This thread is offline here: ctl_reload's synchronize_rcu must not wait for it. */
    if (ctl_reload("control socket", err, sizeof(err)) < 0) {
        fail(r, "reload failed, still serving the previous data: %s", err);
        return;
    }
    rcu_thread_online();
    const snapshot_t *s = snapshot_current();
    if (s)
        fprintf(r->body, "reloaded: generation %llu, %zu zones, %zu records, %zu routes\n",
                (unsigned long long)s->generation, s->conf->nzones, s->nrecords,
                pol_set_route_count(s->pol));
    rcu_thread_offline();
}

static void c_explain(reply_t *r, int argc, char **argv)
{
    bool json = want_json(r, argc, argv, 4);
    if (strcmp(r->status, "ok"))
        return;
    char err[512];
    rcu_thread_online();
    const snapshot_t *s = snapshot_current();
    int rc = s ? ctl_explain(s, argv[1], argv[2], argv[3], json, r->body, err, sizeof(err))
               : ERR_NOTFOUND;
    rcu_thread_offline();
    if (!s)
        fail(r, "no data loaded");
    else if (rc != 0)
        fail(r, "%s", err);
}

static void c_lookup(reply_t *r, int argc, char **argv)
{
    bool json = want_json(r, argc, argv, 2);
    if (strcmp(r->status, "ok"))
        return;
    char err[512];
    rcu_thread_online();
    const snapshot_t *s = snapshot_current();
    int rc = s ? ctl_lookup(s, argv[1], json, r->body, err, sizeof(err)) : ERR_NOTFOUND;
    rcu_thread_offline();
    if (!s)
        fail(r, "no data loaded");
    else if (rc != 0)
        fail(r, "%s", err);
}

static void c_drain(reply_t *r, int argc, char **argv)
{
    (void)argc;
    bool on = !strcmp(argv[0], "drain");
    ctl_state_drain(on);
    fprintf(r->body, "%s: state %s%s%s\n", on ? "drained" : "undrained",
            ctl_state_is_up() ? "up" : "down", ctl_state_path() ? " in " : " (no state_file: "
            "nothing to tell a routing daemon)", ctl_state_path() ? ctl_state_path() : "");
}

static void c_state(reply_t *r, int argc, char **argv)
{
    bool json = want_json(r, argc, argv, 1);
    if (strcmp(r->status, "ok"))
        return;
    hc_write_state(r->body, json);
}

static void c_set_state(reply_t *r, int argc, char **argv)
{
    (void)argc;
    char err[512];
    /* This thread is offline: hc_set_state takes the reload lock. */
    if (hc_set_state(argv[1], argv[2], r->body, err, sizeof(err)) < 0)
        fail(r, "%s", err);
}

static void c_help(reply_t *r, int argc, char **argv);

static const struct {
    const char *name;
    int min, max;        /* argument counts, the command excluded */
    void (*fn)(reply_t *r, int argc, char **argv);
    const char *usage;
} cmds[] = {
    { "status", 0, 1, c_status, "status [json]" },
    { "reload", 0, 0, c_reload, "reload" },
    { "stats", 0, 1, c_stats, "stats [json]" },
    { "explain", 3, 4, c_explain, "explain NAME TYPE CLIENT [json]" },
    { "lookup", 1, 2, c_lookup, "lookup ADDRESS [json]" },
    { "state", 0, 1, c_state, "state [json]" },
    { "set-state", 2, 2, c_set_state, "set-state ANSWER|MONITOR|MONITOR:ANSWER up|down|auto" },
    { "drain", 0, 0, c_drain, "drain" },
    { "undrain", 0, 0, c_drain, "undrain" },
    { "help", 0, 0, c_help, "help" },
};

static void c_help(reply_t *r, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
        fprintf(r->body, "%s\n", cmds[i].usage);
}

static void dispatch(reply_t *r, char *line)
{
    for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            fail(r, "the request holds a control character or a non-ASCII byte");
            return;
        }
    }
    char *argv[MAX_ARGS + 1], *save = NULL;
    int argc = 0;
    for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        if (argc == MAX_ARGS + 1) {
            fail(r, "too many arguments");
            return;
        }
        argv[argc++] = t;
    }
    if (argc == 0) {
        fail(r, "empty request (try help)");
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
        if (strcmp(argv[0], cmds[i].name))
            continue;
        if (argc - 1 < cmds[i].min || argc - 1 > cmds[i].max) {
            fail(r, "usage: %s", cmds[i].usage);
            return;
        }
        cmds[i].fn(r, argc, argv);
        return;
    }
    char name[40];
    snprintf(name, sizeof(name), "%s", argv[0]);
    fail(r, "unknown command '%s' (try help)", name);
}

/* Frame and send one response. Returns 0, or -1 when the client is gone or too slow. */
static int send_reply(int fd, reply_t *r, const char *body, size_t blen, int stop_fd)
{
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    if (!f)
        return -1;
    fprintf(f, "%s\n", r->status);
    size_t i = 0;
    while (i < blen) {
        const char *nl = memchr(body + i, '\n', blen - i);
        size_t n = nl ? (size_t)(nl - (body + i)) : blen - i;
        if (body[i] == '.')
            fputc('.', f);
        fwrite(body + i, 1, n, f);
        fputc('\n', f);
        i += n + 1;
    }
    fputs(".\n", f);
    int rc = fclose(f) == 0 ? ctl_write_all(fd, out, olen, ctl_now_ms() + WRITE_MS, stop_fd) : -1;
    free(out);
    return rc;
}

/* Answer one request line (NUL-terminated, without its newline). */
static int answer(int fd, char *line, int stop_fd)
{
    reply_t r;
    snprintf(r.status, sizeof(r.status), "ok");
    char *body = NULL;
    size_t blen = 0;
    r.body = open_memstream(&body, &blen);
    if (!r.body)
        return -1;
    dispatch(&r, line);
    int rc = -1;
    if (fclose(r.body) == 0)
        rc = send_reply(fd, &r, body, blen, stop_fd);
    free(body);
    return rc;
}

static void serve_client(int fd, int stop_fd)
{
    char buf[CTL_REQUEST_MAX + 1];
    size_t len = 0;
    uint64_t deadline = ctl_now_ms() + IDLE_MS;
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            *nl = 0;
            if (nl > buf && nl[-1] == '\r')
                nl[-1] = 0;
            if (answer(fd, buf, stop_fd) < 0)
                return;
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len - used);
            len -= used;
            deadline = ctl_now_ms() + IDLE_MS;
            continue;
        }
        if (len >= CTL_REQUEST_MAX) {
            reply_t r;
            snprintf(r.status, sizeof(r.status),
                     "error request too long (at most %d bytes with the newline)",
                     CTL_REQUEST_MAX);
            send_reply(fd, &r, "", 0, stop_fd);
            return;
        }
        ssize_t n = ctl_read_some(fd, buf + len, CTL_REQUEST_MAX - len, deadline, stop_fd);
        if (n <= 0)
            return; /* EOF (a partial last line is dropped), error, timeout or stop */
        len += (size_t)n;
    }
}

static void serve_and_close(int fd, int stop_fd)
{
    serve_client(fd, stop_fd);
    close(fd);
}

void ctl_sock_serve(int lfd, int stop_fd)
{
    ctl_accept_loop(lfd, stop_fd, "control socket", serve_and_close);
}
