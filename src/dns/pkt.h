#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dname.h"

/* Header layout and codes. */
#define DNS_HDR_LEN 12
#define DNS_FLAG_QR 0x80   /* byte 2 */
#define DNS_FLAG_AA 0x04   /* byte 2 */
#define DNS_FLAG_TC 0x02   /* byte 2 */
#define DNS_FLAG_RD 0x01   /* byte 2 */
#define DNS_FLAG_RA 0x80   /* byte 3 */
#define DNS_FLAG_AD 0x20   /* byte 3 */
#define DNS_FLAG_CD 0x10   /* byte 3 */

enum {
    DNS_RCODE_NOERROR = 0, DNS_RCODE_FORMERR = 1, DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3, DNS_RCODE_NOTIMP = 4, DNS_RCODE_REFUSED = 5,
    DNS_RCODE_YXDOMAIN = 6, DNS_RCODE_NOTAUTH = 9, DNS_RCODE_BADVERS = 16,
};

enum { DNS_OPCODE_QUERY = 0 };

enum { DNS_EDNS_NSID = 3, DNS_EDNS_ECS = 8, DNS_EDNS_COOKIE = 10 };

#define DNS_EDNS_MIN_UDP 512
#define DNS_OPT_FIXED_LEN 11 /* root owner, type, class, ttl, rdlen */

/* EDNS Client Subnet (RFC 7871) as carried in a query. */
typedef struct {
    uint16_t family;       /* 1 = IPv4, 2 = IPv6 */
    uint8_t source;        /* SOURCE PREFIX-LENGTH */
    uint8_t scope;         /* SCOPE PREFIX-LENGTH (0 in valid queries) */
    uint8_t addr[16];      /* address, zero-padded beyond the prefix */
} dns_ecs_t;

/* A parsed query. Everything is copied out of the packet. */
typedef struct {
    uint16_t id;
    uint8_t opcode;
    bool rd, cd;
    uint8_t qname[DNS_NAME_MAX];     /* case as received */
    uint8_t qname_lc[DNS_NAME_MAX];  /* lowered */
    uint8_t qname_len;
    uint16_t qtype, qclass;
    uint16_t question_len;           /* bytes of the question section in the query */
    bool has_question;               /* qname/qtype/qclass are valid */
    bool edns;                       /* the query carried a valid OPT record */
    uint8_t edns_version;
    bool edns_do;
    uint16_t edns_udp;               /* requested UDP payload size (>= 512) */
    bool nsid;                       /* NSID requested */
    bool ecs_present;                /* a syntactically valid ECS option was present */
    dns_ecs_t ecs;
} dns_query_t;

/* Result of parsing: a response code to send, or DNS_PARSE_DROP. */
#define DNS_PARSE_DROP (-1)

/*
 * Parse and validate a query. Returns DNS_RCODE_NOERROR when the query is well-formed and
 * should be answered, another DNS_RCODE_* when the reply must carry that code (FORMERR,
 * NOTIMP, BADVERS...; fields that parsed are filled, see has_question/edns), or
 * DNS_PARSE_DROP when no reply must be sent (too short, QR set). Never reads out of
 * bounds. Thread-safe; no allocation.
 */
int dns_query_parse(const uint8_t *pkt, size_t len, dns_query_t *q) ATTR_NONNULL(1, 3);

/*
 * Response writer. Writes into a caller buffer; sections must be filled in order
 * (answer, authority, additional). limit is the size the message may reach (client UDP
 * size minus the space kept for the OPT record). Names are compressed against names
 * already written.
 */
#define DNS_COMP_MAX 96
typedef struct {
    uint8_t *buf;
    size_t cap;            /* buffer size */
    size_t limit;          /* max message length for sections (<= cap) */
    size_t len;
    uint16_t count[3];     /* answer, authority, additional */
    int section;           /* 0, 1, 2 */
    uint16_t ncomp;
    uint16_t comp[DNS_COMP_MAX];  /* offsets of names that can be pointed to */
} dns_resp_t;

enum { DNS_SEC_ANSWER = 0, DNS_SEC_AUTHORITY = 1, DNS_SEC_ADDITIONAL = 2 };

/*
 * Start a response to q: header (id, opcode, RD/CD copied, QR set, rcode) and the
 * question as received (case preserved). If q has no valid question, the question
 * section is empty.
 */
void dns_resp_init(dns_resp_t *r, uint8_t *buf, size_t cap, size_t limit, const dns_query_t *q,
                   int rcode) ATTR_NONNULL(1, 2, 5);

/* Select the section subsequent RRs go to (must not go backwards). */
static inline void dns_resp_section(dns_resp_t *r, int section)
{
    if (section > r->section)
        r->section = section;
}

/*
 * Append one RR. owner: wire name (trusted), or NULL with owner_off = offset of a name
 * already in the message (e.g. DNS_HDR_LEN for the question name). rdata is trusted wire
 * RDATA of this type; embedded names are compressed when the type allows it.
 * Returns 0, or ERR_SPACE if it does not fit before limit (the message is left as before).
 */
int dns_resp_add_rr(dns_resp_t *r, const uint8_t *owner, uint16_t owner_off, uint16_t type,
                    uint16_t rclass, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
    ATTR_NONNULL(1);

/* Remember the current length; dns_resp_rollback() undoes RRs added after it. */
typedef struct {
    size_t len;
    uint16_t count[3];
    uint16_t ncomp;
} dns_resp_mark_t;
static inline dns_resp_mark_t dns_resp_mark(const dns_resp_t *r)
{
    dns_resp_mark_t m = { r->len, { r->count[0], r->count[1], r->count[2] }, r->ncomp };
    return m;
}
static inline void dns_resp_rollback(dns_resp_t *r, const dns_resp_mark_t *m)
{
    r->len = m->len;
    r->count[0] = m->count[0];
    r->count[1] = m->count[1];
    r->count[2] = m->count[2];
    r->ncomp = m->ncomp;
}

/* Header flag helpers. */
static inline void dns_resp_set_flags(dns_resp_t *r, uint8_t flags2_or)
{
    r->buf[2] |= flags2_or;
}
static inline void dns_resp_set_rcode(dns_resp_t *r, int rcode)
{
    r->buf[3] = (uint8_t)((r->buf[3] & 0xF0) | (rcode & 0x0F));
}

/* EDNS reply options. ecs may be NULL; nsid may be NULL (len 0). */
typedef struct {
    uint16_t udp_size;     /* our advertised payload size */
    int ext_rcode;         /* full rcode; high 8 bits go into the OPT TTL */
    bool do_bit;
    const dns_ecs_t *ecs;  /* echoed with ecs->scope as SCOPE */
    const uint8_t *nsid;
    uint16_t nsid_len;
} dns_opt_out_t;

/* Bytes the OPT record described by o will take. */
size_t dns_opt_size(const dns_opt_out_t *o) ATTR_NONNULL(1);

/* Append the OPT record (ignores limit, but not cap). Returns 0 or ERR_SPACE. */
int dns_resp_add_opt(dns_resp_t *r, const dns_opt_out_t *o) ATTR_NONNULL(1, 2);

/* Write the section counts into the header; returns the message length. */
size_t dns_resp_finish(dns_resp_t *r) ATTR_NONNULL(1);

/* Bytes of the ECS address carried for a source prefix: ceil(source / 8). */
static inline unsigned dns_ecs_addr_len(uint8_t source)
{
    return (source + 7u) / 8u;
}
