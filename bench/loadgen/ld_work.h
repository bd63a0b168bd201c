/* ld_work: what the load generator sends and how it reads the answers.
 *
 * Owns the workloads: the request bytes of each (signed updates built
 * by the firmware SDK, dyndns2 GET requests with HTTP Basic credentials,
 * plain GET requests), the addresses they carry (a fixed one per device for
 * nochg, a new one per request for change), and the classification of an
 * answer (HTTP framing by the SDK, then the result token). Pure functions:
 * no I/O, no clock, no randomness of their own. */
#ifndef LD_WORK_H
#define LD_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "ld_devices.h"

typedef enum ld_workload {
    LD_WL_NOCHG,     /* signed update, the device's fixed address */
    LD_WL_CHANGE,    /* signed update, a new address every time */
    LD_WL_DYNDNS2,   /* GET /nic/update?hostname=FQDN&myip=ADDR, Basic auth,
                        the device's fixed address as in nochg */
    LD_WL_DYNDNS2_CHANGE, /* the same with a new address every time */
    LD_WL_HELLO,     /* GET PATH, any 200 answer */
    LD_WL_REPLAY,    /* the same recorded bytes every time, read as an update's
                        answer (an attacker replaying one signed request) */
} ld_workload_t;

/* Result of one answer. The order is the order of the summary. */
typedef enum ld_result {
    LD_R_GOOD,
    LD_R_NOCHG,
    LD_R_BADREQUEST,
    LD_R_BADAUTH,
    LD_R_BADTIME,
    LD_R_DISABLED,
    LD_R_NOTFOUND,
    LD_R_REPLAY,
    LD_R_RATELIMIT,
    LD_R_911,
    LD_R_BADADDR,
    LD_R_MOVED,      /* 409 moved <addr>: the connection's address is not the
                        peer= of the request (signed workloads) */
    LD_R_NOHOST,     /* dyndns2 tokens from here */
    LD_R_NOTFQDN,
    LD_R_NUMHOST,
    LD_R_ABUSE,
    LD_R_BADAGENT,
    LD_R_DNSERR,
    LD_R_HELLO,      /* hello: a 200 answer */
    LD_R_COUNT
} ld_result_t;

/* Summary name of a result ("good", ..., "911", "hello"). */
const char *ld_result_name(ld_result_t r);

/* Whether the result is a success of the workload (good, nochg, hello). */
int ld_result_ok(ld_result_t r);

typedef enum ld_answer_kind {
    LD_ANS_INCOMPLETE,  /* read more */
    LD_ANS_VALID,       /* result is set */
    LD_ANS_INVALID,     /* a complete HTTP answer whose body is not an answer */
    LD_ANS_GARBAGE,     /* not HTTP/1.x with Content-Length */
} ld_answer_kind_t;

typedef struct ld_answer {
    ld_answer_kind_t kind;
    unsigned status;    /* HTTP status when complete (VALID, INVALID) */
    size_t total_len;   /* bytes of the answer when complete */
    ld_result_t result; /* when VALID */
} ld_answer_t;

/* Classifies the bytes received so far for a request of workload wl. */
void ld_work_parse(ld_workload_t wl, const uint8_t *raw, size_t len, ld_answer_t *a);

typedef struct ld_work {
    ld_workload_t wl;
    const char *host;       /* Host header value */
    const char *path;       /* hello: the request target */
    uint32_t change_base;   /* change: offset of the address sequence */
    const uint8_t *replay;  /* replay: the request's bytes */
    size_t replay_len;
} ld_work_t;

/* Longest request any workload builds. */
#define LD_REQUEST_MAX 1024

/* The address of device index for the nochg workload: 198.18.0.0/15 for
 * the first 131072 devices, then 10.0.0.0/8. out holds 16 bytes. */
void ld_addr_nochg(uint32_t index, char out[16]);

/* The address of the n-th change of device index: 100.64.0.0/10, a
 * different one than the (n-1)-th. out holds 16 bytes. */
void ld_addr_change(uint32_t base, uint32_t index, uint64_t n, char out[16]);

/* Builds the request for device d (NULL for hello) signed at ts with nonce
 * into out (at least LD_REQUEST_MAX bytes). The change workload advances
 * d->changes. Returns 0, or -1 when the SDK refuses the request. */
int ld_work_build(const ld_work_t *w, ld_device_t *d, uint64_t ts,
                  const uint8_t nonce[DDNS_NONCE_LEN], uint8_t *out, size_t *len);

#endif
