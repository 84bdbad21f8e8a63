#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RR types, classes and their mnemonics. */
enum {
    DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12,
    DNS_T_HINFO = 13, DNS_T_MX = 15, DNS_T_TXT = 16, DNS_T_RP = 17, DNS_T_AFSDB = 18,
    DNS_T_AAAA = 28, DNS_T_LOC = 29, DNS_T_SRV = 33, DNS_T_NAPTR = 35, DNS_T_KX = 36,
    DNS_T_CERT = 37, DNS_T_DNAME = 39, DNS_T_OPT = 41, DNS_T_APL = 42, DNS_T_DS = 43,
    DNS_T_SSHFP = 44, DNS_T_IPSECKEY = 45, DNS_T_RRSIG = 46, DNS_T_NSEC = 47,
    DNS_T_DNSKEY = 48, DNS_T_DHCID = 49, DNS_T_NSEC3 = 50, DNS_T_NSEC3PARAM = 51,
    DNS_T_TLSA = 52, DNS_T_SMIMEA = 53, DNS_T_CDS = 59, DNS_T_CDNSKEY = 60,
    DNS_T_OPENPGPKEY = 61, DNS_T_CSYNC = 62, DNS_T_ZONEMD = 63, DNS_T_SVCB = 64,
    DNS_T_HTTPS = 65, DNS_T_SPF = 99, DNS_T_EUI48 = 108, DNS_T_EUI64 = 109,
    DNS_T_TKEY = 249, DNS_T_TSIG = 250, DNS_T_IXFR = 251, DNS_T_AXFR = 252,
    DNS_T_MAILB = 253, DNS_T_MAILA = 254, DNS_T_ANY = 255, DNS_T_URI = 256,
    DNS_T_CAA = 257,
};

enum { DNS_C_IN = 1, DNS_C_CH = 3, DNS_C_HS = 4, DNS_C_NONE = 254, DNS_C_ANY = 255 };

/*
 * Mnemonic to number: "A" -> 1, "TYPE65000" -> 65000 (RFC 3597), case-insensitive.
 * The text need not be NUL-terminated. Returns the type (> 0) or -1 when unknown.
 */
int dns_rrtype_from_text(const char *s, size_t len);

/* Number to mnemonic: known types by name, others as "TYPE<n>". buf must hold 16 bytes.
 * Returns buf or a static string. */
const char *dns_rrtype_to_text(uint16_t type, char buf[16]);

/* "IN", "CH", "HS", "CLASS<n>" (RFC 3597). Returns the class or -1. */
int dns_rrclass_from_text(const char *s, size_t len);

/*
 * How embedded domain names in a type's RDATA are treated on output:
 * DNS_RDNAME_NONE: no names (or none we rewrite); DNS_RDNAME_COMPRESS: RFC 1035 types
 * whose names may be compressed (NS, CNAME, PTR, MX, SOA...); DNS_RDNAME_PLAIN: names
 * present but never compressed (SRV, NAPTR, DNAME, RP...). dns_rdata_names() lists the
 * offsets of the names inside a trusted RDATA.
 */
typedef enum { DNS_RDNAME_NONE = 0, DNS_RDNAME_COMPRESS, DNS_RDNAME_PLAIN } dns_rdname_kind_t;
dns_rdname_kind_t dns_rrtype_name_kind(uint16_t type);

/* Offsets of the embedded names of a trusted RDATA of this type (at most 2), in order.
 * Returns the count (0 for types without names). */
int dns_rdata_names(uint16_t type, const uint8_t *rdata, uint16_t rdlen, uint16_t offs[2]);

/* True for meta types and QTYPEs that can never be stored in a zone (OPT, TSIG, AXFR...). */
bool dns_rrtype_is_meta(uint16_t type);
