#pragma once

#include <stddef.h>

#include "common/util.h"

/*
 * Bump allocator for load-time data. Everything of one snapshot generation (zones,
 * names, rdata) is allocated here and freed at once with arena_clear(). Not thread-safe;
 * built by one loader thread, then read-only.
 */
typedef struct arena_block arena_block_t;
typedef struct {
    arena_block_t *head;
    size_t total;  /* bytes handed out, for metrics */
} arena_t;

void arena_init(arena_t *a);
/* Free every block. The arena can be reused afterwards. */
void arena_clear(arena_t *a);
/* Aligned (16 bytes) zeroed allocation; aborts on out-of-memory (control plane only). */
ATTR_MALLOC void *arena_alloc(arena_t *a, size_t n);
void *arena_memdup(arena_t *a, const void *p, size_t n);
char *arena_strdup(arena_t *a, const char *s);
