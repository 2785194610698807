/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Operating-system helpers of kvs-bench: the monotonic clock, the process's
 * resident set size, and making and removing the scratch directories that
 * stores are created in.
 *
 * Thread safety: now_ns() may be called from any thread; the rest from the
 * main thread.
 */
#ifndef KVS_BENCH_SYS_H
#define KVS_BENCH_SYS_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* VmRSS of this process in KiB from /proc/self/status (it counts the pages
   of files the engines map, such as LMDB's), or -1 if unreadable. */
long rss_kb(void);

/* Give freed heap memory back to the kernel, so that the RSS of the next
   store is not inflated by the previous one's index. */
void heap_trim(void);

/* Remove path and everything below it. Returns 0 or -1 with errno set. */
int remove_tree(const char *path);

/* Bytes allocated on disk to path and everything below it (as du counts
   them: st_blocks), or -1 on error. */
long long tree_bytes(const char *path);

#endif
