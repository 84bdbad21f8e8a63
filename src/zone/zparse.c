/* Zone-file parser: directives, record framing, defaults, $INCLUDE and the public API. */
#include "zone/zparse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "dns/rrtype.h"
#include "zone/zparse_internal.h"

#define ZP_TTL_MAX 0x7fffffffu /* RFC 2181 section 8 */
#define ZP_DEFAULT_DEPTH 10

int zp_error(zp_t *p, unsigned line, int code, const char *fmt, ...)
{
    if (!p->failed && p->err && p->errlen) {
        int n = snprintf(p->err, p->errlen, "%s:%u: ", p->cur ? p->cur->name : "?", line);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    p->failed = true;
    return code;
}

const char *zp_show(const zp_tok_t *t, char buf[200])
{
    size_t o = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (i == 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        uint8_t c = (uint8_t)t->s[i];
        if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(buf + o, 5, "\\%03u", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = 0;
    return buf;
}

static bool tok_is(const zp_tok_t *t, const char *lit)
{
    size_t n = strlen(lit);
    if (t->kind != ZP_TOK_WORD || t->len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (dns_lower((uint8_t)t->s[i]) != dns_lower((uint8_t)lit[i]))
            return false;
    return true;
}

static int expect_end(zp_t *p, const char *after)
{
    zp_tok_t t;
    char show[200];
    int rc = zp_peek(p, &t);
    if (rc < 0)
        return rc;
    if (!zp_is_end(&t))
        return zp_error(p, t.line, ERR_PARSE, "extra data after %s: '%s'", after,
                        zp_show(&t, show));
    return 0;
}

/* --- files ------------------------------------------------------------------------------ */

/* Read a whole file into a heap buffer. Returns 0, -errno, or ZP_NOT_REGULAR. */
#define ZP_NOT_REGULAR 1
static int read_all(const char *path, bool regular_only, char **out, size_t *outlen,
                    struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (regular_only && !S_ISREG(st->st_mode)) {
        close(fd);
        return ZP_NOT_REGULAR;
    }
    size_t cap = S_ISREG(st->st_mode) && st->st_size > 0 ? (size_t)st->st_size + 1 : 65536;
    size_t len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
}

/* Directory part of path (heap), or NULL when path has no '/'. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static void frame_init(zp_frame_t *f, const char *name, const char *buf, size_t len)
{
    memset(f, 0, sizeof(*f));
    f->name = name;
    zp_lex_init(&f->lex, buf, len);
}

static int parse_stream(zp_t *p);

static int do_include(zp_t *p, const zp_tok_t *ft, const uint8_t *origin)
{
    zp_frame_t *f = p->cur;
    char show[200], errbuf[128];
    char rel[PATH_MAX];
    long n = zp_unescape(ft->s, ft->len, (uint8_t *)rel, sizeof(rel) - 1);
    if (n <= 0 || memchr(rel, 0, (size_t)n))
        return zp_error(p, ft->line, ERR_PARSE, "bad $INCLUDE file name '%s'", zp_show(ft, show));
    rel[n] = 0;
    if (f->depth + 1 > p->max_depth)
        return zp_error(p, ft->line, ERR_LIMIT, "$INCLUDE nested deeper than %u levels",
                        p->max_depth);

    size_t dl = (rel[0] != '/' && f->dir) ? strlen(f->dir) : 0;
    char *path = xmalloc(dl + 1 + (size_t)n + 1);
    if (dl)
        snprintf(path, dl + 1 + (size_t)n + 1, "%s/%s", f->dir, rel);
    else
        memcpy(path, rel, (size_t)n + 1);

    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc = read_all(path, true, &buf, &len, &st);
    if (rc != 0) {
        rc = zp_error(p, ft->line, ERR_IO, "$INCLUDE '%s': %s", path,
                      rc == ZP_NOT_REGULAR ? "not a regular file"
                                           : strerror_r(-rc, errbuf, sizeof(errbuf)));
        free(path);
        return rc;
    }
    for (zp_frame_t *a = f; a; a = a->parent) {
        if (a->has_id && a->dev == st.st_dev && a->ino == st.st_ino) {
            rc =
                zp_error(p, ft->line, ERR_PARSE, "$INCLUDE loop: '%s' is already being read", path);
            free(buf);
            free(path);
            return rc;
        }
    }

    zp_frame_t child;
    frame_init(&child, path, buf, len);
    child.parent = f;
    child.dir = dir_of(path);
    child.has_id = true;
    child.dev = st.st_dev;
    child.ino = st.st_ino;
    child.depth = f->depth + 1;
    memcpy(child.origin, origin ? origin : f->origin, DNS_NAME_MAX);
    memcpy(child.owner, f->owner, DNS_NAME_MAX);
    child.has_owner = f->has_owner;
    child.has_dollar_ttl = f->has_dollar_ttl;
    child.dollar_ttl = f->dollar_ttl;
    child.has_last_ttl = f->has_last_ttl;
    child.last_ttl = f->last_ttl;

    p->cur = &child;
    rc = parse_stream(p);
    p->cur = f;
    /* The origin reverts (RFC 1035); TTL state carries over, as in BIND and NSD. */
    f->has_dollar_ttl = child.has_dollar_ttl;
    f->dollar_ttl = child.dollar_ttl;
    f->has_last_ttl = child.has_last_ttl;
    f->last_ttl = child.last_ttl;
    free(child.dir);
    free(buf);
    free(path);
    return rc;
}

/* --- directives and records ------------------------------------------------------------- */

/* NSD rejects relative names in $ORIGIN and $INCLUDE, so we do too. */
static int absolute_name(zp_t *p, const zp_tok_t *t, const char *what, uint8_t out[DNS_NAME_MAX])
{
    char show[200];
    bool dot = t->kind == ZP_TOK_WORD && t->len > 0 && t->s[t->len - 1] == '.';
    if (dot && t->len >= 2 && t->s[t->len - 2] == '\\') {
        /* "\\." ends with an escaped dot unless the backslash is itself escaped */
        size_t n = 0;
        for (size_t i = t->len - 1; i > 0 && t->s[i - 1] == '\\'; i--)
            n++;
        dot = n % 2 == 0;
    }
    if (!dot)
        return zp_error(p, t->line, ERR_PARSE, "%s '%s' must be an absolute name (ending in '.')",
                        what, zp_show(t, show));
    return zp_name(p, t, what, out);
}

static int directive(zp_t *p, const zp_tok_t *d)
{
    zp_frame_t *f = p->cur;
    zp_tok_t t;
    char show[200];
    int rc;
    if (tok_is(d, "$ORIGIN")) {
        uint8_t name[DNS_NAME_MAX];
        if ((rc = zp_field(p, &t, "$ORIGIN name")) < 0 ||
            (rc = absolute_name(p, &t, "$ORIGIN", name)) < 0)
            return rc;
        memcpy(f->origin, name, (size_t)rc);
        return expect_end(p, "$ORIGIN");
    }
    if (tok_is(d, "$TTL")) {
        uint64_t v;
        if ((rc = zp_field(p, &t, "$TTL value")) < 0)
            return rc;
        if (t.kind != ZP_TOK_WORD || !zp_parse_ttl(t.s, t.len, UINT64_MAX >> 4, &v))
            return zp_error(p, t.line, ERR_PARSE, "bad $TTL '%s'", zp_show(&t, show));
        if (v > ZP_TTL_MAX)
            return zp_error(p, t.line, ERR_PARSE, "$TTL '%s' out of range (max %u)",
                            zp_show(&t, show), ZP_TTL_MAX);
        f->dollar_ttl = (uint32_t)v;
        f->has_dollar_ttl = true;
        return expect_end(p, "$TTL");
    }
    if (tok_is(d, "$INCLUDE")) {
        zp_tok_t file;
        uint8_t origin[DNS_NAME_MAX];
        bool has_origin = false;
        if ((rc = zp_field(p, &file, "$INCLUDE file name")) < 0 || (rc = zp_more(p)) < 0)
            return rc;
        if (rc > 0) {
            zp_next(p, &t);
            if ((rc = absolute_name(p, &t, "$INCLUDE origin", origin)) < 0)
                return rc;
            has_origin = true;
        }
        if ((rc = expect_end(p, "$INCLUDE")) < 0)
            return rc;
        rc = do_include(p, &file, has_origin ? origin : NULL);
        /* BIND goes back to the owner before the $INCLUDE, NSD keeps the included file's
         * last owner: make the next record name its owner. */
        f->has_owner = false;
        f->owner_after_include = true;
        return rc;
    }
    return zp_error(p, d->line, ERR_UNSUPPORTED, "unknown directive '%s'", zp_show(d, show));
}

static int record(zp_t *p, zp_tok_t *t)
{
    zp_frame_t *f = p->cur;
    unsigned line = t->line;
    char show[200], tbuf[16];
    int rc;
    if (t->bol) {
        if ((rc = zp_name(p, t, "owner name", f->owner)) < 0)
            return rc;
        f->has_owner = true;
        if ((rc = zp_field(p, t, "type")) < 0)
            return rc;
    } else if (!f->has_owner) {
        if (f->owner_after_include)
            return zp_error(p, line, ERR_PARSE,
                            "no owner name after $INCLUDE (servers disagree on which owner "
                            "applies; write it out)");
        return zp_error(p, line, ERR_PARSE,
                        "no owner name (the first record must start in column 0)");
    }

    bool has_ttl = false, has_class = false;
    uint32_t ttl = 0;
    for (int i = 0; i < 2 && t->kind == ZP_TOK_WORD; i++) {
        if (t->s[0] >= '0' && t->s[0] <= '9') {
            uint64_t v;
            if (has_ttl)
                return zp_error(p, t->line, ERR_PARSE, "duplicate TTL '%s'", zp_show(t, show));
            if (!zp_parse_ttl(t->s, t->len, UINT64_MAX >> 4, &v))
                return zp_error(p, t->line, ERR_PARSE, "bad TTL '%s'", zp_show(t, show));
            if (v > ZP_TTL_MAX)
                return zp_error(p, t->line, ERR_PARSE, "TTL '%s' out of range (max %u)",
                                zp_show(t, show), ZP_TTL_MAX);
            ttl = (uint32_t)v;
            has_ttl = true;
        } else {
            int c = dns_rrclass_from_text(t->s, t->len);
            if (c < 0)
                break;
            if (has_class)
                return zp_error(p, t->line, ERR_PARSE, "duplicate class '%s'", zp_show(t, show));
            if (c != DNS_C_IN)
                return zp_error(p, t->line, ERR_UNSUPPORTED,
                                "class '%s': only class IN is supported", zp_show(t, show));
            has_class = true;
        }
        if ((rc = zp_field(p, t, "type")) < 0)
            return rc;
    }
    int type = t->kind == ZP_TOK_WORD ? dns_rrtype_from_text(t->s, t->len) : -1;
    if (type < 0)
        return zp_error(p, t->line, ERR_PARSE, "unknown RR type '%s'", zp_show(t, show));
    if (dns_rrtype_is_meta((uint16_t)type))
        return zp_error(p, t->line, ERR_PARSE, "type %s cannot appear in a zone",
                        dns_rrtype_to_text((uint16_t)type, tbuf));
    if ((rc = zp_rdata(p, (uint16_t)type, line)) < 0)
        return rc;

    if (!has_ttl) {
        if (f->has_dollar_ttl) {
            ttl = f->dollar_ttl;
        } else if (f->has_last_ttl) {
            ttl = f->last_ttl;
        } else if (type == DNS_T_SOA && p->rdlen >= 20) {
            ttl = rd_u32(p->rd + p->rdlen - 4);
            if (ttl > ZP_TTL_MAX)
                ttl = ZP_TTL_MAX;
        } else {
            ttl = p->opts->default_ttl;
        }
    }
    f->last_ttl = ttl;
    f->has_last_ttl = true;

    if (!p->cb)
        return 0;
    zparse_rr_t rr = {
        .owner = f->owner,
        .type = (uint16_t)type,
        .rclass = DNS_C_IN,
        .ttl = ttl,
        .rdata = p->rd,
        .rdlen = (uint16_t)p->rdlen,
        .file = f->name,
        .line = line,
    };
    char msg[256];
    msg[0] = 0;
    rc = p->cb(p->cb_ctx, &rr, msg, sizeof(msg));
    if (rc < 0) {
        msg[sizeof(msg) - 1] = 0;
        return zp_error(p, line, rc, "%s", msg[0] ? msg : "record rejected");
    }
    return 0;
}

static int parse_stream(zp_t *p)
{
    zp_tok_t t;
    for (;;) {
        int rc = zp_next(p, &t);
        if (rc < 0)
            return rc;
        if (t.kind == ZP_TOK_EOF)
            return 0;
        if (t.kind == ZP_TOK_EOL)
            continue;
        if (t.kind == ZP_TOK_WORD && t.s[0] == '$')
            rc = directive(p, &t);
        else
            rc = record(p, &t);
        if (rc < 0)
            return rc;
    }
}

/* --- public API ------------------------------------------------------------------------- */

static bool origin_valid(const uint8_t *o)
{
    size_t n = 0;
    while (o[n]) {
        if (o[n] > DNS_LABEL_MAX)
            return false;
        n += 1 + (size_t)o[n];
        if (n >= DNS_NAME_MAX)
            return false;
    }
    return true;
}

static int run(zp_frame_t *top, const zparse_opts_t *opts, zparse_cb_t cb, void *ctx, char *err,
               size_t errlen)
{
    zp_t *p = xcalloc(1, sizeof(*p));
    p->opts = opts;
    p->cb = cb;
    p->cb_ctx = ctx;
    p->err = err;
    p->errlen = errlen;
    p->cur = top;
    p->max_depth = opts->max_include_depth ? opts->max_include_depth : ZP_DEFAULT_DEPTH;
    memcpy(top->origin, opts->origin, dns_dname_len(opts->origin));
    int rc = parse_stream(p);
    if (rc < 0 && !p->failed)
        zp_error(p, top->lex.line, rc, "%s", err_str(rc));
    free(p->scratch);
    free(p->svbuf);
    free(p->svc);
    free(p);
    return rc < 0 ? rc : 0;
}

static int check_opts(const zparse_opts_t *opts, const char *name, char *err, size_t errlen)
{
    if (opts && opts->origin && origin_valid(opts->origin))
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s: no valid origin given", name);
    return ERR_INVAL;
}

int zparse_file(const char *path, const zparse_opts_t *opts, zparse_cb_t cb, void *ctx, char *err,
                size_t errlen)
{
    char errbuf[128];
    int rc = check_opts(opts, path, err, errlen);
    if (rc < 0)
        return rc;
    if (err && errlen)
        err[0] = 0;
    char *buf;
    size_t len;
    struct stat st;
    if ((rc = read_all(path, false, &buf, &len, &st)) < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path,
                     strerror_r(-rc, errbuf, sizeof(errbuf)));
        return ERR_IO;
    }
    zp_frame_t top;
    frame_init(&top, path, buf, len);
    top.dir = dir_of(path);
    top.has_id = true;
    top.dev = st.st_dev;
    top.ino = st.st_ino;
    rc = run(&top, opts, cb, ctx, err, errlen);
    free(top.dir);
    free(buf);
    return rc;
}

int zparse_buffer(const char *text, size_t len, const char *name, const zparse_opts_t *opts,
                  zparse_cb_t cb, void *ctx, char *err, size_t errlen)
{
    if (!name)
        name = "<buffer>";
    int rc = check_opts(opts, name, err, errlen);
    if (rc < 0)
        return rc;
    if (err && errlen)
        err[0] = 0;
    zp_frame_t top;
    frame_init(&top, name, text ? text : "", text ? len : 0);
    return run(&top, opts, cb, ctx, err, errlen);
}
