/*
 * libFuzzer target for the GeoLite2 CSV loader (geo_db_load() with a GEO_SRC_CSV source).
 * The input is a Locations file followed by up to four Blocks files, separated by lines
 * holding only "%%":
 *
 *     geoname_id,continent_code,country_iso_code,...      <- *-Locations-en.csv
 *     %%
 *     network,geoname_id,latitude,longitude,...           <- *-Blocks-IPv4.csv
 *     %%
 *     network,geoname_id,...                              <- *-Blocks-IPv6.csv
 *
 * Each part is written to an in-memory file (memfd) that the loader opens by path; the
 * result is checked by geo_fuzz_load_and_check() (geo_check.h).
 */
#include <stdint.h>
#include <string.h>

#include "geo_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BLOCKS 4

static const char sep[] = "\n%%\n";
#define SEP_LEN (sizeof(sep) - 1)

/* The first separator at or after data + from, or data + size. */
static const uint8_t *next_sep(const uint8_t *data, size_t size, size_t from)
{
    const uint8_t *p = size - from >= SEP_LEN ? memmem(data + from, size - from, sep, SEP_LEN)
                                              : NULL;
    return p ? p : data + size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static geo_fuzz_file_t files[1 + MAX_BLOCKS];
    static int opened;
    if (!opened) {
        for (int i = 0; i < 1 + MAX_BLOCKS; i++)
            geo_fuzz_file_open(&files[i], "fuzz-csv");
        opened = 1;
    }

    /* part 0: locations; parts 1..: blocks. The separator's newline ends the line
     * before it, as it would in a real file. */
    const char *blocks[MAX_BLOCKS + 1];
    size_t nparts = 0, pos = 0;
    for (;;) {
        const uint8_t *end = next_sep(data, size, pos);
        size_t len = (size_t)(end - (data + pos));
        if (end < data + size)
            len++; /* keep the newline */
        geo_fuzz_file_set(&files[nparts], data + pos, len);
        if (nparts > 0)
            blocks[nparts - 1] = files[nparts].path;
        nparts++;
        if (end == data + size || nparts == 1 + MAX_BLOCKS)
            break;
        pos = (size_t)(end - data) + SEP_LEN;
    }
    blocks[nparts - 1] = NULL;

    geo_source_t src = {.kind = GEO_SRC_CSV, .blocks = blocks, .locations = files[0].path};
    geo_fuzz_load_and_check(&src, 1);
    return 0;
}
