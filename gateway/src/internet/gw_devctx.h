/* gw_devctx: what the device endpoints of one worker read.
 *
 * Owns nothing but the one place where a worker's view is kept for both
 * device protocols (gw_update, gw_dyndns): the configuration, the worker's
 * client of the key process, its database pool, its barriers of the
 * answers kept in memory (gw_quiet) and the firmware policy.
 * The worker embeds it and switches the policy on its own loop at a
 * reload; the endpoints only read it. Plain data, no functions. */
#ifndef GW_DEVCTX_H
#define GW_DEVCTX_H

#include "gw_config.h"
#include "gw_db.h"
#include "gw_keycli.h"
#include "gw_policy.h"
#include "gw_quiet.h"

typedef struct gw_devctx {
    const gw_config_t *cfg;
    gw_keycli_t *keys;          /* the worker's questions to the key process */
    gw_db_t *db;
    gw_quiet_t *quiet;          /* NULL: [database] quiet_cache = 0 */
    const gw_policy_t *policy;
} gw_devctx_t;

#endif
