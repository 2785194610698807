/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The RDB format, as far as replication needs it: a writer of the payload
 * a primary sends in a full sync, and a loader of what a replica received.
 *
 * What is written (Redis's rdb.c layout, version 10, which Redis 7.0
 * loads): "REDIS0010", AUX fields (redis-ver, redis-bits, ctime, used-mem,
 * repl-stream-db, repl-id, repl-offset, aof-base), SELECTDB 0, RESIZEDB
 * with the key counts, then for each key an optional EXPIRETIME_MS
 * (absolute ms, little-endian), the string type byte, the key and the
 * value as length-prefixed strings; then EOF and the CRC64 (Jones,
 * reflected, as Redis's crc64.c) of everything before it, little-endian.
 * Lengths use Redis's encodings: 6 bits, 14 bits, 32 or 64 bits.
 *
 * What is loaded: that, plus what Redis itself writes for strings: the
 * integer encodings, LZF-compressed strings, EXPIRETIME (seconds), the
 * IDLE and FREQ opcodes (skipped), versions 1 to 10. Other value types,
 * modules and functions are refused (KVS_ENOTSUP): kvs holds strings.
 *
 * No I/O of its own: the writer hands its bytes to a sink; the loader
 * reads from a file descriptor. Any thread; an object per thread.
 */
#ifndef KVS_SERVER_RDB_H
#define KVS_SERVER_RDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/kvs.h"

#define RDB_VERSION 10

/* Redis's CRC64 (crc64.c): crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9ca. */
uint64_t rdb_crc64(uint64_t crc, const void *data, size_t len);

/* Receives the writer's bytes, in order; returns 0 or a negative kvs_err
   that the writer then returns. */
typedef int rdb_sink_fn(void *ctx, const void *data, size_t len);

struct rdb_writer {
    rdb_sink_fn *sink;
    void *ctx;
    kvs_buf buf; /* bytes not yet handed to the sink */
    uint64_t crc;
    uint64_t bytes; /* handed to the sink so far */
    bool manual;    /* hand bytes over only in rdb_writer_flush() */
};

/* What the header says about the data that follows. */
struct rdb_header {
    const char *replid; /* 40 characters, or NULL for none */
    uint64_t offset;    /* repl-offset */
    uint64_t keys;      /* RESIZEDB's hints */
    uint64_t expires;
};

void rdb_writer_init(struct rdb_writer *w, rdb_sink_fn *sink, void *ctx);
void rdb_writer_free(struct rdb_writer *w);

/* The magic, the AUX fields, SELECTDB 0 and RESIZEDB. Returns 0,
   KVS_ENOMEM or the sink's error. */
int rdb_write_header(struct rdb_writer *w, const struct rdb_header *h);

/* One string key, with its expiry time (ms since the epoch, 0: none). */
int rdb_write_string(struct rdb_writer *w, kvs_slice key, kvs_slice value, int64_t expire_at);

/* Hand what is buffered to the sink now. */
int rdb_writer_flush(struct rdb_writer *w);

/* EOF and the checksum, and everything still buffered to the sink. */
int rdb_write_end(struct rdb_writer *w);

/* What the loader calls: an AUX field (both borrowed for the call), and
   each key (borrowed for the call). Return 0 or a kvs_err that stops the
   load. */
struct rdb_load_cb {
    int (*aux)(void *ctx, kvs_slice name, kvs_slice value);
    int (*key)(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at);
    void *ctx;
};

/*
 * rdb_load_fd - read an RDB file from fd (from its current position to
 * its EOF opcode and checksum) and call cb for what it holds.
 * Returns 0; KVS_ECORRUPT for a bad magic, a bad length, a truncated file
 * or a checksum that does not match (why, if not NULL, gets a line of
 * KVS_WHY_MAX bytes); KVS_ENOTSUP for a value type other than a string,
 * a database other than 0, or a module's data; KVS_EIO; KVS_ENOMEM; or
 * the error of a callback.
 */
int rdb_load_fd(int fd, const struct rdb_load_cb *cb, char *why);

#endif
