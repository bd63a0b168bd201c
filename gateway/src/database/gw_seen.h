/* gw_seen: "last seen" of the polls that wrote nothing, written later.
 *
 * A signed poll whose addresses the device's names already hold is
 * answered nochg without a database write (docs/PROTOCOL.md section 5.1).
 * What that write used to record for operations (the time of the poll and
 * the address it came from) is noted here instead: one entry per device,
 * the latest poll winning, from any worker thread. Every [database]
 * seen_interval seconds, when many devices are waiting, and once more when
 * the gateway stops, the main loop takes the entries, sorts them by device
 * id and sends them in chunks to ddns_record_seen() (db/functions/
 * 20_update.sql), so that a device's row is written at most once per
 * interval however often it polls. A chunk the database refuses is kept
 * for the next round (an entry noted meanwhile wins if newer).
 *
 * Owns the process-wide table (guarded by one mutex) and the writer on the
 * main loop; gw_apply notes, gw_main starts and stops. */
#ifndef GW_SEEN_H
#define GW_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "gw_db.h"

/* Entries waiting that make the writer start before its interval ends. */
#define GW_SEEN_EARLY 65536
/* Devices per ddns_record_seen() statement. */
#define GW_SEEN_CHUNK 1000

/* Starts the writer on base, sending through db every interval_s seconds.
 * GW_OK, or GW_ENOMEM. Before it (and after gw_seen_stop) notes are kept
 * and written by the next writer. */
int gw_seen_start(struct event_base *base, gw_db_t *db, int interval_s)
    __attribute__((warn_unused_result));

/* Notes a poll of device (canonical id) from source (address text) at
 * now_s, seconds since the epoch. Any thread. A note that finds no memory
 * is dropped and logged (once per interval). */
void gw_seen_note(const char *device, const char *source, double now_s);

/* Writes what is waiting now and calls done(arg) on the main loop once the
 * database answered (at once when nothing waits); the writer then stops.
 * For the end of the process. */
void gw_seen_stop(void (*done)(void *), void *arg);

/* Entries waiting to be written (any thread). */
size_t gw_seen_pending(void);

/* Frees the table (after gw_seen_stop's done, or when never started). */
void gw_seen_free(void);

#endif
