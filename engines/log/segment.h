/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Segment files of the kvs engine: naming, the file header, and the
 * read-only mapping through which every read is served.
 *
 * A segment is named seg-<id, 10 digits>-<sub, 4 digits>.log. Segments the
 * write path fills have sub 0 and ids two apart; a compaction names its
 * outputs (gap, sub) with sub from 1 up, gap being the free id below the
 * active segment (compact.c). Replay order is by (id, sub), which is also
 * the order of the names. A compaction output may have a .hint file of the
 * same stem, and files being written by a compaction end in .tmp.
 *
 * A segment starts with a 32-byte header (little-endian):
 *   0 magic "KVSSEG\0\0"   8 u32 version   12 u32 sub   16 u64 id
 *  24 u32 zero            28 u32 XXH32 of bytes 0..27
 * followed by records (record.h) back to back.
 *
 * Each open segment is mapped read-only (MAP_SHARED) at its capacity, so
 * that records appended to the active segment become readable through the
 * same mapping. Only offsets below the published size are ever read, so the
 * pages beyond the end of the file are never touched.
 */
#ifndef KVS_LOG_SEGMENT_H
#define KVS_LOG_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "epoch.h"

#define KLOG_SEG_HDR 32
/* Version written; version 1 (before records could carry an expiry time)
   is read too. */
#define KLOG_SEG_VERSION 2
#define KLOG_SEG_VERSION_MIN 1
#define KLOG_SEG_MAX_ID 9999999999ull
#define KLOG_SEG_MAX_SUB 9999u
/* Offsets in the index are 32-bit: no segment may grow past this. */
#define KLOG_SEG_MAX_BYTES 0xffffffffull
/* Longest file name this engine uses, with its NUL. */
#define KLOG_SEG_NAME_LEN 32

enum klog_file_kind {
    KLOG_FILE_SEG,      /* .log */
    KLOG_FILE_HINT,     /* .hint */
    KLOG_FILE_SEG_TMP,  /* .log.tmp */
    KLOG_FILE_HINT_TMP, /* .hint.tmp */
};

struct klog_seg {
    struct klog_retired retired; /* first: freed through the epoch */
    uint64_t id;
    unsigned sub;
    unsigned sno; /* slot in the engine's segment table, and in index locations */
    int fd;
    const unsigned char *map;
    uint64_t map_len;
    uint64_t cap;               /* bytes the file may grow to */
    atomic_uint_least64_t size; /* bytes written and readable */
    uint64_t hint_bytes;        /* size of its .hint file, 0 if none */
    /* Under the engine's write lock (read by compaction under mlock): */
    uint64_t live;      /* bytes of the records the index points to */
    uint64_t dels;      /* bytes of its tombstones */
    uint64_t pinned;    /* bytes of tombstones a compaction had to keep here */
    bool has_clear;     /* holds a clear record */
    atomic_bool synced; /* complete on disk: sealed, or written by a compaction; any thread */
    bool input;         /* an input of the running compaction (compact.c) */
    bool covered;       /* ...and every older segment is one too (select.c) */
    void *owner;        /* the engine handle, for the free callback */
};

/* Write the file name of (id, sub, kind) into name (KLOG_SEG_NAME_LEN bytes). */
void klog_file_name(char *name, uint64_t id, unsigned sub, enum klog_file_kind kind);

/* Parse a file name this engine writes; false for any other name. */
bool klog_file_parse(const char *name, uint64_t *id, unsigned *sub, enum klog_file_kind *kind);

/* Fill out with the header of segment (id, sub). */
void klog_seg_head_encode(unsigned char out[KLOG_SEG_HDR], uint64_t id, unsigned sub);

/*
 * klog_seg_head_check - validate the header of segment (id, sub) in p (len
 * readable bytes). Returns 0, KVS_EVERSION or KVS_ECORRUPT with *what set
 * to a short phrase.
 */
int klog_seg_head_check(const unsigned char *p, uint64_t len, uint64_t id, unsigned sub,
                        const char **what);

/*
 * klog_seg_create - create the file of (id, sub, kind) (kind KLOG_FILE_SEG or
 * KLOG_FILE_SEG_TMP), write its header and map it with capacity cap bytes.
 * The directory is not synced. Returns 0 or an error; *out is set on
 * success only.
 */
int klog_seg_create(int dir_fd, uint64_t id, unsigned sub, enum klog_file_kind kind, uint64_t cap,
                    struct klog_seg **out);

/*
 * klog_seg_open - open an existing segment file and map it at its current
 * size (which becomes its capacity: opened segments are never appended to).
 * The header is not checked. Returns 0 or an error.
 */
int klog_seg_open(int dir_fd, uint64_t id, unsigned sub, struct klog_seg **out);

/* Cut the file to size bytes and sync it; the mapping stays as it is. */
int klog_seg_truncate(struct klog_seg *s, uint64_t size);

/* Unmap, close and free; accepts NULL. */
void klog_seg_free(struct klog_seg *s);

#endif
