/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's snapshot file: every key of one moment, with its value
 * and expiry time. All integers are little-endian.
 *
 *   header (32 bytes)
 *     0  8 magic   "KVSMEMSN"
 *     8  4 version KMEM_SNAP_VERSION
 *    12  4 zero
 *    16  8 zero
 *    24  8 XXH3-64 of bytes 0..23
 *   then blocks, each a 24-byte header and a payload:
 *     0  4 kind    KMEM_SNAP_RECORDS or KMEM_SNAP_END
 *     4  4 records in the payload (0 for the end block)
 *     8  8 len     payload bytes
 *    16  8 sum     XXH3-64 of header bytes 0..15 then the payload
 *   a records payload: records back to back, each
 *     0  4 klen
 *     4  4 vlen
 *     8  8 expire_at  ms since the epoch, 0: none
 *    16    key, then value
 *   the end block, last in the file, with a 24-byte payload:
 *     0  8 records in the file
 *     8  8 records blocks in the file
 *    16  8 the cut: ms since the epoch when the snapshot's moment was taken
 *
 * A snapshot is written as mem.snapshot.tmp, fsynced, renamed over
 * mem.snapshot and the directory fsynced (mem_save.c), so mem.snapshot is
 * always a complete snapshot: a file without its end block, or with a
 * block that fails its checksum, was damaged after it was written, and is
 * refused naming the file and the offset.
 *
 * Blocks hold about KMEM_SNAP_BLOCK bytes of records (one record may take
 * a block past it), so a reader needs one block in memory and a checker
 * can skip a damaged block and read on.
 */
#ifndef KVS_MEM_SNAPSHOT_H
#define KVS_MEM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvs/kvs.h"

#define KMEM_SNAP_NAME "mem.snapshot"
#define KMEM_SNAP_TMP "mem.snapshot.tmp"
#define KMEM_SNAP_VERSION 1u
#define KMEM_SNAP_HDR 32
#define KMEM_SNAP_BLOCK_HDR 24
#define KMEM_SNAP_REC_HDR 16
#define KMEM_SNAP_END_LEN 24
#define KMEM_SNAP_BLOCK ((size_t)1 << 20)
/* The engine's limits, which a record must keep. */
#define KMEM_MAX_KEY 65535u
#define KMEM_MAX_VALUE (512u << 20)

enum kmem_snap_kind { KMEM_SNAP_RECORDS = 1, KMEM_SNAP_END = 2 };

/* Writing a snapshot: records go into a buffer of blocks that is written
   out with kmem_snap_flush() (not while a table stripe is locked). */
struct kmem_snap_writer {
    int fd;
    off_t off;      /* bytes written to fd */
    kvs_buf buf;    /* bytes not yet written: closed blocks, then the open one */
    size_t open_at; /* offset in buf of the open block's header; SIZE_MAX: none */
    uint32_t open_records;
    uint64_t records, blocks;
};

/* Start a snapshot in fd (empty, open for writing): buffers the header. */
void kmem_snap_writer_init(struct kmem_snap_writer *w, int fd);
void kmem_snap_writer_free(struct kmem_snap_writer *w);
/* Buffer one record. Returns 0 or KVS_ENOMEM. */
int kmem_snap_add(struct kmem_snap_writer *w, kvs_slice key, kvs_slice value, int64_t expire_at);
/* Write out what is buffered if it is at least min bytes (0: whatever
   there is), closing the open block. Returns 0 or an I/O error. */
int kmem_snap_flush(struct kmem_snap_writer *w, size_t min);
/* Buffer the end block (cut: the snapshot's moment) and write everything
   out. Returns 0, KVS_ENOMEM or an I/O error. The caller fsyncs. */
int kmem_snap_finish(struct kmem_snap_writer *w, int64_t cut_ms);

/* What a snapshot holds, from its end block. */
struct kmem_snap_summary {
    uint64_t records;
    uint64_t blocks;
    int64_t cut_ms;
    uint64_t bytes; /* the file's size */
};

/* What kmem_snap_read() calls. */
struct kmem_snap_calls {
    /* Each record, in file order, with its offset in the file; key and
       value are borrowed for the call. Returns 0 or an error that ends
       the read. */
    int (*record)(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at, uint64_t offset);
    /* NULL: the first damage ends the read with KVS_ECORRUPT. Else called
       for each damaged block (what names the file and offset); the read
       goes on after it when it can (the checker's way). */
    void (*damage)(void *ctx, uint64_t offset, uint64_t bytes, const char *what);
    void *ctx;
};

/*
 * kmem_snap_read - read the snapshot open at fd (path: for messages).
 * The end block is read and checked first, so *sum is known before the
 * first record (a loader sizes its table from it).
 * @ready: called with *sum once the end block checked out; may be NULL.
 * Returns 0; KVS_ECORRUPT or KVS_EVERSION with why naming the file and
 * offset (with c->damage set: only when the header or the end block is
 * bad, or a block header is, which stops the read); KVS_EIO or KVS_ENOMEM
 * with why; or record's error.
 */
int kmem_snap_read(int fd, const char *path, const struct kmem_snap_calls *c,
                   int (*ready)(void *ctx, const struct kmem_snap_summary *sum),
                   struct kmem_snap_summary *sum, char *why);

#endif
