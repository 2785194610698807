/* SPDX-License-Identifier: BSD-3-Clause */
/* Segment files of the kvs engine; see segment.h. */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/fileio.h"
#include "kvs/error.h"
#include "record.h"

static const unsigned char seg_magic[8] = "KVSSEG\0";

static const char *const kind_ext[] = {
    [KLOG_FILE_SEG] = ".log",
    [KLOG_FILE_HINT] = ".hint",
    [KLOG_FILE_SEG_TMP] = ".log.tmp",
    [KLOG_FILE_HINT_TMP] = ".hint.tmp",
};

void klog_file_name(char *name, uint64_t id, unsigned sub, enum klog_file_kind kind)
{
    snprintf(name, KLOG_SEG_NAME_LEN, "seg-%010" PRIu64 "-%04u%s", id, sub, kind_ext[kind]);
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return true;
}

bool klog_file_parse(const char *name, uint64_t *id, unsigned *sub, enum klog_file_kind *kind)
{
    /* seg-NNNNNNNNNN-NNNN then an extension */
    if (strncmp(name, "seg-", 4) != 0 || !all_digits(name + 4, 10) || name[14] != '-' ||
        !all_digits(name + 15, 4))
        return false;
    const char *ext = name + 19;
    for (size_t k = 0; k < sizeof(kind_ext) / sizeof(kind_ext[0]); k++) {
        if (strcmp(ext, kind_ext[k]) == 0) {
            *id = strtoull(name + 4, NULL, 10);
            *sub = (unsigned)strtoul(name + 15, NULL, 10);
            *kind = (enum klog_file_kind)k;
            return true;
        }
    }
    return false;
}

void klog_seg_head_encode(unsigned char out[KLOG_SEG_HDR], uint64_t id, unsigned sub)
{
    memset(out, 0, KLOG_SEG_HDR);
    memcpy(out, seg_magic, sizeof(seg_magic));
    kvs__put_le32(out + 8, KLOG_SEG_VERSION);
    kvs__put_le32(out + 12, sub);
    kvs__put_le64(out + 16, id);
    kvs__put_le32(out + 28, XXH32(out, 28, 0));
}

int klog_seg_head_check(const unsigned char *p, uint64_t len, uint64_t id, unsigned sub,
                        const char **what)
{
    if (len < KLOG_SEG_HDR) {
        *what = "header cut short";
        return KVS_ECORRUPT;
    }
    if (memcmp(p, seg_magic, sizeof(seg_magic)) != 0) {
        *what = "not a segment (bad magic)";
        return KVS_ECORRUPT;
    }
    /* The checksum first: a damaged header is corruption, not a version
       from the future. */
    if (kvs__get_le32(p + 28) != XXH32(p, 28, 0)) {
        *what = "header checksum mismatch";
        return KVS_ECORRUPT;
    }
    uint32_t version = kvs__get_le32(p + 8);
    if (version < KLOG_SEG_VERSION_MIN || version > KLOG_SEG_VERSION) {
        *what = "unsupported segment format version";
        return KVS_EVERSION;
    }
    if (kvs__get_le64(p + 16) != id || kvs__get_le32(p + 12) != sub) {
        *what = "header names another segment";
        return KVS_ECORRUPT;
    }
    return 0;
}

static struct klog_seg *seg_new(uint64_t id, unsigned sub, int fd)
{
    struct klog_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = id;
    s->sub = sub;
    s->fd = fd;
    atomic_init(&s->size, 0);
    atomic_init(&s->synced, false);
    return s;
}

static int seg_map(struct klog_seg *s, uint64_t len)
{
    if (len == 0)
        return 0;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, s->fd, 0);
    if (p == MAP_FAILED)
        return kvs_err_from_errno(errno);
    s->map = p;
    s->map_len = len;
    return 0;
}

int klog_seg_create(int dir_fd, uint64_t id, unsigned sub, enum klog_file_kind kind, uint64_t cap,
                    struct klog_seg **out)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, id, sub, kind);
    /* O_APPEND: after a failed write is cut off with ftruncate, the next
       write lands at the new end. O_EXCL: a name is never reused. */
    int fd = kvs__create(dir_fd, name, O_RDWR | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return fd;
    int rc = KVS_ENOMEM;
    struct klog_seg *s = seg_new(id, sub, fd);
    if (!s)
        goto out_unlink;
    unsigned char head[KLOG_SEG_HDR];
    klog_seg_head_encode(head, id, sub);
    struct iovec iov = {head, sizeof(head)};
    rc = kvs__writev_all(fd, &iov, 1);
    if (rc != 0)
        goto out_unlink;
    rc = seg_map(s, cap);
    if (rc != 0)
        goto out_unlink;
    s->cap = cap;
    atomic_store(&s->size, KLOG_SEG_HDR);
    *out = s;
    return 0;

out_unlink:
    kvs__unlink(dir_fd, name);
    if (s)
        s->fd = -1;
    klog_seg_free(s);
    close(fd);
    return rc;
}

int klog_seg_open(int dir_fd, uint64_t id, unsigned sub, struct klog_seg **out)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, id, sub, KLOG_FILE_SEG);
    int fd = openat(dir_fd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return kvs_err_from_errno(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = kvs_err_from_errno(errno);
        close(fd);
        return rc;
    }
    if ((uint64_t)st.st_size > KLOG_SEG_MAX_BYTES) {
        close(fd);
        return KVS_ECORRUPT;
    }
    struct klog_seg *s = seg_new(id, sub, fd);
    if (!s) {
        close(fd);
        return KVS_ENOMEM;
    }
    int rc = seg_map(s, (uint64_t)st.st_size);
    if (rc != 0) {
        klog_seg_free(s);
        return rc;
    }
    s->cap = (uint64_t)st.st_size;
    atomic_store(&s->size, (uint64_t)st.st_size);
    *out = s;
    return 0;
}

int klog_seg_truncate(struct klog_seg *s, uint64_t size)
{
    int rc = kvs__ftruncate(s->fd, (off_t)size);
    if (rc == 0)
        rc = kvs__fsync(s->fd);
    if (rc == 0)
        atomic_store(&s->size, size);
    return rc;
}

void klog_seg_free(struct klog_seg *s)
{
    if (!s)
        return;
    if (s->map)
        munmap((void *)s->map, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}
