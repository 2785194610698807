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

#endif
