#include "dns/pkt.h"

#include <string.h>

#include "common/err.h"
#include "dns/rrtype.h"

/* ---- Query parsing --------------------------------------------------------------- */

/* Validate an ECS option body (RFC 7871 §6). Returns true when well-formed. */
static bool parse_ecs(const uint8_t *p, uint16_t len, dns_ecs_t *ecs)
{
    if (len < 4)
        return false;
    memset(ecs->addr, 0, sizeof(ecs->addr));
    ecs->family = rd_u16(p);
    ecs->source = p[2];
    ecs->scope = p[3];
    unsigned maxbits;
    if (ecs->family == 1)
        maxbits = 32;
    else if (ecs->family == 2)
        maxbits = 128;
    else
        return false;
    if (ecs->source > maxbits || ecs->scope != 0)
        return false;
    unsigned alen = dns_ecs_addr_len(ecs->source);
    if (len - 4u != alen)
        return false;
    for (unsigned i = 0; i < alen; i++) /* mostly 3 bytes: no memcpy call */
        ecs->addr[i] = p[4 + i];
    /* Bits beyond the source prefix must be zero. */
    if (ecs->source % 8) {
        uint8_t mask = (uint8_t)(0xFF >> (ecs->source % 8));
        if (ecs->addr[alen - 1] & mask)
            return false;
    }
    return true;
}

/* Parse the OPT RR's fixed part (after its owner) at *pos. Returns an rcode. */
static int parse_opt(const uint8_t *pkt, size_t len, size_t pos, dns_query_t *q)
{
    /* type(2) already checked by the caller; class, ttl, rdlen */
    if (pos + 10 > len)
        return DNS_RCODE_FORMERR;
    uint16_t udp = rd_u16(pkt + pos + 2);
    uint8_t ext_rcode = pkt[pos + 4];
    uint8_t version = pkt[pos + 5];
    uint16_t flags = rd_u16(pkt + pos + 6);
    uint16_t rdlen = rd_u16(pkt + pos + 8);
    pos += 10;
    if (pos + rdlen > len)
        return DNS_RCODE_FORMERR;
    (void)ext_rcode;
    q->edns = true;
    q->edns_version = version;
    q->edns_do = (flags & 0x8000) != 0;
    q->edns_udp = udp < DNS_EDNS_MIN_UDP ? DNS_EDNS_MIN_UDP : udp;

    /* Options must exactly fill the RDATA. */
    size_t end = pos + rdlen;
    bool ecs_bad = false, ecs_seen = false;
    while (pos < end) {
        if (end - pos < 4)
            return DNS_RCODE_FORMERR;
        uint16_t code = rd_u16(pkt + pos);
        uint16_t olen = rd_u16(pkt + pos + 2);
        pos += 4;
        if (olen > end - pos)
            return DNS_RCODE_FORMERR;
        if (code == DNS_EDNS_NSID) {
            q->nsid = true;
        } else if (code == DNS_EDNS_ECS) {
            if (ecs_seen)
                ecs_bad = true; /* two ECS options: ambiguous */
            ecs_seen = true;
            if (!ecs_bad && !parse_ecs(pkt + pos, olen, &q->ecs))
                ecs_bad = true;
        }
        pos += olen;
    }
    if (version > 0)
        return DNS_RCODE_BADVERS;
    if (ecs_bad)
        return DNS_RCODE_FORMERR;
    q->ecs_present = ecs_seen;
    return DNS_RCODE_NOERROR;
}

/* Skip one RR at *pos (name, fixed part, rdata). Returns false if malformed. */
static bool skip_rr(const uint8_t *pkt, size_t len, size_t *pos, uint8_t name[DNS_NAME_MAX],
                    uint16_t *type)
{
    if (*pos < len && pkt[*pos] == 0) { /* the root (an OPT record): nothing to unpack */
        name[0] = 0;
        (*pos)++;
    } else if (dns_dname_unpack(pkt, len, pos, name) < 0) {
        return false;
    }
    if (*pos + 10 > len)
        return false;
    *type = rd_u16(pkt + *pos);
    uint16_t rdlen = rd_u16(pkt + *pos + 8);
    if (*pos + 10 + rdlen > len)
        return false;
    *pos += 10 + (size_t)rdlen;
    return true;
}

/* Bytes 'A'..'Z' of w get 0x20 added, eight at a time; bytes >= 0x80 are left alone. */
static inline uint64_t lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
    uint64_t h7 = w & ~high;
    uint64_t ge_a = h7 + ones * (0x80 - 'A'); /* high bit set: byte (7 bits) >= 'A' */
    uint64_t gt_z = h7 + ones * (0x7F - 'Z'); /* high bit set: byte (7 bits) > 'Z' */
    return w | (((ge_a ^ gt_z) & ~w & high) >> 2);
}

/* The question name, copied as received and lowered. The labels are checked first (one
 * step per label), then the bytes are copied and lowered eight at a time. A compressed
 * name (it can only point back into itself) takes the general path, which refuses it the
 * same way as any other. Returns the length or ERR_MALFORMED. */
static int parse_qname(const uint8_t *pkt, size_t len, size_t *pos, uint8_t *out, uint8_t *lc)
{
    const uint8_t *name = pkt + *pos;
    size_t n = 0, room = len - *pos; /* the caller checked *pos <= len */
    for (;;) {
        if (n >= room)
            return ERR_MALFORMED;
        uint8_t c = name[n];
        if (c & 0xC0) {
            int rc = dns_dname_unpack(pkt, len, pos, out);
            if (rc > 0)
                dns_dname_lower(lc, out);
            return rc;
        }
        if (n + 1 + c > room || n + 1 + c > DNS_NAME_MAX)
            return ERR_MALFORMED;
        n += 1 + (size_t)c;
        if (c == 0)
            break;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, name + i, 8);
        memcpy(out + i, &w, 8);
        w = lower8(w);
        memcpy(lc + i, &w, 8);
    }
    for (; i < n; i++) {
        uint8_t b = name[i];
        out[i] = b;
        lc[i] = (uint8_t)(b + ((unsigned)(b - 'A') < 26u ? 32 : 0));
    }
    *pos += n;
    return (int)n;
}

int dns_query_parse(const uint8_t *pkt, size_t len, dns_query_t *q)
{
    q->has_question = false;
    q->edns = false;
    q->nsid = false;
    q->ecs_present = false;
    q->edns_do = false;
    q->edns_udp = DNS_EDNS_MIN_UDP;
    q->edns_version = 0;
    q->question_len = 0;
    if (len < DNS_HDR_LEN)
        return DNS_PARSE_DROP;
    q->id = rd_u16(pkt);
    if (pkt[2] & DNS_FLAG_QR)
        return DNS_PARSE_DROP; /* a response: never answer it */
    q->opcode = (pkt[2] >> 3) & 0x0F;
    q->rd = (pkt[2] & DNS_FLAG_RD) != 0;
    q->cd = (pkt[3] & DNS_FLAG_CD) != 0;
    uint16_t qd = rd_u16(pkt + 4), an = rd_u16(pkt + 6), ns = rd_u16(pkt + 8),
             ar = rd_u16(pkt + 10);

    size_t pos = DNS_HDR_LEN;
    if (qd == 1) {
        int n = parse_qname(pkt, len, &pos, q->qname, q->qname_lc);
        if (n < 0 || pos + 4 > len)
            return q->opcode == DNS_OPCODE_QUERY ? DNS_RCODE_FORMERR : DNS_RCODE_NOTIMP;
        q->qname_len = (uint8_t)n;
        q->qtype = rd_u16(pkt + pos);
        q->qclass = rd_u16(pkt + pos + 2);
        pos += 4;
        q->question_len = (uint16_t)(pos - DNS_HDR_LEN);
        q->has_question = true;
    }
    if (q->opcode != DNS_OPCODE_QUERY)
        return DNS_RCODE_NOTIMP;
    if (qd != 1 || an != 0)
        return DNS_RCODE_FORMERR;

    /* Authority records (allowed, e.g. IXFR's SOA) are skipped but must be well-formed. */
    uint8_t name[DNS_NAME_MAX];
    uint16_t type;
    for (uint16_t i = 0; i < ns; i++)
        if (!skip_rr(pkt, len, &pos, name, &type))
            return DNS_RCODE_FORMERR;

    bool opt_seen = false;
    int rcode = DNS_RCODE_NOERROR;
    for (uint16_t i = 0; i < ar; i++) {
        size_t rr = pos;
        if (!skip_rr(pkt, len, &pos, name, &type))
            return DNS_RCODE_FORMERR;
        if (type != DNS_T_OPT)
            continue;
        if (opt_seen || name[0] != 0) {
            /* Two OPTs, or an OPT not owned by the root (RFC 6891 §6.1.1). */
            q->edns = false;
            return DNS_RCODE_FORMERR;
        }
        opt_seen = true;
        /* the owner is the root: one zero byte, or a pointer to one */
        size_t fixed = rr + (pkt[rr] == 0 ? 1 : 2);
        rcode = parse_opt(pkt, len, fixed, q);
    }
    if (rcode != DNS_RCODE_NOERROR)
        return rcode;
    if (pos != len)
        return DNS_RCODE_FORMERR; /* trailing garbage */
    return DNS_RCODE_NOERROR;
}

/* ---- Response writing ------------------------------------------------------------ */

/* Big-endian stores in one move each (the byte-wise helpers of common/util.h compile to
 * one store per byte). */
static inline void put16(uint8_t *p, uint16_t v)
{
    v = __builtin_bswap16(v);
    memcpy(p, &v, 2);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

void dns_resp_init(dns_resp_t *r, uint8_t *buf, size_t cap, size_t limit, const dns_query_t *q,
                   int rcode)
{
    r->buf = buf;
    r->cap = cap;
    r->limit = limit < cap ? limit : cap;
    r->section = 0;
    r->count[0] = r->count[1] = r->count[2] = 0;
    r->ncomp = 0;
    put16(buf, q->id);
    buf[2] = (uint8_t)(DNS_FLAG_QR | (q->opcode << 3) | (q->rd ? DNS_FLAG_RD : 0));
    /* CD is not copied: geocast does not do DNSSEC, so for it CD is a reserved bit that
     * is zero in responses (NSD does the same). */
    buf[3] = (uint8_t)(rcode & 0x0F);
    memset(buf + 4, 0, 8);
    r->len = DNS_HDR_LEN;
    if (q->has_question && DNS_HDR_LEN + q->qname_len + 4u <= cap) {
        memcpy(buf + r->len, q->qname, q->qname_len);
        r->len += q->qname_len;
        put16(buf + r->len, q->qtype);
        put16(buf + r->len + 2, q->qclass);
        r->len += 4;
        buf[5] = 1; /* QDCOUNT */
        r->comp[r->ncomp++] = DNS_HDR_LEN;
    }
}

/*
 * Does the name at packet offset off (possibly compressed; the packet is ours, so
 * trusted) equal the wire name n, case-insensitively?
 */
static bool pkt_name_eq(const uint8_t *buf, size_t off, const uint8_t *n)
{
    for (;;) {
        uint8_t c = buf[off];
        while ((c & 0xC0) == 0xC0) {
            off = (size_t)(c & 0x3F) << 8 | buf[off + 1];
            c = buf[off];
        }
        if (c != *n)
            return false;
        if (c == 0)
            return true;
        for (uint8_t i = 1; i <= c; i++) {
            uint8_t x = buf[off + i], y = n[i];
            if (x != y && dns_lower(x) != dns_lower(y)) /* mostly the same case */
                return false;
        }
        off += 1 + (size_t)c;
        n += 1 + c;
    }
}

/* Find an offset in the message where name n (or an equal name) is written. */
static int comp_find(const dns_resp_t *r, const uint8_t *n)
{
    for (uint16_t i = 0; i < r->ncomp; i++) {
        /* Each stored offset starts a name; try every suffix of it. */
        size_t off = r->comp[i];
        for (;;) {
            uint8_t c = r->buf[off];
            if ((c & 0xC0) == 0xC0 || c == 0)
                break; /* pointed-to suffixes are stored in their own right */
            if (pkt_name_eq(r->buf, off, n))
                return (int)off;
            off += 1 + (size_t)c;
        }
    }
    return -1;
}

/* Write name n at r->len, compressed if allowed. Returns bytes written or ERR_SPACE. */
static int put_name(dns_resp_t *r, const uint8_t *n, bool compress, size_t limit)
{
    size_t start = r->len;
    size_t o = r->len;
    const uint8_t *p = n;
    while (*p) {
        if (compress) {
            int at = comp_find(r, p);
            if (at >= 0) {
                if (o + 2 > limit)
                    return ERR_SPACE;
                r->buf[o] = (uint8_t)(0xC0 | (at >> 8));
                r->buf[o + 1] = (uint8_t)at;
                o += 2;
                goto done;
            }
        }
        if (o + 1 + *p > limit)
            return ERR_SPACE;
        memcpy(r->buf + o, p, 1 + (size_t)*p);
        o += 1 + (size_t)*p;
        p += 1 + *p;
    }
    if (o + 1 > limit)
        return ERR_SPACE;
    r->buf[o++] = 0;
done:
    if (compress && start < 0x3FFF && r->ncomp < DNS_COMP_MAX && r->buf[start] != 0 &&
        (r->buf[start] & 0xC0) != 0xC0)
        r->comp[r->ncomp++] = (uint16_t)start;
    r->len = o;
    return (int)(o - start);
}

int dns_resp_add_rr(dns_resp_t *r, const uint8_t *owner, uint16_t owner_off, uint16_t type,
                    uint16_t rclass, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
    if (!owner && (type == DNS_T_A || type == DNS_T_AAAA ||
                   dns_rrtype_name_kind(type) != DNS_RDNAME_COMPRESS)) {
        /* Owner already in the message, RDATA copied as is: the usual answer. */
        size_t need = 12 + (size_t)rdlen;
        if (r->len + need > r->limit)
            return ERR_SPACE;
        uint8_t *p = r->buf + r->len;
        put16(p, (uint16_t)(0xC000 | owner_off));
        put16(p + 2, type);
        put16(p + 4, rclass);
        put32(p + 6, ttl);
        put16(p + 10, rdlen);
        if (rdlen == 4) /* A */
            memcpy(p + 12, rdata, 4);
        else
            memcpy(p + 12, rdata, rdlen);
        r->len += need;
        r->count[r->section]++;
        return 0;
    }
    dns_resp_mark_t m = dns_resp_mark(r);
    size_t limit = r->limit;
    if (owner) {
        if (put_name(r, owner, true, limit) < 0)
            goto nospace;
    } else {
        if (r->len + 2 > limit)
            goto nospace;
        r->buf[r->len] = (uint8_t)(0xC0 | (owner_off >> 8));
        r->buf[r->len + 1] = (uint8_t)owner_off;
        r->len += 2;
    }
    if (r->len + 10 > limit)
        goto nospace;
    uint8_t *fixed = r->buf + r->len;
    wr_u16(fixed, type);
    wr_u16(fixed + 2, rclass);
    wr_u32(fixed + 4, ttl);
    r->len += 10;
    size_t rd_start = r->len;

    dns_rdname_kind_t kind = dns_rrtype_name_kind(type);
    if (kind == DNS_RDNAME_COMPRESS) {
        uint16_t offs[2];
        int nn = dns_rdata_names(type, rdata, rdlen, offs);
        uint16_t at = 0;
        for (int i = 0; i < nn; i++) {
            if (offs[i] > at) {
                if (r->len + (offs[i] - at) > limit)
                    goto nospace;
                memcpy(r->buf + r->len, rdata + at, offs[i] - at);
                r->len += offs[i] - at;
            }
            if (put_name(r, rdata + offs[i], true, limit) < 0)
                goto nospace;
            at = (uint16_t)(offs[i] + dns_dname_len(rdata + offs[i]));
        }
        if (at < rdlen) {
            if (r->len + (rdlen - at) > limit)
                goto nospace;
            memcpy(r->buf + r->len, rdata + at, rdlen - at);
            r->len += rdlen - at;
        }
    } else {
        if (r->len + rdlen > limit)
            goto nospace;
        memcpy(r->buf + r->len, rdata, rdlen);
        r->len += rdlen;
    }
    wr_u16(fixed + 8, (uint16_t)(r->len - rd_start));
    r->count[r->section]++;
    return 0;
nospace:
    dns_resp_rollback(r, &m);
    return ERR_SPACE;
}

size_t dns_opt_size(const dns_opt_out_t *o)
{
    size_t n = DNS_OPT_FIXED_LEN;
    if (o->ecs)
        n += 4 + 4 + dns_ecs_addr_len(o->ecs->source);
    if (o->nsid && o->nsid_len)
        n += 4 + o->nsid_len;
    return n;
}

int dns_resp_add_opt(dns_resp_t *r, const dns_opt_out_t *o)
{
    size_t need = dns_opt_size(o);
    if (r->len + need > r->cap)
        return ERR_SPACE;
    uint8_t *p = r->buf + r->len;
    p[0] = 0;
    put16(p + 1, DNS_T_OPT);
    put16(p + 3, o->udp_size);
    /* TTL: extended rcode, version 0, DO and zero flags */
    put32(p + 5, (uint32_t)(uint8_t)(o->ext_rcode >> 4) << 24 | (o->do_bit ? 0x8000u : 0));
    put16(p + 9, (uint16_t)(need - DNS_OPT_FIXED_LEN));
    p += DNS_OPT_FIXED_LEN;
    if (o->nsid && o->nsid_len) {
        put16(p, DNS_EDNS_NSID);
        put16(p + 2, o->nsid_len);
        memcpy(p + 4, o->nsid, o->nsid_len);
        p += 4 + o->nsid_len;
    }
    if (o->ecs) {
        unsigned alen = dns_ecs_addr_len(o->ecs->source);
        put16(p, DNS_EDNS_ECS);
        put16(p + 2, (uint16_t)(4 + alen));
        put16(p + 4, o->ecs->family);
        p[6] = o->ecs->source;
        p[7] = o->ecs->scope;
        if (alen == 3) /* IPv4 /24, the usual */
            memcpy(p + 8, o->ecs->addr, 3);
        else
            memcpy(p + 8, o->ecs->addr, alen);
    }
    r->len += need;
    r->count[DNS_SEC_ADDITIONAL]++;
    r->section = DNS_SEC_ADDITIONAL;
    dns_resp_set_rcode(r, o->ext_rcode & 0x0F);
    return 0;
}

size_t dns_resp_finish(dns_resp_t *r)
{
    put16(r->buf + 6, r->count[0]);
    put16(r->buf + 8, r->count[1]);
    put16(r->buf + 10, r->count[2]);
    return r->len;
}
