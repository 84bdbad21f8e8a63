/*
 * Replay driver shared by every libFuzzer target (tests/fuzz/fuzz_*.c): runs
 * LLVMFuzzerTestOneInput() once per file named on the command line, or per regular file in
 * each directory named, and prints TAP: one "ok" line per argument with the file count.
 * A crash or sanitizer report fails the run. Each input is copied into a buffer of exactly
 * its size so that out-of-bounds reads are caught by ASan.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one file; returns 0 or -1 when it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0, r;
    uint8_t *buf = malloc(cap);
    if (!buf)
        abort();
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap && !(buf = realloc(buf, cap *= 2)))
            abort();
    }
    int bad = ferror(f);
    fclose(f);
    if (!bad) {
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact)
            abort();
        memcpy(exact, buf, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
    }
    free(buf);
    return bad ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular, non-hidden file in dir in name order; returns the count or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof(*names));
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap && !(names = realloc(names, (cap *= 2) * sizeof(*names))))
            break;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (!names)
        abort();
    qsort(names, n, sizeof(*names), cmp_str);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        struct stat st;
        snprintf(path, len, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    int failed = 0, t = 0;
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            printf("not ok %d - %s: cannot stat\n", ++t, argv[i]);
            failed++;
        } else if (S_ISDIR(st.st_mode)) {
            long n = run_dir(argv[i]);
            if (n > 0) {
                printf("ok %d - %s: %ld files\n", ++t, argv[i], n);
            } else {
                printf("not ok %d - %s: %s\n", ++t, argv[i], n == 0 ? "no files" : "read error");
                failed++;
            }
        } else if (run_file(argv[i]) == 0) {
            printf("ok %d - %s\n", ++t, argv[i]);
        } else {
            printf("not ok %d - %s: read error\n", ++t, argv[i]);
            failed++;
        }
        fflush(stdout);
    }
    printf("1..%d\n", t);
    return failed ? 1 : 0;
}
