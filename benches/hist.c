/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The log-bucket latency histogram of kvs-bench: merging and quantiles.
 * The hot-path recording is inline in hist.h.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void hist_merge(hist *into, const hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

/* Largest value that falls into bucket i. */
static uint64_t bucket_upper(unsigned i)
{
    if (i < HIST_LINEAR)
        return i;
    unsigned j = i - HIST_LINEAR;
    unsigned msb = j / HIST_SUB + HIST_SUB_BITS + 1u;
    uint64_t sub = j % HIST_SUB;
    uint64_t width = (uint64_t)1 << (msb - HIST_SUB_BITS);
    uint64_t lower = ((uint64_t)1 << msb) + sub * width;
    return lower + (width - 1u);
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = bucket_upper(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

uint64_t hist_mean(const hist *h)
{
    return h->count ? h->sum / h->count : 0;
}
