#include "common/err.h"
#include "dns/pkt.h"
#include "dns/rrtype.h"
#include "tap.h"

/* Build a query: header, question, optional OPT with raw option bytes. */
static size_t build(uint8_t *b, const char *qname_wire, size_t qlen, uint16_t qtype, bool opt,
                    uint8_t version, uint16_t udp, const uint8_t *opts, uint16_t optlen)
{
    memset(b, 0, 12);
    b[0] = 0x12;
    b[1] = 0x34;
    b[2] = 0x01; /* RD */
    b[5] = 1;
    b[11] = opt ? 1 : 0;
    size_t o = 12;
    memcpy(b + o, qname_wire, qlen);
    o += qlen;
    wr_u16(b + o, qtype);
    wr_u16(b + o + 2, 1);
    o += 4;
    if (opt) {
        b[o++] = 0;
        wr_u16(b + o, DNS_T_OPT);
        wr_u16(b + o + 2, udp);
        b[o + 4] = 0;
        b[o + 5] = version;
        b[o + 6] = 0x80; /* DO */
        b[o + 7] = 0;
        wr_u16(b + o + 8, optlen);
        o += 10;
        if (optlen)
            memcpy(b + o, opts, optlen);
        o += optlen;
    }
    return o;
}

#define QN "\3www\7ExAmple\3com"
#define QNLEN 17

static void parse_ok(void)
{
    uint8_t b[512];
    dns_query_t q;
    size_t n = build(b, QN, QNLEN, DNS_T_A, false, 0, 0, NULL, 0);
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOERROR, "plain query");
    is_int(q.id, 0x1234, "id");
    ok(q.rd, "RD");
    is_int(q.qtype, DNS_T_A, "qtype");
    is_mem(q.qname, QN, QNLEN, "qname case kept");
    is_mem(q.qname_lc, "\3www\7example\3com", QNLEN, "qname lowered");
    ok(!q.edns, "no EDNS");

    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 4096, NULL, 0);
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOERROR, "EDNS query");
    ok(q.edns && q.edns_do && q.edns_udp == 4096, "EDNS fields");
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 100, NULL, 0);
    dns_query_parse(b, n, &q);
    is_int(q.edns_udp, 512, "UDP size below 512 counts as 512");

    uint8_t ecs[] = { 0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2 };
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, ecs, sizeof(ecs));
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOERROR, "valid ECS");
    ok(q.ecs_present && q.ecs.family == 1 && q.ecs.source == 24 && q.ecs.addr[0] == 192 &&
           q.ecs.addr[2] == 2,
       "ECS fields");
    uint8_t ecs0[] = { 0, 8, 0, 4, 0, 1, 0, 0 };
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, ecs0, sizeof(ecs0));
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOERROR, "ECS /0 with no address bytes");
    uint8_t nsid[] = { 0, 3, 0, 0 };
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, nsid, sizeof(nsid));
    dns_query_parse(b, n, &q);
    ok(q.nsid, "NSID requested");

    /* every byte value in a label: only A-Z are lowered */
    uint8_t all[DNS_NAME_MAX]; /* labels of 63, 63, 63 and 61 bytes */
    size_t at = 0;
    for (int l = 0; l < 4; l++) {
        int ll = l < 3 ? 63 : 61;
        all[at++] = (uint8_t)ll;
        for (int i = 0; i < ll; i++)
            all[at++] = (uint8_t)(l * 63 + i + 1);
    }
    all[at++] = 0;
    n = build(b, (const char *)all, at, DNS_T_A, false, 0, 0, NULL, 0);
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOERROR, "255-byte qname with every byte value");
    bool lowered = q.qname_len == at && memcmp(q.qname, all, at) == 0;
    for (size_t i = 0; i < at; i++)
        lowered &= q.qname_lc[i] == ((all[i] >= 'A' && all[i] <= 'Z') ? all[i] + 32 : all[i]);
    ok(lowered, "qname kept as received, lowered copy lowers A-Z only");

    /* an OPT whose owner is a pointer to the root (the root question name) */
    uint8_t p[] = { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1,
                    0, 0, 2, 0, 1,                               /* . NS IN */
                    0xC0, 12, 0, 41, 4, 0, 0, 0, 0x80, 0, 0, 11, /* OPT, owner -> root */
                    0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100 };
    is_int(dns_query_parse(p, sizeof(p), &q), DNS_RCODE_NOERROR, "OPT owned by a pointer to the root");
    ok(q.edns && q.edns_udp == 1024 && q.edns_do && q.ecs_present && q.ecs.addr[0] == 198 &&
           q.ecs.source == 24, "...its fields and ECS are read");
}

static void parse_bad(void)
{
    uint8_t b[512];
    dns_query_t q;
    size_t n = build(b, QN, QNLEN, DNS_T_A, false, 0, 0, NULL, 0);
    is_int(dns_query_parse(b, 11, &q), DNS_PARSE_DROP, "short packet dropped");
    b[2] |= 0x80;
    is_int(dns_query_parse(b, n, &q), DNS_PARSE_DROP, "QR=1 dropped");
    b[2] = (uint8_t)(5 << 3);
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_NOTIMP, "UPDATE opcode: NOTIMP");
    b[2] = 0;
    b[5] = 2;
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_FORMERR, "QDCOUNT=2");
    b[5] = 0;
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_FORMERR, "QDCOUNT=0");
    b[5] = 1;
    b[7] = 1;
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_FORMERR, "ANCOUNT=1");
    b[7] = 0;
    is_int(dns_query_parse(b, n - 1, &q), DNS_RCODE_FORMERR, "truncated question");
    b[n] = 0;
    is_int(dns_query_parse(b, n + 1, &q), DNS_RCODE_FORMERR, "trailing garbage");

    /* a compressed question name: pointers into itself or the header are refused */
    uint8_t cq[] = { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0xC0, 12, 0, 1, 0, 1 };
    is_int(dns_query_parse(cq, sizeof(cq), &q), DNS_RCODE_FORMERR, "qname pointing back at itself");
    cq[12] = 0xC0;
    cq[13] = 4;
    is_int(dns_query_parse(cq, sizeof(cq), &q), DNS_RCODE_FORMERR, "qname pointing into the header");
    cq[12] = 0x40;
    is_int(dns_query_parse(cq, sizeof(cq), &q), DNS_RCODE_FORMERR, "extended label type in the qname");
    uint8_t lq[] = { 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w' };
    is_int(dns_query_parse(lq, sizeof(lq), &q), DNS_RCODE_FORMERR, "label running past the end");

    n = build(b, QN, QNLEN, DNS_T_A, true, 1, 1232, NULL, 0);
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_BADVERS, "EDNS version 1: BADVERS");
    ok(q.edns, "BADVERS keeps the OPT");

    uint8_t badopt[] = { 0, 8, 0, 9, 0 };
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, badopt, sizeof(badopt));
    is_int(dns_query_parse(b, n, &q), DNS_RCODE_FORMERR, "option overruns OPT RDATA");

    struct {
        const char *what;
        uint8_t opt[16];
        uint16_t len;
    } ecs_bad[] = {
        { "family 3", { 0, 8, 0, 7, 0, 3, 24, 0, 1, 2, 3 }, 11 },
        { "IPv4 source 33", { 0, 8, 0, 9, 0, 1, 33, 0, 1, 2, 3, 4, 5 }, 13 },
        { "too many address bytes", { 0, 8, 0, 8, 0, 1, 24, 0, 1, 2, 3, 4 }, 12 },
        { "too few address bytes", { 0, 8, 0, 6, 0, 1, 24, 0, 1, 2 }, 10 },
        { "bits set beyond the prefix", { 0, 8, 0, 7, 0, 1, 23, 0, 1, 2, 3 }, 11 },
        { "non-zero scope", { 0, 8, 0, 7, 0, 1, 24, 16, 1, 2, 3 }, 11 },
        { "option shorter than 4", { 0, 8, 0, 2, 0, 1 }, 6 },
        { "IPv6 source 129", { 0, 8, 0, 4, 0, 2, 129, 0 }, 8 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(ecs_bad); i++) {
        n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, ecs_bad[i].opt, ecs_bad[i].len);
        is_int(dns_query_parse(b, n, &q), DNS_RCODE_FORMERR, "ECS %s: FORMERR", ecs_bad[i].what);
    }

    /* Two OPT records */
    n = build(b, QN, QNLEN, DNS_T_A, true, 0, 1232, NULL, 0);
    memcpy(b + n, b + n - 11, 11);
    b[11] = 2;
    is_int(dns_query_parse(b, n + 11, &q), DNS_RCODE_FORMERR, "two OPT records");
    /* OPT with a non-root owner */
    n = build(b, QN, QNLEN, DNS_T_A, false, 0, 0, NULL, 0);
    uint8_t nonroot[] = { 1, 'a', 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0 };
    memcpy(b + n, nonroot, sizeof(nonroot));
    b[11] = 1;
    is_int(dns_query_parse(b, n + sizeof(nonroot), &q), DNS_RCODE_FORMERR, "OPT owner not root");
}

static void respond(void)
{
    uint8_t b[512], out[512];
    dns_query_t q;
    size_t n = build(b, QN, QNLEN, DNS_T_MX, false, 0, 0, NULL, 0);
    dns_query_parse(b, n, &q);
    dns_resp_t r;
    dns_resp_init(&r, out, sizeof(out), sizeof(out), &q, 0);
    is_int(r.len, 12 + QNLEN + 4, "question copied");
    ok(out[2] & DNS_FLAG_QR, "QR set");
    ok(out[2] & DNS_FLAG_RD, "RD copied");
    /* MX 10 mail.example.com: the target compresses against the question's suffix */
    uint8_t mx[] = { 0, 10, 4, 'm', 'a', 'i', 'l', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0 };
    is_int(dns_resp_add_rr(&r, NULL, 12, DNS_T_MX, 1, 300, mx, sizeof(mx)), 0, "MX added");
    size_t rr = 12 + QNLEN + 4;
    is_int(out[rr], 0xC0, "owner is a pointer");
    is_int(out[rr + 1], 12, "owner points at the question");
    uint16_t rdlen = rd_u16(out + rr + 10);
    is_int(rdlen, 2 + 5 + 2, "MX target compressed to mail + pointer");
    is_int(out[rr + 12 + 2 + 5], 0xC0, "pointer to example.com");
    is_int(out[rr + 12 + 2 + 6], 16, "pointer offset of example.com in the question");
    /* SRV targets are never compressed */
    uint8_t srv[6 + 17];
    memset(srv, 0, 6);
    memcpy(srv + 6, "\3www\7example\3com", 17);
    dns_resp_add_rr(&r, NULL, 12, DNS_T_SRV, 1, 300, srv, sizeof(srv));
    is_int(rd_u16(r.buf + r.len - sizeof(srv) - 2), sizeof(srv), "SRV RDATA written whole");

    dns_resp_mark_t m = dns_resp_mark(&r);
    r.limit = r.len + 5;
    is_int(dns_resp_add_rr(&r, NULL, 12, DNS_T_MX, 1, 300, mx, sizeof(mx)), ERR_SPACE,
           "RR beyond the limit refused");
    is_int(r.len, m.len, "refused RR leaves nothing behind");
    is_int(r.count[0], 2, "count unchanged");

    dns_ecs_t e = { .family = 1, .source = 24, .scope = 0, .addr = { 192, 0, 2 } };
    dns_opt_out_t o = { .udp_size = 1232, .ext_rcode = DNS_RCODE_BADVERS, .do_bit = true, .ecs = &e };
    size_t before = r.len;
    is_int(dns_opt_size(&o), 11 + 4 + 4 + 3, "OPT size with ECS");
    is_int(dns_resp_add_opt(&r, &o), 0, "OPT added");
    is_int(out[before + 5], 1, "BADVERS upper bits in OPT TTL");
    is_int(out[3] & 0x0F, 0, "BADVERS lower bits in header");
    is_int(out[before + 7], 0x80, "DO echoed");
    is_int(out[before + 11 + 6], 24, "ECS source echoed");
    is_int(out[before + 11 + 7], 0, "ECS scope 0");
    size_t len = dns_resp_finish(&r);
    is_int(rd_u16(out + 6), 2, "ANCOUNT");
    is_int(rd_u16(out + 10), 1, "ARCOUNT");
    is_int(len, r.len, "length");
}

int main(void)
{
    parse_ok();
    parse_bad();
    respond();
    return done_testing();
}
