/* Unit tests for zone/zparse: every syntax feature, exact wire bytes per RR type, errors,
 * $INCLUDE, and the golden files under tests/data/zparse/{ok,ko}. Run from the repo root.
 * ZPARSE_REGEN=1 rewrites the ok/NAME.out files (review the diff before committing). */
#include "zone/zparse.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "dns/rrtype.h"
#include "tap.h"

#define GOLDEN_DIR "tests/data/zparse"

typedef struct {
    char *buf;
    size_t len, cap;
    unsigned n;
    unsigned fail_at; /* 1-based record number at which the callback fails, 0: never */
    char files[8][256];
    unsigned lines[8];
} dump_t;

static void append(dump_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(dump_t *d, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(d->buf + d->len, d->cap - d->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < d->cap - d->len) {
            d->len += (size_t)n;
            return;
        }
        d->cap = d->cap * 2 + (size_t)n + 1;
        d->buf = realloc(d->buf, d->cap);
        if (!d->buf)
            abort();
    }
}

/* One line per record: "owner TTL CLASS TYPE \# len hex". */
static int dump_cb(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen)
{
    dump_t *d = ctx;
    char name[DNS_TEXT_MAX], tbuf[16];
    if (d->fail_at && d->n + 1 == d->fail_at) {
        snprintf(err, errlen, "boom at record %u", d->n + 1);
        return ERR_EXISTS;
    }
    if (d->n < 8) {
        snprintf(d->files[d->n], sizeof(d->files[0]), "%s", rr->file);
        d->lines[d->n] = rr->line;
    }
    d->n++;
    dns_dname_to_text(rr->owner, name);
    append(d, "%s %u ", name, rr->ttl);
    if (rr->rclass == DNS_C_IN)
        append(d, "IN ");
    else
        append(d, "CLASS%u ", rr->rclass);
    append(d, "%s \\# %u", dns_rrtype_to_text(rr->type, tbuf), rr->rdlen);
    if (rr->rdlen)
        append(d, " ");
    for (unsigned i = 0; i < rr->rdlen; i++)
        append(d, "%02x", rr->rdata[i]);
    append(d, "\n");
    return 0;
}

static void dump_init(dump_t *d)
{
    memset(d, 0, sizeof(*d));
    d->cap = 256;
    d->buf = malloc(d->cap);
    if (!d->buf)
        abort();
    d->buf[0] = 0;
}

static const uint8_t origin[] = "\007example\003com"; /* the literal's NUL is the root */
static zparse_opts_t opts = {.origin = origin, .default_ttl = 1234};
static char errbuf[1024];

static int parse_text(const char *text, size_t len, dump_t *d)
{
    errbuf[0] = 0;
    return zparse_buffer(text, len, "t.zone", &opts, dump_cb, d, errbuf, sizeof(errbuf));
}

static void check(const char *text, const char *want, const char *desc)
{
    dump_t d;
    dump_init(&d);
    int rc = parse_text(text, strlen(text), &d);
    if (rc != 0) {
        ok(0, "%s", desc);
        printf("#   unexpected error %d: %s\n", rc, errbuf);
    } else {
        is_str(d.buf, want, "%s", desc);
    }
    free(d.buf);
}

static void ko_len(const char *text, size_t len, int code, const char *want, const char *desc)
{
    dump_t d;
    dump_init(&d);
    int rc = parse_text(text, len, &d);
    if (!ok(rc == code && strstr(errbuf, want) != NULL, "error: %s", desc))
        printf("#   got %d '%s', want %d '%s'\n", rc, errbuf, code, want);
    free(d.buf);
}

static void ko(const char *text, int code, const char *want, const char *desc)
{
    ko_len(text, strlen(text), code, want, desc);
}

/* --- exact wire bytes per type (expected values computed independently) ---------------- */

static void test_types(void)
{
    check("@ 300 IN A 192.0.2.1\n", "example.com. 300 IN A \\# 4 c0000201\n", "A");
    check("@ 300 IN AAAA 2001:db8::1\n",
          "example.com. 300 IN AAAA \\# 16 20010db8000000000000000000000001\n", "AAAA");
    check("@ 300 IN AAAA ::ffff:192.0.2.1\n",
          "example.com. 300 IN AAAA \\# 16 00000000000000000000ffffc0000201\n", "AAAA v4-mapped");
    check("@ 300 IN NS ns1\n", "example.com. 300 IN NS \\# 17 036e7331076578616d706c6503636f6d00\n",
          "NS relative");
    check("@ 300 IN NS ns1.example.net.\n",
          "example.com. 300 IN NS \\# 17 036e7331076578616d706c65036e657400\n", "NS absolute");
    check("www 300 IN CNAME Host.Example.ORG.\n",
          "www.example.com. 300 IN CNAME \\# 18 04486f7374074578616d706c65034f524700\n",
          "CNAME keeps case");
    check("@ 300 IN SOA ns1 hostmaster.example.com. 2024010101 1h 15m 1w 5M\n",
          "example.com. 300 IN SOA \\# 61 "
          "036e7331076578616d706c6503636f6d000a686f73746d6173746572076578616d706c6503636f6d0078a3f1"
          "7500000e100000038400093a800000012c\n",
          "SOA with units");
    check("1 300 IN PTR host.example.net.\n",
          "1.example.com. 300 IN PTR \\# 18 04686f7374076578616d706c65036e657400\n", "PTR");
    check("@ 300 IN MX 10 mail\n",
          "example.com. 300 IN MX \\# 20 000a046d61696c076578616d706c6503636f6d00\n", "MX");
    check("@ 300 IN MX 0 .\n", "example.com. 300 IN MX \\# 3 000000\n", "MX null");
    check("@ 300 IN TXT \"hello world\" foo \"a\\\"b\" \"\\065\\066\" \"\" ;c\n",
          "example.com. 300 IN TXT \\# 24 0b68656c6c6f20776f726c6403666f6f0361226202414200\n",
          "TXT strings, escapes, empty");
    check("@ 300 IN TXT ( \"part one\"\n  \"part two\" )\n",
          "example.com. 300 IN TXT \\# 18 0870617274206f6e6508706172742074776f\n",
          "TXT over two lines");
    check("@ 300 IN TXT a\\;b\\ c\n", "example.com. 300 IN TXT \\# 6 05613b622063\n",
          "TXT unquoted with escaped ; and space");
    check("@ 300 IN SPF \"v=spf1 -all\"\n",
          "example.com. 300 IN SPF \\# 12 0b763d73706631202d616c6c\n", "SPF");
    check(
        "_sip._tcp 300 IN SRV 10 20 5060 sip.example.net.\n",
        "_sip._tcp.example.com. 300 IN SRV \\# 23 000a001413c403736970076578616d706c65036e657400\n",
        "SRV");
    check("@ 300 IN CAA 0 issue \"letsencrypt.org\"\n",
          "example.com. 300 IN CAA \\# 22 000569737375656c657473656e63727970742e6f7267\n",
          "CAA issue");
    check("@ 300 IN CAA 128 iodef \"mailto:x@example.com\"\n",
          "example.com. 300 IN CAA \\# 27 8005696f6465666d61696c746f3a78406578616d706c652e636f6d\n",
          "CAA iodef critical");
    check("@ 300 IN CAA 0 issue \";\"\n", "example.com. 300 IN CAA \\# 8 000569737375653b\n",
          "CAA issue none");
    check(
        "@ 300 IN NAPTR 100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .\n",
        "example.com. 300 IN NAPTR \\# 43 "
        "0064000a0155074532552b7369701b215e2e2a24217369703a696e666f406578616d706c652e636f6d2100\n",
        "NAPTR");
    check("@ 300 IN SSHFP 1 1 DEADBEEF 0123\n",
          "example.com. 300 IN SSHFP \\# 8 0101deadbeef0123\n", "SSHFP hex with spaces");
    check("_443._tcp 300 IN TLSA 3 1 1 ( 0123456789abcdef\n 0123456789ABCDEF )\n",
          "_443._tcp.example.com. 300 IN TLSA \\# 19 0301010123456789abcdef0123456789abcdef\n",
          "TLSA multi-line hex");
    check("old 300 IN DNAME new.example.net.\n",
          "old.example.com. 300 IN DNAME \\# 17 036e6577076578616d706c65036e657400\n", "DNAME");
    check("@ 300 IN HINFO \"Intel x86\" Linux\n",
          "example.com. 300 IN HINFO \\# 16 09496e74656c20783836054c696e7578\n", "HINFO");
    check("@ 300 IN RP admin .\n",
          "example.com. 300 IN RP \\# 20 0561646d696e076578616d706c6503636f6d0000\n", "RP");
    check("sub 300 IN DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118 "
          "6C87A4C2F7F0C7D5BF7E2D9F\n",
          "sub.example.com. 300 IN DS \\# 36 "
          "30390d022bb183af5f22588179a53b0a98631fad1a2921186c87a4c2f7f0c7d5bf7e2d9f\n",
          "DS SHA-256");
    check("sub 300 IN CDS 0 0 0 00\n", "sub.example.com. 300 IN CDS \\# 5 0000000000\n",
          "CDS delete");
    check("@ 300 IN DNSKEY 257 3 13 AQID BAU=\n",
          "example.com. 300 IN DNSKEY \\# 9 0101030d0102030405\n", "DNSKEY base64 in two tokens");
    check("@ 300 IN AFSDB 1 afs\n",
          "example.com. 300 IN AFSDB \\# 19 000103616673076578616d706c6503636f6d00\n", "AFSDB");
    check("@ 300 IN KX 10 kx\n",
          "example.com. 300 IN KX \\# 18 000a026b78076578616d706c6503636f6d00\n", "KX");
    check("_http._tcp 300 IN URI 10 1 \"http://example.com/\"\n",
          "_http._tcp.example.com. 300 IN URI \\# 23 "
          "000a0001687474703a2f2f6578616d706c652e636f6d2f\n",
          "URI");
    check("@ 300 IN EUI48 00-00-5e-00-53-2a\n", "example.com. 300 IN EUI48 \\# 6 00005e00532a\n",
          "EUI48");
    check("@ 300 IN EUI64 00-00-5E-EF-10-00-00-2a\n",
          "example.com. 300 IN EUI64 \\# 8 00005eef1000002a\n", "EUI64");
    check("@ 300 IN NSEC3PARAM 1 0 10 AABBCCDD\n",
          "example.com. 300 IN NSEC3PARAM \\# 9 0100000a04aabbccdd\n", "NSEC3PARAM");
    check("@ 300 IN NSEC3PARAM 1 0 0 -\n", "example.com. 300 IN NSEC3PARAM \\# 5 0100000000\n",
          "NSEC3PARAM no salt");
    check("@ 300 IN OPENPGPKEY AAECAw==\n", "example.com. 300 IN OPENPGPKEY \\# 4 00010203\n",
          "OPENPGPKEY");
    check("@ 300 IN ZONEMD 2024010101 1 1 ( 00112233445566778899AABBCCDDEEFF )\n",
          "example.com. 300 IN ZONEMD \\# 22 78a3f175010100112233445566778899aabbccddeeff\n",
          "ZONEMD");
    check("@ 300 IN MB mb\n@ 300 IN MINFO a b\n@ 300 IN RT 5 rt\n",
          "example.com. 300 IN MB \\# 16 026d62076578616d706c6503636f6d00\nexample.com. 300 IN "
          "MINFO \\# 30 0161076578616d706c6503636f6d000162076578616d706c6503636f6d00\nexample.com. "
          "300 IN RT \\# 18 0005027274076578616d706c6503636f6d00\n",
          "MB MINFO RT");
    check("example.com. 300 HTTPS 0 foo.example.com.\n",
          "example.com. 300 IN HTTPS \\# 19 000003666f6f076578616d706c6503636f6d00\n",
          "HTTPS AliasMode (RFC 9460 D.1)");
    check("example.com. 300 SVCB 1 .\n", "example.com. 300 IN SVCB \\# 3 000100\n",
          "SVCB 1 . (D.2)");
    check("example.com. 300 SVCB 16 foo.example.com. port=53\n",
          "example.com. 300 IN SVCB \\# 25 001003666f6f076578616d706c6503636f6d00000300020035\n",
          "SVCB port (D.2)");
    check("example.com. 300 SVCB 1 foo.example.com. key667=hello\n",
          "example.com. 300 IN SVCB \\# 28 "
          "000103666f6f076578616d706c6503636f6d00029b000568656c6c6f\n",
          "SVCB key667 (D.2)");
    check("example.com. 300 SVCB 1 foo.example.com. key667=\"hello\\210qoo\"\n",
          "example.com. 300 IN SVCB \\# 32 "
          "000103666f6f076578616d706c6503636f6d00029b000968656c6c6fd2716f6f\n",
          "SVCB key667 quoted escape (D.2)");
    check("example.com. 300 SVCB 1 foo.example.com. ipv6hint=\"2001:db8::1,2001:db8::53:1\"\n",
          "example.com. 300 IN SVCB \\# 55 "
          "000103666f6f076578616d706c6503636f6d000006002020010db800000000000000000000000120010db800"
          "0000000000000000530001\n",
          "SVCB ipv6hint (D.2)");
    check("example.com. 300 SVCB 1 example.com. ipv6hint=\"2001:db8:122:344::192.0.2.33\"\n",
          "example.com. 300 IN SVCB \\# 35 "
          "0001076578616d706c6503636f6d000006001020010db80122034400000000c0000221\n",
          "SVCB ipv6hint embedded v4 (D.2)");
    check("example.com. 300 SVCB 16 foo.example.org. (alpn=h2,h3-19 mandatory=ipv4hint,alpn\n "
          "ipv4hint=192.0.2.1)\n",
          "example.com. 300 IN SVCB \\# 48 "
          "001003666f6f076578616d706c65036f7267000000000400010004000100090268320568332d313900040004"
          "c0000201\n",
          "SVCB mandatory sorted (D.2)");
    check("example.com. 300 SVCB 16 foo.example.org. alpn=\"f\\\\\\\\oo\\\\,bar,h2\"\n",
          "example.com. 300 IN SVCB \\# 35 "
          "001003666f6f076578616d706c65036f7267000001000c08665c6f6f2c626172026832\n",
          "SVCB alpn escaped comma (D.2)");
    check("example.com. 300 SVCB 16 foo.example.org. alpn=f\\\\\\092oo\\092,bar,h2\n",
          "example.com. 300 IN SVCB \\# 35 "
          "001003666f6f076578616d706c65036f7267000001000c08665c6f6f2c626172026832\n",
          "SVCB alpn \092 escapes (D.2)");
    check("@ 300 HTTPS 1 . alpn=h2,h3 ipv4hint=192.0.2.1,192.0.2.2 port=8443 no-default-alpn "
          "ech=AQID ipv6hint=::1 dohpath=/q{?dns} ohttp key65000\n",
          "example.com. 300 IN HTTPS \\# 82 "
          "00010000010006026832026833000200000003000220fb00040008c0000201c0000202000500030102030006"
          "001000000000000000000000000000000001000700082f717b3f646e737d00080000fde80000\n",
          "HTTPS all keys");
    check("@ 300 IN TYPE65000 \\# 2 abcd\n", "example.com. 300 IN TYPE65000 \\# 2 abcd\n",
          "generic unknown type");
    check("@ 300 IN TYPE65000 \\# 0\n", "example.com. 300 IN TYPE65000 \\# 0\n", "generic empty");
    check("@ 300 IN TYPE65000 \\# 4 ( ab cd\n ef 01 )\n",
          "example.com. 300 IN TYPE65000 \\# 4 abcdef01\n", "generic split hex");
    check("@ 300 IN A \\# 4 C0000201\n", "example.com. 300 IN A \\# 4 c0000201\n",
          "generic known type A");
    check("@ 300 IN MX \\# 3 000a00\n", "example.com. 300 IN MX \\# 3 000a00\n", "generic MX");
    check("@ 300 IN TXT \\# 4 03616263\n", "example.com. 300 IN TXT \\# 4 03616263\n",
          "generic TXT");
    check("@ 300 IN TYPE1 192.0.2.1\n", "example.com. 300 IN A \\# 4 c0000201\n",
          "TYPE1 with A syntax");
    check("@ 300 IN LOC \\# 16 00121616898ba7c0 7f2f1a7800989680\n",
          "example.com. 300 IN LOC \\# 16 00121616898ba7c07f2f1a7800989680\n",
          "LOC in generic form");
    check("@ 300 CLASS1 A 192.0.2.1\n", "example.com. 300 IN A \\# 4 c0000201\n", "CLASS1");
    check("$TTL 2h\n@ A 192.0.2.1\n", "example.com. 7200 IN A \\# 4 c0000201\n", "$TTL");
    check("$ttl 60\n@ 100 A 192.0.2.1\nwww A 192.0.2.2\n",
          "example.com. 100 IN A \\# 4 c0000201\nwww.example.com. 60 IN A \\# 4 c0000202\n",
          "$TTL beats previous TTL");
    check("@ 100 A 192.0.2.1\nwww A 192.0.2.2\n",
          "example.com. 100 IN A \\# 4 c0000201\nwww.example.com. 100 IN A \\# 4 c0000202\n",
          "previous TTL");
    check("@ SOA ns hm 1 2 3 4 5\nwww A 192.0.2.2\n",
          "example.com. 5 IN SOA \\# 52 "
          "026e73076578616d706c6503636f6d0002686d076578616d706c6503636f6d00000000010000000200000003"
          "0000000400000005\nwww.example.com. 5 IN A \\# 4 c0000202\n",
          "SOA minimum as first TTL");
    check("www A 192.0.2.1\n", "www.example.com. 1234 IN A \\# 4 c0000201\n", "opts default TTL");
    check(
        "@ IN 300 A 192.0.2.1\n@ 301 IN A 192.0.2.2\n@ in A 192.0.2.3\n@ 1w2d3h4m5s A 192.0.2.4\n",
        "example.com. 300 IN A \\# 4 c0000201\nexample.com. 301 IN A \\# 4 c0000202\nexample.com. "
        "301 IN A \\# 4 c0000203\nexample.com. 788645 IN A \\# 4 c0000204\n",
        "TTL and class in either order");
    check("www 300 A 192.0.2.1\n  A 192.0.2.2\n\t600 IN A 192.0.2.3\n",
          "www.example.com. 300 IN A \\# 4 c0000201\nwww.example.com. 300 IN A \\# 4 "
          "c0000202\nwww.example.com. 600 IN A \\# 4 c0000203\n",
          "omitted owner repeats the previous");
    check("$ORIGIN sub.example.com.\nwww 1 A 192.0.2.1\n$ORIGIN example.net.\n@ 1 A 192.0.2.2\nx 1 "
          "CNAME y\n",
          "www.sub.example.com. 1 IN A \\# 4 c0000201\nexample.net. 1 IN A \\# 4 "
          "c0000202\nx.example.net. 1 IN CNAME \\# 15 0179076578616d706c65036e657400\n",
          "$ORIGIN relative and absolute");
    check(
        "a\\.b 1 A 192.0.2.1\n\\065bc 1 A 192.0.2.2\n* 1 A 192.0.2.3\nWwW.Example.COM. 1 A "
        "192.0.2.4\n",
        "a\\.b.example.com. 1 IN A \\# 4 c0000201\nAbc.example.com. 1 IN A \\# 4 "
        "c0000202\n*.example.com. 1 IN A \\# 4 c0000203\nWwW.Example.COM. 1 IN A \\# 4 c0000204\n",
        "owner escapes, wildcard, case");
    check("; comment only\n\n   \n\t; indented comment\n", "", "comments and blank lines");
    check("", "", "empty input");
    check("@ 1 A 192.0.2.1", "example.com. 1 IN A \\# 4 c0000201\n", "no final newline");
    check("@ 1 A 192.0.2.1\r\nwww 1 A 192.0.2.2\r\n",
          "example.com. 1 IN A \\# 4 c0000201\nwww.example.com. 1 IN A \\# 4 c0000202\n",
          "CRLF line endings");
    check("@ 1 IN SOA ( ns ; primary\n  hm ; mailbox\n  1 ; serial\n  2 3 4 5 ) ; end\n",
          "example.com. 1 IN SOA \\# 52 "
          "026e73076578616d706c6503636f6d0002686d076578616d706c6503636f6d00000000010000000200000003"
          "0000000400000005\n",
          "SOA in parentheses with comments");
    check(". 1 NS a.root-servers.net.\n",
          ". 1 IN NS \\# 20 01610c726f6f742d73657276657273036e657400\n", "root owner");

    char txt[300];
    memset(txt, 'x', sizeof(txt));
    memcpy(txt, "@ 1 TXT \"", 9);
    memcpy(txt + 9 + 255, "\"\n", 3);
    char want[600] = "example.com. 1 IN TXT \\# 256 ff";
    for (int i = 0; i < 255; i++)
        strcat(want, "78");
    strcat(want, "\n");
    check(txt, want, "TXT string of exactly 255 bytes");
}

/* --- malformed input -------------------------------------------------------------------- */

static void test_errors(void)
{
    ko("@ A 1.2.3\n", ERR_PARSE, "t.zone:1: bad IPv4 address '1.2.3'", "short IPv4");
    ko("@ A 1.2.3.256\n", ERR_PARSE, ":1: bad IPv4 address", "IPv4 octet > 255");
    ko("@ A 01.2.3.4\n", ERR_PARSE, ":1: bad IPv4 address", "IPv4 leading zero");
    ko("@ A 1.2.3.4.5.6.7.8.9.10.11\n", ERR_PARSE, ":1: bad IPv4 address", "long IPv4");
    ko("@ AAAA 2001:db8::1::2\n", ERR_PARSE, ":1: bad IPv6 address", "bad IPv6");
    ko("@ AAAA \"::1\"\n", ERR_PARSE, ":1: bad IPv6 address", "quoted IPv6");
    ko("@ A\n", ERR_PARSE, ":1: missing address", "missing A address");
    ko("@ MX 10\n", ERR_PARSE, ":1: missing mail exchange", "missing MX host");
    ko("@ SOA ns hm 1 2 3 4\n", ERR_PARSE, ":1: missing minimum", "SOA without minimum");
    ko("@ SRV 1 2 3\n", ERR_PARSE, ":1: missing SRV target", "SRV without target");
    ko("@ TXT\n", ERR_PARSE, ":1: missing text", "TXT without strings");
    ko("@ HINFO cpu\n", ERR_PARSE, ":1: missing OS", "HINFO with one string");
    ko("@\n", ERR_PARSE, ":1: missing type", "owner only");
    ko("@ 300 IN\n", ERR_PARSE, ":1: missing type", "no type");
    ko("@ A 192.0.2.1 5\n", ERR_PARSE, ":1: extra data after RDATA: '5'", "extra field");
    ko("@ CNAME a b\n", ERR_PARSE, ":1: extra data after RDATA: 'b'", "CNAME with two names");
    ko("@ MX 10 mx ( x\n )\n", ERR_PARSE, ":1: extra data after RDATA: 'x'", "extra in parens");
    ko("@ TXT \"abc\n", ERR_PARSE, ":1: unterminated quoted string", "newline in quotes");
    ko("@ TXT \"abc", ERR_PARSE, ":1: unterminated quoted string", "EOF in quotes");
    ko("@ TXT \"abc\\", ERR_PARSE, ":1: unterminated quoted string", "EOF after backslash");
    ko("\n\n@ SOA ( ns hm 1 2 3 4 5\n", ERR_PARSE,
       ":3: unbalanced parentheses: '(' is never closed", "unclosed parenthesis");
    ko("@ A 192.0.2.1 )\n", ERR_PARSE, ":1: unbalanced parentheses: ')' without '('", "stray )");
    ko("@ SOA ( ns ( hm 1 2 3 4 5 ) )\n", ERR_PARSE, ":1: nested parentheses", "nested");
    ko("@ SOA ( ns hm\n 1 2\n x 4 5 )\n", ERR_PARSE, ":3: bad retry 'x'", "line inside parens");
    ko("a234567890123456789012345678901234567890123456789012345678901234 A 192.0.2.1\n", ERR_LIMIT,
       ":1: label longer than 63 bytes in owner name", "label of 64");
    ko("@ CNAME a234567890123456789012345678901234567890123456789012345678901234\n", ERR_LIMIT,
       ":1: label longer than 63 bytes in canonical name", "label of 64 in RDATA");
    ko("a\\06512345678901234567890123456789012345678901234567890123456789012 A 192.0.2.1\n",
       ERR_LIMIT, "label longer than 63", "label of 64 with an escape");
    {
        char name[400] = "";
        for (int i = 0; i < 4; i++)
            strcat(name, "a12345678901234567890123456789012345678901234567890123456789.");
        strcat(name, "b1234567 A 192.0.2.1\n"); /* 4*61 + 9 + 13 (origin) > 255 */
        ko(name, ERR_LIMIT, ":1: owner name '", "name of 256 bytes");
        ok(strstr(errbuf, "longer than 255 bytes") != NULL, "  ... says longer than 255");
    }
    ko("a..b A 192.0.2.1\n", ERR_PARSE, ":1: bad owner name 'a..b'", "empty label");
    ko("\"www\" A 192.0.2.1\n", ERR_PARSE, ":1: bad owner name", "quoted owner");
    ko("a\\2 A 192.0.2.1\n", ERR_PARSE, ":1: bad owner name", "short \\DDD in a name");
    ko("a\\256 A 192.0.2.1\n", ERR_PARSE, ":1: bad owner name", "\\256 in a name");
    {
        char txt[400];
        memset(txt, 'x', sizeof(txt));
        memcpy(txt, "@ TXT \"", 7);
        memcpy(txt + 7 + 256, "\"\n", 3);
        ko(txt, ERR_LIMIT, ":1: text longer than 255 bytes", "TXT string of 256");
    }
    {
        size_t n = 300 * 258 + 32;
        char *big = malloc(n);
        size_t o = (size_t)sprintf(big, "@ TXT (\n");
        for (int i = 0; i < 300; i++) {
            big[o++] = '"';
            memset(big + o, 'y', 255);
            o += 255;
            big[o++] = '"';
            big[o++] = '\n';
        }
        o += (size_t)sprintf(big + o, ")\n");
        ko_len(big, o, ERR_LIMIT, ":1: RDATA longer than 65535 bytes", "RDATA of 76800 bytes");
        free(big);
    }
    ko("@ TXT \"\\07\"\n", ERR_PARSE, ":1: bad escape in text", "short escape in a string");
    ko("@ TXT \"\\300\"\n", ERR_PARSE, ":1: bad escape in text", "escape above 255");
    ko("@ TXT abc\\", ERR_PARSE, ":1: backslash at end of line", "backslash at EOF");
    ko("@ TXT abc\\\n", ERR_PARSE, ":1: backslash at end of line", "backslash-newline");
    ko_len("@ A 192.0.2.1\0\n", 15, ERR_PARSE, ":1: NUL byte in input", "NUL byte");
    ko("@ MX 65536 mx\n", ERR_PARSE, ":1: MX preference out of range '65536' (max 65535)",
       "u16 out of range");
    ko("@ MX -1 mx\n", ERR_PARSE, ":1: bad MX preference '-1'", "negative");
    ko("@ MX 1x mx\n", ERR_PARSE, ":1: bad MX preference '1x'", "trailing garbage");
    ko("@ SSHFP 256 1 ab\n", ERR_PARSE, "SSHFP algorithm out of range", "u8 out of range");
    ko("@ SOA ns hm 4294967296 1 2 3 4\n", ERR_PARSE, "serial out of range", "u32 out of range");
    ko("@ SOA ns hm 1 1 2 3 5000000000\n", ERR_PARSE, "bad minimum", "time out of range");
    ko("@ SOA ns hm 1h 1 2 3 4\n", ERR_PARSE, "bad serial '1h'", "serial takes no units");
    ko("@ SSHFP 1 1 xyz\n", ERR_PARSE, ":1: bad hex in SSHFP fingerprint 'xyz'", "bad hex");
    ko("@ SSHFP 1 1 abc\n", ERR_PARSE, ":1: odd number of hex digits", "odd hex");
    ko("@ SSHFP 1 1\n", ERR_PARSE, ":1: missing SSHFP fingerprint", "no hex");
    ko("@ TLSA 3 1 1 \"ab\"\n", ERR_PARSE, "bad hex", "quoted hex");
    ko("@ DNSKEY 257 3 13 AQI\n", ERR_PARSE, ":1: bad base64 in public key", "base64 length");
    ko("@ DNSKEY 257 3 13 AQ=D\n", ERR_PARSE, "bad base64", "base64 padding inside");
    ko("@ DNSKEY 257 3 13 AQ!D\n", ERR_PARSE, "bad base64", "base64 bad char");
    ko("@ DNSKEY 257 3 13\n", ERR_PARSE, "missing public key", "no base64");
    ko("@ DS 1 13 2 abcd\n", ERR_PARSE, "DS digest is 2 bytes, digest type 2 needs 32",
       "DS digest length");
    ko("@ FOO 1\n", ERR_PARSE, ":1: unknown RR type 'FOO'", "unknown mnemonic");
    ko("@ 300 IN \"A\" 1.2.3.4\n", ERR_PARSE, "unknown RR type", "quoted type");
    ko("@ TYPE65536 \\# 0\n", ERR_PARSE, "unknown RR type 'TYPE65536'", "TYPE out of range");
    ko("@ CH A 192.0.2.1\n", ERR_UNSUPPORTED, ":1: class 'CH': only class IN is supported", "CH");
    ko("@ 300 HS A 192.0.2.1\n", ERR_UNSUPPORTED, "only class IN is supported", "HS");
    ko("@ CLASS3 A 192.0.2.1\n", ERR_UNSUPPORTED, "only class IN is supported", "CLASS3");
    ko("@ IN IN A 192.0.2.1\n", ERR_PARSE, "duplicate class", "two classes");
    ko("@ 1 2 A 192.0.2.1\n", ERR_PARSE, "duplicate TTL '2'", "two TTLs");
    ko("@ ANY \\# 0\n", ERR_PARSE, ":1: type ANY cannot appear in a zone", "ANY");
    ko("@ AXFR \\# 0\n", ERR_PARSE, "type AXFR cannot appear", "AXFR");
    ko("@ OPT \\# 0\n", ERR_PARSE, "type OPT cannot appear", "OPT");
    ko("@ TYPE0 \\# 0\n", ERR_PARSE, "unknown RR type", "TYPE0");
    ko("@ TYPE65000 \\# 3 abcd\n", ERR_PARSE,
       ":1: generic RDATA length 3 does not match its 2 bytes of data", "generic too short");
    ko("@ TYPE65000 \\# 0 00\n", ERR_PARSE, "does not match", "generic data after 0");
    ko("@ TYPE65000 \\# 65536 00\n", ERR_PARSE, "out of range", "generic length > 65535");
    ko("@ TYPE65000 \\#\n", ERR_PARSE, "missing generic RDATA length", "generic no length");
    ko("@ TYPE65000 \\# 1 zz\n", ERR_PARSE, "bad hex in generic RDATA", "generic bad hex");
    ko("@ A \\# 3 010203\n", ERR_PARSE, ":1: generic RDATA is not valid for type A",
       "generic A of 3 bytes");
    ko("@ MX \\# 3 000a01\n", ERR_PARSE, "not valid for type MX", "generic MX bad name");
    ko("@ NS \\# 2 c000\n", ERR_PARSE, "not valid for type NS", "generic compressed name");
    ko("@ TXT \\# 2 0561\n", ERR_PARSE, "not valid for type TXT", "generic truncated TXT");
    ko("@ TXT \\# 0\n", ERR_PARSE, "not valid for type TXT", "generic empty TXT");
    ko("@ SVCB \\# 7 0001000001ffff\n", ERR_PARSE, "not valid for type SVCB",
       "generic SVCB truncated param");
    ko(" A 192.0.2.1\n", ERR_PARSE, ":1: no owner name", "first record without owner");
    ko("@ 1x A 192.0.2.1\n", ERR_PARSE, ":1: bad TTL '1x'", "bad TTL unit");
    ko("@ 1h30 A 192.0.2.1\n", ERR_PARSE, ":1: bad TTL '1h30'", "TTL number without unit");
    ko("@ 2147483648 A 192.0.2.1\n", ERR_PARSE, "TTL '2147483648' out of range", "TTL 2^31");
    ko("@ 99999999999999999999999 A 192.0.2.1\n", ERR_PARSE, "bad TTL", "TTL overflow");
    ko("$TTL abc\n", ERR_PARSE, ":1: bad $TTL 'abc'", "bad $TTL");
    ko("$TTL\n", ERR_PARSE, ":1: missing $TTL value", "$TTL without value");
    ko("$TTL 1 2\n", ERR_PARSE, ":1: extra data after $TTL: '2'", "$TTL extra");
    ko("$ORIGIN\n", ERR_PARSE, "missing $ORIGIN name", "$ORIGIN without name");
    ko("$ORIGIN a..b.\n", ERR_PARSE, "bad $ORIGIN 'a..b.'", "bad $ORIGIN");
    ko("$ORIGIN sub\n", ERR_PARSE, ":1: $ORIGIN 'sub' must be an absolute name (ending in '.')",
       "relative $ORIGIN (NSD rejects it)");
    ko("$ORIGIN sub\\.\n", ERR_PARSE, "must be an absolute name", "$ORIGIN ending in \\.");
    check("$ORIGIN sub\\\\.\n@ 1 A 192.0.2.1\n", "sub\\\\. 1 IN A \\# 4 c0000201\n",
          "$ORIGIN ending in \\\\. is absolute");
    ko("$INCLUDE x.zone sub\n", ERR_PARSE, "$INCLUDE origin 'sub' must be an absolute name",
       "relative $INCLUDE origin");
    ko("$GENERATE 1-10 x$ A 192.0.2.$\n", ERR_UNSUPPORTED, ":1: unknown directive '$GENERATE'",
       "$GENERATE");
    ko("$INCLUDE\n", ERR_PARSE, "missing $INCLUDE file name", "$INCLUDE without file");
    ko("$INCLUDE /nonexistent/x.zone\n", ERR_IO,
       ":1: $INCLUDE '/nonexistent/x.zone': No such file or directory", "$INCLUDE missing");
    ko("$INCLUDE /tmp\n", ERR_IO, "not a regular file", "$INCLUDE a directory");
    ko("$INCLUDE a b. c\n", ERR_PARSE, "extra data after $INCLUDE: 'c'", "$INCLUDE extra");
    ko("@ LOC 52 22 23.000 N 4 53 32.000 E -2.00m\n", ERR_UNSUPPORTED,
       ":1: type LOC: use RFC 3597 generic syntax", "LOC presentation");
    ko("@ RRSIG A 13 2 300 20240101000000 20230101000000 1 example.com. AAAA\n", ERR_UNSUPPORTED,
       "type RRSIG: use RFC 3597 generic syntax", "RRSIG presentation");
    ko("@ CAA 0 is-sue \"x\"\n", ERR_PARSE, "bad CAA tag 'is-sue'", "CAA tag with a dash");
    ko("@ CAA 0 \"issue\" \"x\"\n", ERR_PARSE, "bad CAA tag", "quoted CAA tag");
    ko("@ CAA 0 issue\n", ERR_PARSE, "missing CAA value", "CAA without value");
    ko("@ EUI48 00-00-5e-00-53\n", ERR_PARSE, "bad EUI48 address", "short EUI48");
    ko("@ EUI48 00:00:5e:00:53:2a\n", ERR_PARSE, "bad EUI48 address", "EUI48 with colons");
    ko("@ NSEC3PARAM 1 0 1 abc\n", ERR_PARSE, "bad salt", "odd salt");
    /* RFC 9460 appendix D.3 failure cases, and a few more */
    ko("@ SVCB 1 foo.example.com. key123=abc key123=def\n", ERR_PARSE, "duplicate SvcParam key123",
       "SVCB duplicate key");
    ko("@ SVCB 1 foo.example.com. mandatory\n", ERR_PARSE, "SvcParam mandatory needs a value",
       "SVCB mandatory without value");
    ko("@ SVCB 1 foo.example.com. alpn\n", ERR_PARSE, "SvcParam alpn needs a value",
       "SVCB alpn without value");
    ko("@ SVCB 1 foo.example.com. port\n", ERR_PARSE, "bad port", "SVCB port without value");
    ko("@ SVCB 1 foo.example.com. port=65536\n", ERR_PARSE, "bad port", "SVCB port too big");
    ko("@ SVCB 1 foo.example.com. ipv4hint\n", ERR_PARSE, "needs a value", "SVCB empty ipv4hint");
    ko("@ SVCB 1 foo.example.com. ipv6hint=\n", ERR_PARSE, "needs a value",
       "SVCB ipv6hint= with nothing");
    ko("@ SVCB 1 foo.example.com. no-default-alpn=abc\n", ERR_PARSE,
       "SvcParam no-default-alpn takes no value", "SVCB no-default-alpn with value");
    ko("@ SVCB 1 foo.example.com. mandatory=key123\n", ERR_PARSE,
       "mandatory lists key123, which is missing", "SVCB mandatory key missing");
    ko("@ SVCB 1 foo.example.com. mandatory=mandatory\n", ERR_PARSE,
       "SvcParam mandatory lists itself", "SVCB mandatory lists itself");
    ko("@ SVCB 1 foo.example.com. mandatory=port,port port=1\n", ERR_PARSE,
       "duplicate key in SvcParam mandatory", "SVCB mandatory duplicate");
    ko("@ SVCB 1 foo.example.com. no-default-alpn\n", ERR_PARSE, "no-default-alpn requires alpn",
       "SVCB no-default-alpn alone");
    ko("@ SVCB 1 foo.example.com. ipv6hint=1.2.3.4\n", ERR_PARSE, "bad IPv6 address",
       "SVCB ipv6hint with IPv4");
    ko("@ SVCB 1 foo.example.com. ipv4hint=1.2.3.4,,1.2.3.5\n", ERR_PARSE, "empty item",
       "SVCB empty list item");
    ko("@ SVCB 1 foo.example.com. foo=bar\n", ERR_PARSE, "unknown SvcParam key 'foo'",
       "SVCB unknown key");
    ko("@ SVCB 1 foo.example.com. key65535=x\n", ERR_PARSE, "unknown SvcParam key",
       "SVCB key65535 reserved");
    ko("@ SVCB 1 foo.example.com. key01=x\n", ERR_PARSE, "unknown SvcParam key",
       "SVCB key with a leading zero");
    ko("@ SVCB 1 foo.example.com. ech=!!\n", ERR_PARSE, "bad base64 in SvcParam ech",
       "SVCB bad ech");
    ko("@ SVCB 1 foo.example.com. \"alpn=h2\"\n", ERR_PARSE, "bad SvcParam", "quoted SvcParam");
    ko("@ SVCB 1\n", ERR_PARSE, "missing TargetName", "SVCB without target");
    ko("@ SVCB 65536 .\n", ERR_PARSE, "SvcPriority out of range", "SvcPriority too big");
}

/* --- callback, API, line numbers -------------------------------------------------------- */

static void test_api(void)
{
    dump_t d;
    dump_init(&d);
    d.fail_at = 2;
    int rc = parse_text("@ 1 A 192.0.2.1\n\nwww 1 A 192.0.2.2\n", 35, &d);
    is_int(rc, ERR_EXISTS, "callback error is returned");
    is_str(errbuf, "t.zone:3: boom at record 2", "callback message with file and line");
    is_int(d.n, 1, "one record seen before the failure");
    free(d.buf);

    dump_init(&d);
    rc = parse_text("@ 1 A 192.0.2.1\n  ( 2\n A 192.0.2.2 )\n", 37, &d);
    is_int(rc, 0, "multi-line record");
    is_int(d.lines[0], 1, "first record on line 1");
    is_int(d.lines[1], 2, "record spanning lines 2-3 starts on line 2");
    is_str(d.files[0], "t.zone", "rr.file is the buffer name");
    free(d.buf);

    zparse_opts_t no_origin = {.origin = NULL};
    errbuf[0] = 0;
    rc = zparse_buffer("", 0, "x", &no_origin, dump_cb, &d, errbuf, sizeof(errbuf));
    is_int(rc, ERR_INVAL, "missing origin");
    ok(strstr(errbuf, "origin") != NULL, "missing origin message");
    rc = zparse_buffer("", 0, "x", NULL, dump_cb, &d, errbuf, sizeof(errbuf));
    is_int(rc, ERR_INVAL, "NULL opts");

    rc = zparse_buffer("@ 1 A 192.0.2.1\n", 16, NULL, &opts, NULL, NULL, NULL, 0);
    is_int(rc, 0, "NULL callback and error buffer: validate only");
    rc = zparse_buffer("@ 1 A 1.2.3\n", 12, NULL, &opts, NULL, NULL, NULL, 0);
    is_int(rc, ERR_PARSE, "error with no error buffer");
    char small[8];
    rc = zparse_buffer("@ 1 A 1.2.3\n", 12, "a-long-name.zone", &opts, NULL, NULL, small,
                       sizeof(small));
    is_int(rc, ERR_PARSE, "small error buffer");
    is_str(small, "a-long-", "message truncated and terminated");

    const uint8_t bad_origin[] = {64, 'a', 0};
    zparse_opts_t o2 = {.origin = bad_origin};
    is_int(zparse_buffer("", 0, "x", &o2, NULL, NULL, NULL, 0), ERR_INVAL, "invalid origin");

    errbuf[0] = 0;
    rc = zparse_file("/nonexistent/zone", &opts, dump_cb, &d, errbuf, sizeof(errbuf));
    is_int(rc, ERR_IO, "missing file");
    is_str(errbuf, "/nonexistent/zone: cannot read: No such file or directory",
           "missing file message");
}

/* Large input: linear time, every record seen. */
static void test_big(void)
{
    const unsigned n = 200000;
    size_t cap = (size_t)n * 48 + 64, o = 0;
    char *z = malloc(cap);
    o += (size_t)sprintf(z, "$TTL 300\n@ SOA ns hm 1 2 3 4 5\n");
    for (unsigned i = 0; i < n; i++)
        o += (size_t)sprintf(z + o, "h%u A 10.%u.%u.%u\n  TXT \"x%u\"\n", i, i >> 16 & 255,
                             i >> 8 & 255, i & 255, i);
    dump_t d;
    dump_init(&d);
    int rc = parse_text(z, o, &d);
    is_int(rc, 0, "big zone parses");
    is_int(d.n, 2 * n + 1, "big zone: every record");
    free(d.buf);

    /* A 65535-byte RDATA in 1-byte tokens, and one byte too many. */
    size_t m = 65535;
    char *g = malloc(m * 3 + 64);
    o = (size_t)sprintf(g, "@ TYPE65000 \\# %zu (", m);
    for (size_t i = 0; i < m; i++)
        o += (size_t)sprintf(g + o, " %02x", (unsigned)(i & 255));
    o += (size_t)sprintf(g + o, " )\n");
    dump_init(&d);
    rc = parse_text(g, o, &d);
    is_int(rc, 0, "generic RDATA of 65535 bytes");
    ok(strstr(d.buf, "\\# 65535 000102") != NULL, "  ... dumped");
    free(d.buf);
    o = (size_t)sprintf(g, "@ TYPE65000 \\# 65535 (");
    for (size_t i = 0; i <= m; i++)
        o += (size_t)sprintf(g + o, " %02x", (unsigned)(i & 255));
    o += (size_t)sprintf(g + o, " )\n");
    ko_len(g, o, ERR_PARSE, "does not match", "generic RDATA of 65536 bytes");

    /* SvcParam values filling the whole buffer, then one more (was a 1-byte overflow). */
    o = (size_t)sprintf(g, "@ SVCB 1 . key65000=");
    memset(g + o, 'x', 65534);
    o += 65534;
    o += (size_t)sprintf(g + o, " port=1\n");
    ko_len(g, o, ERR_LIMIT, ":1: RDATA longer than 65535 bytes", "SvcParams over 65535 bytes");
    o = (size_t)sprintf(g, "@ SVCB 1 . key65000=");
    memset(g + o, 'x', 65530);
    o += 65530;
    o += (size_t)sprintf(g + o, " port=1\n");
    ko_len(g, o, ERR_LIMIT, ":1: RDATA longer than 65535 bytes", "SVCB RDATA over 65535 bytes");
    free(g);
    free(z);
}

/* --- $INCLUDE --------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

static int parse_path(const char *path, dump_t *d, const zparse_opts_t *o)
{
    errbuf[0] = 0;
    return zparse_file(path, o, dump_cb, d, errbuf, sizeof(errbuf));
}

static void test_include(void)
{
    char dir[] = "/tmp/test_zparse-XXXXXX", sub[600], path[600], want[600];
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    mkdir(sub, 0700);
    write_file(dir, "main.zone",
               "$TTL 100\n"
               "$INCLUDE sub/a.inc\n"
               "after A 192.0.2.9\n"
               "$INCLUDE \"sub/a.inc\" other.example.\n"
               "$INCLUDE sub/c.inc\n"
               "end A 192.0.2.10\n");
    write_file(sub, "a.inc", "x A 192.0.2.1\n$INCLUDE b.inc\n");
    write_file(sub, "b.inc", "y TXT b\n");
    write_file(sub, "c.inc", "$ORIGIN changed.\n$TTL 5\nc A 192.0.2.3\n");
    dump_t d;
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/main.zone", dir);
    int rc = parse_path(path, &d, &opts);
    is_int(rc, 0, "includes parse");
    if (rc)
        printf("#   %s\n", errbuf);
    is_str(d.buf,
           "x.example.com. 100 IN A \\# 4 c0000201\n"
           "y.example.com. 100 IN TXT \\# 2 0162\n"
           "after.example.com. 100 IN A \\# 4 c0000209\n"
           "x.other.example. 100 IN A \\# 4 c0000201\n"
           "y.other.example. 100 IN TXT \\# 2 0162\n"
           "c.changed. 5 IN A \\# 4 c0000203\n"
           "end.example.com. 5 IN A \\# 4 c000020a\n",
           "nested, relative, with origin; origin reverts and $TTL carries over after $INCLUDE");
    snprintf(want, sizeof(want), "%s/sub/a.inc", dir);
    is_str(d.files[0], want, "rr.file names the included file");
    is_int(d.lines[0], 1, "rr.line in the included file");
    snprintf(want, sizeof(want), "%s/sub/b.inc", dir);
    is_str(d.files[1], want, "nested include resolved against its parent's directory");
    snprintf(want, sizeof(want), "%s/main.zone", dir);
    is_str(d.files[2], want, "back in the main file");
    is_int(d.lines[2], 3, "line in the main file");
    free(d.buf);

    write_file(dir, "noowner.zone", "x A 192.0.2.1\n$INCLUDE sub/b.inc\n  A 192.0.2.2\n");
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/noowner.zone", dir);
    rc = parse_path(path, &d, &opts);
    is_int(rc, ERR_PARSE, "omitted owner after $INCLUDE");
    ok(strstr(errbuf, "noowner.zone:3: no owner name after $INCLUDE") != NULL,
       "  ... explains why");
    free(d.buf);

    /* errors inside an included file name that file */
    write_file(sub, "bad.inc", "ok A 192.0.2.1\nbad A 1.2.3\n");
    write_file(dir, "bad.zone", "\n$INCLUDE sub/bad.inc\n");
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/bad.zone", dir);
    rc = parse_path(path, &d, &opts);
    snprintf(want, sizeof(want), "%s/sub/bad.inc:2: bad IPv4 address '1.2.3'", dir);
    is_int(rc, ERR_PARSE, "error in an included file");
    is_str(errbuf, want, "error names the included file and its line");
    free(d.buf);

    /* loops */
    write_file(dir, "loop1.zone", "$INCLUDE loop2.inc\n");
    write_file(dir, "loop2.inc", "a A 192.0.2.1\n$INCLUDE loop1.zone\n");
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/loop1.zone", dir);
    rc = parse_path(path, &d, &opts);
    is_int(rc, ERR_PARSE, "include loop");
    ok(strstr(errbuf, "loop2.inc:2: $INCLUDE loop:") != NULL, "include loop message");
    free(d.buf);
    write_file(dir, "self.zone", "$INCLUDE self.zone\n");
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/self.zone", dir);
    rc = parse_path(path, &d, &opts);
    ok(rc == ERR_PARSE && strstr(errbuf, "self.zone:1: $INCLUDE loop"), "self include");
    free(d.buf);

    /* depth */
    write_file(dir, "d0.zone", "$INCLUDE d1.inc\n");
    write_file(dir, "d1.inc", "$INCLUDE d2.inc\n");
    write_file(dir, "d2.inc", "$INCLUDE d3.inc\n");
    write_file(dir, "d3.inc", "a A 192.0.2.1\n");
    zparse_opts_t o2 = opts;
    o2.max_include_depth = 2;
    dump_init(&d);
    snprintf(path, sizeof(path), "%s/d0.zone", dir);
    rc = parse_path(path, &d, &o2);
    is_int(rc, ERR_LIMIT, "include depth limit");
    ok(strstr(errbuf, "d2.inc:1: $INCLUDE nested deeper than 2 levels") != NULL, "depth message");
    free(d.buf);
    o2.max_include_depth = 3;
    dump_init(&d);
    rc = parse_path(path, &d, &o2);
    is_int(rc, 0, "include depth 3 allowed");
    free(d.buf);

    /* from a buffer, relative to the current directory; absolute paths */
    char text[700];
    snprintf(text, sizeof(text), "$INCLUDE %s/sub/b.inc\n", dir);
    check(text, "y.example.com. 1234 IN TXT \\# 2 0162\n", "$INCLUDE absolute from a buffer");

    const char *names[] = {"main.zone",    "sub/a.inc", "sub/b.inc",  "sub/c.inc", "sub/bad.inc",
                           "noowner.zone", "bad.zone",  "loop1.zone", "loop2.inc", "self.zone",
                           "d0.zone",      "d1.inc",    "d2.inc",     "d3.inc"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(sub);
    rmdir(dir);
}

/* --- golden files ----------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.zone names in dir; caller frees. */
static size_t list_zones(const char *dir, char ***out)
{
    DIR *dh = opendir(dir);
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof(*v));
    struct dirent *e;
    while (dh && (e = readdir(dh)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".zone") != 0)
            continue;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = strdup(e->d_name);
    }
    if (dh)
        closedir(dh);
    qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    return n;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0)
            b = realloc(b, cap *= 2);
    }
    fclose(f);
    b[n] = 0;
    return b;
}

static void test_golden(void)
{
    char **v;
    char path[512];
    bool regen = getenv("ZPARSE_REGEN") != NULL;
    size_t n = list_zones(GOLDEN_DIR "/ok", &v);
    ok(n >= 10, "golden ok cases found (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        dump_t d;
        dump_init(&d);
        snprintf(path, sizeof(path), GOLDEN_DIR "/ok/%s", v[i]);
        int rc = parse_path(path, &d, &opts);
        snprintf(path + strlen(path) - 5, 6, ".out");
        if (regen && rc == 0) {
            FILE *f = fopen(path, "w");
            if (f) {
                fputs(d.buf, f);
                fclose(f);
            }
        }
        char *want = slurp(path);
        if (rc != 0) {
            ok(0, "ok/%s", v[i]);
            printf("#   %s\n", errbuf);
        } else {
            is_str(d.buf, want ? want : "(missing .out)", "ok/%s", v[i]);
        }
        free(want);
        free(d.buf);
        free(v[i]);
    }
    free(v);

    n = list_zones(GOLDEN_DIR "/ko", &v);
    ok(n >= 10, "golden ko cases found (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), GOLDEN_DIR "/ko/%s", v[i]);
        char *text = slurp(path);
        char expect[256] = "";
        if (text && strncmp(text, "; expect: ", 10) == 0) {
            size_t l = strcspn(text + 10, "\r\n");
            if (l >= sizeof(expect))
                l = sizeof(expect) - 1;
            memcpy(expect, text + 10, l);
            expect[l] = 0;
        }
        dump_t d;
        dump_init(&d);
        int rc = parse_path(path, &d, &opts);
        if (!ok(expect[0] && rc < 0 && strstr(errbuf, expect), "ko/%s", v[i]))
            printf("#   got %d '%s', want '%s'\n", rc, errbuf, expect);
        free(d.buf);
        free(text);
        free(v[i]);
    }
    free(v);
}

int main(void)
{
    test_types();
    test_errors();
    test_api();
    test_big();
    test_include();
    test_golden();
    return done_testing();
}
