/* Hint files of the kvs engine; see hint.h. */
#include "hint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "engines/fileio.h"
#include "kvs/error.h"
#include "record.h"
#include "segment.h"

static const unsigned char hint_magic[8] = "KVSHINT";

static int reserve(struct log_hint_buf *h, size_t more)
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

int log_hint_begin(struct log_hint_buf *h, uint64_t id, unsigned sub)
{
    h->len = 0;
    int rc = reserve(h, LOG_HINT_HDR);
    if (rc != 0)
        return rc;
    unsigned char *p = h->data;
    memset(p, 0, LOG_HINT_HDR);
    memcpy(p, hint_magic, sizeof(hint_magic));
    log_put_le32(p + 8, LOG_HINT_VERSION);
    log_put_le32(p + 12, sub);
    log_put_le64(p + 16, id);
    h->len = LOG_HINT_HDR;
    return 0;
}

int log_hint_add(struct log_hint_buf *h, uint64_t hash, uint32_t off, uint32_t len)
{
    int rc = reserve(h, LOG_HINT_ENTRY);
    if (rc != 0)
        return rc;
    unsigned char *p = h->data + h->len;
    log_put_le64(p, hash);
    log_put_le32(p + 8, off);
    log_put_le32(p + 12, len);
    h->len += LOG_HINT_ENTRY;
    return 0;
}

int log_hint_finish(struct log_hint_buf *h, uint64_t seg_size)
{
    int rc = reserve(h, 8);
    if (rc != 0)
        return rc;
    log_put_le64(h->data + 24, seg_size);
    log_put_le64(h->data + h->len, XXH3_64bits(h->data, h->len));
    h->len += 8;
    return 0;
}

void log_hint_buf_free(struct log_hint_buf *h)
{
    free(h->data);
    h->data = NULL;
    h->len = h->cap = 0;
}

const char *log_hint_parse(const void *p, size_t len, uint64_t id, unsigned sub, uint64_t seg_size,
                           struct log_hint_view *view)
{
    const unsigned char *b = p;
    if (len < LOG_HINT_HDR + 8 || (len - LOG_HINT_HDR - 8) % LOG_HINT_ENTRY != 0)
        return "truncated";
    if (log_get_le64(b + len - 8) != XXH3_64bits(b, len - 8))
        return "checksum mismatch";
    if (memcmp(b, hint_magic, sizeof(hint_magic)) != 0)
        return "bad magic";
    if (log_get_le32(b + 8) != LOG_HINT_VERSION)
        return "unsupported version";
    if (log_get_le64(b + 16) != id || log_get_le32(b + 12) != sub)
        return "describes another segment";
    if (log_get_le64(b + 24) != seg_size)
        return "segment size differs";
    view->entries = b + LOG_HINT_HDR;
    view->n = (len - LOG_HINT_HDR - 8) / LOG_HINT_ENTRY;
    /* Entries must lie inside the segment and not overlap, in order: the
       engine reads records at these offsets without scanning. */
    uint64_t end = LOG_SEG_HDR;
    for (size_t i = 0; i < view->n; i++) {
        uint64_t hash;
        uint32_t off, rlen;
        log_hint_entry(view, i, &hash, &off, &rlen);
        if (off < end || rlen < LOG_REC_HDR || (uint64_t)off + rlen > seg_size)
            return "entry outside its segment";
        end = (uint64_t)off + rlen;
    }
    return NULL;
}

void log_hint_entry(const struct log_hint_view *view, size_t i, uint64_t *hash, uint32_t *off,
                    uint32_t *len)
{
    const unsigned char *e = view->entries + i * LOG_HINT_ENTRY;
    *hash = log_get_le64(e);
    *off = log_get_le32(e + 8);
    *len = log_get_le32(e + 12);
}

int log_hint_write(int dir_fd, const char *name, const struct log_hint_buf *h, bool *fsync_failed)
{
    *fsync_failed = false;
    int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return kvs_err_from_errno(errno);
    int rc = kvs__pwrite_all(fd, h->data, h->len, 0);
    if (rc == 0) {
        rc = kvs__fsync(fd);
        *fsync_failed = rc != 0;
    }
    close(fd);
    return rc;
}

int log_hint_read(int dir_fd, const char *name, unsigned char **data, size_t *len)
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
