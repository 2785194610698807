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

int kvs__writev_all(int fd, const struct iovec *iov_in, int iovcnt)
{
    int err;
    if (fault_hit(KVS__FAULT_WRITE, &err))
        return err;
    struct iovec iov[16];
    if (iovcnt > 16)
        return KVS_EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)iovcnt);
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
    return 0;
}

int kvs__pwrite_all(int fd, const void *buf, size_t len, off_t offset)
{
    int err;
    if (fault_hit(KVS__FAULT_WRITE, &err))
        return err;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kvs_err_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
        offset += n;
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

int kvs__fdatasync(int fd)
{
    int err;
    if (fault_hit(KVS__FAULT_FSYNC, &err))
        return err;
    return fdatasync(fd) == 0 ? 0 : kvs_err_from_errno(errno);
}

int kvs__fsync(int fd)
{
    int err;
    if (fault_hit(KVS__FAULT_FSYNC, &err))
        return err;
    return fsync(fd) == 0 ? 0 : kvs_err_from_errno(errno);
}

int kvs__fsync_dir(int dir_fd)
{
    return kvs__fsync(dir_fd);
}

int kvs__ftruncate(int fd, off_t len)
{
    return ftruncate(fd, len) == 0 ? 0 : kvs_err_from_errno(errno);
}

int kvs__rename(int dir_fd, const char *from, const char *to)
{
    int err;
    if (fault_hit(KVS__FAULT_RENAME, &err))
        return err;
    return renameat(dir_fd, from, dir_fd, to) == 0 ? 0 : kvs_err_from_errno(errno);
}

int kvs__unlink(int dir_fd, const char *name)
{
    if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
        return 0;
    return kvs_err_from_errno(errno);
}

int kvs__write_file_atomic(int dir_fd, const char *name, const void *data, size_t len)
{
    char tmp[256];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
        return KVS_EINVAL;
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return kvs_err_from_errno(errno);
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
