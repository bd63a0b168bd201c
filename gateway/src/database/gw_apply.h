/* gw_apply: one device request applied in the database, for /v1/update and
 * /nic/update alike.
 *
 * Owns the statement (ddns_apply_batch(), so that the requests of both
 * protocols share batches: gw_db batches the jobs of one statement), the
 * order of its parameters, the decoding of the request's rows into a typed
 * answer (refusing any row it does not expect), the rule that a request
 * naming no address publishes the address its connection comes from, and
 * the wake-up of the DNS publishers once a change is committed, the note
 * (gw_seen) of a poll answered without a write, and the choice between the
 * database and the answers kept in memory (gw_quiet) for a request whose
 * addresses are its own. The handlers only translate
 * their protocol into a gw_apply_req_t and the answer into their reply. */
#ifndef GW_APPLY_H
#define GW_APPLY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_db.h"
#include "gw_quiet.h"

/* What the database decided. The first five are about one name; the last
 * three about the whole request (device_level: no name was looked at). */
typedef enum gw_apply_result {
    GW_APPLY_GOOD,          /* an address of the name changed */
    GW_APPLY_NOCHG,         /* the name already had the addresses */
    GW_APPLY_RATELIMIT,     /* a change held back by min_change_interval */
    GW_APPLY_NOHOST,        /* no such name; device-level: the device has no name */
    GW_APPLY_FOREIGN,       /* the name is another device's */
    GW_APPLY_UNKNOWN,       /* no such device under that key id and generation (or
                               a dyndns2 request of a device kept off dyndns2) */
    GW_APPLY_DISABLED,      /* the device is revoked */
    GW_APPLY_REPLAY,        /* the timestamp is not newer than the last accepted one */
} gw_apply_result_t;

/* One device request, as text (NULL: SQL NULL). */
typedef struct gw_apply_req {
    const char *device, *kid;   /* the authenticated device and its key id */
    uint32_t generation;        /* the generation of its secret */
    const char *ts;             /* NULL: no replay token (dyndns2) */
    const char *ipv4, *ipv6;    /* NULL: the name keeps that address; both NULL:
                                   the connection's address (source) */
    const char *source;         /* the client's address (gw_addr_text) */
    const char *fqdns;          /* a text[] literal of names, NULL: every name of the device */
    int offline;                /* take the names' addresses away */
    int min_interval;           /* seconds between two changes */
    const char *agent;          /* printable User-Agent, NULL when none */
    const char *firmware;       /* the User-Agent's firmware version, or NULL */
    int own;                    /* the request's addresses are its own (signed ones it
                                   names, or dyndns2): a poll that changes nothing may
                                   write nothing (docs/PROTOCOL.md section 5.1); 0: they
                                   are the connection's, unsigned, and it is recorded */
} gw_apply_req_t;

typedef struct gw_apply_answer {
    int device_level;           /* result is for the whole request, n is 0 */
    gw_apply_result_t result;   /* device_level only */
    size_t n;                   /* names, in the order asked (or name_id order) */
    const gw_apply_result_t *name;
    size_t ngood, nratelimit;
    int retry_after;            /* the longest wait of a rate-limited name, 1 to 86400 */
    const char *ipv4, *ipv6;    /* the addresses the request published ("": none) */
    int unwritten;              /* nochg, answered without a write (gw_seen noted it) */
} gw_apply_answer_t;

/* a is NULL unless err is GW_OK; it lives until the callback returns. An
 * answer the database should not give is logged and passed as GW_EDB. */
typedef void (*gw_apply_cb)(void *arg, int err, const gw_apply_answer_t *a);

/* One request on its way: the caller's storage (inside its own job, so that
 * a request costs no allocation here), untouched after cb was called. */
struct gw_apply_kept;
typedef struct gw_apply_job {
    gw_db_t *db;
    gw_apply_cb cb;
    void *arg;
    int timeout_s;
    gw_quiet_wait_t wait;       /* its key is the request's shape (in kept) */
    gw_quiet_ticket_t ticket;
    struct gw_apply_kept *kept; /* a request gw_quiet may answer: its parameters */
    char ipv4[INET_ADDRSTRLEN];
    char ipv6[INET6_ADDRSTRLEN];
    char generation[12];
    char device[16];            /* for gw_seen */
    char source[INET6_ADDRSTRLEN];
} gw_apply_job_t;

/* The names of the answer whose result is r. */
size_t gw_apply_count(const gw_apply_answer_t *a, gw_apply_result_t r);

/* Queues the request with a deadline of timeout_s; job must live until cb
 * runs. A request whose addresses are its own (own, not offline) is
 * answered from quiet's memory when an answer of its shape is kept and
 * survives the next barrier; else, and with quiet NULL, by the database.
 * From the call on, cb may run at any time, even before gw_apply returns;
 * when gw_apply fails (as gw_db_query) it is not called. */
int gw_apply(gw_db_t *db, gw_quiet_t *quiet, const gw_apply_req_t *rq, int timeout_s,
             gw_apply_job_t *job, gw_apply_cb cb, void *arg)
    __attribute__((warn_unused_result));

#endif
