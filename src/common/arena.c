#include "common/arena.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE (256 * 1024)

struct arena_block {
    arena_block_t *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

void arena_init(arena_t *a)
{
    a->head = NULL;
    a->total = 0;
}

void arena_clear(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block_t *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > BLOCK_SIZE / 4 ? n : BLOCK_SIZE;
        b = xmalloc(sizeof(*b) + size);
        b->used = 0;
        b->size = size;
        if (n > BLOCK_SIZE / 4 && a->head) {
            /* Big allocation: keep the current head block for small ones. */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void *arena_memdup(arena_t *a, const void *p, size_t n)
{
    void *q = arena_alloc(a, n ? n : 1);
    if (n)
        memcpy(q, p, n);
    return q;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_memdup(a, s, strlen(s) + 1);
}
