/* Presentation-format RDATA to wire form, and validation of RFC 3597 generic RDATA. */
#include "zone/zparse_internal.h"

#include <string.h>

#include "common/err.h"
#include "dns/rrtype.h"

/*
 * Field codes of the table-driven types:
 *   n  domain name           1 2 4  unsigned integer of 1, 2, 4 bytes
 *   T  32-bit time (units)   a 6    IPv4, IPv6 address
 *   s  <character-string>    S      one or more <character-string>s to the end
 *   x  hex to the end (>= 1 byte)    b  base64 to the end (>= 1 byte)
 *   z  hex salt with length byte, '-' for empty
 *   q  one string without length byte (URI target)
 * names: the field names for messages, '|'-separated, one per code.
 */
typedef struct {
    uint16_t type;
    const char *fmt;
    const char *names;
} rdfmt_t;

static const rdfmt_t rdfmts[] = {
    {DNS_T_A, "a", "address"},
    {DNS_T_NS, "n", "name server"},
    {3, "n", "MD name"},
    {4, "n", "MF name"},
    {DNS_T_CNAME, "n", "canonical name"},
    {DNS_T_SOA, "nn4TTTT", "primary server|mailbox|serial|refresh|retry|expire|minimum"},
    {7, "n", "MB name"},
    {8, "n", "MG name"},
    {9, "n", "MR name"},
    {DNS_T_PTR, "n", "PTR name"},
    {DNS_T_HINFO, "ss", "CPU|OS"},
    {14, "nn", "responsible mailbox|error mailbox"},
    {DNS_T_MX, "2n", "MX preference|mail exchange"},
    {DNS_T_TXT, "S", "text"},
    {DNS_T_RP, "nn", "mailbox|TXT name"},
    {DNS_T_AFSDB, "2n", "AFSDB subtype|AFSDB host"},
    {21, "2n", "RT preference|RT host"},
    {DNS_T_AAAA, "6", "address"},
    {DNS_T_SRV, "222n", "SRV priority|SRV weight|SRV port|SRV target"},
    {DNS_T_NAPTR, "22sssn",
     "NAPTR order|NAPTR preference|NAPTR flags|NAPTR services|NAPTR regexp|NAPTR replacement"},
    {DNS_T_KX, "2n", "KX preference|KX exchanger"},
    {DNS_T_DNAME, "n", "DNAME target"},
    {DNS_T_DS, "211x", "key tag|algorithm|digest type|digest"},
    {DNS_T_SSHFP, "11x", "SSHFP algorithm|SSHFP fingerprint type|SSHFP fingerprint"},
    {DNS_T_DNSKEY, "211b", "DNSKEY flags|DNSKEY protocol|DNSKEY algorithm|public key"},
    {DNS_T_DHCID, "b", "DHCID data"},
    {DNS_T_NSEC3PARAM, "112z", "hash algorithm|flags|iterations|salt"},
    {DNS_T_TLSA, "111x", "certificate usage|selector|matching type|certificate data"},
    {DNS_T_SMIMEA, "111x", "certificate usage|selector|matching type|certificate data"},
    {DNS_T_CDS, "211x", "key tag|algorithm|digest type|digest"},
    {DNS_T_CDNSKEY, "211b", "DNSKEY flags|DNSKEY protocol|DNSKEY algorithm|public key"},
    {DNS_T_OPENPGPKEY, "b", "OpenPGP key"},
    {DNS_T_ZONEMD, "411x", "serial|scheme|hash algorithm|digest"},
    {DNS_T_SPF, "S", "text"},
    {DNS_T_URI, "22q", "URI priority|URI weight|URI target"},
};

static const rdfmt_t *find_fmt(uint16_t type)
{
    for (size_t i = 0; i < ARRAY_SIZE(rdfmts); i++)
        if (rdfmts[i].type == type)
            return &rdfmts[i];
    return NULL;
}

/* The i-th '|'-separated field name, into buf. */
static const char *field_name(const char *names, size_t i, char buf[64])
{
    while (i-- > 0) {
        const char *bar = strchr(names, '|');
        if (!bar)
            break;
        names = bar + 1;
    }
    size_t n = strcspn(names, "|");
    if (n > 63)
        n = 63;
    memcpy(buf, names, n);
    buf[n] = 0;
    return buf;
}

static int rd_salt(zp_t *p, const char *what)
{
    zp_tok_t t;
    char show[200];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    if (t.kind == ZP_TOK_WORD && t.len == 1 && t.s[0] == '-') {
        zp_put8(p, 0);
        return 0;
    }
    if (t.kind != ZP_TOK_WORD || t.len % 2 || t.len > 510)
        return zp_error(p, t.line, ERR_PARSE, "bad %s '%s'", what, zp_show(&t, show));
    uint8_t buf[255];
    for (size_t i = 0; i < t.len; i += 2) {
        uint8_t tmp[2];
        for (int k = 0; k < 2; k++) {
            char c = t.s[i + (size_t)k];
            if (c >= '0' && c <= '9')
                tmp[k] = (uint8_t)(c - '0');
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                tmp[k] = (uint8_t)((c | 0x20) - 'a' + 10);
            else
                return zp_error(p, t.line, ERR_PARSE, "bad %s '%s'", what, zp_show(&t, show));
        }
        buf[i / 2] = (uint8_t)(tmp[0] << 4 | tmp[1]);
    }
    zp_put8(p, (uint8_t)(t.len / 2));
    zp_put(p, buf, t.len / 2);
    return 0;
}

/* One token, escapes decoded, appended without a length byte. */
static int rd_string_raw(zp_t *p, const char *what)
{
    zp_tok_t t;
    char show[200];
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    long n = zp_unescape(t.s, t.len, zp_scratch(p), ZP_RDATA_MAX);
    if (n == -2) {
        p->rd_over = true;
        return 0;
    }
    if (n < 0)
        return zp_error(p, t.line, ERR_PARSE, "bad escape in %s '%s'", what, zp_show(&t, show));
    zp_put(p, p->scratch, (size_t)n);
    return 0;
}

static int rd_fmt(zp_t *p, const rdfmt_t *f)
{
    char name[64];
    int rc = 0;
    for (size_t i = 0; f->fmt[i] && rc == 0; i++) {
        const char *what = field_name(f->names, i, name);
        switch (f->fmt[i]) {
        case 'n':
            rc = zp_rd_name(p, what);
            break;
        case '1':
            rc = zp_rd_u8(p, what);
            break;
        case '2':
            rc = zp_rd_u16(p, what);
            break;
        case '4':
            rc = zp_rd_u32(p, what);
            break;
        case 'T':
            rc = zp_rd_time(p, what);
            break;
        case 'a':
            rc = zp_rd_ipv4(p, what);
            break;
        case '6':
            rc = zp_rd_ipv6(p, what);
            break;
        case 's':
            rc = zp_rd_cstr(p, what);
            break;
        case 'S':
            rc = zp_rd_cstr(p, what);
            while (rc == 0 && (rc = zp_more(p)) > 0)
                rc = zp_rd_cstr(p, what);
            break;
        case 'x': {
            long n = zp_rd_hex_rest(p, what, 1);
            rc = n < 0 ? (int)n : 0;
            break;
        }
        case 'b':
            rc = zp_rd_base64_rest(p, what);
            break;
        case 'z':
            rc = rd_salt(p, what);
            break;
        case 'q':
            rc = rd_string_raw(p, what);
            break;
        default:
            rc = ERR_INVAL;
            break;
        }
    }
    return rc;
}

static int rd_caa(zp_t *p)
{
    zp_tok_t t;
    char show[200];
    int rc = zp_rd_u8(p, "CAA flags");
    if (rc < 0)
        return rc;
    if ((rc = zp_field(p, &t, "CAA tag")) < 0)
        return rc;
    bool good = t.kind == ZP_TOK_WORD && t.len >= 1 && t.len <= 15;
    for (size_t i = 0; good && i < t.len; i++) {
        char c = t.s[i];
        good = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    if (!good)
        return zp_error(p, t.line, ERR_PARSE, "bad CAA tag '%s' (1 to 15 letters or digits)",
                        zp_show(&t, show));
    zp_put8(p, (uint8_t)t.len);
    zp_put(p, t.s, t.len);
    return rd_string_raw(p, "CAA value");
}

static int rd_eui(zp_t *p, size_t octets)
{
    zp_tok_t t;
    char show[200];
    const char *what = octets == 6 ? "EUI48 address" : "EUI64 address";
    int rc = zp_field(p, &t, what);
    if (rc < 0)
        return rc;
    uint8_t out[8];
    bool good = t.kind == ZP_TOK_WORD && t.len == octets * 3 - 1;
    for (size_t i = 0; good && i < octets; i++) {
        const char *s = t.s + i * 3;
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[k];
            int d = (c >= '0' && c <= '9')                     ? c - '0'
                    : ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') ? (c | 0x20) - 'a' + 10
                                                               : -1;
            if (d < 0)
                good = false;
            v = v << 4 | (d & 15);
        }
        if (i + 1 < octets && s[2] != '-')
            good = false;
        out[i] = (uint8_t)v;
    }
    if (!good)
        return zp_error(p, t.line, ERR_PARSE, "bad %s '%s'", what, zp_show(&t, show));
    zp_put(p, out, octets);
    return 0;
}

static int check_ds(zp_t *p, unsigned line)
{
    if (p->rdlen < 5)
        return 0;
    size_t want = 0;
    switch (p->rd[3]) {
    case 1:
        want = 20; /* SHA-1 */
        break;
    case 2:
    case 3:
        want = 32; /* SHA-256, GOST */
        break;
    case 4:
        want = 48; /* SHA-384 */
        break;
    }
    if (want && p->rdlen - 4 != want)
        return zp_error(p, line, ERR_PARSE, "DS digest is %zu bytes, digest type %u needs %zu",
                        p->rdlen - 4, p->rd[3], want);
    return 0;
}

static bool is_generic(const zp_tok_t *t)
{
    return t->kind == ZP_TOK_WORD && t->len == 2 && t->s[0] == '\\' && t->s[1] == '#';
}

static int rd_generic(zp_t *p, uint16_t type, unsigned line)
{
    zp_tok_t t;
    uint64_t want;
    char tbuf[16];
    zp_next(p, &t); /* the \# */
    int rc = zp_rd_uint(p, "generic RDATA length", ZP_RDATA_MAX, &want);
    if (rc < 0)
        return rc;
    long got = zp_rd_hex_rest(p, "generic RDATA", 0);
    if (got < 0)
        return (int)got;
    if ((uint64_t)got != want)
        return zp_error(p, line, ERR_PARSE,
                        "generic RDATA length %llu does not match its %ld bytes of data",
                        (unsigned long long)want, got);
    if (!zp_wire_valid(type, p->rd, p->rdlen))
        return zp_error(p, line, ERR_PARSE, "generic RDATA is not valid for type %s",
                        dns_rrtype_to_text(type, tbuf));
    return 0;
}

int zp_rdata(zp_t *p, uint16_t type, unsigned line)
{
    zp_tok_t t;
    char show[200], tbuf[16];
    int rc;
    const rdfmt_t *f;
    p->rdlen = 0;
    p->rd_over = false;
    if ((rc = zp_peek(p, &t)) < 0)
        return rc;
    if (is_generic(&t)) {
        rc = rd_generic(p, type, line);
    } else if (type == DNS_T_CAA) {
        rc = rd_caa(p);
    } else if (type == DNS_T_SVCB || type == DNS_T_HTTPS) {
        rc = zp_rdata_svcb(p, type);
    } else if (type == DNS_T_EUI48 || type == DNS_T_EUI64) {
        rc = rd_eui(p, type == DNS_T_EUI48 ? 6 : 8);
    } else if ((f = find_fmt(type)) != NULL) {
        rc = rd_fmt(p, f);
        if (rc == 0 && (type == DNS_T_DS || type == DNS_T_CDS))
            rc = check_ds(p, line);
    } else {
        return zp_error(p, line, ERR_UNSUPPORTED,
                        "type %s: use RFC 3597 generic syntax (\\# length hex)",
                        dns_rrtype_to_text(type, tbuf));
    }
    if (rc < 0)
        return rc;
    if (p->rd_over)
        return zp_error(p, line, ERR_LIMIT, "RDATA longer than 65535 bytes");
    if ((rc = zp_peek(p, &t)) < 0)
        return rc;
    if (!zp_is_end(&t))
        return zp_error(p, t.line, ERR_PARSE, "extra data after RDATA: '%s'", zp_show(&t, show));
    return 0;
}

/* --- wire validation of generic RDATA --------------------------------------------------- */

/* Length of a valid uncompressed name at off, or 0. */
static size_t wire_name(const uint8_t *rd, size_t len, size_t off)
{
    size_t p = off;
    while (p < len) {
        uint8_t l = rd[p];
        if (l > DNS_LABEL_MAX)
            return 0;
        p += 1 + (size_t)l;
        if (p - off > DNS_NAME_MAX)
            return 0;
        if (l == 0)
            return p - off;
    }
    return 0;
}

static bool wire_fmt(const char *fmt, const uint8_t *rd, size_t len)
{
    size_t off = 0;
    for (; *fmt; fmt++) {
        size_t n;
        switch (*fmt) {
        case 'n':
            if ((n = wire_name(rd, len, off)) == 0)
                return false;
            off += n;
            break;
        case '1':
        case '2':
        case '4':
            off += (size_t)(*fmt - '0');
            break;
        case 'T':
        case 'a':
            off += 4;
            break;
        case '6':
            off += 16;
            break;
        case 's':
        case 'z':
            if (off >= len)
                return false;
            off += 1 + (size_t)rd[off];
            break;
        case 'S':
            if (off >= len)
                return false;
            while (off < len)
                off += 1 + (size_t)rd[off];
            break;
        default: /* the rest of the RDATA, any content */
            return off <= len;
        }
        if (off > len)
            return false;
    }
    return off == len;
}

bool zp_wire_valid(uint16_t type, const uint8_t *rd, size_t len)
{
    const rdfmt_t *f;
    size_t n;
    switch (type) {
    case DNS_T_CAA:
        return len >= 2 && rd[1] >= 1 && (size_t)rd[1] + 2 <= len;
    case DNS_T_SVCB:
    case DNS_T_HTTPS:
        if (len < 3 || (n = wire_name(rd, len, 2)) == 0)
            return false;
        return zp_svcb_wire_valid(rd, len, 2 + n);
    case DNS_T_EUI48:
        return len == 6;
    case DNS_T_EUI64:
        return len == 8;
    default:
        f = find_fmt(type);
        return f ? wire_fmt(f->fmt, rd, len) : true;
    }
}
