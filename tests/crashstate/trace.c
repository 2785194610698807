/* SPDX-License-Identifier: BSD-3-Clause */
/* The recorder of the crash-state test; see trace.h. */

/* The interposers below must define open, pwrite and ftruncate under these
   names, which liblmdb.so imports, not the open64 etc. that the headers
   redirect them to under _FILE_OFFSET_BITS=64 (off_t has 64 bits anyway on
   the 64-bit targets this test runs on; the 64 names are defined too). */
#undef _FILE_OFFSET_BITS
#include "trace.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/fileio.h"

_Static_assert(sizeof(off_t) == 8, "off_t and off64_t must be the same");

/* Everything below is under lock while recording. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool recording;
static struct trace *cur;
static char dir_given[PATH_MAX], dir_real[PATH_MAX];
static uint64_t dir_dev, dir_ino;

/* The names of the real directory now, and the file each is bound to. */
struct binding {
    char name[NAME_MAX + 1];
    int32_t file;
};
static struct binding *binds;
static size_t nbinds, cap_binds;

/* Descriptors that the interposed open() gave out for files of the
   directory: file + 1 (0: not recorded), and whether opened O_DSYNC. */
#define MAX_FD 4096
static atomic_int fd_file[MAX_FD];
static atomic_bool fd_dsync[MAX_FD];

/* The fsync that the fileio hook reported begun on this thread. */
static __thread long sync_begun = -1;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (!q) {
        fprintf(stderr, "crashstate: out of memory recording the trace\n");
        abort();
    }
    *cap = n;
    return q;
}

static long push(struct tr_event ev)
{
    struct trace *t = cur;
    t->ev = grow(t->ev, &t->cap_ev, t->nev + 1, sizeof(*t->ev));
    t->ev[t->nev] = ev;
    return (long)t->nev++;
}

static uint32_t add_name(const char *name)
{
    struct trace *t = cur;
    size_t len = strlen(name) + 1;
    t->names = grow(t->names, &t->cap_names, t->nnames + len, 1);
    memcpy(t->names + t->nnames, name, len);
    uint32_t off = (uint32_t)t->nnames;
    t->nnames += len;
    return off;
}

static uint64_t add_bytes(const struct iovec *iov, int iovcnt, size_t len)
{
    struct trace *t = cur;
    t->data = grow(t->data, &t->cap_data, t->ndata + len, 1);
    uint64_t off = t->ndata;
    size_t left = len;
    for (int i = 0; i < iovcnt && left > 0; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        memcpy(t->data + t->ndata, iov[i].iov_base, n);
        t->ndata += n;
        left -= n;
    }
    return off;
}

/* ---- the directory's names ---- */

static struct binding *find_binding(const char *name)
{
    for (size_t i = 0; i < nbinds; i++) {
        if (strcmp(binds[i].name, name) == 0)
            return &binds[i];
    }
    return NULL;
}

static void unbind(const char *name)
{
    struct binding *b = find_binding(name);
    if (!b)
        return;
    cur->files[b->file].names--;
    *b = binds[--nbinds];
}

static void bind(const char *name, int32_t file)
{
    unbind(name);
    binds = grow(binds, &cap_binds, nbinds + 1, sizeof(*binds));
    snprintf(binds[nbinds].name, sizeof(binds[nbinds].name), "%s", name);
    binds[nbinds++].file = file;
    cur->files[file].names++;
}

static int32_t new_file(uint64_t dev, uint64_t ino, const char *name, bool lmdb)
{
    struct trace *t = cur;
    t->files = grow(t->files, &t->cap_files, t->nfiles + 1, sizeof(*t->files));
    t->files[t->nfiles] =
        (struct tr_file){.dev = dev, .ino = ino, .name = add_name(name), .lmdb = lmdb};
    return (int32_t)t->nfiles++;
}

/* Record the creation of name as a new file with (dev, ino). */
static int32_t created(uint64_t dev, uint64_t ino, const char *name, bool lmdb)
{
    int32_t f = new_file(dev, ino, name, lmdb);
    push((struct tr_event){.kind = EV_CREATE, .file = f, .name = cur->files[f].name});
    bind(name, f);
    return f;
}

/* The newest file with this inode; live_only: one that has a name. */
static int32_t file_of_ino(uint64_t dev, uint64_t ino, bool live_only)
{
    for (size_t i = cur->nfiles; i-- > 0;) {
        const struct tr_file *f = &cur->files[i];
        if (f->dev == dev && f->ino == ino && (!live_only || f->names > 0))
            return (int32_t)i;
    }
    return -2;
}

/* name when path is a file directly inside the recorded directory. */
static const char *name_in_dir(const char *path)
{
    const char *dirs[] = {dir_given, dir_real};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(dirs[i]);
        if (n && strncmp(path, dirs[i], n) == 0 && path[n] == '/' && path[n + 1] &&
            !strchr(path + n + 1, '/'))
            return path + n + 1;
    }
    return NULL;
}

static bool is_dir_fd(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dir_dev && (uint64_t)st.st_ino == dir_ino;
}

/*
 * The file fd refers to: TR_DIR for the directory, -2 for anything not
 * recorded. A file of the directory not seen before was created outside
 * the fileio layer: its creation is recorded now.
 */
static int32_t resolve_fd(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -2;
    uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
    if (dev == dir_dev && ino == dir_ino)
        return TR_DIR;
    if (!S_ISREG(st.st_mode))
        return -2;
    int32_t f = file_of_ino(dev, ino, true);
    if (f >= 0)
        return f;
    char link[64], path[PATH_MAX + 16];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return -2;
    path[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t dl = sizeof(deleted) - 1;
    if ((size_t)n > dl && strcmp(path + n - dl, deleted) == 0) {
        path[n - dl] = '\0';
        return name_in_dir(path) ? file_of_ino(dev, ino, false) : -2;
    }
    const char *name = name_in_dir(path);
    if (!name)
        return -2;
    cur->inferred_creates++;
    return created(dev, ino, name, false);
}

/* ---- the fileio hook ---- */

static void on_fileio(void *ctx, const struct kvs__trace_event *e)
{
    (void)ctx;
    if (!atomic_load_explicit(&recording, memory_order_relaxed))
        return;
    pthread_mutex_lock(&lock);
    if (!cur)
        goto out;
    int32_t f;
    struct stat st;
    switch (e->op) {
    case KVS__TRACE_CREATE: {
        if (!is_dir_fd(e->dir_fd) || fstat(e->fd, &st) != 0)
            break;
        uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
        struct binding *b = find_binding(e->name);
        if (b && cur->files[b->file].ino == ino && cur->files[b->file].dev == dev) {
            if (e->flags & O_TRUNC)
                push((struct tr_event){.kind = EV_TRUNC, .file = b->file, .off = 0});
        } else {
            created(dev, ino, e->name, false);
        }
        break;
    }
    case KVS__TRACE_WRITE: {
        f = resolve_fd(e->fd);
        if (f < 0 || cur->files[f].lmdb)
            break;
        size_t len = 0;
        for (int i = 0; i < e->iovcnt; i++)
            len += e->iov[i].iov_len;
        push((struct tr_event){.kind = EV_WRITE,
                               .file = f,
                               .off = (uint64_t)e->offset,
                               .len = len,
                               .data = add_bytes(e->iov, e->iovcnt, len)});
        break;
    }
    case KVS__TRACE_TRUNCATE:
        f = resolve_fd(e->fd);
        if (f >= 0 && !cur->files[f].lmdb)
            push((struct tr_event){.kind = EV_TRUNC, .file = f, .off = (uint64_t)e->offset});
        break;
    case KVS__TRACE_SYNC_BEGIN:
        f = resolve_fd(e->fd);
        sync_begun = -1;
        if (f == TR_DIR || (f >= 0 && !cur->files[f].lmdb))
            sync_begun = push((struct tr_event){.kind = EV_SYNC_BEGIN, .file = f});
        break;
    case KVS__TRACE_SYNC_END:
        if (sync_begun >= 0 && (size_t)sync_begun < cur->nev)
            push((struct tr_event){.kind = EV_SYNC_END,
                                   .file = cur->ev[sync_begun].file,
                                   .data = (uint64_t)sync_begun});
        sync_begun = -1;
        break;
    case KVS__TRACE_RENAME: {
        if (!is_dir_fd(e->dir_fd) || fstatat(e->dir_fd, e->name2, &st, 0) != 0)
            break;
        struct binding *b = find_binding(e->name);
        f = b ? b->file : file_of_ino((uint64_t)st.st_dev, (uint64_t)st.st_ino, true);
        if (f < 0) {
            /* Created outside fileio and never written: record it now. */
            cur->inferred_creates++;
            f = created((uint64_t)st.st_dev, (uint64_t)st.st_ino, e->name, false);
        }
        push((struct tr_event){
            .kind = EV_RENAME, .file = f, .name = add_name(e->name), .name2 = add_name(e->name2)});
        unbind(e->name);
        bind(e->name2, f);
        break;
    }
    case KVS__TRACE_UNLINK: {
        struct binding *b = is_dir_fd(e->dir_fd) ? find_binding(e->name) : NULL;
        if (!b)
            break;
        push((struct tr_event){.kind = EV_UNLINK, .file = b->file, .name = add_name(e->name)});
        unbind(e->name);
        break;
    }
    }
out:
    pthread_mutex_unlock(&lock);
}

/* ---- recording ---- */

void tr_start(struct trace *t, const char *dir)
{
    tr_free(t);
    pthread_mutex_lock(&lock);
    cur = t;
    nbinds = 0;
    snprintf(dir_given, sizeof(dir_given), "%s", dir);
    if (!realpath(dir, dir_real))
        snprintf(dir_real, sizeof(dir_real), "%s", dir);
    struct stat st;
    if (stat(dir, &st) == 0) {
        dir_dev = (uint64_t)st.st_dev;
        dir_ino = (uint64_t)st.st_ino;
    }
    for (size_t i = 0; i < MAX_FD; i++)
        atomic_store(&fd_file[i], 0);
    kvs__trace_set(on_fileio, NULL);
    atomic_store(&recording, true);
    pthread_mutex_unlock(&lock);
}

void tr_stop(void)
{
    pthread_mutex_lock(&lock);
    atomic_store(&recording, false);
    kvs__trace_set(NULL, NULL);
    cur = NULL;
    for (size_t i = 0; i < MAX_FD; i++)
        atomic_store(&fd_file[i], 0);
    pthread_mutex_unlock(&lock);
}

void tr_free(struct trace *t)
{
    free(t->ev);
    free(t->files);
    free(t->data);
    free(t->names);
    memset(t, 0, sizeof(*t));
}

long tr_mark(uint64_t mark)
{
    long i = -1;
    pthread_mutex_lock(&lock);
    if (cur)
        i = push((struct tr_event){.kind = EV_MARK, .data = mark});
    pthread_mutex_unlock(&lock);
    return i;
}

void tr_describe(const struct trace *t, size_t i, char *buf, size_t size)
{
    const struct tr_event *e = &t->ev[i];
    const char *fname = e->file == TR_DIR ? "<dir>"
                        : e->file >= 0    ? tr_name(t, t->files[e->file].name)
                                          : "?";
    switch (e->kind) {
    case EV_CREATE:
        snprintf(buf, size, "%zu create %s", i, fname);
        break;
    case EV_RENAME:
        snprintf(buf, size, "%zu rename %s -> %s", i, tr_name(t, e->name), tr_name(t, e->name2));
        break;
    case EV_UNLINK:
        snprintf(buf, size, "%zu unlink %s", i, tr_name(t, e->name));
        break;
    case EV_WRITE:
        snprintf(buf, size, "%zu write %s [%" PRIu64 ", +%" PRIu64 ")%s", i, fname, e->off, e->len,
                 e->dsync ? " O_DSYNC" : "");
        break;
    case EV_TRUNC:
        snprintf(buf, size, "%zu truncate %s to %" PRIu64, i, fname, e->off);
        break;
    case EV_SYNC_BEGIN:
        snprintf(buf, size, "%zu fsync %s begins", i, fname);
        break;
    case EV_SYNC_END:
        snprintf(buf, size, "%zu fsync %s (begun at %" PRIu64 ") returned", i, fname, e->data);
        break;
    case EV_MARK:
        snprintf(buf, size, "%zu mark %" PRIu64, i, e->data);
        break;
    default:
        snprintf(buf, size, "%zu ?", i);
    }
}

/* ---- libc interposers, for liblmdb's own I/O ---- */

static int (*real_open)(const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
    /* The casts go through void * as POSIX allows for dlsym(). */
    *(void **)&real_open = dlsym(RTLD_NEXT, "open");
    *(void **)&real_close = dlsym(RTLD_NEXT, "close");
    *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    *(void **)&real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    *(void **)&real_writev = dlsym(RTLD_NEXT, "writev");
    *(void **)&real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    *(void **)&real_fsync = dlsym(RTLD_NEXT, "fsync");
    *(void **)&real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    *(void **)&real_msync = dlsym(RTLD_NEXT, "msync");
}

static void need_real(void)
{
    pthread_once(&real_once, find_real);
}

/* The recorded file behind fd, or -1. */
static int32_t tracked(int fd)
{
    if (fd < 0 || fd >= MAX_FD || !atomic_load_explicit(&recording, memory_order_relaxed))
        return -1;
    return atomic_load_explicit(&fd_file[fd], memory_order_relaxed) - 1;
}

int open(const char *path, int flags, ...)
{
    need_real();
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    bool existed = true;
    bool ours = atomic_load_explicit(&recording, memory_order_relaxed) && !(flags & O_DIRECTORY);
    const char *name = NULL;
    if (ours) {
        pthread_mutex_lock(&lock);
        name = cur ? name_in_dir(path) : NULL;
        existed = name && find_binding(name) != NULL;
        pthread_mutex_unlock(&lock);
        ours = name != NULL;
    }
    int fd = real_open(path, flags, mode);
    if (fd < 0 || !ours || fd >= MAX_FD)
        return fd;
    struct stat st;
    pthread_mutex_lock(&lock);
    if (cur && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
        int32_t f = file_of_ino(dev, ino, true);
        if (f < 0 || !existed)
            f = created(dev, ino, name, true);
        else if (flags & O_TRUNC)
            push((struct tr_event){.kind = EV_TRUNC, .file = f, .off = 0});
        cur->files[f].lmdb = true;
        atomic_store(&fd_dsync[fd], (flags & (O_DSYNC | O_SYNC)) != 0);
        atomic_store(&fd_file[fd], f + 1);
    }
    pthread_mutex_unlock(&lock);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return open(path, flags, mode);
}

int close(int fd)
{
    need_real();
    if (fd >= 0 && fd < MAX_FD && atomic_load_explicit(&fd_file[fd], memory_order_relaxed))
        atomic_store(&fd_file[fd], 0);
    return real_close(fd);
}

static void record_write(int fd, int32_t f, const struct iovec *iov, int iovcnt, off_t off,
                         ssize_t n)
{
    if (n <= 0)
        return;
    pthread_mutex_lock(&lock);
    if (cur && atomic_load(&fd_file[fd]) == f + 1)
        push((struct tr_event){.kind = EV_WRITE,
                               .dsync = atomic_load(&fd_dsync[fd]),
                               .file = f,
                               .off = (uint64_t)off,
                               .len = (uint64_t)n,
                               .data = add_bytes(iov, iovcnt, (size_t)n)});
    pthread_mutex_unlock(&lock);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    need_real();
    int32_t f = tracked(fd);
    ssize_t n = real_pwrite(fd, buf, len, off);
    if (f >= 0) {
        struct iovec iov = {(void *)buf, len};
        record_write(fd, f, &iov, 1, off, n);
    }
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    return pwrite(fd, buf, len, (off_t)off);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    need_real();
    int32_t f = tracked(fd);
    off_t off = f >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t n = real_write(fd, buf, len);
    if (f >= 0) {
        if (fcntl(fd, F_GETFL) & O_APPEND)
            off = lseek(fd, 0, SEEK_CUR) - (n > 0 ? n : 0);
        struct iovec iov = {(void *)buf, len};
        record_write(fd, f, &iov, 1, off, n);
    }
    return n;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    need_real();
    int32_t f = tracked(fd);
    off_t off = f >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
    ssize_t n = real_writev(fd, iov, iovcnt);
    if (f >= 0) {
        if (fcntl(fd, F_GETFL) & O_APPEND)
            off = lseek(fd, 0, SEEK_CUR) - (n > 0 ? n : 0);
        record_write(fd, f, iov, iovcnt, off, n);
    }
    return n;
}

int ftruncate(int fd, off_t len)
{
    need_real();
    int32_t f = tracked(fd);
    int rc = real_ftruncate(fd, len);
    if (f >= 0 && rc == 0) {
        pthread_mutex_lock(&lock);
        if (cur)
            push((struct tr_event){.kind = EV_TRUNC, .file = f, .off = (uint64_t)len});
        pthread_mutex_unlock(&lock);
    }
    return rc;
}

int ftruncate64(int fd, off64_t len)
{
    return ftruncate(fd, (off_t)len);
}

static int traced_sync(int fd, int (*real)(int))
{
    int32_t f = tracked(fd);
    if (f < 0)
        return real(fd);
    long begun = -1;
    pthread_mutex_lock(&lock);
    if (cur)
        begun = push((struct tr_event){.kind = EV_SYNC_BEGIN, .file = f});
    pthread_mutex_unlock(&lock);
    int rc = real(fd);
    pthread_mutex_lock(&lock);
    if (cur && rc == 0 && begun >= 0)
        push((struct tr_event){.kind = EV_SYNC_END, .file = f, .data = (uint64_t)begun});
    pthread_mutex_unlock(&lock);
    return rc;
}

int fsync(int fd)
{
    need_real();
    return traced_sync(fd, real_fsync);
}

int fdatasync(int fd)
{
    need_real();
    return traced_sync(fd, real_fdatasync);
}

int msync(void *addr, size_t len, int flags)
{
    need_real();
    if (atomic_load_explicit(&recording, memory_order_relaxed)) {
        pthread_mutex_lock(&lock);
        if (cur)
            cur->msyncs++;
        pthread_mutex_unlock(&lock);
    }
    return real_msync(addr, len, flags);
}
