#include "common/err.h"
#include "dns/dname.h"
#include "tap.h"

static void from_text(void)
{
    uint8_t out[DNS_NAME_MAX];
    int n = dns_dname_from_text("www.Example.com.", 16, NULL, out);
    is_int(n, 17, "absolute name length");
    is_mem(out, "\3www\7Example\3com\0", 17, "absolute name bytes, case kept");

    const uint8_t origin[] = "\7example\3com";
    n = dns_dname_from_text("a.b", 3, origin, out);
    is_int(n, 17, "relative name gets the origin");
    is_mem(out, "\1a\1b\7example\3com\0", 17, "relative name bytes");

    is_int(dns_dname_from_text("www", 3, NULL, out), ERR_PARSE, "relative name without origin");
    is_int(dns_dname_from_text(".", 1, NULL, out), 1, "root");
    is_int(dns_dname_from_text("a..b.", 5, NULL, out), ERR_PARSE, "empty label");
    is_int(dns_dname_from_text("a\\.b.", 5, NULL, out), 5, "escaped dot stays in the label");
    is_mem(out, "\3a.b\0", 5, "escaped dot bytes");
    is_int(dns_dname_from_text("\\065\\000z.", 10, NULL, out), 5, "\\DDD escapes");
    is_mem(out, "\3A\0z\0", 5, "\\DDD bytes");
    is_int(dns_dname_from_text("\\256.", 5, NULL, out), ERR_PARSE, "\\DDD over 255");
    is_int(dns_dname_from_text("\\06", 3, NULL, out), ERR_PARSE, "short \\DDD");
    is_int(dns_dname_from_text("a\\", 2, NULL, out), ERR_PARSE, "trailing backslash");

    char big[300];
    memset(big, 'a', 64);
    big[64] = '.';
    is_int(dns_dname_from_text(big, 65, NULL, out), ERR_LIMIT, "64-byte label");
    memset(big, 'a', 63);
    big[63] = '.';
    is_int(dns_dname_from_text(big, 64, NULL, out), 65, "63-byte label is fine");
    /* 4 labels of 63 = 256 bytes with lengths: too long */
    char *p = big;
    for (int i = 0; i < 4; i++) {
        memset(p, 'b', 63);
        p[63] = '.';
        p += 64;
    }
    is_int(dns_dname_from_text(big, 256, NULL, out), ERR_LIMIT, "name over 255 bytes");
    is_int(dns_dname_from_text(big + 2, 254, NULL, out), 255, "name of exactly 255 bytes");
}

static void to_text(void)
{
    char t[DNS_TEXT_MAX];
    dns_dname_to_text((const uint8_t *)"\3a.b\2c\0\0", t);
    is_str(t, "a\\.b.c\\000.", "escapes on output");
    dns_dname_to_text((const uint8_t *)"", t);
    is_str(t, ".", "root as text");
}

static void unpack(void)
{
    /* header(12) + "\3www\7example\3com\0" at 12, then a pointer to 16 ("example.com") */
    uint8_t pkt[64] = { 0 };
    memcpy(pkt + 12, "\3www\7example\3com\0", 17);
    pkt[29] = 1;
    pkt[30] = 'x';
    pkt[31] = 0xC0;
    pkt[32] = 16;
    uint8_t out[DNS_NAME_MAX];
    size_t pos = 12;
    is_int(dns_dname_unpack(pkt, 33, &pos, out), 17, "plain name");
    is_int(pos, 29, "position after a plain name");
    pos = 29;
    is_int(dns_dname_unpack(pkt, 33, &pos, out), 15, "compressed name");
    is_mem(out, "\1x\7example\3com\0", 15, "compressed name bytes");
    is_int(pos, 33, "position after the pointer");

    /* pointer to itself: a loop */
    pkt[40] = 0xC0;
    pkt[41] = 40;
    pos = 40;
    is_int(dns_dname_unpack(pkt, 42, &pos, out), ERR_MALFORMED, "self pointer");
    /* forward pointer */
    pkt[40] = 0xC0;
    pkt[41] = 50;
    pos = 40;
    is_int(dns_dname_unpack(pkt, 60, &pos, out), ERR_MALFORMED, "forward pointer");
    /* two pointers pointing at each other */
    pkt[20] = 0xC0;
    pkt[21] = 40;
    pkt[40] = 0xC0;
    pkt[41] = 20;
    pos = 40;
    is_int(dns_dname_unpack(pkt, 60, &pos, out), ERR_MALFORMED, "pointer loop");
    /* pointer into the header */
    pkt[40] = 0xC0;
    pkt[41] = 4;
    pos = 40;
    is_int(dns_dname_unpack(pkt, 60, &pos, out), ERR_MALFORMED, "pointer into the header");
    /* truncated */
    pos = 12;
    is_int(dns_dname_unpack(pkt, 20, &pos, out), ERR_MALFORMED, "truncated name");
    /* label type 0x40 */
    pkt[50] = 0x41;
    pos = 50;
    is_int(dns_dname_unpack(pkt, 60, &pos, out), ERR_MALFORMED, "extended label type");
    /* a name longer than 255 bytes built from labels */
    uint8_t big[400] = { 0 };
    size_t o = 12;
    for (int i = 0; i < 5; i++) {
        big[o] = 60;
        memset(big + o + 1, 'a', 60);
        o += 61;
    }
    big[o++] = 0;
    pos = 12;
    is_int(dns_dname_unpack(big, o, &pos, out), ERR_MALFORMED, "name over 255 bytes");
}

static void compare(void)
{
    const uint8_t *a = (const uint8_t *)"\3WWW\7example\3com";
    const uint8_t *b = (const uint8_t *)"\3www\7EXAMPLE\3com";
    ok(dns_dname_equal(a, b), "equal ignores case");
    ok(!dns_dname_equal(a, (const uint8_t *)"\3ww\7example\3com"), "different names");
    ok(dns_dname_is_subdomain(a, (const uint8_t *)"\7example\3COM"), "subdomain");
    ok(dns_dname_is_subdomain(a, a), "a name is a subdomain of itself");
    ok(!dns_dname_is_subdomain((const uint8_t *)"\7example\3com", a), "parent is not below child");
    ok(!dns_dname_is_subdomain((const uint8_t *)"\10xexample\3com", (const uint8_t *)"\7example\3com"),
       "label boundary respected");
    is_int(dns_dname_labels(a), 3, "label count");
    ok(dns_dname_cmp((const uint8_t *)"\1a\7example", (const uint8_t *)"\1b\7example") < 0,
       "canonical order a < b");
    ok(dns_dname_cmp((const uint8_t *)"\7example", (const uint8_t *)"\1a\7example") < 0,
       "parent sorts first");
    uint8_t l[DNS_NAME_MAX];
    dns_dname_lower(l, a);
    is_mem(l, "\3www\7example\3com\0", 17, "lowering");
}

int main(void)
{
    from_text();
    to_text();
    unpack();
    compare();
    return done_testing();
}
