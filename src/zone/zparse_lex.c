/* Zone-file lexer and the field readers shared by the RDATA parsers. */
#include "zone/zparse_internal.h"

#include <arpa/inet.h>
#include <string.h>

#include "common/err.h"

void zp_lex_init(zp_lex_t *lx, const char *buf, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->buf = buf;
    lx->len = len;
    lx->line = 1;
}

static bool is_delim(char c)
{
    switch (c) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case ';':
    case '(':
    case ')':
    case '"':
        return true;
    default:
        return false;
    }
}

static int lex_quoted(zp_t *p, zp_lex_t *lx, zp_tok_t *t)
{
    size_t i = lx->pos + 1;
    t->kind = ZP_TOK_QUOTED;
    t->s = lx->buf + i;
    while (i < lx->len) {
        char c = lx->buf[i];
        if (c == '"') {
            t->len = (size_t)(lx->buf + i - t->s);
            lx->pos = i + 1;
            return 0;
        }
        if (c == '\n')
            break;
        if (c == 0)
            return zp_error(p, lx->line, ERR_PARSE, "NUL byte in input");
        if (c == '\\') {
            if (i + 1 >= lx->len || lx->buf[i + 1] == '\n')
                break;
            if (lx->buf[i + 1] == 0)
                return zp_error(p, lx->line, ERR_PARSE, "NUL byte in input");
            i++;
        }
        i++;
    }
    return zp_error(p, t->line, ERR_PARSE, "unterminated quoted string");
}

static int lex_word(zp_t *p, zp_lex_t *lx, zp_tok_t *t)
{
    size_t i = lx->pos;
    t->kind = ZP_TOK_WORD;
    t->s = lx->buf + i;
    while (i < lx->len && !is_delim(lx->buf[i])) {
        if (lx->buf[i] == 0)
            return zp_error(p, lx->line, ERR_PARSE, "NUL byte in input");
        if (lx->buf[i] == '\\') {
            if (i + 1 >= lx->len || lx->buf[i + 1] == '\n')
                return zp_error(p, lx->line, ERR_PARSE, "backslash at end of line");
            if (lx->buf[i + 1] == 0)
                return zp_error(p, lx->line, ERR_PARSE, "NUL byte in input");
            i++;
        }
        i++;
    }
    t->len = (size_t)(lx->buf + i - t->s);
    lx->pos = i;
    return 0;
}

static int lex(zp_t *p, zp_lex_t *lx, zp_tok_t *t)
{
    bool sep = false;
    for (;;) {
        t->line = lx->line;
        t->bol = lx->pos == lx->line_start;
        t->glued = !sep;
        t->s = lx->buf + lx->pos;
        t->len = 0;
        if (lx->pos >= lx->len) {
            if (lx->paren_line)
                return zp_error(p, lx->paren_line, ERR_PARSE,
                                "unbalanced parentheses: '(' is never closed");
            t->kind = ZP_TOK_EOF;
            return 0;
        }
        char c = lx->buf[lx->pos];
        switch (c) {
        case ' ':
        case '\t':
        case '\r':
            lx->pos++;
            sep = true;
            continue;
        case ';': {
            const char *nl = memchr(lx->buf + lx->pos, '\n', lx->len - lx->pos);
            lx->pos = nl ? (size_t)(nl - lx->buf) : lx->len;
            sep = true;
            continue;
        }
        case '\n':
            lx->pos++;
            lx->line++;
            lx->line_start = lx->pos;
            sep = true;
            if (!lx->paren_line) {
                t->kind = ZP_TOK_EOL;
                return 0;
            }
            continue;
        case '(':
            if (lx->paren_line)
                return zp_error(p, lx->line, ERR_PARSE, "nested parentheses");
            lx->paren_line = lx->line;
            lx->pos++;
            sep = true;
            continue;
        case ')':
            if (!lx->paren_line)
                return zp_error(p, lx->line, ERR_PARSE, "unbalanced parentheses: ')' without '('");
            lx->paren_line = 0;
            lx->pos++;
            sep = true;
            continue;
        case '"':
            return lex_quoted(p, lx, t);
        default:
            return lex_word(p, lx, t);
        }
    }
}

int zp_next(zp_t *p, zp_tok_t *t)
{
    zp_frame_t *f = p->cur;
    if (f->has_peeked) {
        *t = f->peeked;
        f->has_peeked = false;
        return 0;
    }
    return lex(p, &f->lex, t);
}

int zp_peek(zp_t *p, zp_tok_t *t)
{
    zp_frame_t *f = p->cur;
    if (!f->has_peeked) {
        int rc = lex(p, &f->lex, &f->peeked);
        if (rc < 0)
            return rc;
        f->has_peeked = true;
    }
    *t = f->peeked;
    return 0;
}

bool zp_is_end(const zp_tok_t *t)
{
    return t->kind == ZP_TOK_EOL || t->kind == ZP_TOK_EOF;
}

int zp_more(zp_t *p)
{
    zp_tok_t t;
    int rc = zp_peek(p, &t);
    if (rc < 0)
        return rc;
    return !zp_is_end(&t);
}

int zp_field(zp_t *p, zp_tok_t *t, const char *what)
{
    int rc = zp_next(p, t);
    if (rc < 0)
        return rc;
    if (zp_is_end(t))
        return zp_error(p, t->line, ERR_PARSE, "missing %s", what);
    return 0;
}

/* --- numbers, strings, names ------------------------------------------------------------ */

bool zp_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *v)
{
    if (len == 0)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return len > 0;
}

bool zp_parse_ttl(const char *s, size_t len, uint64_t max, uint64_t *v)
{
    if (all_digits(s, len))
        return zp_parse_uint(s, len, max, v);
    uint64_t total = 0;
    size_t i = 0;
    if (len == 0)
        return false;
    while (i < len) {
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || i == len)
            return false; /* no digits, or a number without a unit */
        uint64_t n, mult;
        if (!zp_parse_uint(s + start, i - start, max, &n))
            return false;
        switch (dns_lower((uint8_t)s[i])) {
        case 'w':
            mult = 604800;
            break;
        case 'd':
            mult = 86400;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'm':
            mult = 60;
            break;
        case 's':
            mult = 1;
            break;
        default:
            return false;
        }
        i++;
        if (n > max / mult || total > max - n * mult)
            return false;
        total += n * mult;
    }
    *v = total;
    return true;
}

long zp_unescape(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        if (b == '\\') {
            if (i + 1 >= len)
                return -1;
            if (s[i + 1] >= '0' && s[i + 1] <= '9') {
                if (i + 3 >= len || !all_digits(s + i + 1, 3))
                    return -1;
                int v = (s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0');
                if (v > 255)
                    return -1;
                b = (uint8_t)v;
                i += 3;
            } else {
                b = (uint8_t)s[i + 1];
                i++;
            }
        }
        if (o >= cap)
            return -2;
        out[o++] = b;
    }
    return (long)o;
}

/* After ERR_LIMIT from dns_dname_from_text: was it a label over 63 bytes? */
static bool has_long_label(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            n = 0;
            continue;
        }
        if (s[i] == '\\' && i + 1 < len)
            i += (s[i + 1] >= '0' && s[i + 1] <= '9') ? 3 : 1;
        if (++n > DNS_LABEL_MAX)
            return true;
    }
    return false;
}

int zp_name(zp_t *p, const zp_tok_t *t, const char *what, uint8_t out[DNS_NAME_MAX])
{
    char show[200];
    if (t->kind != ZP_TOK_WORD)
        return zp_error(p, t->line, ERR_PARSE, "bad %s '%s'", what, zp_show(t, show));
    if (t->len == 1 && t->s[0] == '@') {
        size_t n = dns_dname_len(p->cur->origin);
        memcpy(out, p->cur->origin, n);
        return (int)n;
    }
    int n = dns_dname_from_text(t->s, t->len, p->cur->origin, out);
    if (n == ERR_LIMIT) {
        if (has_long_label(t->s, t->len))
            return zp_error(p, t->line, ERR_LIMIT, "label longer than 63 bytes in %s '%s'", what,
                            zp_show(t, show));
        return zp_error(p, t->line, ERR_LIMIT, "%s '%s' longer than 255 bytes", what,
                        zp_show(t, show));
    }
    if (n < 0)
        return zp_error(p, t->line, ERR_PARSE, "bad %s '%s'", what, zp_show(t, show));
    return n;
}

/* --- RDATA writers ---------------------------------------------------------------------- */

void zp_put(zp_t *p, const void *data, size_t n)
{
    if (p->rd_over || n > ZP_RDATA_MAX - p->rdlen) {
        p->rd_over = true;
        return;
    }
    if (n)
        memcpy(p->rd + p->rdlen, data, n);
    p->rdlen += n;
}

void zp_put8(zp_t *p, uint8_t v)
{
    zp_put(p, &v, 1);
}

void zp_put16(zp_t *p, uint16_t v)
{
    uint8_t b[2];
    wr_u16(b, v);
    zp_put(p, b, 2);
}

void zp_put32(zp_t *p, uint32_t v)
{
    uint8_t b[4];
    wr_u32(b, v);
    zp_put(p, b, 4);
}

int zp_rd_uint(zp_t *p, const char *what, uint64_t max, uint64_t *v)
{
    zp_tok_t t;
    char show[200];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    if (t.kind == ZP_TOK_WORD && zp_parse_uint(t.s, t.len, max, v))
        return 0;
    if (t.kind == ZP_TOK_WORD && all_digits(t.s, t.len))
        return zp_error(p, t.line, ERR_PARSE, "%s out of range '%s' (max %llu)", what,
                        zp_show(&t, show), (unsigned long long)max);
    return zp_error(p, t.line, ERR_PARSE, "bad %s '%s'", what, zp_show(&t, show));
}

int zp_rd_u8(zp_t *p, const char *what)
{
    uint64_t v;
    int rc = zp_rd_uint(p, what, UINT8_MAX, &v);
    if (rc == 0)
        zp_put8(p, (uint8_t)v);
    return rc;
}

int zp_rd_u16(zp_t *p, const char *what)
{
    uint64_t v;
    int rc = zp_rd_uint(p, what, UINT16_MAX, &v);
    if (rc == 0)
        zp_put16(p, (uint16_t)v);
    return rc;
}

int zp_rd_u32(zp_t *p, const char *what)
{
    uint64_t v;
    int rc = zp_rd_uint(p, what, UINT32_MAX, &v);
    if (rc == 0)
        zp_put32(p, (uint32_t)v);
    return rc;
}

int zp_rd_time(zp_t *p, const char *what)
{
    zp_tok_t t;
    char show[200];
    uint64_t v;
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    if (t.kind != ZP_TOK_WORD || !zp_parse_ttl(t.s, t.len, UINT32_MAX, &v))
        return zp_error(p, t.line, ERR_PARSE, "bad %s '%s'", what, zp_show(&t, show));
    zp_put32(p, (uint32_t)v);
    return 0;
}

int zp_rd_name(zp_t *p, const char *what)
{
    zp_tok_t t;
    uint8_t name[DNS_NAME_MAX];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    int n = zp_name(p, &t, what, name);
    if (n < 0)
        return n;
    zp_put(p, name, (size_t)n);
    return 0;
}

int zp_rd_cstr(zp_t *p, const char *what)
{
    zp_tok_t t;
    char show[200];
    uint8_t buf[255];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    long n = zp_unescape(t.s, t.len, buf, sizeof(buf));
    if (n == -2)
        return zp_error(p, t.line, ERR_LIMIT, "%s longer than 255 bytes", what);
    if (n < 0)
        return zp_error(p, t.line, ERR_PARSE, "bad escape in %s '%s'", what, zp_show(&t, show));
    zp_put8(p, (uint8_t)n);
    zp_put(p, buf, (size_t)n);
    return 0;
}

static int rd_addr(zp_t *p, const char *what, int af, const char *label)
{
    zp_tok_t t;
    char show[200];
    char buf[64];
    uint8_t addr[16];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    if (t.kind != ZP_TOK_WORD || t.len >= sizeof(buf))
        return zp_error(p, t.line, ERR_PARSE, "bad %s address '%s'", label, zp_show(&t, show));
    memcpy(buf, t.s, t.len);
    buf[t.len] = 0;
    if (inet_pton(af, buf, addr) != 1)
        return zp_error(p, t.line, ERR_PARSE, "bad %s address '%s'", label, zp_show(&t, show));
    zp_put(p, addr, af == AF_INET ? 4 : 16);
    return 0;
}

int zp_rd_ipv4(zp_t *p, const char *what)
{
    return rd_addr(p, what, AF_INET, "IPv4");
}

int zp_rd_ipv6(zp_t *p, const char *what)
{
    return rd_addr(p, what, AF_INET6, "IPv6");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long zp_rd_hex_rest(zp_t *p, const char *what, size_t min)
{
    size_t digits = 0;
    int hi = 0;
    char show[200];
    zp_tok_t t;
    int rc;
    while ((rc = zp_more(p)) > 0) {
        zp_next(p, &t);
        if (t.kind != ZP_TOK_WORD)
            return zp_error(p, t.line, ERR_PARSE, "bad hex in %s '%s'", what, zp_show(&t, show));
        for (size_t i = 0; i < t.len; i++) {
            int v = hexval(t.s[i]);
            if (v < 0)
                return zp_error(p, t.line, ERR_PARSE, "bad hex in %s '%s'", what,
                                zp_show(&t, show));
            if (digits++ & 1)
                zp_put8(p, (uint8_t)(hi << 4 | v));
            else
                hi = v;
        }
    }
    if (rc < 0)
        return rc;
    zp_peek(p, &t);
    if (digits & 1)
        return zp_error(p, t.line, ERR_PARSE, "odd number of hex digits in %s", what);
    if (digits / 2 < min)
        return zp_error(p, t.line, ERR_PARSE, "missing %s", what);
    return (long)(digits / 2);
}

uint8_t *zp_scratch(zp_t *p)
{
    if (!p->scratch)
        p->scratch = xmalloc(ZP_SCRATCH_MAX);
    return p->scratch;
}

static int b64val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long zp_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t o = 0;
    if (len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* padding only in the last quantum, only at its end */
                if (i + 4 != len || k < 2)
                    return -1;
                pad++;
                v[k] = 0;
            } else {
                if (pad)
                    return -1;
                v[k] = b64val(in[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        uint32_t q =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -2;
        out[o++] = (uint8_t)(q >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(q >> 8);
        if (n > 2)
            out[o++] = (uint8_t)q;
    }
    return (long)o;
}

int zp_rd_base64_rest(zp_t *p, const char *what)
{
    uint8_t *text = zp_scratch(p);
    size_t n = 0;
    char show[200];
    zp_tok_t t;
    unsigned line = 0;
    int rc;
    while ((rc = zp_more(p)) > 0) {
        zp_next(p, &t);
        if (!line)
            line = t.line;
        if (t.kind != ZP_TOK_WORD)
            return zp_error(p, t.line, ERR_PARSE, "bad base64 in %s '%s'", what, zp_show(&t, show));
        if (t.len > ZP_SCRATCH_MAX - n)
            return zp_error(p, t.line, ERR_LIMIT, "%s too long", what);
        memcpy(text + n, t.s, t.len);
        n += t.len;
    }
    if (rc < 0)
        return rc;
    if (n == 0) {
        zp_peek(p, &t);
        return zp_error(p, t.line, ERR_PARSE, "missing %s", what);
    }
    long m = zp_base64_decode(text, n, p->rd + p->rdlen, ZP_RDATA_MAX - p->rdlen);
    if (m == -2) {
        p->rd_over = true;
        return 0;
    }
    if (m < 0)
        return zp_error(p, line, ERR_PARSE, "bad base64 in %s", what);
    p->rdlen += (size_t)m;
    return 0;
}
