#pragma once

#include <stddef.h>
#include <stdint.h>

#include "dns/dname.h"

/*
 * RFC 1035 master-file parser. Streams each record to a callback in wire form; it does
 * not build any zone structure. Supports $ORIGIN, $TTL, $INCLUDE (relative paths are
 * resolved against the including file's directory), parentheses, comments, '@', relative
 * names, omitted owner/TTL/class, \. and \DDD escapes, quoted strings, TTL units (1h2m),
 * RFC 3597 generic RDATA (\# len hex) for any type, and the presentation format of the
 * types listed in docs/zone-files.md.
 */
typedef struct {
    const uint8_t *owner;   /* wire form, case as written, uncompressed */
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;
    const uint8_t *rdata;   /* wire form; embedded names uncompressed, case as written */
    uint16_t rdlen;
    const char *file;       /* file the record came from */
    unsigned line;          /* line where the record starts */
} zparse_rr_t;

/*
 * Called once per record. Everything in rr is borrowed and valid only during the call.
 * Return 0 to continue, or a negative value to stop; then write a message into err
 * (errlen bytes), which zparse_* report as "file:line: message".
 */
typedef int (*zparse_cb_t)(void *ctx, const zparse_rr_t *rr, char *err, size_t errlen);

typedef struct {
    const uint8_t *origin;   /* initial $ORIGIN (wire); required */
    uint32_t default_ttl;    /* TTL used before any $TTL when none can be inferred */
    unsigned max_include_depth; /* 0 means the default, 10 */
} zparse_opts_t;

/*
 * Parse a file. Returns 0 when every record was read and accepted, or a negative ERR_*
 * code with "file:line: what is wrong" in err (NUL-terminated, truncated to errlen).
 * Callers must treat a failure as "nothing loaded" (the callback may have seen records).
 */
int zparse_file(const char *path, const zparse_opts_t *opts, zparse_cb_t cb, void *ctx,
                char *err, size_t errlen);

/* Same, from memory; name is used in error messages and $INCLUDE is relative to the
 * current directory. */
int zparse_buffer(const char *text, size_t len, const char *name, const zparse_opts_t *opts,
                  zparse_cb_t cb, void *ctx, char *err, size_t errlen);
