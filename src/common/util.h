#pragma once

#include <stddef.h>
#include <stdint.h>

#define ATTR_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define ATTR_WARN_UNUSED __attribute__((warn_unused_result))
#define ATTR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ATTR_MALLOC __attribute__((malloc))
#define ATTR_ALWAYS_INLINE __attribute__((always_inline))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Allocation for the control plane (load, reload, tools): aborts on failure.
 * Never used on the query path. */
ATTR_MALLOC void *xmalloc(size_t n);
ATTR_MALLOC void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
ATTR_MALLOC char *xstrdup(const char *s);
ATTR_MALLOC void *xmemdup(const void *p, size_t n);

#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_ROUND(n) (((n) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1))

/*
 * Memory for a big table read at random or a buffer streamed through: mapped 2 MiB-aligned,
 * its whole 2 MiB pages advised as transparent huge pages (one TLB entry each instead of
 * 512; without transparent huge pages the advice is a no-op), the tail in small pages.
 * Pages become resident as they are touched (a whole huge page at its first touch).
 * huge_alloc returns NULL on failure, xhuge_alloc aborts like xmalloc. Freed with
 * xhuge_free(p, the same n).
 */
void *huge_alloc(size_t n);
void *xhuge_alloc(size_t n);
void xhuge_free(void *p, size_t n);

static inline uint16_t rd_u16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t rd_u64(const uint8_t *p)
{
    return (uint64_t)rd_u32(p) << 32 | rd_u32(p + 4);
}
static inline void wr_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void wr_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
