/* ld_hist: latency histogram (see ld_hist.h). */
#include "ld_hist.h"

#include <math.h>
#include <string.h>

#define SUB (1u << LD_HIST_SUB_BITS)   /* 128 */

void ld_hist_init(ld_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min_us = UINT64_MAX;
}

uint32_t ld_hist_index(uint64_t us)
{
    if (us >= LD_HIST_MAX_US)
        us = LD_HIST_MAX_US - 1;
    if (us < 2u * SUB)
        return (uint32_t)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);   /* >= 8 */
    unsigned shift = e - LD_HIST_SUB_BITS;
    uint64_t m = us >> shift;                          /* 128 .. 255 */
    return (uint32_t)(2u * SUB + (e - 8u) * SUB + (m - SUB));
}

uint64_t ld_hist_bucket_low(uint32_t index)
{
    if (index < 2u * SUB)
        return index;
    uint32_t k = index - 2u * SUB;
    unsigned e = 8u + k / SUB;
    uint64_t m = SUB + k % SUB;
    return m << (e - LD_HIST_SUB_BITS);
}

uint64_t ld_hist_bucket_width(uint32_t index)
{
    if (index < 2u * SUB)
        return 1;
    unsigned e = 8u + (index - 2u * SUB) / SUB;
    return (uint64_t)1 << (e - LD_HIST_SUB_BITS);
}

void ld_hist_add(ld_hist_t *h, uint64_t us)
{
    h->bucket[ld_hist_index(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
}

void ld_hist_merge(ld_hist_t *into, const ld_hist_t *from)
{
    for (uint32_t i = 0; i < LD_HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
    if (from->min_us < into->min_us)
        into->min_us = from->min_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

double ld_hist_quantile(const ld_hist_t *h, double q)
{
    if (h->count == 0)
        return 0.0;
    if (q >= 1.0)
        return (double)h->max_us;
    double r = ceil(q * (double)h->count);
    uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LD_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            double v = (double)ld_hist_bucket_low(i);
            if (ld_hist_bucket_width(i) > 1)
                v += (double)(ld_hist_bucket_width(i) - 1) / 2.0;
            if (v < (double)h->min_us)
                v = (double)h->min_us;
            if (v > (double)h->max_us)
                v = (double)h->max_us;
            return v;
        }
    }
    return (double)h->max_us;
}
