/* gw_keyproc: the key process, the only process of the gateway that holds
 * the master keys (docs/SECURITY.md, "Processes").
 *
 * Owns the fork of the key process, its loop, and the messages the other
 * processes send it over their socketpairs (one per worker thread, one for
 * the main thread). The key process loads the master keys itself, keeps
 * them in cmn_secmem pages, and answers two questions per message: "is sig
 * the signature of this string to sign for (device, kid, generation)?" and
 * "is this the dyndns2 password of (device, kid, generation)?", each with
 * one yes or no. Nothing else leaves it: no key, no secret, no derivation.
 * The main thread's socket also asks it to (re)load the key directory or
 * the keys of a PKCS#11 token (opened in the key process itself, after the
 * fork) and for the key ids it holds.
 *
 * Messages are frames in host byte order (both ends are the same program
 * on the same machine): a gw_kp_req_t, then data_len bytes. The answer is
 * a gw_kp_ans_t with the request's id, then data_len bytes (text for the
 * main thread's questions, none for a worker's). A worker writes every
 * request of one event-loop pass with one write; the key process reads
 * whatever is there, answers every complete frame and writes the answers
 * of one read with one write.
 *
 * The key process leaves when its parent closes the main socket or dies
 * (PR_SET_PDEATHSIG), and on SIGTERM/SIGINT. */
#ifndef GW_KEYPROC_H
#define GW_KEYPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmn_key.h"
#include "cmn_mac.h"

enum gw_kp_op {
    GW_KP_SIGNATURE = 1,    /* data: the string to sign; mac: the signature */
    GW_KP_PASSWORD = 2,     /* mac: the 32 bytes of a dyndns2 password */
    GW_KP_LOAD = 3,         /* data: the key directory; answer: the key ids */
    GW_KP_KIDS = 4,         /* answer: the key ids, one blank between them */
    GW_KP_LOAD_TOKEN = 5,   /* data: a PKCS#11 URI; answer: the key ids */
};

typedef struct gw_kp_req {
    uint32_t size;          /* of the frame: this header and the data */
    uint32_t id;            /* chosen by the sender, returned in the answer */
    uint8_t op;             /* enum gw_kp_op */
    uint8_t kid_len;
    uint16_t data_len;
    uint32_t generation;    /* of the device secret asked about */
    char kid[CMN_KID_MAX];
    char device_id[CMN_DEVICE_ID_LEN];
    uint8_t mac[32];
} gw_kp_req_t;

typedef struct gw_kp_ans {
    uint32_t size;          /* of the frame: this header and the data */
    uint32_t id;
    int32_t result;         /* 1 yes, 0 no; LOAD, KIDS: the key count, or -1 */
    uint32_t data_len;
} gw_kp_ans_t;

/* Largest frame either way. */
#define GW_KP_FRAME_MAX 8192
/* Most worker sockets. */
#define GW_KP_WORKERS_MAX 64

typedef struct gw_keyproc {
    pid_t pid;
    int main_fd;            /* the main thread's socket */
    int nworkers;
    int worker_fd[GW_KP_WORKERS_MAX]; /* one per worker thread; closed by
                                     * gw_keyproc_stop() */
} gw_keyproc_t;

/* Forks the key process with nworkers + 1 socketpairs. In the parent
 * returns GW_OK with kp filled; the child runs in_child(arg) first (to
 * free what it inherited and does not need), then serves and never
 * returns (it exits with 0 when its parent closes the main socket, 1 when
 * it could not set itself up). Must run before any thread is created. */
int gw_keyproc_start(gw_keyproc_t *kp, int nworkers, void (*in_child)(void *), void *arg)
    __attribute__((warn_unused_result));

/* One question of the main thread, blocking (key loading takes
 * milliseconds): LOAD dir, LOAD_TOKEN uri or KIDS. Returns the key count, or -1 with the
 * key process's reason in text (the key ids on success). */
int gw_keyproc_ask(gw_keyproc_t *kp, enum gw_kp_op op, const char *dir, char *text,
                   size_t textlen);

/* Closes the main socket (the key process leaves) and waits for it. */
void gw_keyproc_stop(gw_keyproc_t *kp);

/* The answer to one worker question with keys (the key process's loop,
 * and the gateway without a key process): 1 yes, 0 no. */
int gw_keyproc_decide(const cmn_keyset_t *keys, const gw_kp_req_t *rq, const uint8_t *data);

#endif
