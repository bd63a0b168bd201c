/* gw_pubproc: the publisher process, the only process of the gateway that
 * reads and holds the zones' TSIG secrets (docs/SECURITY.md, "Processes").
 *
 * Owns the fork of the publisher process and the questions the gateway's
 * main thread asks it over their socketpair. The publisher process loads
 * the configuration file itself, TSIG secret files included, checks every
 * zone's TSIG key and runs the DNS publisher (gw_publish: outbox, RFC 2136
 * UPDATE with TSIG) with its own database connection. Its health and the
 * publish counters are in memory shared with the gateway (gw_publish_health,
 * gw_metrics_share), which serves /readyz and /metrics.
 *
 * Questions, one line each; each answer is "ok" or "error" and the
 * problems, one per line, ended by a NUL byte:
 *   check  load the configuration file again and check it (kept pending);
 *   apply  switch to the pending zones' settings (primary, TSIG key, TTL);
 *   abort  drop the pending configuration.
 * A reload is all or nothing: the gateway asks "check" with the rest of its
 * checks and "apply" or "abort" at the end.
 *
 * The publisher process leaves when the gateway closes the socket (after
 * its current batch) or dies (PR_SET_PDEATHSIG); it ignores SIGINT, SIGTERM
 * and SIGHUP (the gateway drives it). */
#ifndef GW_PUBPROC_H
#define GW_PUBPROC_H

#include <stddef.h>
#include <sys/types.h>

#include "gw_config.h"
#include "gw_publish.h"

typedef struct gw_pubproc {
    pid_t pid;                      /* <= 0: none */
    int fd;
    gw_publish_health_t *health;    /* shared with the publisher process */
} gw_pubproc_t;

/* Forks the publisher process for the configuration file path. Returns
 * GW_OK at once (the first answer says whether it started: see
 * gw_pubproc_started()). Must run before any thread is created and before
 * anything secret is loaded: the child inherits the memory. */
int gw_pubproc_start(gw_pubproc_t *pp, const char *path) __attribute__((warn_unused_result));
/* Waits for the publisher process's first answer: GW_OK once it runs, or
 * GW_ECONFIG with its problems appended to msgs. */
int gw_pubproc_started(gw_pubproc_t *pp, gw_config_msgs_t *msgs);
/* One question ("check", "apply", "abort"): GW_OK, or GW_ECONFIG with the
 * problems appended to msgs (or GW_EIO: no answer, also in msgs). */
int gw_pubproc_ask(gw_pubproc_t *pp, const char *question, gw_config_msgs_t *msgs);
/* Closes the socket: the publisher finishes its batch and leaves; waits. */
void gw_pubproc_stop(gw_pubproc_t *pp);

#endif
