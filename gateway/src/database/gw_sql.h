/* gw_sql: one parameterised statement being put together.
 *
 * Owns the text parameters ($1, $2, ...) of a statement and the text of the
 * statement itself, each in a fixed buffer, and the rule that nothing is
 * ever dropped: a parameter, a fragment or a statement that does not fit
 * makes the statement fail (gw_sql_err() is GW_ENOSPC from then on)
 * instead of running without the condition it would have carried. Values
 * always travel as parameters; only fixed SQL text written by the gateway
 * (and the numbers of parameters) is appended to the text. Pure; no I/O. */
#ifndef GW_SQL_H
#define GW_SQL_H

#include <stddef.h>

#define GW_SQL_NPARAMS 24
#define GW_SQL_PARAM_LEN 512
#define GW_SQL_TEXT_LEN 16384

typedef struct gw_sql {
    char params[GW_SQL_NPARAMS][GW_SQL_PARAM_LEN];
    const char *pv[GW_SQL_NPARAMS];     /* NULL: SQL NULL */
    int np;
    char text[GW_SQL_TEXT_LEN];
    size_t len;
    int err;                            /* GW_OK, or the first failure */
} gw_sql_t;

/* Empties q (no parameters, no text, no error). */
void gw_sql_reset(gw_sql_t *q);
/* Adds a text parameter (NULL: SQL NULL). Returns its number n (for "$n"),
 * or 0 with gw_sql_err() GW_ENOSPC when there is no room for it. */
int gw_sql_param(gw_sql_t *q, const char *v);
int gw_sql_paramf(gw_sql_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends formatted text to the statement; GW_OK or GW_ENOSPC. */
int gw_sql_addf(gw_sql_t *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* GW_OK, or the first failure since the last reset. */
int gw_sql_err(const gw_sql_t *q);

#endif
