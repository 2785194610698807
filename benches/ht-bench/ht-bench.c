/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ht-bench: libimkv's thread scaling, lookup-heavy.
 *
 * Loads --keys keys (16 bytes) with 32-byte values through ht_insert(),
 * then, for each thread count, runs threads for --seconds: each picks
 * uniformly random loaded keys and does a lookup (ht_lookup, copying the
 * value out), or with probability --writes% an overwrite (ht_insert of the
 * same length). Thread counts take turns for --rounds rounds and the median
 * of each is reported, so that a slow moment of a shared machine does not
 * land on one count only. Prints ops/s per thread count and the speed-up
 * over one thread. Keys are "key:" and 12 digits, formatted in place (a
 * few ns) rather than read from an array, whose cache misses would be
 * counted as the library's.
 *
 * IMKV_MEMORY, when unset, is set to room for the keys (256 bytes each,
 * at least 64 MiB). Exit status 0, 1 on a failed call, 2 on a bad command
 * line.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imkv.h"

#define KEY_LEN 16
#define VAL_LEN 32
#define MAX_THREADS 64
#define MAX_COUNTS 8

static size_t nkeys = 1000000;
static char value[VAL_LEN + 1];
static unsigned writes_pct = 5;

static atomic_bool go, stop;
static atomic_int ready;
static atomic_bool failed;

struct worker {
    pthread_t th;
    uint64_t seed;
    uint64_t ops;
};

/* Key number i: "key:" and i in 12 decimal digits. */
static void key_of(char *k, uint64_t i)
{
    memcpy(k, "key:", 4);
    for (int d = KEY_LEN - 1; d >= 4; d--, i /= 10)
        k[d] = (char)('0' + i % 10);
    k[KEY_LEN] = '\0';
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *work(void *p)
{
    struct worker *w = p;
    uint64_t ops = 0;
    atomic_fetch_add(&ready, 1);
    while (!atomic_load_explicit(&go, memory_order_acquire))
        sched_yield();
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* 64 operations between looks at the clock's flag. */
        for (int i = 0; i < 64; i++) {
            uint64_t r = rnd(&w->seed);
            char key[KEY_LEN + 1];
            key_of(key, (r >> 8) % nkeys);
            if ((r & 0xff) % 100 < writes_pct) {
                if (ht_insert(key, value) != HT_INSERT_OK)
                    atomic_store(&failed, true);
            } else {
                char *v;
                if (ht_lookup(key, &v) != HT_FOUND || v[0] != 'v')
                    atomic_store(&failed, true);
            }
        }
        ops += 64;
    }
    w->ops = ops;
    return NULL;
}

/* Ops per second of threads threads during seconds. */
static double run(int threads, double seconds, uint64_t round)
{
    static struct worker w[MAX_THREADS];
    atomic_store(&go, false);
    atomic_store(&stop, false);
    atomic_store(&ready, 0);
    for (int i = 0; i < threads; i++) {
        w[i].seed = (UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(i + 1)) ^ (round << 32) ^ 1;
        if (pthread_create(&w[i].th, NULL, work, &w[i]) != 0) {
            fprintf(stderr, "ht-bench: pthread_create failed\n");
            exit(1);
        }
    }
    while (atomic_load(&ready) < threads)
        sched_yield();
    double t0 = now();
    atomic_store_explicit(&go, true, memory_order_release);
    struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&nap, NULL);
    atomic_store(&stop, true);
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].th, NULL);
        ops += w[i].ops;
    }
    return (double)ops / (now() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ht-bench [options]\n"
               "libimkv lookup-heavy thread scaling.\n"
               "  --keys N        keys loaded (default 1000000)\n"
               "  --threads LIST  thread counts (default 1,2,4)\n"
               "  --seconds S     per run (default 2)\n"
               "  --rounds N      runs of each count, taking turns; the median is shown\n"
               "                  (default 5)\n"
               "  --writes PCT    overwrites among the operations (default 5)\n"
               "  --quick         100000 keys, 0.2 s, 1 round (a smoke run)\n");
}

int main(int argc, char **argv)
{
    int counts[MAX_COUNTS] = {1, 2, 4}, ncounts = 3, rounds = 5;
    double seconds = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            nkeys = 100000;
            seconds = 0.2;
            rounds = 1;
        } else if (strcmp(a, "--keys") == 0 && v) {
            nkeys = strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--seconds") == 0 && v) {
            seconds = strtod(v, NULL);
            i++;
        } else if (strcmp(a, "--rounds") == 0 && v) {
            rounds = atoi(v);
            i++;
        } else if (strcmp(a, "--writes") == 0 && v) {
            writes_pct = (unsigned)atoi(v);
            i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            ncounts = 0;
            for (char *s = argv[++i], *end; *s && ncounts < MAX_COUNTS; s = end + (*end == ',')) {
                counts[ncounts++] = (int)strtol(s, &end, 10);
                if (end == s)
                    break;
            }
        } else {
            usage(strcmp(a, "--help") == 0 ? stdout : stderr);
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    for (int c = 0; c < ncounts; c++) {
        if (counts[c] < 1 || counts[c] > MAX_THREADS) {
            usage(stderr);
            return 2;
        }
    }
    if (nkeys == 0 || seconds <= 0 || rounds < 1 || rounds > 99 || writes_pct > 100) {
        usage(stderr);
        return 2;
    }
    if (!getenv("IMKV_MEMORY")) {
        char mem[32];
        size_t bytes = nkeys * 256 > ((size_t)64 << 20) ? nkeys * 256 : (size_t)64 << 20;
        snprintf(mem, sizeof(mem), "%zu", bytes);
        setenv("IMKV_MEMORY", mem, 1);
    }

    if (nkeys >= UINT64_C(1000000000000) || ht_init(1024) != HT_INIT_OK) {
        fprintf(stderr, "ht-bench: ht_init failed (IMKV_MEMORY=%s)\n", getenv("IMKV_MEMORY"));
        return 1;
    }
    memset(value, 'v', VAL_LEN);
    double t0 = now();
    for (size_t i = 0; i < nkeys; i++) {
        char key[KEY_LEN + 1];
        key_of(key, i);
        if (ht_insert(key, value) != HT_INSERT_OK) {
            fprintf(stderr, "ht-bench: loading key %zu failed\n", i);
            return 1;
        }
    }
    double load = now() - t0;
    printf("ht-bench: %zu keys of %d bytes, values of %d bytes, loaded in %.2f s (%.0f inserts/s);"
           " %u%% overwrites, %.1f s x %d rounds per thread count, median\n",
           nkeys, KEY_LEN, VAL_LEN, load, (double)nkeys / load, writes_pct, seconds, rounds);

    double rate[MAX_COUNTS][99];
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < ncounts; c++)
            rate[c][r] = run(counts[c], seconds, (uint64_t)r);
    double base = 0;
    printf("%8s %14s %14s %10s\n", "threads", "ops/s", "ops/s/thread", "speed-up");
    for (int c = 0; c < ncounts; c++) {
        qsort(rate[c], (size_t)rounds, sizeof(double), cmp_double);
        double median = rate[c][rounds / 2];
        if (counts[c] == 1)
            base = median;
        printf("%8d %14.0f %14.0f", counts[c], median, median / counts[c]);
        if (base > 0)
            printf(" %9.2fx", median / base);
        printf("\n");
    }
    ht_destroy();
    if (atomic_load(&failed)) {
        fprintf(stderr, "ht-bench: a lookup or insert failed\n");
        return 1;
    }
    return 0;
}
