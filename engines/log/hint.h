/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hint files of the kvs engine: the index entries of one compaction output,
 * so that opening a store need not read the output's values.
 *
 * A hint is written beside each compaction output segment of puts (same
 * stem, .hint); an output of kept tombstones (compact.c) has none and is
 * scanned at open. Such outputs hold puts only, one per key, so an entry is
 * the key's hash and where its record is; replaying a hint's entries in order has the same
 * effect on the index as scanning the segment. Layout (little-endian):
 *
 *   0 magic "KVSHINT\0"  8 u32 version  12 u32 sub  16 u64 id
 *  24 u64 size of the segment the hint describes
 *  32 entries of 24 bytes: u64 key hash, u32 offset, u32 record length,
 *     i64 expiry time of the record (0: none)
 *  end: u64 XXH3-64 of every byte before it
 *
 * Version 1 hints (before expiry) have 16-byte entries without the time,
 * and are read too.
 *
 * A hint that fails any check is ignored and its segment scanned instead.
 */
#ifndef KVS_LOG_HINT_H
#define KVS_LOG_HINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KLOG_HINT_HDR 32
#define KLOG_HINT_ENTRY 24
#define KLOG_HINT_ENTRY_V1 16
#define KLOG_HINT_VERSION 2

/* An encoded hint being built in memory. */
struct klog_hint_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
};

/* Start a hint for segment (id, sub). Returns 0 or KVS_ENOMEM. */
int klog_hint_begin(struct klog_hint_buf *h, uint64_t id, unsigned sub);
/* Append one entry. Returns 0 or KVS_ENOMEM. */
int klog_hint_add(struct klog_hint_buf *h, uint64_t hash, uint32_t off, uint32_t len,
                  int64_t expire_at);
/* Record the segment's final size and append the checksum. */
int klog_hint_finish(struct klog_hint_buf *h, uint64_t seg_size);
void klog_hint_buf_free(struct klog_hint_buf *h);

/* A validated hint: n entries starting at entries. */
struct klog_hint_view {
    const unsigned char *entries;
    size_t n;
    size_t entry; /* bytes per entry: KLOG_HINT_ENTRY, or _V1 */
};

/*
 * klog_hint_parse - validate a hint of len bytes at p for segment (id, sub)
 * whose file is seg_size bytes. Returns NULL and fills *view when valid, or
 * a short phrase saying what is wrong.
 */
const char *klog_hint_parse(const void *p, size_t len, uint64_t id, unsigned sub, uint64_t seg_size,
                            struct klog_hint_view *view);

/* Entry i of a parsed hint. */
void klog_hint_entry(const struct klog_hint_view *view, size_t i, uint64_t *hash, uint32_t *off,
                     uint32_t *len, int64_t *expire_at);

/* Write h to a new file name in the directory and fsync it (no rename).
 *fsync_failed tells a failed fsync from a failed write. */
int klog_hint_write(int dir_fd, const char *name, const struct klog_hint_buf *h,
                    bool *fsync_failed);

/* Read the whole file name into *data (malloc'd) and *len. */
int klog_hint_read(int dir_fd, const char *name, unsigned char **data, size_t *len);

#endif
