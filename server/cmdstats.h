/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-command figures: INFO commandstats (calls, time, rejected and
 * failed calls) and INFO latencystats (p50, p99, p99.9), as Redis 7
 * writes them, reset by CONFIG RESETSTAT.
 *
 * Each worker keeps its own table with one entry ("slot") per command and
 * per subcommand (slot = command index * CMDSTAT_SUBS + 0 for the command
 * itself, 1 + i for its subcommand i), and is the only thread that writes
 * it: recording a call is a few plain loads and stores (relaxed atomics,
 * which INFO reads from another thread) on memory no other worker writes;
 * no lock, no read-modify-write instruction. INFO sums the workers'
 * tables. CONFIG RESETSTAT, under the server's stats_lock, copies each
 * worker's totals into that worker's base, and INFO reports the
 * difference, as server.h does for the other counters.
 *
 * Time is counted in ticks of the cheapest safe clock: the TSC (rdtsc,
 * about 10 ns) on x86-64 when the kernel keeps its own time with it (so it
 * is constant and agrees across cores), else CLOCK_MONOTONIC in ns (about
 * 25 ns). INFO turns ticks into time by the rate measured between startup
 * and that moment.
 *
 * The latency histogram of a slot buckets ticks as HdrHistogram does with
 * 2 significant digits, the precision of Redis's latency histograms: a
 * percentile is the highest value of its bucket, within 1% of the true
 * one. It holds CMDSTAT_BUCKETS counters (30 KiB), allocated at the slot's
 * first call on that worker, so only commands in use cost memory.
 */
#ifndef KVS_SERVER_CMDSTATS_H
#define KVS_SERVER_CMDSTATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "kvs/kvs.h"

struct server;

/* Slots per command: the command and up to CMDSTAT_SUBS - 1 subcommands. */
#define CMDSTAT_SUBS 8

/* The histogram: 256 sub-buckets per power of two (the lower half of each
   shared with the previous one), values 1 to 2^36 - 1 ticks (23 s at
   3 GHz; longer calls count as that). */
#define CMDSTAT_HALF_BITS 7
#define CMDSTAT_HALF (1u << CMDSTAT_HALF_BITS)
#define CMDSTAT_MAX_BITS 36
#define CMDSTAT_BUCKETS ((CMDSTAT_MAX_BITS - CMDSTAT_HALF_BITS) * CMDSTAT_HALF)

/* One slot's figures on one worker. Written by that worker only. */
struct cmdstat {
    _Atomic uint64_t calls;           /* executed */
    _Atomic uint64_t ticks;           /* their time */
    _Atomic uint64_t rejected;        /* refused before running: arity, NOAUTH, maxmemory */
    _Atomic uint64_t failed;          /* ran and answered an error */
    _Atomic(_Atomic uint64_t *) hist; /* CMDSTAT_BUCKETS counters, or NULL */
    _Atomic(const char *) sub_name;   /* a subcommand slot's name, once called */
};

/* A slot's figures at the last CONFIG RESETSTAT. Under stats_lock. */
struct cmdstat_base {
    uint64_t calls, ticks, rejected, failed;
    uint64_t *hist; /* NULL: nothing recorded before the reset */
};

/* One worker's table. */
struct cmdstats {
    size_t nslots;
    struct cmdstat *live;
    struct cmdstat_base *base;
};

/* Choose the clock and note the time at startup. Main thread, before any
   worker starts. */
void cmdstats_clock_init(void);

/* A worker's table of nslots slots, or NULL when out of memory. Freed by
   cmdstats_free(), which accepts NULL. */
struct cmdstats *cmdstats_new(size_t nslots);
void cmdstats_free(struct cmdstats *cs);

/* The clock, in ticks. Any thread. */
extern bool cmdstats_tsc;
static inline uint64_t cmdstats_now(void)
{
#if defined(__x86_64__)
    if (cmdstats_tsc)
        return __rdtsc();
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Add n to a counter whose only writer is the calling thread. */
static inline void cmdstat_bump(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The histogram bucket of a time in ticks. */
static inline unsigned cmdstat_bucket(uint64_t ticks)
{
    if (ticks == 0)
        ticks = 1;
    if (ticks >> CMDSTAT_MAX_BITS)
        ticks = ((uint64_t)1 << CMDSTAT_MAX_BITS) - 1;
    /* HdrHistogram's counts_index(), unit 1, 256 sub-buckets. */
    unsigned pow2ceiling = 64u - (unsigned)__builtin_clzll(ticks | (2u * CMDSTAT_HALF - 1u));
    unsigned bucket = pow2ceiling - (CMDSTAT_HALF_BITS + 1u);
    unsigned sub = (unsigned)(ticks >> bucket);
    return ((bucket + 1u) << CMDSTAT_HALF_BITS) + (sub - CMDSTAT_HALF);
}

/* The slot's histogram, allocated at its first call; NULL when out of
   memory (the call is then counted without its latency). */
_Atomic uint64_t *cmdstats_hist_new(struct cmdstat *s);

/* A call of the slot that took ticks; failed: it answered an error.
   The slot's worker. */
static inline void cmdstats_call(struct cmdstats *cs, unsigned slot, uint64_t ticks, bool failed)
{
    struct cmdstat *s = &cs->live[slot];
    cmdstat_bump(&s->calls, 1);
    cmdstat_bump(&s->ticks, ticks);
    if (failed)
        cmdstat_bump(&s->failed, 1);
    _Atomic uint64_t *h = atomic_load_explicit(&s->hist, memory_order_relaxed);
    if (!h)
        h = cmdstats_hist_new(s);
    if (h)
        cmdstat_bump(&h[cmdstat_bucket(ticks)], 1);
}

/* A call of the slot refused before it ran. The slot's worker. */
static inline void cmdstats_reject(struct cmdstats *cs, unsigned slot)
{
    cmdstat_bump(&cs->live[slot].rejected, 1);
}

/* Name a subcommand slot (a string that lives as long as the process).
   The slot's worker. */
static inline void cmdstats_name(struct cmdstats *cs, unsigned slot, const char *name)
{
    if (!atomic_load_explicit(&cs->live[slot].sub_name, memory_order_relaxed))
        atomic_store_explicit(&cs->live[slot].sub_name, name, memory_order_release);
}

/* CONFIG RESETSTAT's part for these figures: every worker's totals become
   its base. Takes srv->stats_lock. Any thread. */
void cmdstats_reset(struct server *srv);

/* Append INFO's "# Commandstats" lines (commandstats) and/or
   "# Latencystats" lines (latencystats), without the section titles, for
   every slot with something to show, merged over the workers, to text.
   Takes srv->stats_lock. Returns 0 or KVS_ENOMEM. Any worker. */
int cmdstats_info(struct server *srv, bool latencystats, kvs_buf *text);

#endif
