#pragma once

#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "zone/zone.h"

/*
 * Everything the query path reads, in one immutable generation: zones and the answers
 * prepared from the config. Built off the query threads by snapshot_build(), published
 * with snapshot_publish() (rcu_xchg_pointer), read under the liburcu-qsbr read side with
 * snapshot_current(), freed after a grace period.
 */
typedef struct snapshot {
    zone_set_t zones;
    uint8_t *identity;          /* NSID bytes and the id.server TXT string, or NULL */
    uint16_t identity_len;
    uint8_t *version;           /* version.bind TXT string, or NULL */
    uint16_t version_len;
    uint16_t udp_max_payload;
    uint64_t generation;
    time_t loaded_at;
    size_t nrecords;
} snapshot_t;

/* Build a snapshot from a validated config: loads every zone. On failure returns NULL
 * and the first error ("file:line: reason") in err; nothing is left allocated. */
snapshot_t *snapshot_build(const conf_t *conf, char *err, size_t errlen) ATTR_NONNULL(1, 2);

/* Free a snapshot that no reader can reach any more. NULL is a no-op. */
void snapshot_free(snapshot_t *s);

/* The published snapshot (call inside a QSBR read-side section: any registered, online
 * thread between quiescent states). */
const snapshot_t *snapshot_current(void);

/* Publish s and return the previous one; the caller waits for a grace period
 * (synchronize_rcu) before freeing it. */
snapshot_t *snapshot_publish(snapshot_t *s);
