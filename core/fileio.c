/* SPDX-License-Identifier: BSD-3-Clause */
/* File operations of the engines; see fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvs/error.h"

struct fault {
    atomic_ulong countdown; /* 0: disarmed */
    int err;
};
static struct fault faults[KVS__FAULT_NOPS];

void kvs__fault_set(enum kvs__fault_op op, unsigned long n, int err)
{
    faults[op].err = err;
    atomic_store(&faults[op].countdown, n);
}

/* The tracer (fileio.h); ctx is written before fn is published. */
static _Atomic(kvs__trace_fn) trace_fn;
static void *trace_ctx;

void kvs__trace_set(kvs__trace_fn fn, void *ctx)
{
    if (fn)
        trace_ctx = ctx;
    atomic_store_explicit(&trace_fn, fn, memory_order_release);
}

static bool tracing(void)
{
    return atomic_load_explicit(&trace_fn, memory_order_acquire) != NULL;
}

static void trace(struct kvs__trace_event ev)
{
    kvs__trace_fn fn = atomic_load_explicit(&trace_fn, memory_order_acquire);
    if (fn)
        fn(trace_ctx, &ev);
}

/* True when this call of kind op is the one armed to fail. */
static bool fault_hit(enum kvs__fault_op op, int *err)
{
    unsigned long n = atomic_load_explicit(&faults[op].countdown, memory_order_relaxed);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&faults[op].countdown, &n, n - 1)) {
            if (n == 1) {
                *err = faults[op].err;
                return true;
            }
            return false;
        }
    }
    return false;
}

int kvs__create(int dir_fd, const char *name, int flags, mode_t mode)
{
    int fd = openat(dir_fd, name, flags | O_CREAT, mode);
    if (fd < 0)
        return kvs_err_from_errno(errno);
    if (tracing())
        trace((struct kvs__trace_event){
            .op = KVS__TRACE_CREATE, .fd = fd, .dir_fd = dir_fd, .name = name, .flags = flags});
    return fd;
}

int kvs__writev_all(int fd, const struct iovec *iov_in, int iovcnt)
{
    int err;
    if (fault_hit(KVS__FAULT_WRITE, &err))
        return err;
    struct iovec iov[16];
    if (iovcnt > 16)
        return KVS_EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)iovcnt);
    int total_iovcnt = iovcnt;
    struct iovec *cur = iov;
    while (iovcnt > 0) {
        ssize_t n = writev(fd, cur, iovcnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kvs_err_from_errno(errno);
        }
        while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
            n -= (ssize_t)cur->iov_len;
            cur++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            cur->iov_base = (char *)cur->iov_base + n;
            cur->iov_len -= (size_t)n;
        }
    }
    if (tracing()) {
        /* The bytes end where the file offset now is (O_APPEND included). */
        off_t len = 0;
        for (int i = 0; i < total_iovcnt; i++)
            len += (off_t)iov_in[i].iov_len;
        trace((struct kvs__trace_event){.op = KVS__TRACE_WRITE,
                                        .fd = fd,
                                        .iov = iov_in,
                                        .iovcnt = total_iovcnt,
                                        .offset = lseek(fd, 0, SEEK_CUR) - len});
    }
    return 0;
}

int kvs__pwrite_all(int fd, const void *buf, size_t len, off_t offset)
{
    int err;
    if (fault_hit(KVS__FAULT_WRITE, &err))
        return err;
    const char *p = buf;
    size_t left = len;
    off_t at = offset;
    while (left > 0) {
        ssize_t n = pwrite(fd, p, left, at);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kvs_err_from_errno(errno);
        }
        p += n;
        left -= (size_t)n;
        at += n;
    }
    if (tracing()) {
        struct iovec iov = {(void *)buf, len};
        trace((struct kvs__trace_event){
            .op = KVS__TRACE_WRITE, .fd = fd, .iov = &iov, .iovcnt = 1, .offset = offset});
    }
    return 0;
}

int kvs__pread_all(int fd, void *buf, size_t len, off_t offset)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kvs_err_from_errno(errno);
        }
        if (n == 0)
            return KVS_ECORRUPT;
        p += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

/* fsync or fdatasync fd, reported before and after when tracing. */
static int sync_fd(int fd, bool data_only)
{
    int err;
    if (fault_hit(KVS__FAULT_FSYNC, &err))
        return err;
    bool traced = tracing();
    if (traced)
        trace((struct kvs__trace_event){.op = KVS__TRACE_SYNC_BEGIN, .fd = fd});
    if ((data_only ? fdatasync(fd) : fsync(fd)) != 0)
        return kvs_err_from_errno(errno);
    if (traced)
        trace((struct kvs__trace_event){.op = KVS__TRACE_SYNC_END, .fd = fd});
    return 0;
}

int kvs__fdatasync(int fd)
{
    return sync_fd(fd, true);
}

int kvs__fsync(int fd)
{
    return sync_fd(fd, false);
}

int kvs__fsync_dir(int dir_fd)
{
    return kvs__fsync(dir_fd);
}

int kvs__ftruncate(int fd, off_t len)
{
    if (ftruncate(fd, len) != 0)
        return kvs_err_from_errno(errno);
    if (tracing())
        trace((struct kvs__trace_event){.op = KVS__TRACE_TRUNCATE, .fd = fd, .offset = len});
    return 0;
}

int kvs__rename(int dir_fd, const char *from, const char *to)
{
    int err;
    if (fault_hit(KVS__FAULT_RENAME, &err))
        return err;
    if (renameat(dir_fd, from, dir_fd, to) != 0)
        return kvs_err_from_errno(errno);
    if (tracing())
        trace((struct kvs__trace_event){
            .op = KVS__TRACE_RENAME, .fd = -1, .dir_fd = dir_fd, .name = from, .name2 = to});
    return 0;
}

int kvs__unlink(int dir_fd, const char *name)
{
    if (unlinkat(dir_fd, name, 0) == 0) {
        if (tracing())
            trace((struct kvs__trace_event){
                .op = KVS__TRACE_UNLINK, .fd = -1, .dir_fd = dir_fd, .name = name});
        return 0;
    }
    return errno == ENOENT ? 0 : kvs_err_from_errno(errno);
}

int kvs__write_file_atomic(int dir_fd, const char *name, const void *data, size_t len)
{
    char tmp[256];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
        return KVS_EINVAL;
    int fd = kvs__create(dir_fd, tmp, O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fd;
    int rc = kvs__pwrite_all(fd, data, len, 0);
    if (rc == 0)
        rc = kvs__fsync(fd);
    close(fd);
    if (rc == 0)
        rc = kvs__rename(dir_fd, tmp, name);
    if (rc == 0)
        rc = kvs__fsync_dir(dir_fd);
    if (rc != 0)
        unlinkat(dir_fd, tmp, 0);
    return rc;
}
