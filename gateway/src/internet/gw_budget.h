/* gw_budget: what one device's credential may cost, decided in memory.
 *
 * Owns the gateway's per-device memory, consulted after a request's
 * credential was verified and before the database is asked (docs/SECURITY.md,
 * "One credential floods the database"):
 *  - a token bucket per device: `[limits] device_burst` requests at once,
 *    refilled at `device_rate` per minute; a request over it is answered
 *    "ratelimit <s>" (native) or "abuse" (dyndns2) without a statement;
 *  - the newest timestamp the database accepted (or refused as a replay)
 *    for the device and the generation of its secret: a signed request no
 *    newer is a replay, answered from memory (the database's marker only
 *    grows, so this is never wrong, only sometimes late);
 *  - devices the database answered "disabled" for, answered from memory
 *    for GW_BUDGET_DISABLED_TTL seconds, or until a change of any device's
 *    status is announced (gw_budget_forget_disabled, on the database's
 *    NOTIFY ddns_device_status), so that a restore takes effect at once.
 * One table per process, shared by every worker thread: a set-associative
 * cache of `[limits] device_memory` entries (GW_BUDGET_WAYS per set, the
 * least recently used of a set makes room), guarded by striped mutexes.
 * The table's memory is taken from the kernel as zero pages and only the
 * sets that are used become resident. Device ids are the verified ones
 * (CMN_DEVICE_ID_LEN characters), never a client's guess. */
#ifndef GW_BUDGET_H
#define GW_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#define GW_BUDGET_WAYS 8
/* The channel on which the database announces status changes
 * (db/functions/60_status_announce.sql). */
#define GW_BUDGET_CHANNEL "ddns_device_status"
#define GW_BUDGET_DISABLED_TTL 600

typedef struct gw_budget_conf {
    int rate;           /* requests per minute a device earns (0: no bucket) */
    int burst;          /* most requests at once */
    size_t entries;     /* devices remembered (rounded up to a power of two) */
} gw_budget_conf_t;

enum gw_budget_verdict {
    GW_BUDGET_ASK = 0,      /* go on to the database */
    GW_BUDGET_RATELIMIT,    /* over the bucket: *retry_after seconds */
    GW_BUDGET_REPLAY,       /* not newer than what was accepted */
    GW_BUDGET_DISABLED,     /* the device is revoked */
};

/* Creates the table, or takes the new rate and burst (the size is kept:
 * a restart changes it). GW_OK or GW_ENOMEM. */
int gw_budget_init(const gw_budget_conf_t *conf) __attribute__((warn_unused_result));
void gw_budget_shutdown(void);

/* The decision for one verified request of device (generation of the
 * secret it used; ts its timestamp, or -1 for a dyndns2 request, which has
 * none). Takes a token when the answer is GW_BUDGET_ASK. now_ms: the
 * monotonic clock (gw_clock_ms). Without a table: GW_BUDGET_ASK. */
int gw_budget_check(const char *device, uint32_t generation, int64_t ts, int64_t now_ms,
                    int *retry_after);

/* What the database answered: the request of ts was accepted (good,
 * nochg or ratelimit), or refused as a replay (its marker is at least ts),
 * or the device is disabled. */
void gw_budget_accepted(const char *device, uint32_t generation, int64_t ts, int64_t now_ms);
void gw_budget_disabled(const char *device, uint32_t generation, int64_t now_ms);

/* A device's status changed somewhere (or the announcements may have been
 * missed): no device is known disabled any more. */
void gw_budget_forget_disabled(void);

/* Answers given from memory since start, by verdict (index: enum
 * gw_budget_verdict; 0 unused), for /metrics. */
unsigned long long gw_budget_answers(int verdict);

#endif
