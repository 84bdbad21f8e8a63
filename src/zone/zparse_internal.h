#pragma once
/*
 * Private to the zone-file parser (zparse*.c): the lexer, the parse context and the
 * field readers shared by the RDATA parsers. Nothing here is thread-shared: one zp_t per
 * zparse_file()/zparse_buffer() call.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "dns/dname.h"
#include "zone/zparse.h"

#define ZP_RDATA_MAX 65535
#define ZP_SCRATCH_MAX 90000 /* base64 text of a maximal RDATA, with room to spare */
#define ZP_SVC_MAX 16384     /* SvcParams per RR: each takes at least 4 bytes */

typedef enum { ZP_TOK_WORD, ZP_TOK_QUOTED, ZP_TOK_EOL, ZP_TOK_EOF } zp_tok_kind_t;

/* A token: raw text borrowed from the input, escapes not decoded. For quoted strings the
 * text is what lies between the quotes. */
typedef struct {
    const char *s;
    size_t len;
    unsigned line; /* line where the token starts */
    zp_tok_kind_t kind;
    bool bol;   /* starts in column 0 */
    bool glued; /* no blank, comment or parenthesis since the previous token */
} zp_tok_t;

typedef struct {
    const char *buf;
    size_t len;
    size_t pos;
    size_t line_start; /* offset of the current line's first byte */
    unsigned line;
    unsigned paren_line; /* line of the open '(' (0: none open) */
} zp_lex_t;

/* One input file (or buffer) being read; includes nest as a linked stack. */
typedef struct zp_frame zp_frame_t;
struct zp_frame {
    zp_frame_t *parent;
    const char *name; /* for messages and zparse_rr_t.file */
    char *dir;        /* directory for relative $INCLUDE, NULL: current directory */
    bool has_id;
    dev_t dev;
    ino_t ino;
    unsigned depth;
    zp_lex_t lex;
    zp_tok_t peeked;
    bool has_peeked;
    uint8_t origin[DNS_NAME_MAX];
    uint8_t owner[DNS_NAME_MAX];
    bool has_owner;
    bool owner_after_include; /* has_owner was cleared by an $INCLUDE */
    bool has_dollar_ttl, has_last_ttl;
    uint32_t dollar_ttl, last_ttl;
};

typedef struct {
    uint16_t key;
    uint16_t len;
    uint32_t off;
} zp_svc_param_t;

typedef struct {
    const zparse_opts_t *opts;
    zparse_cb_t cb;
    void *cb_ctx;
    char *err;
    size_t errlen;
    bool failed; /* an error message has been written */
    zp_frame_t *cur;
    unsigned max_depth;
    /* RDATA under construction; writes past the end only set rd_over (sticky). */
    uint8_t rd[ZP_RDATA_MAX];
    size_t rdlen;
    bool rd_over;
    /* Lazily allocated work areas. */
    uint8_t *scratch;    /* ZP_SCRATCH_MAX bytes */
    uint8_t *svbuf;      /* ZP_RDATA_MAX bytes: SvcParam values */
    zp_svc_param_t *svc; /* ZP_SVC_MAX entries */
} zp_t;

/* --- errors (zparse.c) ------------------------------------------------------------------ */

/* Record "file:line: message" (first error wins) and return code. */
ATTR_PRINTF(4, 5) int zp_error(zp_t *p, unsigned line, int code, const char *fmt, ...);

/* Printable copy of a token for messages: at most 40 characters, non-printables as \DDD. */
const char *zp_show(const zp_tok_t *t, char buf[200]);

/* --- lexer (zparse_lex.c) --------------------------------------------------------------- */

void zp_lex_init(zp_lex_t *lx, const char *buf, size_t len);
/* Next token; returns 0 or a negative ERR_* after zp_error(). */
int zp_next(zp_t *p, zp_tok_t *t);
int zp_peek(zp_t *p, zp_tok_t *t);
/* Next token, which must be a value (not end of line): else "missing <what>". */
int zp_field(zp_t *p, zp_tok_t *t, const char *what);
/* 1 when another RDATA token follows, 0 at the end of the record, or a negative ERR_*. */
int zp_more(zp_t *p);

/* --- field readers (zparse_lex.c); each returns 0 or a negative ERR_* ------------------- */

bool zp_is_end(const zp_tok_t *t);
/* Decimal without sign or units, at most max. */
bool zp_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *v);
/* Decimal or BIND-style units (1w2d3h4m5s, case-insensitive), at most max. */
bool zp_parse_ttl(const char *s, size_t len, uint64_t max, uint64_t *v);
/* Decode \X and \DDD escapes. Returns the length, -1 for a bad escape, -2 above cap. */
long zp_unescape(const char *s, size_t len, uint8_t *out, size_t cap);
/* Parse a domain name token ('@' is the origin) into out; returns the wire length. */
int zp_name(zp_t *p, const zp_tok_t *t, const char *what, uint8_t out[DNS_NAME_MAX]);

void zp_put(zp_t *p, const void *data, size_t n);
void zp_put8(zp_t *p, uint8_t v);
void zp_put16(zp_t *p, uint16_t v);
void zp_put32(zp_t *p, uint32_t v);

int zp_rd_uint(zp_t *p, const char *what, uint64_t max, uint64_t *v);
int zp_rd_u8(zp_t *p, const char *what);
int zp_rd_u16(zp_t *p, const char *what);
int zp_rd_u32(zp_t *p, const char *what);
int zp_rd_time(zp_t *p, const char *what);
int zp_rd_name(zp_t *p, const char *what);
int zp_rd_cstr(zp_t *p, const char *what);
int zp_rd_ipv4(zp_t *p, const char *what);
int zp_rd_ipv6(zp_t *p, const char *what);
/* Hex digits in any number of tokens up to the end of the record. With min 0 an empty
 * field is allowed. Returns the byte count or a negative ERR_*. */
long zp_rd_hex_rest(zp_t *p, const char *what, size_t min);
/* Base64 in any number of tokens up to the end of the record (at least one byte). */
int zp_rd_base64_rest(zp_t *p, const char *what);
/* Decode base64 text into out. Returns the length or -1. */
long zp_base64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);
uint8_t *zp_scratch(zp_t *p);

/* --- RDATA (zparse_rdata.c, zparse_svcb.c) ---------------------------------------------- */

/* Parse the presentation RDATA of type into p->rd (also "\# len hex"); returns 0 or error. */
int zp_rdata(zp_t *p, uint16_t type, unsigned line);
/* True when a wire RDATA (from the generic form) is well formed for type. */
bool zp_wire_valid(uint16_t type, const uint8_t *rd, size_t len);
int zp_rdata_svcb(zp_t *p, uint16_t type);
bool zp_svcb_wire_valid(const uint8_t *rd, size_t len, size_t off);
