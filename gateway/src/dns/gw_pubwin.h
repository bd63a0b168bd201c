/* gw_pubwin: how much one zone's publisher sends at once.
 *
 * A zone's changes go out as RFC 2136 UPDATE messages of up to `limit`
 * outbox rows, up to GW_PUBWIN_MAX of them in flight on one connection, so
 * that the DNS server finds the next message queued when it finishes one.
 * When the server refuses a message of several changes (one bad change
 * fails the whole message, and a server may apply queued messages as one),
 * the window narrows to one message and the rows per message halve until
 * the refused change is alone; that change is then set aside and the rest
 * published. Every confirmed message doubles the rows again, up to the
 * batch size. Pure functions over a small state: no I/O, no clock. */
#ifndef GW_PUBWIN_H
#define GW_PUBWIN_H

#include <stddef.h>

/* UPDATE messages of a zone in flight at once. */
#define GW_PUBWIN_MAX 2

typedef struct gw_pubwin {
    size_t batch;       /* rows per message when all is well */
    size_t limit;       /* rows per message now: 1 .. batch */
} gw_pubwin_t;

/* A failed message of a run: the changes it carried, and whether the server
 * answered it, validly signed, with an error (rather than not at all). */
typedef struct gw_pubwin_failure {
    size_t sent;
    int refused;
} gw_pubwin_failure_t;

void gw_pubwin_init(gw_pubwin_t *w, size_t batch);
/* Messages that may be in flight: GW_PUBWIN_MAX, or 1 while a refused
 * change is sought. */
size_t gw_pubwin_window(const gw_pubwin_t *w);
/* A message was confirmed: the rows per message double, up to batch. */
void gw_pubwin_confirmed(gw_pubwin_t *w);
/* Rows set aside come due: they are tried one row at a time first. */
void gw_pubwin_retry_alone(gw_pubwin_t *w);
/* The run ended with the nf failed messages f. Sets aside[i] when f[i] was
 * a refused message of one change (its rows are to be set aside). Returns
 * 1 when every failure was the refusal of a message of several changes:
 * the rows per message are halved and the zone is tried again at once, to
 * find the change refused; 0 when the zone is to wait (backoff) first. */
int gw_pubwin_failed(gw_pubwin_t *w, const gw_pubwin_failure_t *f, size_t nf, int *aside);

#endif
