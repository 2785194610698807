/* SPDX-License-Identifier: BSD-3-Clause */
/* Hint files of the kvs engine; see hint.h. */
#include "hint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/fileio.h"
#include "kvs/error.h"
#include "record.h"
#include "segment.h"

static const unsigned char hint_magic[8] = "KVSHINT";

static int reserve(struct klog_hint_buf *h, size_t more)
{
    if (h->cap - h->len >= more)
        return 0;
    size_t cap = h->cap ? h->cap : 4096;
    while (cap - h->len < more)
        cap *= 2;
    unsigned char *p = realloc(h->data, cap);
    if (!p)
        return KVS_ENOMEM;
    h->data = p;
    h->cap = cap;
    return 0;
}

int klog_hint_begin(struct klog_hint_buf *h, uint64_t id, unsigned sub)
{
    h->len = 0;
    int rc = reserve(h, KLOG_HINT_HDR);
    if (rc != 0)
        return rc;
    unsigned char *p = h->data;
    memset(p, 0, KLOG_HINT_HDR);
    memcpy(p, hint_magic, sizeof(hint_magic));
    kvs__put_le32(p + 8, KLOG_HINT_VERSION);
    kvs__put_le32(p + 12, sub);
    kvs__put_le64(p + 16, id);
    h->len = KLOG_HINT_HDR;
    return 0;
}

int klog_hint_add(struct klog_hint_buf *h, uint64_t hash, uint32_t off, uint32_t len,
                  int64_t expire_at)
{
    int rc = reserve(h, KLOG_HINT_ENTRY);
    if (rc != 0)
        return rc;
    unsigned char *p = h->data + h->len;
    kvs__put_le64(p, hash);
    kvs__put_le32(p + 8, off);
    kvs__put_le32(p + 12, len);
    kvs__put_le64(p + 16, (uint64_t)expire_at);
    h->len += KLOG_HINT_ENTRY;
    return 0;
}

int klog_hint_finish(struct klog_hint_buf *h, uint64_t seg_size)
{
    int rc = reserve(h, 8);
    if (rc != 0)
        return rc;
    kvs__put_le64(h->data + 24, seg_size);
    kvs__put_le64(h->data + h->len, XXH3_64bits(h->data, h->len));
    h->len += 8;
    return 0;
}

void klog_hint_buf_free(struct klog_hint_buf *h)
{
    free(h->data);
    h->data = NULL;
    h->len = h->cap = 0;
}

const char *klog_hint_parse(const void *p, size_t len, uint64_t id, unsigned sub, uint64_t seg_size,
                            struct klog_hint_view *view)
{
    const unsigned char *b = p;
    if (len < KLOG_HINT_HDR + 8)
        return "truncated";
    if (kvs__get_le64(b + len - 8) != XXH3_64bits(b, len - 8))
        return "checksum mismatch";
    if (memcmp(b, hint_magic, sizeof(hint_magic)) != 0)
        return "bad magic";
    uint32_t version = kvs__get_le32(b + 8);
    if (version != 1 && version != KLOG_HINT_VERSION)
        return "unsupported version";
    view->entry = version == 1 ? KLOG_HINT_ENTRY_V1 : KLOG_HINT_ENTRY;
    if ((len - KLOG_HINT_HDR - 8) % view->entry != 0)
        return "truncated";
    if (kvs__get_le64(b + 16) != id || kvs__get_le32(b + 12) != sub)
        return "describes another segment";
    if (kvs__get_le64(b + 24) != seg_size)
        return "segment size differs";
    view->entries = b + KLOG_HINT_HDR;
    view->n = (len - KLOG_HINT_HDR - 8) / view->entry;
    /* Entries must lie inside the segment and not overlap, in order: the
       engine reads records at these offsets without scanning. */
    uint64_t end = KLOG_SEG_HDR;
    for (size_t i = 0; i < view->n; i++) {
        uint64_t hash;
        uint32_t off, rlen;
        int64_t at;
        klog_hint_entry(view, i, &hash, &off, &rlen, &at);
        if (off < end || rlen < KLOG_REC_HDR || (uint64_t)off + rlen > seg_size)
            return "entry outside its segment";
        if (at < 0)
            return "negative expiry time";
        end = (uint64_t)off + rlen;
    }
    return NULL;
}

void klog_hint_entry(const struct klog_hint_view *view, size_t i, uint64_t *hash, uint32_t *off,
                     uint32_t *len, int64_t *expire_at)
{
    const unsigned char *e = view->entries + i * view->entry;
    *hash = kvs__get_le64(e);
    *off = kvs__get_le32(e + 8);
    *len = kvs__get_le32(e + 12);
    *expire_at = view->entry == KLOG_HINT_ENTRY ? (int64_t)kvs__get_le64(e + 16) : 0;
}

int klog_hint_write(int dir_fd, const char *name, const struct klog_hint_buf *h, bool *fsync_failed)
{
    *fsync_failed = false;
    int fd = kvs__create(dir_fd, name, O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fd;
    int rc = kvs__pwrite_all(fd, h->data, h->len, 0);
    if (rc == 0) {
        rc = kvs__fsync(fd);
        *fsync_failed = rc != 0;
    }
    close(fd);
    return rc;
}

int klog_hint_read(int dir_fd, const char *name, unsigned char **data, size_t *len)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kvs_err_from_errno(errno);
    struct stat st;
    int rc = 0;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        rc = kvs_err_from_errno(errno);
        goto out_close;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        rc = KVS_ENOMEM;
        goto out_close;
    }
    rc = kvs__pread_all(fd, buf, (size_t)st.st_size, 0);
    if (rc != 0) {
        free(buf);
        goto out_close;
    }
    *data = buf;
    *len = (size_t)st.st_size;
out_close:
    close(fd);
    return rc;
}
