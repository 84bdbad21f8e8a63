#pragma once
/* A tiny TAP producer for unit tests: ok(cond, fmt...), is_int(), is_str(), done_testing(). */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3))) static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

#define is_int(got, want, ...)                                                               \
    do {                                                                                     \
        long long g_ = (long long)(got), w_ = (long long)(want);                             \
        if (!ok(g_ == w_, __VA_ARGS__))                                                      \
            printf("#   got %lld, want %lld (%s:%d)\n", g_, w_, __FILE__, __LINE__);         \
    } while (0)

#define is_str(got, want, ...)                                                               \
    do {                                                                                     \
        const char *g_ = (got), *w_ = (want);                                                \
        if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                               \
            printf("#   got '%s', want '%s' (%s:%d)\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)", \
                   __FILE__, __LINE__);                                                      \
    } while (0)

#define is_mem(got, want, len, ...) ok(memcmp((got), (want), (len)) == 0, __VA_ARGS__)

static inline int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
