#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void oom(size_t n)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    memcpy(q, p, n);
    return q;
}

/* The length huge_alloc maps for n bytes: n rounded up to 4 KiB, at least one page. */
static size_t huge_len(size_t n)
{
    return n ? (n + 4095) & ~(size_t)4095 : 4096;
}

void *huge_alloc(size_t n)
{
    size_t len = huge_len(n);
    uint8_t *m = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > m)
        munmap(m, (size_t)(p - m));
    if (m + len + HUGE_PAGE > p + len)
        munmap(p + len, (size_t)(m + len + HUGE_PAGE - (p + len)));
    if (len >= HUGE_PAGE) /* advice: failure is harmless */
        (void)madvise(p, len & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
    return p;
}

void *xhuge_alloc(size_t n)
{
    void *p = huge_alloc(n);
    if (!p)
        oom(n);
    return p;
}

void xhuge_free(void *p, size_t n)
{
    if (p)
        munmap(p, huge_len(n));
}
