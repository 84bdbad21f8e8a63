#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/*
 * Domain names in uncompressed wire form: a sequence of length-prefixed labels ending
 * with the zero-length root label. At most DNS_NAME_MAX bytes in all. Functions that take
 * a "trusted" name assume it was produced by one of the parsers below.
 */
#define DNS_NAME_MAX 255
#define DNS_LABEL_MAX 63
#define DNS_TEXT_MAX (DNS_NAME_MAX * 4 + 2) /* every byte escaped as \DDD, plus '.' and NUL */

/*
 * Read a possibly compressed name from a packet. *pos is the offset of the name; on
 * success it is advanced past the name's bytes at that position (not past pointer
 * targets). The uncompressed name, case preserved, is written to out.
 * Pointers must point strictly backwards (this also rules out loops) and past the
 * 12-byte message header.
 * Returns the name's length in out (>= 1) or ERR_MALFORMED. out is untouched on error
 * only up to what was written; callers must not use it.
 */
int dns_dname_unpack(const uint8_t *pkt, size_t pktlen, size_t *pos, uint8_t out[DNS_NAME_MAX])
    ATTR_NONNULL(1, 3, 4);

/*
 * Parse presentation format ("www.Example.com.", "a\.b", "\065bc"). A name without a
 * trailing dot is relative: origin (a trusted wire name) is appended; with origin NULL it
 * is an error. "@" is NOT handled here (callers substitute the origin). The text need not
 * be NUL-terminated. Returns the wire length or ERR_PARSE / ERR_LIMIT (label or name too
 * long).
 */
int dns_dname_from_text(const char *s, size_t len, const uint8_t *origin,
                        uint8_t out[DNS_NAME_MAX]) ATTR_NONNULL(1, 4);

/* Presentation form with a trailing dot; '.' for the root. Escapes '.', '\\', '"', ';',
 * '(', ')', '@', '$' and non-printable bytes. out must hold DNS_TEXT_MAX bytes. Returns
 * the text length. */
size_t dns_dname_to_text(const uint8_t *name, char out[DNS_TEXT_MAX]) ATTR_NONNULL(1, 2);

/* Length of a trusted wire name, including the root label. */
size_t dns_dname_len(const uint8_t *name) ATTR_NONNULL(1);

/* Number of labels, not counting the root (so "." has 0). */
int dns_dname_labels(const uint8_t *name) ATTR_NONNULL(1);

/* Copy with ASCII letters lowered; dst may equal src. Returns the length. */
size_t dns_dname_lower(uint8_t *dst, const uint8_t *src) ATTR_NONNULL(1, 2);

/* Case-insensitive equality of two trusted names. */
bool dns_dname_equal(const uint8_t *a, const uint8_t *b) ATTR_NONNULL(1, 2);

/* True when name is parent or below it (case-insensitive). */
bool dns_dname_is_subdomain(const uint8_t *name, const uint8_t *parent) ATTR_NONNULL(1, 2);

/* Canonical ordering (RFC 4034 §6.1): <0, 0, >0. */
int dns_dname_cmp(const uint8_t *a, const uint8_t *b) ATTR_NONNULL(1, 2);

/* The name without its first label, or NULL for the root. Borrowed from name. */
static inline const uint8_t *dns_dname_parent(const uint8_t *name)
{
    return name[0] ? name + 1 + name[0] : NULL;
}

/* True for a name whose first label is "*". */
static inline bool dns_dname_is_wildcard(const uint8_t *name)
{
    return name[0] == 1 && name[1] == '*';
}

static inline uint8_t dns_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}
