/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An LD_PRELOAD shim for test_http.c: fsync() and fdatasync() fail with
 * EIO while the file named by $KVS_FAIL_FSYNC exists, as a disk that lost
 * a write would make them fail; otherwise they are libc's. The server's
 * engines then refuse writes (KVS_EREADONLY) until restarted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void)
{
    const char *path = getenv("KVS_FAIL_FSYNC");
    return path && access(path, F_OK) == 0;
}

int fsync(int fd)
{
    if (failing()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    if (failing()) {
        errno = EIO;
        return -1;
    }
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}
