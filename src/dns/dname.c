#include "dns/dname.h"

#include <string.h>

#include "common/err.h"

int dns_dname_unpack(const uint8_t *pkt, size_t pktlen, size_t *pos, uint8_t out[DNS_NAME_MAX])
{
    size_t p = *pos;
    size_t len = 0;
    size_t end = 0;      /* position after the name in the original place */
    size_t limit = p;    /* pointers must point before this */
    bool jumped = false;

    for (;;) {
        if (p >= pktlen)
            return ERR_MALFORMED;
        uint8_t c = pkt[p];
        if ((c & 0xC0) == 0xC0) {
            if (p + 1 >= pktlen)
                return ERR_MALFORMED;
            size_t target = (size_t)(c & 0x3F) << 8 | pkt[p + 1];
            if (!jumped) {
                end = p + 2;
                jumped = true;
            }
            /* Strictly backwards (no loops), and never into the 12-byte header. */
            if (target >= limit || target < 12)
                return ERR_MALFORMED;
            limit = target;
            p = target;
            continue;
        }
        if (c & 0xC0)
            return ERR_MALFORMED; /* 0x40 and 0x80: extended label types are obsolete */
        if (p + 1 + c > pktlen || len + 1 + c > DNS_NAME_MAX)
            return ERR_MALFORMED;
        memcpy(out + len, pkt + p, 1 + (size_t)c);
        len += 1 + (size_t)c;
        p += 1 + (size_t)c;
        if (c == 0)
            break;
    }
    *pos = jumped ? end : p;
    return (int)len;
}

static int digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : -1;
}

int dns_dname_from_text(const char *s, size_t len, const uint8_t *origin, uint8_t out[DNS_NAME_MAX])
{
    if (len == 0)
        return ERR_PARSE;
    if (len == 1 && s[0] == '.') {
        out[0] = 0;
        return 1;
    }
    size_t o = 0;        /* write position */
    size_t lab = 0;      /* position of the current label's length byte */
    bool absolute = false;
    out[0] = 0;
    o = 1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            size_t l = o - lab - 1;
            if (l == 0)
                return ERR_PARSE; /* empty label */
            out[lab] = (uint8_t)l;
            if (i == len - 1) {
                absolute = true;
                break;
            }
            if (o >= DNS_NAME_MAX)
                return ERR_LIMIT;
            lab = o;
            out[o++] = 0;
            continue;
        }
        uint8_t byte;
        if (c == '\\') {
            if (i + 1 >= len)
                return ERR_PARSE;
            if (digit(s[i + 1]) >= 0) {
                if (i + 3 >= len)
                    return ERR_PARSE;
                int d1 = digit(s[i + 1]), d2 = digit(s[i + 2]), d3 = digit(s[i + 3]);
                if (d2 < 0 || d3 < 0)
                    return ERR_PARSE;
                int v = d1 * 100 + d2 * 10 + d3;
                if (v > 255)
                    return ERR_PARSE;
                byte = (uint8_t)v;
                i += 3;
            } else {
                byte = (uint8_t)s[i + 1];
                i += 1;
            }
        } else {
            byte = (uint8_t)c;
        }
        if (o - lab - 1 >= DNS_LABEL_MAX)
            return ERR_LIMIT;
        if (o >= DNS_NAME_MAX)
            return ERR_LIMIT;
        out[o++] = byte;
    }
    if (!absolute) {
        size_t l = o - lab - 1;
        if (l == 0)
            return ERR_PARSE;
        out[lab] = (uint8_t)l;
        if (!origin)
            return ERR_PARSE;
        size_t olen = dns_dname_len(origin);
        if (o + olen > DNS_NAME_MAX)
            return ERR_LIMIT;
        memcpy(out + o, origin, olen);
        return (int)(o + olen);
    }
    if (o >= DNS_NAME_MAX)
        return ERR_LIMIT;
    out[o++] = 0;
    return (int)o;
}

size_t dns_dname_to_text(const uint8_t *name, char out[DNS_TEXT_MAX])
{
    size_t o = 0;
    if (name[0] == 0) {
        out[0] = '.';
        out[1] = 0;
        return 1;
    }
    while (name[0]) {
        uint8_t l = name[0];
        for (uint8_t i = 1; i <= l; i++) {
            uint8_t c = name[i];
            if (c <= 0x20 || c >= 0x7f) {
                out[o++] = '\\';
                out[o++] = (char)('0' + c / 100);
                out[o++] = (char)('0' + c / 10 % 10);
                out[o++] = (char)('0' + c % 10);
            } else if (strchr(".\\\"();@$", c)) {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else {
                out[o++] = (char)c;
            }
        }
        out[o++] = '.';
        name += 1 + l;
    }
    out[o] = 0;
    return o;
}

size_t dns_dname_len(const uint8_t *name)
{
    const uint8_t *p = name;
    while (*p)
        p += 1 + *p;
    return (size_t)(p - name) + 1;
}

int dns_dname_labels(const uint8_t *name)
{
    int n = 0;
    while (*name) {
        name += 1 + *name;
        n++;
    }
    return n;
}

size_t dns_dname_lower(uint8_t *dst, const uint8_t *src)
{
    size_t len = dns_dname_len(src);
    size_t i = 0;
    while (src[i]) {
        uint8_t l = src[i];
        dst[i] = l;
        for (size_t j = i + 1; j <= i + l; j++)
            dst[j] = dns_lower(src[j]);
        i += 1 + l;
    }
    dst[i] = 0;
    return len;
}

bool dns_dname_equal(const uint8_t *a, const uint8_t *b)
{
    for (;;) {
        if (*a != *b)
            return false;
        uint8_t l = *a;
        if (l == 0)
            return true;
        for (uint8_t i = 1; i <= l; i++)
            if (dns_lower(a[i]) != dns_lower(b[i]))
                return false;
        a += 1 + l;
        b += 1 + l;
    }
}

bool dns_dname_is_subdomain(const uint8_t *name, const uint8_t *parent)
{
    int nl = dns_dname_labels(name), pl = dns_dname_labels(parent);
    if (nl < pl)
        return false;
    for (int i = 0; i < nl - pl; i++)
        name += 1 + *name;
    return dns_dname_equal(name, parent);
}

int dns_dname_cmp(const uint8_t *a, const uint8_t *b)
{
    /* Collect label offsets, then compare from the rightmost label. */
    const uint8_t *la[128], *lb[128];
    int na = 0, nb = 0;
    for (const uint8_t *p = a; *p; p += 1 + *p)
        la[na++] = p;
    for (const uint8_t *p = b; *p; p += 1 + *p)
        lb[nb++] = p;
    while (na > 0 && nb > 0) {
        const uint8_t *x = la[--na], *y = lb[--nb];
        uint8_t lx = x[0], ly = y[0];
        uint8_t m = lx < ly ? lx : ly;
        for (uint8_t i = 1; i <= m; i++) {
            int d = (int)dns_lower(x[i]) - (int)dns_lower(y[i]);
            if (d)
                return d;
        }
        if (lx != ly)
            return (int)lx - (int)ly;
    }
    return na - nb;
}
