/* gw_sql: a parameterised statement being put together (see gw_sql.h). */
#include "gw_sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gw_err.h"

void gw_sql_reset(gw_sql_t *q)
{
    q->np = 0;
    q->len = 0;
    q->text[0] = '\0';
    q->err = GW_OK;
}

static int gw_sql_vparam(gw_sql_t *q, const char *fmt, va_list ap)
{
    if (q->np == GW_SQL_NPARAMS) {
        q->err = GW_ENOSPC;
        return 0;
    }
    int n = q->np;
    int w = vsnprintf(q->params[n], GW_SQL_PARAM_LEN, fmt, ap);
    if (w < 0 || w >= GW_SQL_PARAM_LEN) {
        q->err = GW_ENOSPC;
        return 0;
    }
    q->pv[n] = q->params[n];
    q->np++;
    return n + 1;
}

int gw_sql_param(gw_sql_t *q, const char *v)
{
    if (v != NULL)
        return gw_sql_paramf(q, "%s", v);
    if (q->np == GW_SQL_NPARAMS) {
        q->err = GW_ENOSPC;
        return 0;
    }
    q->pv[q->np++] = NULL;
    return q->np;
}

int gw_sql_paramf(gw_sql_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = gw_sql_vparam(q, fmt, ap);
    va_end(ap);
    return n;
}

int gw_sql_addf(gw_sql_t *q, const char *fmt, ...)
{
    if (q->err != GW_OK)
        return q->err;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(q->text + q->len, sizeof q->text - q->len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof q->text - q->len) {
        q->text[q->len] = '\0';
        q->err = GW_ENOSPC;
        return q->err;
    }
    q->len += (size_t)w;
    return GW_OK;
}

int gw_sql_err(const gw_sql_t *q)
{
    return q->err;
}
