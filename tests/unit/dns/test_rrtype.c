/* Unit tests for dns/rrtype: mnemonics, RFC 3597 forms, embedded-name metadata. */
#include "dns/rrtype.h"

#include <string.h>

#include "tap.h"

static int from(const char *s)
{
    return dns_rrtype_from_text(s, strlen(s));
}

static int cls(const char *s)
{
    return dns_rrclass_from_text(s, strlen(s));
}

static void test_mnemonics(void)
{
    char buf[16];
    is_int(from("A"), DNS_T_A, "A");
    is_int(from("a"), DNS_T_A, "a is case-insensitive");
    is_int(from("aaaa"), DNS_T_AAAA, "aaaa");
    is_int(from("NS"), 2, "NS");
    is_int(from("CNAME"), 5, "CNAME");
    is_int(from("SOA"), 6, "SOA");
    is_int(from("MX"), 15, "MX");
    is_int(from("TXT"), 16, "TXT");
    is_int(from("SRV"), 33, "SRV");
    is_int(from("NAPTR"), 35, "NAPTR");
    is_int(from("Https"), 65, "Https");
    is_int(from("SVCB"), 64, "SVCB");
    is_int(from("CAA"), 257, "CAA");
    is_int(from("NSAP-PTR"), 23, "NSAP-PTR with a dash");
    is_int(from("TYPE65000"), 65000, "TYPE65000");
    is_int(from("type1"), 1, "type1 lower case");
    is_int(from("TYPE65535"), 65535, "TYPE65535");
    is_int(from("TYPE65536"), -1, "TYPE65536 out of range");
    is_int(from("TYPE0"), -1, "TYPE0 is not a type");
    is_int(from("TYPE"), -1, "TYPE without a number");
    is_int(from("TYPE1x"), -1, "TYPE1x");
    is_int(from("TYPE000001"), -1, "TYPE with 6 digits");
    is_int(from("AA"), -1, "AA unknown");
    is_int(from("AAAAA"), -1, "AAAAA unknown");
    is_int(from(""), -1, "empty");
    is_int(dns_rrtype_from_text("MXYZ", 2), DNS_T_MX, "not NUL-terminated");
    is_str(dns_rrtype_to_text(1, buf), "A", "1 -> A");
    is_str(dns_rrtype_to_text(65, buf), "HTTPS", "65 -> HTTPS");
    is_str(dns_rrtype_to_text(257, buf), "CAA", "257 -> CAA");
    is_str(dns_rrtype_to_text(32769, buf), "DLV", "32769 -> DLV");
    is_str(dns_rrtype_to_text(65000, buf), "TYPE65000", "65000 -> TYPE65000");
    is_str(dns_rrtype_to_text(0, buf), "TYPE0", "0 -> TYPE0");
    is_str(dns_rrtype_to_text(54, buf), "TYPE54", "54 (unassigned) -> TYPE54");

    /* Every number round-trips through its mnemonic. */
    int bad = 0;
    for (unsigned t = 1; t <= 65535; t++) {
        const char *s = dns_rrtype_to_text((uint16_t)t, buf);
        if (from(s) != (int)t)
            bad++;
    }
    is_int(bad, 0, "all 65535 types round-trip");
}

static void test_classes(void)
{
    is_int(cls("IN"), DNS_C_IN, "IN");
    is_int(cls("in"), DNS_C_IN, "in");
    is_int(cls("CH"), DNS_C_CH, "CH");
    is_int(cls("HS"), DNS_C_HS, "HS");
    is_int(cls("CLASS1"), 1, "CLASS1");
    is_int(cls("class255"), 255, "class255");
    is_int(cls("CLASS65535"), 65535, "CLASS65535");
    is_int(cls("CLASS65536"), -1, "CLASS65536");
    is_int(cls("CLASS"), -1, "CLASS");
    is_int(cls("INX"), -1, "INX");
    is_int(cls("A"), -1, "A is not a class");
    is_int(cls(""), -1, "empty");
}

static void test_name_kind(void)
{
    const uint16_t compress[] = {DNS_T_NS, DNS_T_CNAME, DNS_T_SOA, DNS_T_PTR, DNS_T_MX, 3,
                                 4,        7,           8,         9,         14};
    const uint16_t plain[] = {DNS_T_DNAME, DNS_T_SRV, DNS_T_NAPTR, DNS_T_RP,   DNS_T_AFSDB,
                              DNS_T_KX,    21,        DNS_T_SVCB,  DNS_T_HTTPS};
    const uint16_t none[] = {DNS_T_A,  DNS_T_AAAA,  DNS_T_TXT, DNS_T_CAA,
                             DNS_T_DS, DNS_T_HINFO, 65000};
    for (size_t i = 0; i < sizeof(compress) / sizeof(compress[0]); i++)
        is_int(dns_rrtype_name_kind(compress[i]), DNS_RDNAME_COMPRESS, "type %u compresses",
               compress[i]);
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        is_int(dns_rrtype_name_kind(plain[i]), DNS_RDNAME_PLAIN, "type %u has plain names",
               plain[i]);
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        is_int(dns_rrtype_name_kind(none[i]), DNS_RDNAME_NONE, "type %u has no names", none[i]);
}

static void test_rdata_names(void)
{
    uint16_t o[2] = {0, 0};
    static const uint8_t ns[] = {2, 'n', 's', 0};
    is_int(dns_rdata_names(DNS_T_NS, ns, sizeof(ns), o), 1, "NS: one name");
    is_int(o[0], 0, "NS at 0");
    is_int(dns_rdata_names(DNS_T_CNAME, ns, sizeof(ns), o), 1, "CNAME: one name");
    is_int(dns_rdata_names(DNS_T_DNAME, ns, sizeof(ns), o), 1, "DNAME: one name");
    is_int(dns_rdata_names(DNS_T_PTR, ns, sizeof(ns), o), 1, "PTR: one name");

    static const uint8_t mx[] = {0, 10, 2, 'm', 'x', 0};
    is_int(dns_rdata_names(DNS_T_MX, mx, sizeof(mx), o), 1, "MX: one name");
    is_int(o[0], 2, "MX name at 2");
    is_int(dns_rdata_names(DNS_T_AFSDB, mx, sizeof(mx), o), 1, "AFSDB: one name");
    is_int(o[0], 2, "AFSDB name at 2");
    is_int(dns_rdata_names(DNS_T_KX, mx, sizeof(mx), o), 1, "KX: one name");
    is_int(o[0], 2, "KX name at 2");

    static const uint8_t soa[] = {2, 'n', 's', 0, 1, 'h', 0, 0, 0, 0, 1, 0, 0, 0,
                                  2, 0,   0,   0, 3, 0,   0, 0, 4, 0, 0, 0, 5};
    is_int(dns_rdata_names(DNS_T_SOA, soa, sizeof(soa), o), 2, "SOA: two names");
    ok(o[0] == 0 && o[1] == 4, "SOA names at 0 and 4");

    static const uint8_t rp[] = {1, 'a', 0, 1, 'b', 0};
    is_int(dns_rdata_names(DNS_T_RP, rp, sizeof(rp), o), 2, "RP: two names");
    ok(o[0] == 0 && o[1] == 3, "RP names at 0 and 3");

    static const uint8_t srv[] = {0, 1, 0, 2, 0, 3, 1, 's', 0};
    is_int(dns_rdata_names(DNS_T_SRV, srv, sizeof(srv), o), 1, "SRV: one name");
    is_int(o[0], 6, "SRV name at 6");

    static const uint8_t naptr[] = {0, 1, 0, 2, 1, 'u', 2, 'x', 'y', 0, 1, 'r', 0};
    is_int(dns_rdata_names(DNS_T_NAPTR, naptr, sizeof(naptr), o), 1, "NAPTR: one name");
    is_int(o[0], 10, "NAPTR replacement after three strings");

    static const uint8_t svcb[] = {0, 1, 0, 0, 3, 0, 2, 1, 0xbb};
    is_int(dns_rdata_names(DNS_T_SVCB, svcb, sizeof(svcb), o), 1, "SVCB: target");
    is_int(o[0], 2, "SVCB target at 2");

    static const uint8_t a[] = {192, 0, 2, 1};
    is_int(dns_rdata_names(DNS_T_A, a, sizeof(a), o), 0, "A: no names");
    is_int(dns_rdata_names(DNS_T_TXT, a, sizeof(a), o), 0, "TXT: no names");
    /* defensive on short input */
    is_int(dns_rdata_names(DNS_T_MX, mx, 3, o), 0, "truncated MX: none");
    is_int(dns_rdata_names(DNS_T_NAPTR, naptr, 7, o), 0, "truncated NAPTR: none");
    is_int(dns_rdata_names(DNS_T_SOA, soa, 5, o), 1, "truncated SOA: first name only");
}

static void test_meta(void)
{
    const uint16_t meta[] = {0,          DNS_T_OPT,   DNS_T_TKEY,  DNS_T_TSIG, DNS_T_IXFR,
                             DNS_T_AXFR, DNS_T_MAILA, DNS_T_MAILB, DNS_T_ANY};
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
        ok(dns_rrtype_is_meta(meta[i]), "type %u is meta", meta[i]);
    ok(!dns_rrtype_is_meta(DNS_T_A), "A is data");
    ok(!dns_rrtype_is_meta(DNS_T_SOA), "SOA is data");
    ok(!dns_rrtype_is_meta(DNS_T_CAA), "CAA is data");
    ok(!dns_rrtype_is_meta(65000), "65000 is data");
}

int main(void)
{
    test_mnemonics();
    test_classes();
    test_name_kind();
    test_rdata_names();
    test_meta();
    return done_testing();
}
