/* gw_keycli: a worker thread's questions to the key process.
 *
 * Owns one worker's end of its socketpair with the key process
 * (gw_keyproc): the requests of one event-loop pass leave together in one
 * write, the answers come back in the order asked and each runs its
 * callback on the worker's loop. Without a key process ([keys]
 * separate_process = no) the same calls decide at once with the keys given,
 * in the calling thread, and the callback runs before the call returns.
 *
 * A callback gets 1 (yes), 0 (no) or -1 (no answer: the key process is
 * gone; the request is answered 911). Callbacks may run before the asking
 * call returns (inline), so the caller must not touch what the callback
 * frees after asking. */
#ifndef GW_KEYCLI_H
#define GW_KEYCLI_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "cmn_key.h"

typedef struct gw_keycli gw_keycli_t;
typedef void (*gw_keycli_cb)(void *arg, int answer);

/* A client on fd (a worker's end of gw_keyproc_t; not closed by the
 * client), on base. NULL when out of memory. */
gw_keycli_t *gw_keycli_new(struct event_base *base, int fd);
/* A client that decides in this process with keys (may change later,
 * gw_keycli_set_keys). */
gw_keycli_t *gw_keycli_new_inline(const cmn_keyset_t *keys);
/* The keys an inline client uses from now on (on the worker's loop);
 * ignored by a client of the key process. */
void gw_keycli_set_keys(gw_keycli_t *c, const cmn_keyset_t *keys);
/* Runs every waiting callback with -1, then frees. */
void gw_keycli_free(gw_keycli_t *c);

/* Is sig the signature of sts for (device_id, kid, generation)? */
int gw_keycli_signature(gw_keycli_t *c, const char *kid, size_t kidlen, uint32_t generation,
                        const char *device_id, const uint8_t *sts, size_t sts_len,
                        const uint8_t sig[32], gw_keycli_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Is password the dyndns2 password of (device_id, kid, generation)? */
int gw_keycli_password(gw_keycli_t *c, const char *kid, size_t kidlen, uint32_t generation,
                       const char *device_id, const uint8_t password[CMN_SECRET_LEN],
                       gw_keycli_cb cb, void *arg) __attribute__((warn_unused_result));

/* Questions sent and not answered yet. */
size_t gw_keycli_waiting(const gw_keycli_t *c);

#endif
