#include "dns/rrtype.h"

#include <stdio.h>
#include <string.h>

#include "dns/dname.h"

/* IANA "Resource Record (RR) TYPEs" mnemonics, sorted by number (binary search). */
static const struct {
    uint16_t type;
    const char *name;
} rrtypes[] = {
    {1, "A"},           {2, "NS"},      {3, "MD"},         {4, "MF"},        {5, "CNAME"},
    {6, "SOA"},         {7, "MB"},      {8, "MG"},         {9, "MR"},        {10, "NULL"},
    {11, "WKS"},        {12, "PTR"},    {13, "HINFO"},     {14, "MINFO"},    {15, "MX"},
    {16, "TXT"},        {17, "RP"},     {18, "AFSDB"},     {19, "X25"},      {20, "ISDN"},
    {21, "RT"},         {22, "NSAP"},   {23, "NSAP-PTR"},  {24, "SIG"},      {25, "KEY"},
    {26, "PX"},         {27, "GPOS"},   {28, "AAAA"},      {29, "LOC"},      {30, "NXT"},
    {31, "EID"},        {32, "NIMLOC"}, {33, "SRV"},       {34, "ATMA"},     {35, "NAPTR"},
    {36, "KX"},         {37, "CERT"},   {38, "A6"},        {39, "DNAME"},    {40, "SINK"},
    {41, "OPT"},        {42, "APL"},    {43, "DS"},        {44, "SSHFP"},    {45, "IPSECKEY"},
    {46, "RRSIG"},      {47, "NSEC"},   {48, "DNSKEY"},    {49, "DHCID"},    {50, "NSEC3"},
    {51, "NSEC3PARAM"}, {52, "TLSA"},   {53, "SMIMEA"},    {55, "HIP"},      {56, "NINFO"},
    {57, "RKEY"},       {58, "TALINK"}, {59, "CDS"},       {60, "CDNSKEY"},  {61, "OPENPGPKEY"},
    {62, "CSYNC"},      {63, "ZONEMD"}, {64, "SVCB"},      {65, "HTTPS"},    {66, "DSYNC"},
    {99, "SPF"},        {100, "UINFO"}, {101, "UID"},      {102, "GID"},     {103, "UNSPEC"},
    {104, "NID"},       {105, "L32"},   {106, "L64"},      {107, "LP"},      {108, "EUI48"},
    {109, "EUI64"},     {249, "TKEY"},  {250, "TSIG"},     {251, "IXFR"},    {252, "AXFR"},
    {253, "MAILB"},     {254, "MAILA"}, {255, "ANY"},      {256, "URI"},     {257, "CAA"},
    {258, "AVC"},       {259, "DOA"},   {260, "AMTRELAY"}, {261, "RESINFO"}, {262, "WALLET"},
    {32768, "TA"},      {32769, "DLV"},
};

static const struct {
    uint16_t rclass;
    const char *name;
} rrclasses[] = {{DNS_C_IN, "IN"}, {DNS_C_CH, "CH"}, {DNS_C_HS, "HS"}};

static bool eq_nocase(const char *s, size_t len, const char *lit)
{
    size_t i = 0;
    for (; i < len; i++) {
        if (lit[i] == 0 || dns_lower((uint8_t)s[i]) != dns_lower((uint8_t)lit[i]))
            return false;
    }
    return lit[i] == 0;
}

/* "<prefix><decimal 0..65535>", case-insensitive prefix, at most 5 digits. Returns the
 * number or -1. */
static int prefixed_number(const char *s, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (len <= pl || len > pl + 5 || !eq_nocase(s, pl, prefix))
        return -1;
    long v = 0;
    for (size_t i = pl; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? (int)v : -1;
}

int dns_rrtype_from_text(const char *s, size_t len)
{
    if (len == 0)
        return -1;
    uint8_t first = dns_lower((uint8_t)s[0]);
    for (size_t i = 0; i < ARRAY_SIZE(rrtypes); i++) {
        const char *n = rrtypes[i].name;
        if (dns_lower((uint8_t)n[0]) == first && eq_nocase(s, len, n))
            return rrtypes[i].type;
    }
    int v = prefixed_number(s, len, "TYPE");
    return v > 0 ? v : -1;
}

const char *dns_rrtype_to_text(uint16_t type, char buf[16])
{
    size_t lo = 0, hi = ARRAY_SIZE(rrtypes);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rrtypes[mid].type == type)
            return rrtypes[mid].name;
        if (rrtypes[mid].type < type)
            lo = mid + 1;
        else
            hi = mid;
    }
    snprintf(buf, 16, "TYPE%u", (unsigned)type);
    return buf;
}

int dns_rrclass_from_text(const char *s, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(rrclasses); i++)
        if (eq_nocase(s, len, rrclasses[i].name))
            return rrclasses[i].rclass;
    int v = prefixed_number(s, len, "CLASS");
    return v > 0 ? v : -1;
}

dns_rdname_kind_t dns_rrtype_name_kind(uint16_t type)
{
    switch (type) {
    /* RFC 3597 section 4: the only types whose names may be compressed. */
    case DNS_T_NS:
    case 3: /* MD */
    case 4: /* MF */
    case DNS_T_CNAME:
    case DNS_T_SOA:
    case 7: /* MB */
    case 8: /* MG */
    case 9: /* MR */
    case DNS_T_PTR:
    case 14: /* MINFO */
    case DNS_T_MX:
        return DNS_RDNAME_COMPRESS;
    case DNS_T_RP:
    case DNS_T_AFSDB:
    case 21: /* RT */
    case DNS_T_SRV:
    case DNS_T_NAPTR:
    case DNS_T_KX:
    case DNS_T_DNAME:
    case DNS_T_SVCB:
    case DNS_T_HTTPS:
        return DNS_RDNAME_PLAIN;
    default:
        return DNS_RDNAME_NONE;
    }
}

/* Length of the uncompressed name at off, or 0 when it does not fit in rdlen. */
static size_t name_at(const uint8_t *rd, size_t rdlen, size_t off)
{
    size_t p = off;
    while (p < rdlen) {
        uint8_t l = rd[p];
        if (l & 0xC0)
            return 0;
        p += 1 + (size_t)l;
        if (l == 0)
            return p - off <= DNS_NAME_MAX ? p - off : 0;
    }
    return 0;
}

/* Offset just past a <character-string> at off, or 0 when it does not fit. */
static size_t skip_cstr(const uint8_t *rd, size_t rdlen, size_t off)
{
    if (off >= rdlen || off + 1 + (size_t)rd[off] > rdlen)
        return 0;
    return off + 1 + (size_t)rd[off];
}

int dns_rdata_names(uint16_t type, const uint8_t *rdata, uint16_t rdlen, uint16_t offs[2])
{
    size_t first, n1;
    bool two = false;
    switch (type) {
    case DNS_T_NS:
    case 3:
    case 4:
    case DNS_T_CNAME:
    case 7:
    case 8:
    case 9:
    case DNS_T_PTR:
    case DNS_T_DNAME:
        first = 0;
        break;
    case DNS_T_SOA:
    case 14: /* MINFO */
    case DNS_T_RP:
        first = 0;
        two = true;
        break;
    case DNS_T_MX:
    case DNS_T_AFSDB:
    case 21: /* RT */
    case DNS_T_KX:
    case DNS_T_SVCB:
    case DNS_T_HTTPS:
        first = 2;
        break;
    case DNS_T_SRV:
        first = 6;
        break;
    case DNS_T_NAPTR:
        first = 4;
        for (int i = 0; i < 3; i++)
            if ((first = skip_cstr(rdata, rdlen, first)) == 0)
                return 0;
        break;
    default:
        return 0;
    }
    if ((n1 = name_at(rdata, rdlen, first)) == 0)
        return 0;
    offs[0] = (uint16_t)first;
    if (!two)
        return 1;
    if (name_at(rdata, rdlen, first + n1) == 0)
        return 1;
    offs[1] = (uint16_t)(first + n1);
    return 2;
}

bool dns_rrtype_is_meta(uint16_t type)
{
    switch (type) {
    case 0:
    case DNS_T_OPT:
    case DNS_T_TKEY:
    case DNS_T_TSIG:
    case DNS_T_IXFR:
    case DNS_T_AXFR:
    case DNS_T_MAILB:
    case DNS_T_MAILA:
    case DNS_T_ANY:
        return true;
    default:
        return false;
    }
}
