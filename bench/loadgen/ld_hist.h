/* ld_hist: latency histogram of the load generator.
 *
 * Owns the recording of latencies in microseconds into log-linear buckets
 * (exact below 256 us, then 128 buckets per power of two, so any reported
 * value is within 0.4 % of a recorded one), merging of per-thread
 * histograms and the quantiles of the summary. Fixed size, no allocation:
 * recording is one increment. */
#ifndef LD_HIST_H
#define LD_HIST_H

#include <stdint.h>

#define LD_HIST_SUB_BITS 7u                       /* 128 buckets per octave */
#define LD_HIST_MAX_US   ((uint64_t)1 << 40)      /* larger values are clamped */
/* exact 0..255, then octaves 2^8 .. 2^39 */
#define LD_HIST_BUCKETS  (256u + 32u * 128u)

typedef struct ld_hist {
    uint64_t count;
    uint64_t min_us;           /* exact; UINT64_MAX while empty */
    uint64_t max_us;           /* exact */
    double sum_us;
    uint64_t bucket[LD_HIST_BUCKETS];
} ld_hist_t;

void ld_hist_init(ld_hist_t *h);

/* Records one latency of us microseconds. */
void ld_hist_add(ld_hist_t *h, uint64_t us);

/* Adds every recording of from to into. */
void ld_hist_merge(ld_hist_t *into, const ld_hist_t *from);

/* The q-quantile (0 < q <= 1) in microseconds: the value below or at which
 * a fraction q of the recordings lie (nearest rank), as the middle of its
 * bucket clamped to [min, max]; q = 1 gives the exact maximum. 0 when the
 * histogram is empty. */
double ld_hist_quantile(const ld_hist_t *h, double q);

/* Bucket index of a value, and the lowest value and width of a bucket
 * (exposed for the unit tests). */
uint32_t ld_hist_index(uint64_t us);
uint64_t ld_hist_bucket_low(uint32_t index);
uint64_t ld_hist_bucket_width(uint32_t index);

#endif
