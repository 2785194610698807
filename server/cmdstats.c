/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-command figures; see cmdstats.h. The recording is inline in the
 * header; here are the clock, the tables' life, CONFIG RESETSTAT and
 * INFO's text.
 */
#include "cmdstats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "server.h"
#include "worker.h"

bool cmdstats_tsc;
/* The clock and CLOCK_MONOTONIC at startup, for the rate of ticks. */
static uint64_t start_ticks, start_ns;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cmdstats_clock_init(void)
{
#if defined(__x86_64__)
    /* The kernel keeps time with the TSC only when it found it constant
       and the same on every core; then so may we. */
    char name[32] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (f) {
        if (!fgets(name, sizeof(name), f))
            name[0] = '\0';
        fclose(f);
    }
    cmdstats_tsc = strcmp(name, "tsc\n") == 0;
#endif
    start_ns = mono_ns();
    start_ticks = cmdstats_now();
}

/* Nanoseconds per tick, measured since startup. */
static double ns_per_tick(void)
{
    if (!cmdstats_tsc)
        return 1.0;
    uint64_t ticks = cmdstats_now(), ns = mono_ns();
    if (ticks <= start_ticks || ns <= start_ns)
        return 1.0;
    return (double)(ns - start_ns) / (double)(ticks - start_ticks);
}

struct cmdstats *cmdstats_new(size_t nslots)
{
    struct cmdstats *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    cs->nslots = nslots;
    cs->live = calloc(nslots, sizeof(*cs->live));
    cs->base = calloc(nslots, sizeof(*cs->base));
    if (!cs->live || !cs->base) {
        cmdstats_free(cs);
        return NULL;
    }
    return cs;
}

void cmdstats_free(struct cmdstats *cs)
{
    if (!cs)
        return;
    for (size_t i = 0; cs->live && i < cs->nslots; i++)
        free((void *)atomic_load(&cs->live[i].hist));
    for (size_t i = 0; cs->base && i < cs->nslots; i++)
        free(cs->base[i].hist);
    free(cs->live);
    free(cs->base);
    free(cs);
}

_Atomic uint64_t *cmdstats_hist_new(struct cmdstat *s)
{
    /* Once per slot and worker; a failure is tried again at the next
       call, which costs nothing while memory is short anyway. */
    _Atomic uint64_t *h = calloc(CMDSTAT_BUCKETS, sizeof(*h));
    if (h)
        atomic_store_explicit(&s->hist, h, memory_order_release);
    return h;
}

void cmdstats_reset(struct server *srv)
{
    pthread_mutex_lock(&srv->stats_lock);
    for (unsigned w = 0; w < srv->nworkers; w++) {
        struct cmdstats *cs = srv->workers[w].cmdstats;
        for (size_t i = 0; cs && i < cs->nslots; i++) {
            struct cmdstat *s = &cs->live[i];
            struct cmdstat_base *b = &cs->base[i];
            b->calls = atomic_load_explicit(&s->calls, memory_order_relaxed);
            b->ticks = atomic_load_explicit(&s->ticks, memory_order_relaxed);
            b->rejected = atomic_load_explicit(&s->rejected, memory_order_relaxed);
            b->failed = atomic_load_explicit(&s->failed, memory_order_relaxed);
            _Atomic uint64_t *h = atomic_load_explicit(&s->hist, memory_order_acquire);
            if (!h)
                continue;
            if (!b->hist)
                b->hist = malloc(CMDSTAT_BUCKETS * sizeof(*b->hist));
            if (!b->hist) {
                log_warn("CONFIG RESETSTAT: out of memory; a latency histogram is not reset");
                continue;
            }
            for (size_t k = 0; k < CMDSTAT_BUCKETS; k++)
                b->hist[k] = atomic_load_explicit(&h[k], memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&srv->stats_lock);
}

/* A slot's figures since the last reset, summed over the workers. */
struct merged {
    uint64_t calls, ticks, rejected, failed;
    const char *sub_name;
    uint64_t count; /* in the histogram */
    uint64_t *hist; /* CMDSTAT_BUCKETS, or NULL when not wanted */
};

static void merge_locked(struct server *srv, size_t slot, struct merged *m)
{
    uint64_t *hist = m->hist;
    *m = (struct merged){.hist = hist};
    if (hist)
        memset(hist, 0, CMDSTAT_BUCKETS * sizeof(*hist));
    for (unsigned w = 0; w < srv->nworkers; w++) {
        const struct cmdstats *cs = srv->workers[w].cmdstats;
        if (!cs || slot >= cs->nslots)
            continue;
        struct cmdstat *s = &cs->live[slot];
        const struct cmdstat_base *b = &cs->base[slot];
        m->calls += atomic_load_explicit(&s->calls, memory_order_relaxed) - b->calls;
        m->ticks += atomic_load_explicit(&s->ticks, memory_order_relaxed) - b->ticks;
        m->rejected += atomic_load_explicit(&s->rejected, memory_order_relaxed) - b->rejected;
        m->failed += atomic_load_explicit(&s->failed, memory_order_relaxed) - b->failed;
        const char *name = atomic_load_explicit(&s->sub_name, memory_order_acquire);
        if (name)
            m->sub_name = name;
        _Atomic uint64_t *h = atomic_load_explicit(&s->hist, memory_order_acquire);
        if (!h || !hist)
            continue;
        for (size_t k = 0; k < CMDSTAT_BUCKETS; k++) {
            uint64_t n = atomic_load_explicit(&h[k], memory_order_relaxed);
            if (b->hist)
                n -= b->hist[k];
            hist[k] += n;
            m->count += n;
        }
    }
}

/* The highest value of bucket k, as HdrHistogram's
   highest_equivalent_value(value_from_index(k)). */
static uint64_t bucket_high(size_t k)
{
    int bucket = (int)(k >> CMDSTAT_HALF_BITS) - 1;
    uint64_t sub = (k & (CMDSTAT_HALF - 1)) + CMDSTAT_HALF;
    if (bucket < 0) {
        sub -= CMDSTAT_HALF;
        bucket = 0;
    }
    return (sub << bucket) + ((uint64_t)1 << bucket) - 1;
}

/* The value at percentile p as hdr_value_at_percentile() finds it: the
   bucket holding the (p% of count, rounded)-th value, at least the
   first. */
static uint64_t percentile(const struct merged *m, double p)
{
    uint64_t want = (uint64_t)(p / 100.0 * (double)m->count + 0.5);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (size_t k = 0; k < CMDSTAT_BUCKETS; k++) {
        seen += m->hist[k];
        if (seen >= want)
            return bucket_high(k);
    }
    return 0;
}

struct text {
    kvs_buf *buf;
    bool oom;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !t->oom; attempt++) {
        size_t room = t->buf->cap - t->buf->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf((char *)t->buf->data + t->buf->len, room, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            t->buf->len += (size_t)n;
            return;
        }
        if (n < 0 || kvs_buf_reserve(t->buf, t->buf->len + (size_t)n + 1) != 0)
            t->oom = true;
    }
}

/* "get", or "config|get" for a subcommand slot. */
static void slot_name(size_t slot, const struct merged *m, char *out, size_t size)
{
    const char *parent = command_at(slot / CMDSTAT_SUBS)->name;
    if (slot % CMDSTAT_SUBS == 0)
        snprintf(out, size, "%s", parent);
    else
        snprintf(out, size, "%s|%s", parent, m->sub_name ? m->sub_name : "?");
}

int cmdstats_info(struct server *srv, bool latencystats, kvs_buf *text)
{
    struct text t = {text, false};
    struct merged m = {0};
    if (latencystats) {
        m.hist = malloc(CMDSTAT_BUCKETS * sizeof(*m.hist));
        if (!m.hist)
            return KVS_ENOMEM;
    }
    double tick_ns = ns_per_tick();
    size_t nslots = command_count() * CMDSTAT_SUBS;
    pthread_mutex_lock(&srv->stats_lock);
    for (size_t slot = 0; slot < nslots && !t.oom; slot++) {
        merge_locked(srv, slot, &m);
        char name[64];
        if (!latencystats) {
            if (m.calls == 0 && m.rejected == 0 && m.failed == 0)
                continue;
            slot_name(slot, &m, name, sizeof(name));
            double usec = (double)m.ticks * tick_ns / 1000.0;
            add(&t,
                "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                "failed_calls=%llu\r\n",
                name, (unsigned long long)m.calls, (unsigned long long)usec,
                m.calls ? usec / (double)m.calls : 0.0, (unsigned long long)m.rejected,
                (unsigned long long)m.failed);
            continue;
        }
        if (m.count == 0)
            continue;
        slot_name(slot, &m, name, sizeof(name));
        add(&t, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f\r\n", name,
            (double)percentile(&m, 50.0) * tick_ns / 1000.0,
            (double)percentile(&m, 99.0) * tick_ns / 1000.0,
            (double)percentile(&m, 99.9) * tick_ns / 1000.0);
    }
    pthread_mutex_unlock(&srv->stats_lock);
    free(m.hist);
    return t.oom ? KVS_ENOMEM : 0;
}
