/* SVCB and HTTPS presentation format (RFC 9460): SvcPriority TargetName SvcParams. */
#include "zone/zparse_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "dns/rrtype.h"

enum {
    SVC_MANDATORY = 0,
    SVC_ALPN = 1,
    SVC_NO_DEFAULT_ALPN = 2,
    SVC_PORT = 3,
    SVC_IPV4HINT = 4,
    SVC_ECH = 5,
    SVC_IPV6HINT = 6,
    SVC_DOHPATH = 7,
    SVC_OHTTP = 8,
};

static const char *const svc_names[] = {
    "mandatory", "alpn",     "no-default-alpn", "port",  "ipv4hint",
    "ech",       "ipv6hint", "dohpath",         "ohttp",
};

/* Key mnemonic or keyNNNNN (no leading zeros, 65535 is reserved). Returns -1 if bad. */
static int svc_key(const char *s, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(svc_names); i++)
        if (strlen(svc_names[i]) == len && memcmp(svc_names[i], s, len) == 0)
            return (int)i;
    uint64_t v;
    if (len < 4 || len > 8 || memcmp(s, "key", 3) != 0 || (s[3] == '0' && len > 4))
        return -1;
    if (!zp_parse_uint(s + 3, len - 3, 65534, &v))
        return -1;
    return (int)v;
}

/* Big-endian 16-bit keys sort like their bytes. */
static int cmp_be16(const void *a, const void *b)
{
    return memcmp(a, b, 2);
}

static int cmp_param(const void *a, const void *b)
{
    const zp_svc_param_t *x = a, *y = b;
    if (x->key != y->key)
        return (int)x->key - (int)y->key;
    return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Split a decoded value on ',' (RFC 9460 appendix A.1: a backslash in the decoded value
 * escapes the next byte). Calls item() for each; items are written to tmp.
 */
typedef int (*svc_item_fn)(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                           size_t cap, size_t *olen);

static int svc_list(zp_t *p, unsigned line, const char *keyname, const uint8_t *v, size_t len,
                    svc_item_fn item, uint8_t *out, size_t cap, size_t *olen)
{
    uint8_t tmp[256];
    size_t n = 0;
    *olen = 0;
    if (len == 0)
        return zp_error(p, line, ERR_PARSE, "SvcParam %s needs a value", keyname);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || v[i] == ',') {
            if (n == 0)
                return zp_error(p, line, ERR_PARSE, "empty item in SvcParam %s", keyname);
            int rc = item(p, line, tmp, n, out, cap, olen);
            if (rc < 0)
                return rc;
            n = 0;
            continue;
        }
        uint8_t b = v[i];
        if (b == '\\') {
            if (i + 1 >= len)
                return zp_error(p, line, ERR_PARSE, "bad escape in SvcParam %s", keyname);
            b = v[++i];
        }
        if (n >= sizeof(tmp) - 1)
            return zp_error(p, line, ERR_LIMIT, "item longer than 255 bytes in SvcParam %s",
                            keyname);
        tmp[n++] = b;
    }
    return 0;
}

static int put_out(zp_t *p, unsigned line, uint8_t *out, size_t cap, size_t *olen, const void *data,
                   size_t n)
{
    if (n > cap - *olen)
        return zp_error(p, line, ERR_LIMIT, "RDATA longer than 65535 bytes");
    memcpy(out + *olen, data, n);
    *olen += n;
    return 0;
}

static int item_alpn(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                     size_t cap, size_t *olen)
{
    uint8_t l = (uint8_t)len; /* svc_list() keeps items <= 255 */
    int rc = put_out(p, line, out, cap, olen, &l, 1);
    return rc < 0 ? rc : put_out(p, line, out, cap, olen, item, len);
}

static int item_addr(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                     size_t cap, size_t *olen, int af)
{
    char buf[64];
    uint8_t addr[16];
    if (len >= sizeof(buf) || memchr(item, 0, len))
        return zp_error(p, line, ERR_PARSE, "bad %s in SvcParam",
                        af == AF_INET ? "IPv4 address" : "IPv6 address");
    memcpy(buf, item, len);
    buf[len] = 0;
    if (inet_pton(af, buf, addr) != 1)
        return zp_error(p, line, ERR_PARSE, "bad %s '%s' in SvcParam",
                        af == AF_INET ? "IPv4 address" : "IPv6 address", buf);
    return put_out(p, line, out, cap, olen, addr, af == AF_INET ? 4 : 16);
}

static int item_v4(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                   size_t cap, size_t *olen)
{
    return item_addr(p, line, item, len, out, cap, olen, AF_INET);
}

static int item_v6(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                   size_t cap, size_t *olen)
{
    return item_addr(p, line, item, len, out, cap, olen, AF_INET6);
}

static int item_key(zp_t *p, unsigned line, const uint8_t *item, size_t len, uint8_t *out,
                    size_t cap, size_t *olen)
{
    int k = svc_key((const char *)item, len);
    if (k < 0)
        return zp_error(p, line, ERR_PARSE, "unknown key '%.*s' in SvcParam mandatory", (int)len,
                        (const char *)item);
    uint8_t b[2];
    wr_u16(b, (uint16_t)k);
    return put_out(p, line, out, cap, olen, b, 2);
}

/* Convert one decoded value of key into wire form at out. */
static int svc_value(zp_t *p, unsigned line, int key, bool has_value, const uint8_t *v, size_t len,
                     uint8_t *out, size_t cap, size_t *olen)
{
    char kbuf[16];
    const char *kn = key < (int)ARRAY_SIZE(svc_names) ? svc_names[key] : kbuf;
    if (key >= (int)ARRAY_SIZE(svc_names))
        snprintf(kbuf, sizeof(kbuf), "key%d", key);
    *olen = 0;
    switch (key) {
    case SVC_MANDATORY: {
        int rc = svc_list(p, line, kn, v, len, item_key, out, cap, olen);
        if (rc < 0)
            return rc;
        size_t n = *olen / 2;
        qsort(out, n, 2, cmp_be16);
        for (size_t i = 0; i < n; i++) {
            if (rd_u16(out + 2 * i) == SVC_MANDATORY)
                return zp_error(p, line, ERR_PARSE, "SvcParam mandatory lists itself");
            if (i > 0 && rd_u16(out + 2 * i) == rd_u16(out + 2 * i - 2))
                return zp_error(p, line, ERR_PARSE, "duplicate key in SvcParam mandatory");
        }
        return 0;
    }
    case SVC_ALPN:
        return svc_list(p, line, kn, v, len, item_alpn, out, cap, olen);
    case SVC_NO_DEFAULT_ALPN:
    case SVC_OHTTP:
        if (len)
            return zp_error(p, line, ERR_PARSE, "SvcParam %s takes no value", kn);
        return 0;
    case SVC_PORT: {
        uint64_t port;
        if (!zp_parse_uint((const char *)v, len, 65535, &port))
            return zp_error(p, line, ERR_PARSE, "bad port in SvcParam port");
        uint8_t b[2];
        wr_u16(b, (uint16_t)port);
        return put_out(p, line, out, cap, olen, b, 2);
    }
    case SVC_IPV4HINT:
        return svc_list(p, line, kn, v, len, item_v4, out, cap, olen);
    case SVC_IPV6HINT:
        return svc_list(p, line, kn, v, len, item_v6, out, cap, olen);
    case SVC_ECH: {
        long n = len ? zp_base64_decode(v, len, out, cap) : -1;
        if (n == -2)
            return zp_error(p, line, ERR_LIMIT, "RDATA longer than 65535 bytes");
        if (n < 0)
            return zp_error(p, line, ERR_PARSE, "bad base64 in SvcParam ech");
        *olen = (size_t)n;
        return 0;
    }
    default:
        (void)has_value;
        if (key == SVC_DOHPATH && len == 0)
            return zp_error(p, line, ERR_PARSE, "SvcParam dohpath needs a value");
        return put_out(p, line, out, cap, olen, v, len);
    }
}

int zp_rdata_svcb(zp_t *p, uint16_t type)
{
    (void)type;
    char show[200];
    zp_tok_t t;
    int rc;
    if ((rc = zp_rd_u16(p, "SvcPriority")) < 0 || (rc = zp_rd_name(p, "TargetName")) < 0)
        return rc;
    if (!p->svbuf) {
        p->svbuf = xmalloc(ZP_RDATA_MAX);
        p->svc = xmalloc(ZP_SVC_MAX * sizeof(*p->svc));
    }
    uint8_t *dec = zp_scratch(p);
    size_t n = 0, used = 0;
    bool mandatory = false;
    unsigned line = 0;
    while ((rc = zp_more(p)) > 0) {
        zp_next(p, &t);
        line = t.line;
        if (t.kind != ZP_TOK_WORD)
            return zp_error(p, t.line, ERR_PARSE, "bad SvcParam '%s'", zp_show(&t, show));
        const char *eq = memchr(t.s, '=', t.len);
        size_t klen = eq ? (size_t)(eq - t.s) : t.len;
        const char *val = eq ? eq + 1 : NULL;
        size_t vlen = eq ? t.len - klen - 1 : 0;
        int key = svc_key(t.s, klen);
        if (key < 0)
            return zp_error(p, t.line, ERR_PARSE, "unknown SvcParam key '%.*s'", (int)MIN(klen, 40),
                            t.s);
        if (eq && vlen == 0) {
            zp_tok_t q;
            if ((rc = zp_peek(p, &q)) < 0)
                return rc;
            if (q.kind == ZP_TOK_QUOTED && q.glued) {
                zp_next(p, &q);
                val = q.s;
                vlen = q.len;
            }
        }
        long dlen = val ? zp_unescape(val, vlen, dec, ZP_RDATA_MAX) : 0;
        if (dlen == -2)
            return zp_error(p, t.line, ERR_LIMIT, "RDATA longer than 65535 bytes");
        if (dlen < 0)
            return zp_error(p, t.line, ERR_PARSE, "bad escape in SvcParam '%.*s'",
                            (int)MIN(klen, 40), t.s);
        if (n >= ZP_SVC_MAX)
            return zp_error(p, t.line, ERR_LIMIT, "too many SvcParams");
        size_t olen;
        rc = svc_value(p, t.line, key, eq != NULL, dec, (size_t)dlen, p->svbuf + used,
                       ZP_RDATA_MAX - used, &olen);
        if (rc < 0)
            return rc;
        p->svc[n].key = (uint16_t)key;
        p->svc[n].len = (uint16_t)olen;
        p->svc[n].off = (uint32_t)used;
        used += olen;
        n++;
        mandatory |= key == SVC_MANDATORY;
    }
    if (rc < 0)
        return rc;
    qsort(p->svc, n, sizeof(*p->svc), cmp_param);
    bool alpn = false, no_default_alpn = false;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && p->svc[i].key == p->svc[i - 1].key)
            return zp_error(p, line, ERR_PARSE, "duplicate SvcParam key%u", p->svc[i].key);
        alpn |= p->svc[i].key == SVC_ALPN;
        no_default_alpn |= p->svc[i].key == SVC_NO_DEFAULT_ALPN;
    }
    if (no_default_alpn && !alpn)
        return zp_error(p, line, ERR_PARSE, "SvcParam no-default-alpn requires alpn");
    if (mandatory) {
        const uint8_t *m = p->svbuf + p->svc[0].off; /* sorted: key 0 first */
        for (size_t k = 0; k + 1 < p->svc[0].len; k += 2) {
            uint16_t want = rd_u16(m + k);
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = p->svc[i].key == want;
            if (!found)
                return zp_error(p, line, ERR_PARSE,
                                "SvcParam mandatory lists key%u, which is missing", want);
        }
    }
    for (size_t i = 0; i < n; i++) {
        zp_put16(p, p->svc[i].key);
        zp_put16(p, p->svc[i].len);
        zp_put(p, p->svbuf + p->svc[i].off, p->svc[i].len);
    }
    return 0;
}

bool zp_svcb_wire_valid(const uint8_t *rd, size_t len, size_t off)
{
    long prev = -1;
    while (off < len) {
        if (len - off < 4)
            return false;
        uint16_t key = rd_u16(rd + off), vlen = rd_u16(rd + off + 2);
        const uint8_t *v = rd + off + 4;
        off += 4;
        if ((long)key <= prev || key == 65535 || vlen > len - off)
            return false;
        prev = key;
        switch (key) {
        case SVC_MANDATORY:
            if (vlen == 0 || vlen % 2)
                return false;
            break;
        case SVC_ALPN:
            if (vlen == 0)
                return false;
            for (size_t i = 0; i < vlen; i += 1 + (size_t)v[i])
                if (v[i] == 0 || i + 1 + v[i] > vlen)
                    return false;
            break;
        case SVC_NO_DEFAULT_ALPN:
        case SVC_OHTTP:
            if (vlen)
                return false;
            break;
        case SVC_PORT:
            if (vlen != 2)
                return false;
            break;
        case SVC_IPV4HINT:
            if (vlen == 0 || vlen % 4)
                return false;
            break;
        case SVC_IPV6HINT:
            if (vlen == 0 || vlen % 16)
                return false;
            break;
        }
        off += vlen;
    }
    return true;
}
