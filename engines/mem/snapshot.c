/* SPDX-License-Identifier: BSD-3-Clause */
/* The mem engine's snapshot file: writing and reading it (snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/endian.h"
#include "core/fileio.h"
#include "kvs/engine.h"

static const unsigned char magic[8] = {'K', 'V', 'S', 'M', 'E', 'M', 'S', 'N'};

#define END_BYTES (KMEM_SNAP_BLOCK_HDR + KMEM_SNAP_END_LEN)
/* The largest payload a writer makes: a full block and one more record. */
#define MAX_PAYLOAD ((uint64_t)KMEM_SNAP_BLOCK + KMEM_SNAP_REC_HDR + KMEM_MAX_KEY + KMEM_MAX_VALUE)

/* The checksum of a block: its header's first 16 bytes, then the payload. */
static uint64_t block_sum(const unsigned char *hdr, const unsigned char *payload, size_t len)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr, 16);
    XXH3_64bits_update(&st, payload, len);
    return XXH3_64bits_digest(&st);
}

/* ---- writing ---- */

/* Room for n more bytes at the end of the buffer; the new bytes' start. */
static unsigned char *grow(struct kmem_snap_writer *w, size_t n)
{
    if (kvs_buf_reserve(&w->buf, w->buf.len + n) != 0)
        return NULL;
    unsigned char *p = (unsigned char *)w->buf.data + w->buf.len;
    w->buf.len += n;
    return p;
}

void kmem_snap_writer_init(struct kmem_snap_writer *w, int fd)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->open_at = SIZE_MAX;
    /* The header goes out with the first flush; a failed grow shows as
       KVS_ENOMEM there, since the buffer is then empty. */
    unsigned char *h = grow(w, KMEM_SNAP_HDR);
    if (h) {
        memset(h, 0, KMEM_SNAP_HDR);
        memcpy(h, magic, sizeof(magic));
        kvs__put_le32(h + 8, KMEM_SNAP_VERSION);
        kvs__put_le64(h + 24, XXH3_64bits(h, 24));
    }
}

void kmem_snap_writer_free(struct kmem_snap_writer *w)
{
    kvs_buf_free(&w->buf);
}

static void close_block(struct kmem_snap_writer *w)
{
    if (w->open_at == SIZE_MAX)
        return;
    unsigned char *h = (unsigned char *)w->buf.data + w->open_at;
    size_t len = w->buf.len - w->open_at - KMEM_SNAP_BLOCK_HDR;
    kvs__put_le32(h, KMEM_SNAP_RECORDS);
    kvs__put_le32(h + 4, w->open_records);
    kvs__put_le64(h + 8, len);
    kvs__put_le64(h + 16, block_sum(h, h + KMEM_SNAP_BLOCK_HDR, len));
    w->open_at = SIZE_MAX;
    w->blocks++;
}

int kmem_snap_add(struct kmem_snap_writer *w, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    if (w->buf.len < KMEM_SNAP_HDR && w->off == 0)
        return KVS_ENOMEM; /* the header did not fit */
    size_t need = KMEM_SNAP_REC_HDR + key.len + value.len;
    if (w->open_at == SIZE_MAX)
        need += KMEM_SNAP_BLOCK_HDR;
    size_t start = w->buf.len;
    unsigned char *p = grow(w, need);
    if (!p)
        return KVS_ENOMEM;
    if (w->open_at == SIZE_MAX) {
        w->open_at = start;
        w->open_records = 0;
        p += KMEM_SNAP_BLOCK_HDR;
    }
    kvs__put_le32(p, (uint32_t)key.len);
    kvs__put_le32(p + 4, (uint32_t)value.len);
    kvs__put_le64(p + 8, (uint64_t)expire_at);
    if (key.len)
        memcpy(p + KMEM_SNAP_REC_HDR, key.data, key.len);
    if (value.len)
        memcpy(p + KMEM_SNAP_REC_HDR + key.len, value.data, value.len);
    w->open_records++;
    w->records++;
    if (w->buf.len - w->open_at - KMEM_SNAP_BLOCK_HDR >= KMEM_SNAP_BLOCK)
        close_block(w);
    return 0;
}

int kmem_snap_flush(struct kmem_snap_writer *w, size_t min)
{
    if (w->buf.len == 0 || w->buf.len < min)
        return 0;
    close_block(w);
    int rc = kvs__pwrite_all(w->fd, w->buf.data, w->buf.len, w->off);
    if (rc != 0)
        return rc;
    w->off += (off_t)w->buf.len;
    w->buf.len = 0;
    return 0;
}

int kmem_snap_finish(struct kmem_snap_writer *w, int64_t cut_ms)
{
    if (w->buf.len < KMEM_SNAP_HDR && w->off == 0)
        return KVS_ENOMEM;
    close_block(w);
    unsigned char *h = grow(w, END_BYTES);
    if (!h)
        return KVS_ENOMEM;
    unsigned char *p = h + KMEM_SNAP_BLOCK_HDR;
    kvs__put_le64(p, w->records);
    kvs__put_le64(p + 8, w->blocks);
    kvs__put_le64(p + 16, (uint64_t)cut_ms);
    kvs__put_le32(h, KMEM_SNAP_END);
    kvs__put_le32(h + 4, 0);
    kvs__put_le64(h + 8, KMEM_SNAP_END_LEN);
    kvs__put_le64(h + 16, block_sum(h, p, KMEM_SNAP_END_LEN));
    return kmem_snap_flush(w, 0);
}

/* ---- reading ---- */

struct reader {
    int fd;
    const char *path;
    const struct kmem_snap_calls *c;
    char *why;
    uint64_t size;
    kvs_buf buf;
    uint64_t records, blocks, damaged;
};

/* Report damage at off: to the checker, or as the read's error. */
static int damage(struct reader *r, uint64_t off, uint64_t bytes, const char *what)
{
    if (r->c->damage) {
        r->c->damage(r->c->ctx, off, bytes, what);
        r->damaged++;
        return 0;
    }
    kvs__why(r->why, "snapshot %s is corrupt at offset %" PRIu64 ": %s", r->path, off, what);
    return KVS_ECORRUPT;
}

static int read_at(struct reader *r, void *p, size_t len, uint64_t off)
{
    int rc = kvs__pread_all(r->fd, p, len, (off_t)off);
    if (rc == KVS_ECORRUPT)
        kvs__why(r->why, "snapshot %s ends before offset %" PRIu64 " (it changed while read)",
                 r->path, off + len);
    else if (rc != 0)
        kvs__why(r->why, "cannot read snapshot %s at offset %" PRIu64 ": %s", r->path, off,
                 kvs_strerror(rc));
    return rc;
}

static int check_header(struct reader *r)
{
    unsigned char h[KMEM_SNAP_HDR];
    if (r->size < KMEM_SNAP_HDR + END_BYTES) {
        kvs__why(r->why,
                 "snapshot %s is corrupt at offset 0: %" PRIu64
                 " bytes, too short for a snapshot (cut short?)",
                 r->path, r->size);
        return KVS_ECORRUPT;
    }
    int rc = read_at(r, h, sizeof(h), 0);
    if (rc != 0)
        return rc;
    if (memcmp(h, magic, sizeof(magic)) != 0 || kvs__get_le64(h + 24) != XXH3_64bits(h, 24)) {
        kvs__why(r->why, "snapshot %s is corrupt at offset 0: not a mem snapshot header", r->path);
        return KVS_ECORRUPT;
    }
    if (kvs__get_le32(h + 8) != KMEM_SNAP_VERSION) {
        kvs__why(r->why, "snapshot %s has format version %" PRIu32 "; this build reads %u", r->path,
                 kvs__get_le32(h + 8), KMEM_SNAP_VERSION);
        return KVS_EVERSION;
    }
    return 0;
}

static int read_end(struct reader *r, struct kmem_snap_summary *sum)
{
    unsigned char e[END_BYTES];
    uint64_t off = r->size - END_BYTES;
    int rc = read_at(r, e, sizeof(e), off);
    if (rc != 0)
        return rc;
    const unsigned char *p = e + KMEM_SNAP_BLOCK_HDR;
    if (kvs__get_le32(e) != KMEM_SNAP_END || kvs__get_le64(e + 8) != KMEM_SNAP_END_LEN ||
        kvs__get_le64(e + 16) != block_sum(e, p, KMEM_SNAP_END_LEN)) {
        kvs__why(r->why,
                 "snapshot %s is corrupt at offset %" PRIu64
                 ": no end block there (the file was cut short or damaged)",
                 r->path, off);
        return KVS_ECORRUPT;
    }
    sum->records = kvs__get_le64(p);
    sum->blocks = kvs__get_le64(p + 8);
    sum->cut_ms = (int64_t)kvs__get_le64(p + 16);
    sum->bytes = r->size;
    return 0;
}

/* Hand the records of a checked payload to the caller. */
static int parse_records(struct reader *r, uint64_t off, const unsigned char *p, uint64_t len,
                         uint32_t n)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < KMEM_SNAP_REC_HDR)
            return damage(r, off, len, "a record runs past its block");
        uint32_t klen = kvs__get_le32(p + at), vlen = kvs__get_le32(p + at + 4);
        int64_t expire_at = (int64_t)kvs__get_le64(p + at + 8);
        if (klen > KMEM_MAX_KEY || vlen > KMEM_MAX_VALUE || expire_at < 0 ||
            len - at - KMEM_SNAP_REC_HDR < (uint64_t)klen + vlen)
            return damage(r, off, len, "a record's lengths are impossible");
        const unsigned char *k = p + at + KMEM_SNAP_REC_HDR;
        int rc = r->c->record(r->c->ctx, kvs_slice_of(k, klen), kvs_slice_of(k + klen, vlen),
                              expire_at, off + KMEM_SNAP_BLOCK_HDR + at);
        if (rc != 0)
            return rc;
        r->records++;
        at += KMEM_SNAP_REC_HDR + (uint64_t)klen + vlen;
    }
    return at == len ? 0 : damage(r, off, len, "bytes after a block's last record");
}

/* Read the block at *off and move *off past it. */
static int read_block(struct reader *r, uint64_t *off)
{
    uint64_t end = r->size - END_BYTES;
    unsigned char h[KMEM_SNAP_BLOCK_HDR];
    if (end - *off < KMEM_SNAP_BLOCK_HDR) {
        kvs__why(r->why, "snapshot %s is corrupt at offset %" PRIu64 ": a block header is cut off",
                 r->path, *off);
        return KVS_ECORRUPT;
    }
    int rc = read_at(r, h, sizeof(h), *off);
    if (rc != 0)
        return rc;
    uint64_t len = kvs__get_le64(h + 8);
    if (kvs__get_le32(h) != KMEM_SNAP_RECORDS || len > MAX_PAYLOAD ||
        len > end - *off - KMEM_SNAP_BLOCK_HDR) {
        kvs__why(r->why,
                 "snapshot %s is corrupt at offset %" PRIu64
                 ": a block header is damaged (the rest cannot be read)",
                 r->path, *off);
        return KVS_ECORRUPT;
    }
    rc = kvs_buf_reserve(&r->buf, len ? len : 1);
    if (rc != 0) {
        kvs__why(r->why, "out of memory reading snapshot %s", r->path);
        return rc;
    }
    unsigned char *p = r->buf.data;
    rc = read_at(r, p, len, *off + KMEM_SNAP_BLOCK_HDR);
    if (rc != 0)
        return rc;
    uint64_t at = *off;
    *off += KMEM_SNAP_BLOCK_HDR + len;
    r->blocks++;
    if (kvs__get_le64(h + 16) != block_sum(h, p, len))
        return damage(r, at, KMEM_SNAP_BLOCK_HDR + len, "a block fails its checksum");
    return parse_records(r, at, p, len, kvs__get_le32(h + 4));
}

int kmem_snap_read(int fd, const char *path, const struct kmem_snap_calls *c,
                   int (*ready)(void *ctx, const struct kmem_snap_summary *sum),
                   struct kmem_snap_summary *sum, char *why)
{
    struct reader r = {.fd = fd, .path = path, .c = c, .why = why};
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot stat snapshot %s: %s", path, strerror(errno));
        return rc;
    }
    r.size = (uint64_t)st.st_size;
    int rc = check_header(&r);
    if (rc == 0)
        rc = read_end(&r, sum);
    if (rc == 0 && ready)
        rc = ready(c->ctx, sum);
    if (rc != 0)
        return rc;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t off = KMEM_SNAP_HDR;
    while (rc == 0 && off < r.size - END_BYTES)
        rc = read_block(&r, &off);
    if (rc == 0 && r.damaged == 0 && (r.records != sum->records || r.blocks != sum->blocks)) {
        kvs__why(why,
                 "snapshot %s is corrupt at offset %" PRIu64 ": it holds %" PRIu64
                 " records in %" PRIu64 " blocks, its end block says %" PRIu64 " in %" PRIu64,
                 path, r.size - END_BYTES, r.records, r.blocks, sum->records, sum->blocks);
        rc = KVS_ECORRUPT;
    }
    kvs_buf_free(&r.buf);
    return rc;
}
