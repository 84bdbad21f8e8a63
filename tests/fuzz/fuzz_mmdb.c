/*
 * libFuzzer target for the MaxMind DB loader (geo_db_load() with GEO_SRC_MMDB sources).
 * The input is the whole .mmdb file. libmaxminddb opens files by path, so it is written to
 * an in-memory file (memfd) opened through /proc/self/fd. The file is loaded as two
 * sources in one call, first with the MaxMind City/Country schema, then with the flat
 * ip-location-db schema, so both field decoders and the precedence overlay run on every
 * input; the result is checked by geo_fuzz_load_and_check() (geo_check.h).
 */
#include <stdint.h>

#include "geo_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static geo_fuzz_file_t file;
    static int opened;
    if (!opened) {
        geo_fuzz_file_open(&file, "fuzz-mmdb");
        opened = 1;
    }
    geo_fuzz_file_set(&file, data, size);
    geo_source_t srcs[2] = {
        {.kind = GEO_SRC_MMDB, .path = file.path, .fields = &geo_fields_maxmind},
        {.kind = GEO_SRC_MMDB, .path = file.path, .fields = &geo_fields_flat},
    };
    geo_fuzz_load_and_check(srcs, 2);
    return 0;
}
