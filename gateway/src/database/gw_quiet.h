/* gw_quiet: the poll that changes nothing, answered from memory, exactly.
 *
 * A signed poll whose addresses the device's names already hold is
 * answered nochg without a write (docs/PROTOCOL.md section 5.1); deciding
 * that still costs a read of PostgreSQL. This module remembers, per
 * device, the last such request the database answered quietly (its
 * "shape": key id, generation, addresses, names asked, User-Agent,
 * firmware; its timestamp) and answers the same shape again from memory,
 * but only after a barrier: one read-only statement per worker,
 * ddns_changes_since() (db/functions/25_changes.sql), started after the
 * request arrived, that returns every device whose names or credential
 * changed since the worker's previous barrier. What it returns is dropped
 * before any waiting request is answered, so a request is answered as the
 * database stood at a moment after it arrived: never nochg for an address
 * the database no longer holds, whichever gateway or operator changed it.
 * The barriers form one sequence for the whole process: one runs at a
 * time, on the pool of the worker that started it, and every request that
 * arrived, on any worker, while it ran shares the next one; so under load
 * one statement covers many polls.
 *
 * Exactness (docs/ARCHITECTURE.md, "The quiet cache"): an entry is stamped
 * with the oldest running transaction id (xmin) of the newest barrier
 * snapshot completed before its request was sent to the database: every
 * change with a smaller transaction id is in what the database answered.
 * A change the barriers report (device, transaction id) drops the
 * device's entry when the id is not smaller than the stamp, and is
 * remembered in the device's slot, so that an answer still on its way
 * when the change was reported is not stored. A barrier that cannot know
 * what changed (its first, or one older than the pruned change log) and a
 * provisioning batch drop everything. A barrier that fails answers nothing
 * from memory (its requests go to the database) and drops nothing: the
 * next one reads from the same snapshot.
 *
 * Owns the process-wide table (one mutex; slots in a fixed array, a few
 * probes per device, the first probe's replaced when they are all taken),
 * the sequence of barriers (started on the worker of the request that
 * found none running, or right after the previous one when requests wait;
 * the workers whose requests it covered are woken through their loops),
 * the idle barrier once a second that keeps the snapshot recent, and the
 * pruning of the change log every minute (both on the keeper's worker).
 * gw_apply asks and teaches it. */
#ifndef GW_QUIET_H
#define GW_QUIET_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "gw_db.h"

typedef struct gw_quiet gw_quiet_t;

/* The table, for capacity devices (rounded up to a power of two); 0: no
 * cache, every poll reads PostgreSQL. GW_OK, GW_EINVAL (called twice) or
 * GW_ENOMEM. */
int gw_quiet_init(size_t capacity) __attribute__((warn_unused_result));
/* Frees the table (after every worker's gw_quiet_free). */
void gw_quiet_shutdown(void);
/* Devices whose answer is in memory (for /metrics). Any thread. */
size_t gw_quiet_entries(void);

/* A worker's part: its waiting requests, and the barriers it runs on its
 * loop and pool when it is the one to start the next; keeper: this one
 * also runs the idle barrier and prunes the change log. Call before the
 * worker's loop runs. NULL when the table is off or on ENOMEM. */
gw_quiet_t *gw_quiet_new(struct event_base *base, gw_db_t *db, int keeper);
/* Answers every waiting request GW_ECLOSED and frees q. */
void gw_quiet_free(gw_quiet_t *q);

/* What an answer in memory is for. shape is compared byte for byte. */
typedef struct gw_quiet_key {
    const char *device;             /* canonical id, 12 hex digits */
    const unsigned char *shape;
    size_t shape_len;
    int64_t ts;                     /* the request's timestamp (not dyn) */
    int dyn;                        /* no timestamp: dyndns2 */
} gw_quiet_key_t;

/* A request waiting for a barrier; the caller's storage. */
typedef struct gw_quiet_wait {
    struct gw_quiet_wait *next;     /* gw_quiet's */
    uint64_t after;                 /* gw_quiet's: answered by a barrier started later */
    unsigned nrows;                 /* gw_quiet's: the answer, once it is known */
    gw_quiet_key_t key;             /* must live until done */
    /* Called once, on the loop: err GW_OK with nrows > 0, the request is
     * answered nochg for nrows names; nrows 0, it is not (ask the
     * database); err GW_ECLOSED, the worker is stopping. */
    void (*done)(struct gw_quiet_wait *w, int err, unsigned nrows);
} gw_quiet_wait_t;

/* What a request sent to the database carries so that its quiet answer
 * may be remembered (gw_quiet_ticket, gw_quiet_learn). */
typedef struct gw_quiet_ticket {
    uint32_t slot, gen;
    uint64_t stamp, flushes;
    int ok;
} gw_quiet_ticket_t;

/* Applies the answer of a barrier, one line (db/functions/25_changes.sql,
 * ddns_changes_since()): "SNAPSHOT CLOCK t|f [DEVICE XID]...". The
 * entries of the devices it names are dropped (all of them for 'f' or a
 * device '*'), and its snapshot is the one the next barrier reads from.
 * GW_OK; GW_EDB for a line of another form, which drops every entry (what
 * changed is unknown) and keeps the previous snapshot; GW_ENOMEM. The
 * barriers call it; any thread. */
int gw_quiet_changes(const char *line) __attribute__((warn_unused_result));
/* 1 when the request may be answered from memory (an entry of the same
 * shape, the timestamp not older than its): pass it to gw_quiet_wait. */
int gw_quiet_candidate(const gw_quiet_key_t *k);
/* Queues w, on q's worker, for the next barrier (started now if none
 * runs). */
void gw_quiet_wait(gw_quiet_t *q, gw_quiet_wait_t *w);
/* Before the request is sent to the database. */
void gw_quiet_ticket(const gw_quiet_key_t *k, gw_quiet_ticket_t *t);
/* The database answered the request of t nochg without a write, for
 * nrows names: remembered unless a change of the device was reported
 * since t was taken. */
void gw_quiet_learn(const gw_quiet_ticket_t *t, const gw_quiet_key_t *k, unsigned nrows);

#endif
