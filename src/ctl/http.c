/*
 * A tiny HTTP/1.0 server for Prometheus: GET (or HEAD) /metrics answers the text format
 * 0.0.4; other paths get 404, other methods 405, anything unparsable 400. One connection
 * at a time, one request per connection, the request head bounded in size and time.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <urcu-qsbr.h>

#include "common/log.h"
#include "ctl/ctl_internal.h"

#define HEAD_MAX 4096    /* request line and headers */
#define READ_MS 5000     /* to send the request head */
#define WRITE_MS 10000   /* to read the response */

static void respond(int fd, int stop_fd, int code, const char *reason, const char *ctype,
                    const char *body, size_t blen, bool head_only)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, blen);
    uint64_t deadline = ctl_now_ms() + WRITE_MS;
    if (ctl_write_all(fd, hdr, (size_t)n, deadline, stop_fd) < 0 || head_only)
        return;
    ctl_write_all(fd, body, blen, deadline, stop_fd);
}

static void error_page(int fd, int stop_fd, int code, const char *reason, bool head_only)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);
    respond(fd, stop_fd, code, reason, "text/plain; charset=utf-8", body, (size_t)n, head_only);
}

/* Read the request head: up to the blank line that ends it. Returns its length, or -1. */
static ssize_t read_head(int fd, char *buf, int stop_fd)
{
    size_t len = 0;
    uint64_t deadline = ctl_now_ms() + READ_MS;
    while (len < HEAD_MAX) {
        ssize_t n = ctl_read_some(fd, buf + len, HEAD_MAX - len, deadline, stop_fd);
        if (n <= 0)
            return len ? (ssize_t)len : -1; /* EOF after a partial head: judge what came */
        len += (size_t)n;
        buf[len] = 0;
        if (memchr(buf, 0, len))
            return (ssize_t)len; /* never valid: no need to wait for more */
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)len;
    }
    return (ssize_t)len;
}

static void serve_client(int fd, int stop_fd)
{
    char buf[HEAD_MAX + 1];
    ssize_t len = read_head(fd, buf, stop_fd);
    if (len < 0)
        return;
    buf[len] = 0;
    /* Request line: METHOD SP TARGET SP HTTP/x.y */
    char *eol = strpbrk(buf, "\r\n");
    if (!eol || memchr(buf, 0, (size_t)len)) {
        error_page(fd, stop_fd, 400, "Bad Request", false);
        return;
    }
    *eol = 0;
    char *save = NULL;
    char *method = strtok_r(buf, " ", &save);
    char *target = method ? strtok_r(NULL, " ", &save) : NULL;
    char *version = target ? strtok_r(NULL, " ", &save) : NULL;
    if (!version || strtok_r(NULL, " ", &save) || strncmp(version, "HTTP/1.", 7) != 0) {
        error_page(fd, stop_fd, 400, "Bad Request", false);
        return;
    }
    bool head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") && !head) {
        error_page(fd, stop_fd, 405, "Method Not Allowed", false);
        return;
    }
    size_t plen = strcspn(target, "?");
    if (plen != strlen("/metrics") || strncmp(target, "/metrics", plen) != 0) {
        error_page(fd, stop_fd, 404, "Not Found", head);
        return;
    }
    char *body = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&body, &blen);
    if (!f) {
        error_page(fd, stop_fd, 500, "Internal Server Error", head);
        return;
    }
    rcu_thread_online();
    ctl_write_metrics(f, snapshot_current());
    rcu_thread_offline();
    if (fclose(f) == 0)
        respond(fd, stop_fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, blen,
                head);
    else
        error_page(fd, stop_fd, 500, "Internal Server Error", head);
    free(body);
}

static void serve_and_close(int fd, int stop_fd)
{
    serve_client(fd, stop_fd);
    /* Half-close and drain briefly so unread request bytes do not turn the close into a
     * reset that could discard the response. */
    shutdown(fd, SHUT_WR);
    char sink[512];
    for (int i = 0; i < 8 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

void ctl_http_serve(int lfd, int stop_fd)
{
    ctl_accept_loop(lfd, stop_fd, "control.http", serve_and_close);
}
