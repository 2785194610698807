/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * File operations of the engines, in one place.
 *
 * Engines do their writes, fsyncs, renames and truncations through these
 * wrappers instead of calling the system directly, so that tests can make
 * the Nth call of a kind fail (fault injection) and so that errno is mapped
 * onto the kvs error space once. Each returns 0 (or a byte count) on
 * success and a negative kvs_err on failure; none retries a failed fsync.
 * Callable from any thread.
 */
#ifndef KVS_ENGINES_FILEIO_H
#define KVS_ENGINES_FILEIO_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Create (or open) name in the directory open at dir_fd: openat() with
   O_CREAT added to flags. Returns the descriptor or a negative kvs_err. */
int kvs__create(int dir_fd, const char *name, int flags, mode_t mode);
/* Write all iovcnt buffers at the file's current end (fd opened O_APPEND or
   positioned by the caller), looping over short writes. */
int kvs__writev_all(int fd, const struct iovec *iov, int iovcnt);
/* Write len bytes at offset, looping over short writes. */
int kvs__pwrite_all(int fd, const void *buf, size_t len, off_t offset);
/* Read exactly len bytes at offset; KVS_ECORRUPT if the file is shorter. */
int kvs__pread_all(int fd, void *buf, size_t len, off_t offset);
int kvs__fdatasync(int fd);
int kvs__fsync(int fd);
int kvs__ftruncate(int fd, off_t len);
int kvs__rename(int dir_fd, const char *from, const char *to);
int kvs__unlink(int dir_fd, const char *name);
/* fsync the directory open at dir_fd, making renames and new files durable. */
int kvs__fsync_dir(int dir_fd);

/*
 * Replace dir/name with content atomically: write name.tmp, fsync it,
 * rename over name, fsync the directory.
 */
int kvs__write_file_atomic(int dir_fd, const char *name, const void *data, size_t len);

/*
 * Fault injection, for tests only. After kvs__fault_set(op, n, err), the
 * nth call (1-based, counted from this call) of kind op fails with err
 * (a negative kvs_err) instead of reaching the system. n = 0 disarms.
 */
enum kvs__fault_op { KVS__FAULT_WRITE, KVS__FAULT_FSYNC, KVS__FAULT_RENAME, KVS__FAULT_NOPS };
void kvs__fault_set(enum kvs__fault_op op, unsigned long n, int err);

/*
 * Tracing, for tests only (tests/crashstate builds the states a machine
 * crash may leave from the trace). While a tracer is set, each wrapper
 * above that changes a file reports what it did once it succeeded: a
 * creation, a write (with its bytes and offset), a truncation, a rename or
 * an unlink. An fsync is reported twice, before it starts and after it
 * returned, because it covers the writes that completed before it started
 * and makes them durable only when it returns. Failed calls, and calls an
 * armed fault stopped, are not reported. The tracer is called on the
 * caller's thread, perhaps from several threads at once, and must not call
 * the wrappers. NULL (the default) reports nothing, at the cost of one load
 * per call. Set it while no wrapper runs.
 */
enum kvs__trace_op {
    KVS__TRACE_CREATE,     /* fd: the new descriptor; dir_fd, name; flags as passed */
    KVS__TRACE_WRITE,      /* fd, iov, iovcnt, offset (where the bytes landed) */
    KVS__TRACE_TRUNCATE,   /* fd, offset: the new length */
    KVS__TRACE_SYNC_BEGIN, /* fd: a file (fsync or fdatasync) or a directory */
    KVS__TRACE_SYNC_END,   /* fd, as for SYNC_BEGIN */
    KVS__TRACE_RENAME,     /* dir_fd, name to name2 */
    KVS__TRACE_UNLINK,     /* dir_fd, name */
};

struct kvs__trace_event {
    enum kvs__trace_op op;
    int fd;
    int dir_fd;
    const char *name;
    const char *name2;
    const struct iovec *iov;
    int iovcnt;
    off_t offset;
    int flags;
};

typedef void (*kvs__trace_fn)(void *ctx, const struct kvs__trace_event *ev);
void kvs__trace_set(kvs__trace_fn fn, void *ctx);

#endif
