/*
 * common/util: huge_alloc gives 2 MiB-aligned, zeroed, writable memory of the size asked,
 * advises exactly its whole 2 MiB pages as huge pages (the VMA's "hg" flag in
 * /proc/self/smaps, whatever the kernel then grants), leaves a smaller block without the
 * advice, and xhuge_free returns all of it (the address range is unmapped).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tap.h"

/* The VMA that holds address a: its range and whether its VmFlags include "hg". Returns
 * false when no VMA holds a. */
static bool vma_of(uintptr_t a, uintptr_t *lo, uintptr_t *hi, bool *hg)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[512];
    bool found = false, in = false;
    while (fgets(line, sizeof(line), f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if (found)
                break; /* the next VMA: ours had no VmFlags line (cannot happen) */
            in = a >= s && a < e;
            if (in) {
                found = true;
                *lo = s;
                *hi = e;
                *hg = false;
            }
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            *hg = strstr(line, " hg") != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4096)
        if (p[i] || p[n - 1])
            return false;
    return true;
}

int main(void)
{
    /* 5 MiB + 100 bytes: two whole huge pages advised, the rest in small pages */
    size_t n = 5 * HUGE_PAGE / 2 + 100;
    uint8_t *p = huge_alloc(n);
    ok(p != NULL, "huge_alloc(%zu) gives memory", n);
    if (!p)
        return done_testing();
    is_int((uintptr_t)p % HUGE_PAGE, 0, "2 MiB-aligned");
    ok(all_zero(p, n), "zeroed");
    memset(p, 0xa5, n);
    ok(p[0] == 0xa5 && p[n - 1] == 0xa5, "writable to its last byte");

    uintptr_t lo = 0, hi = 0;
    bool hg = false;
    ok(vma_of((uintptr_t)p, &lo, &hi, &hg), "its first page is mapped");
    is_int(lo, (uintptr_t)p, "the advised VMA starts at the block");
    is_int(hi, (uintptr_t)p + 2 * HUGE_PAGE, "and ends after its whole 2 MiB pages");
    ok(hg, "advised as huge pages (VmFlags hg)");
    ok(vma_of((uintptr_t)p + n - 1, &lo, &hi, &hg), "its last byte is mapped");
    ok(!hg, "the tail is not advised");
    is_int(hi, (uintptr_t)p + ((n + 4095) & ~(size_t)4095), "the mapping ends at n, rounded to 4 KiB");
    xhuge_free(p, n);
    ok(!vma_of((uintptr_t)p, &lo, &hi, &hg) && !vma_of((uintptr_t)p + n - 1, &lo, &hi, &hg),
       "xhuge_free unmaps all of it");

    /* the rings and the stage ask for HUGE_ROUND(size): one whole huge page */
    size_t r = HUGE_ROUND(512 * 1024);
    is_int(r, HUGE_PAGE, "HUGE_ROUND(512 KiB) is 2 MiB");
    is_int(HUGE_ROUND(HUGE_PAGE), HUGE_PAGE, "HUGE_ROUND(2 MiB) is 2 MiB");
    is_int(HUGE_ROUND(HUGE_PAGE + 1), 2 * HUGE_PAGE, "HUGE_ROUND(2 MiB + 1) is 4 MiB");
    uint8_t *q = xhuge_alloc(r);
    ok(vma_of((uintptr_t)q, &lo, &hi, &hg) && hg && lo == (uintptr_t)q &&
           hi == (uintptr_t)q + HUGE_PAGE,
       "xhuge_alloc(2 MiB): exactly one advised 2 MiB page");
    xhuge_free(q, r);

    /* below 2 MiB: no whole huge page, no advice */
    uint8_t *s = xhuge_alloc(100000);
    is_int((uintptr_t)s % HUGE_PAGE, 0, "a small block is aligned too");
    ok(vma_of((uintptr_t)s, &lo, &hi, &hg) && !hg, "and not advised");
    s[99999] = 1;
    xhuge_free(s, 100000);
    ok(!vma_of((uintptr_t)s, &lo, &hi, &hg), "and unmapped by xhuge_free");
    return done_testing();
}
