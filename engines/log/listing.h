/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reading a kvs engine data directory: the segments it holds, in replay
 * order, each with whether a hint file lies beside it, and everything else
 * found there. Recovery (which deletes the leftovers) and kvs-check (which
 * reports them) share it.
 */
#ifndef KVS_LOG_LISTING_H
#define KVS_LOG_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct klog_seg_name {
    uint64_t id;
    unsigned sub;
    bool hint; /* a .hint file of this segment exists */
};

struct klog_listing {
    struct klog_seg_name *segs; /* in (id, sub) order: the order of replay */
    size_t n;
    uint64_t max_id;  /* over every file of the engine's, leftovers too */
    unsigned max_sub; /* the highest sub among the files of max_id */
};

enum klog_leftover {
    KLOG_LEFTOVER_TMP,     /* a .tmp file of an interrupted compaction */
    KLOG_LEFTOVER_HINT,    /* a hint whose segment is gone */
    KLOG_LEFTOVER_FOREIGN, /* not a file of the engine (dot files and ENGINE are skipped) */
};

/* Called for each leftover, with its name in the directory; a nonzero
   return (a negative kvs_err) stops the listing and is returned. */
typedef int (*klog_leftover_fn)(void *ctx, const char *name, enum klog_leftover kind);

/*
 * klog_list_dir - list the directory open at dir_fd into *l (zeroed by the
 * caller), calling fn for each leftover (fn may delete it). Returns 0,
 * KVS_EIO when the directory cannot be read, KVS_ENOMEM, or fn's error.
 * *l is the caller's to free with klog_listing_free() either way.
 */
int klog_list_dir(int dir_fd, struct klog_listing *l, klog_leftover_fn fn, void *ctx);

void klog_listing_free(struct klog_listing *l);

#endif
