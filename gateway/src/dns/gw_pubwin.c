/* gw_pubwin: the send window of a zone's publisher (see gw_pubwin.h). */
#include "gw_pubwin.h"

void gw_pubwin_init(gw_pubwin_t *w, size_t batch)
{
    w->batch = batch > 0 ? batch : 1;
    w->limit = w->batch;
}

size_t gw_pubwin_window(const gw_pubwin_t *w)
{
    return w->limit < w->batch ? 1 : GW_PUBWIN_MAX;
}

void gw_pubwin_confirmed(gw_pubwin_t *w)
{
    if (w->limit < w->batch)
        w->limit = w->limit * 2 < w->batch ? w->limit * 2 : w->batch;
}

void gw_pubwin_retry_alone(gw_pubwin_t *w)
{
    w->limit = 1;
}

int gw_pubwin_failed(gw_pubwin_t *w, const gw_pubwin_failure_t *f, size_t nf, int *aside)
{
    size_t halve = 0;
    int other = 0;

    for (size_t i = 0; i < nf; i++) {
        aside[i] = 0;
        if (f[i].refused && f[i].sent > 1) {
            if (halve == 0 || f[i].sent / 2 < halve)
                halve = f[i].sent / 2;
        } else {
            aside[i] = f[i].refused;
            other = 1;
        }
    }
    if (halve > 0)
        w->limit = halve;
    return halve > 0 && !other;
}
