/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A fixed log-bucket latency histogram for kvs-bench.
 *
 * Values are nanoseconds. Below 64 every value has its own bucket; above,
 * each power of two is split into 32 linear sub-buckets, so a percentile is
 * reported within 1/32 (about 3%) of the true value, with no allocation and
 * no sorting on the hot path. Each thread fills its own histogram; they are
 * merged once the run is over. The exact minimum and maximum are kept beside
 * the buckets.
 *
 * Thread safety: a histogram belongs to one thread at a time.
 */
#ifndef KVS_BENCH_HIST_H
#define KVS_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS) /* sub-buckets per power of two */
#define HIST_LINEAR (2u * HIST_SUB)    /* values below this are exact */
#define HIST_BUCKETS (HIST_LINEAR + (64u - HIST_SUB_BITS - 1u) * HIST_SUB)

typedef struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t bucket[HIST_BUCKETS];
} hist;

/* Index of the bucket that holds v. */
static inline unsigned hist_index(uint64_t v)
{
    if (v < HIST_LINEAR)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned sub = (unsigned)(v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1u);
    return HIST_LINEAR + (msb - HIST_SUB_BITS - 1u) * HIST_SUB + sub;
}

/* Record one value. */
static inline void hist_add(hist *h, uint64_t v)
{
    h->bucket[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* Empty the histogram. */
void hist_init(hist *h);

/* Add every value recorded in from to into. */
void hist_merge(hist *into, const hist *from);

/* The value at quantile q (0 < q <= 1): the upper edge of the bucket that
   holds it, clamped to the exact maximum. 0 for an empty histogram. */
uint64_t hist_quantile(const hist *h, double q);

/* Mean of the recorded values; 0 for an empty histogram. */
uint64_t hist_mean(const hist *h);

#endif
