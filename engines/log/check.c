/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's checker (kvs/check.h), reached through the engine table:
 * every segment file's header, every record's header check and checksum
 * (record.h), and each hint file against its segment (every entry names a
 * whole valid put of a key with that hash, and the hint lists every record
 * of the segment). Records are replayed in (id, sub) order, as an open
 * would, to count the live keys. A bad record in the newest segment that no
 * valid record follows is a torn tail (open cuts it off); any other bad
 * record is corruption (open refuses the store), and the scan skips to the
 * next offset where a valid record starts.
 *
 * With a salvage sink (kvs-check --repair), every readable record is
 * replayed into it in log order: torn tails and corrupt ranges are left out,
 * and the original directory is only ever read (mapped read-only).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hint.h"
#include "klog_db.h"
#include "kvs/check.h"
#include "listing.h"
#include "record.h"
#include "segment.h"

/* ---- the live keys, replayed as an open would ---- */

struct knode {
    struct knode *next;
    uint64_t hash;
    const unsigned char *key; /* into a segment's mapping */
    uint32_t klen;
    int64_t expire_at; /* of the key's newest put */
};

struct ktab {
    struct knode **b;
    size_t nb; /* a power of two, or 0 */
    size_t n;
};

static void ktab_clear(struct ktab *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        struct knode *k = t->b[i];
        while (k) {
            struct knode *next = k->next;
            free(k);
            k = next;
        }
        t->b[i] = NULL;
    }
    t->n = 0;
}

static void ktab_free(struct ktab *t)
{
    ktab_clear(t);
    free(t->b);
    t->b = NULL;
    t->nb = 0;
}

static struct knode **ktab_slot(struct ktab *t, uint64_t hash, const void *key, uint32_t klen)
{
    struct knode **p = &t->b[hash & (t->nb - 1)];
    for (; *p; p = &(*p)->next) {
        if ((*p)->hash == hash && (*p)->klen == klen && memcmp((*p)->key, key, klen) == 0)
            break;
    }
    return p;
}

static int ktab_grow(struct ktab *t)
{
    size_t nb = t->nb ? t->nb * 2 : 1024;
    struct knode **b = calloc(nb, sizeof(*b));
    if (!b)
        return KVS_ENOMEM;
    for (size_t i = 0; i < t->nb; i++) {
        struct knode *k = t->b[i];
        while (k) {
            struct knode *next = k->next;
            k->next = b[k->hash & (nb - 1)];
            b[k->hash & (nb - 1)] = k;
            k = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
    return 0;
}

static int ktab_put(struct ktab *t, const unsigned char *key, uint32_t klen, int64_t expire_at)
{
    if (t->n >= t->nb && ktab_grow(t) != 0)
        return KVS_ENOMEM;
    uint64_t hash = klog_key_hash(key, klen);
    struct knode **p = ktab_slot(t, hash, key, klen);
    if (*p) {
        (*p)->expire_at = expire_at;
        return 0;
    }
    struct knode *k = malloc(sizeof(*k));
    if (!k)
        return KVS_ENOMEM;
    *k = (struct knode){NULL, hash, key, klen, expire_at};
    *p = k;
    t->n++;
    return 0;
}

/* The live keys with an expiry time, and of them those whose time has
   passed (they read as absent; the server's active expiry removes them). */
static void ktab_expiry(const struct ktab *t, int64_t now, uint64_t *expires, uint64_t *expired)
{
    *expires = *expired = 0;
    for (size_t i = 0; i < t->nb; i++) {
        for (const struct knode *k = t->b[i]; k; k = k->next) {
            *expires += k->expire_at != 0;
            *expired += k->expire_at != 0 && k->expire_at <= now;
        }
    }
}

static void ktab_del(struct ktab *t, const unsigned char *key, uint32_t klen)
{
    if (t->nb == 0)
        return;
    struct knode **p = ktab_slot(t, klog_key_hash(key, klen), key, klen);
    if (*p) {
        struct knode *k = *p;
        *p = k->next;
        free(k);
        t->n--;
    }
}

/* ---- the directory ---- */

struct cseg {
    uint64_t id;
    unsigned sub;
    bool hint;
    const unsigned char *map; /* size bytes, or NULL when empty */
    uint64_t size;
};

/* Where a record starts, for checking a hint against its segment. */
struct crec {
    uint64_t off, len, hash;
    unsigned type;
    int64_t expire_at;
};

struct ctx {
    const char *dir;
    int dir_fd;
    FILE *out;
    struct kvs_check_report *r;
    const struct kvs_salvage *salvage;
    struct ktab keys;
    struct cseg *segs;
    size_t nsegs;
    struct crec *recs; /* of the segment being scanned, when it has a hint */
    size_t nrecs, recs_cap;
    char *why;
};

/* Report what open would delete or ignore (check's leftover_fn). */
static int report_leftover(void *ctx, const char *name, enum klog_leftover kind)
{
    struct ctx *c = ctx;
    if (kind == KLOG_LEFTOVER_FOREIGN) {
        fprintf(c->out, "ignored: %s/%s (not a file of the kvs engine)\n", c->dir, name);
        return 0;
    }
    fprintf(c->out, "leftover: %s/%s (%s; open deletes it)\n", c->dir, name,
            kind == KLOG_LEFTOVER_TMP ? "an interrupted compaction's"
                                      : "hint of a missing segment");
    c->r->leftovers++;
    return 0;
}

/* Collect the segments; report leftovers of interrupted compactions. */
static int list_dir(struct ctx *c)
{
    struct klog_listing l = {0};
    int rc = klog_list_dir(c->dir_fd, &l, report_leftover, c);
    if (rc == 0 && l.n) {
        c->segs = calloc(l.n, sizeof(*c->segs));
        if (!c->segs)
            rc = KVS_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        c->segs[c->nsegs++] =
            (struct cseg){.id = l.segs[i].id, .sub = l.segs[i].sub, .hint = l.segs[i].hint};
    klog_listing_free(&l);
    if (rc != 0)
        kvs__why(c->why, "cannot list %s: %s", c->dir, kvs_strerror(rc));
    return rc;
}

static int map_seg(struct ctx *c, struct cseg *s, const char *name)
{
    int fd = openat(c->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        kvs__why(c->why, "cannot open %s/%s: %s", c->dir, name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return KVS_EIO;
    }
    s->size = (uint64_t)st.st_size;
    if (s->size) {
        void *p = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            kvs__why(c->why, "cannot map %s/%s: %s", c->dir, name, strerror(errno));
            close(fd);
            return KVS_EIO;
        }
        s->map = p;
    }
    close(fd);
    return 0;
}

/* ---- records ---- */

static int apply(struct ctx *c, const struct klog_rec *rec)
{
    struct kvs_check_report *r = c->r;
    kvs_slice key = kvs_slice_of(rec->key, rec->klen);
    int rc = 0;
    r->records++;
    r->record_bytes += rec->len;
    switch (rec->type) {
    case KLOG_REC_PUT:
        r->puts++;
        rc = ktab_put(&c->keys, rec->key, rec->klen, rec->expire_at);
        if (rc == 0 && c->salvage)
            rc = c->salvage->set(c->salvage->ctx, key, kvs_slice_of(rec->val, rec->vlen),
                                 rec->expire_at);
        break;
    case KLOG_REC_DEL:
        r->dels++;
        ktab_del(&c->keys, rec->key, rec->klen);
        if (c->salvage)
            rc = c->salvage->remove(c->salvage->ctx, key);
        break;
    default:
        r->clears++;
        ktab_clear(&c->keys);
        if (c->salvage)
            rc = c->salvage->clear(c->salvage->ctx);
        break;
    }
    if (rc != 0) {
        kvs__why(c->why, "cannot salvage a record: %s", kvs_strerror(rc));
        return rc;
    }
    if (c->salvage)
        r->salvaged++;
    return 0;
}

static int note_rec(struct ctx *c, uint64_t off, const struct klog_rec *rec)
{
    if (c->nrecs == c->recs_cap) {
        size_t cap = c->recs_cap ? c->recs_cap * 2 : 256;
        struct crec *p = realloc(c->recs, cap * sizeof(*p));
        if (!p)
            return KVS_ENOMEM;
        c->recs = p;
        c->recs_cap = cap;
    }
    c->recs[c->nrecs++] =
        (struct crec){off, rec->len, klog_key_hash(rec->key, rec->klen), rec->type, rec->expire_at};
    return 0;
}

/* The first offset at or after from where a valid record starts, or size. */
static uint64_t next_valid(const struct cseg *s, uint64_t from)
{
    return klog_rec_find(s->map, s->size, from);
}

/* Scan the records of s from its header on. */
static int scan_seg(struct ctx *c, const struct cseg *s, const char *name, bool newest)
{
    uint64_t off = KLOG_SEG_HDR;
    c->nrecs = 0;
    while (off < s->size) {
        struct klog_rec rec;
        enum klog_rec_status st = klog_rec_decode(s->map + off, s->size - off, &rec);
        if (st == KLOG_REC_OK) {
            int rc = apply(c, &rec);
            if (rc == 0 && s->hint)
                rc = note_rec(c, off, &rec);
            if (rc != 0)
                return rc;
            off += rec.len;
            continue;
        }
        uint64_t next = next_valid(s, off + 1);
        if (next == s->size && newest) {
            fprintf(c->out,
                    "torn tail: %s/%s at offset %" PRIu64 " (%s, %" PRIu64
                    " bytes; open cuts it off)\n",
                    c->dir, name, off, klog_rec_status_str(st), s->size - off);
            c->r->torn++;
        } else if (next == s->size) {
            fprintf(c->out,
                    "corrupt record: %s/%s at offset %" PRIu64 " (%s; %" PRIu64
                    " bytes to the end of a sealed segment)\n",
                    c->dir, name, off, klog_rec_status_str(st), s->size - off);
            c->r->corrupt++;
            c->r->corrupt_bytes += s->size - off;
        } else {
            fprintf(c->out,
                    "corrupt record: %s/%s at offset %" PRIu64 " (%s; %" PRIu64
                    " bytes skipped to the next valid record at offset %" PRIu64 ")\n",
                    c->dir, name, off, klog_rec_status_str(st), next - off, next);
            c->r->corrupt++;
            c->r->corrupt_bytes += next - off;
        }
        off = next;
    }
    return 0;
}

static int by_off(const void *a, const void *b)
{
    const struct crec *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void bad_hint(struct ctx *c, const char *name, const char *what)
{
    fprintf(c->out, "bad hint: %s/%s (%s; open scans its segment instead)\n", c->dir, name, what);
    c->r->bad_hints++;
}

/* Check the hint of s against the records scan_seg() found in it. */
static void check_hint(struct ctx *c, const struct cseg *s)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, s->sub, KLOG_FILE_HINT);
    unsigned char *data;
    size_t len;
    c->r->hints++;
    if (klog_hint_read(c->dir_fd, name, &data, &len) != 0) {
        bad_hint(c, name, "unreadable");
        return;
    }
    struct klog_hint_view view;
    const char *what = klog_hint_parse(data, len, s->id, s->sub, s->size, &view);
    if (what) {
        bad_hint(c, name, what);
        goto out_free;
    }
    char msg[128];
    for (size_t i = 0; i < view.n; i++) {
        uint64_t hash;
        uint32_t off, rlen;
        int64_t at;
        klog_hint_entry(&view, i, &hash, &off, &rlen, &at);
        struct crec key = {.off = off};
        const struct crec *rec = bsearch(&key, c->recs, c->nrecs, sizeof(key), by_off);
        if (!rec || rec->len != rlen || rec->type != KLOG_REC_PUT || rec->hash != hash ||
            rec->expire_at != at) {
            snprintf(msg, sizeof(msg),
                     "entry %zu (offset %" PRIu32 ") is not a valid put of a key with its hash "
                     "and expiry time",
                     i, off);
            bad_hint(c, name, msg);
            goto out_free;
        }
        c->r->hint_entries++;
    }
    if (view.n != c->nrecs) {
        snprintf(msg, sizeof(msg), "lists %zu records, its segment holds %zu", view.n, c->nrecs);
        bad_hint(c, name, msg);
    }
out_free:
    free(data);
}

static int check_seg(struct ctx *c, struct cseg *s, bool newest)
{
    char name[KLOG_SEG_NAME_LEN];
    klog_file_name(name, s->id, s->sub, KLOG_FILE_SEG);
    int rc = map_seg(c, s, name);
    if (rc != 0)
        return rc;
    c->r->segments++;
    const char *what;
    if (klog_seg_head_check(s->map, s->size, s->id, s->sub, &what) != 0) {
        /* As recovery decides: a bad header with no whole record after it
           is a creation a crash cut short. */
        uint64_t from = s->size < KLOG_SEG_HDR ? s->size : KLOG_SEG_HDR;
        if (newest && klog_rec_find(s->map, s->size, from) == s->size) {
            fprintf(c->out, "torn tail: %s/%s at offset 0 (%s; open deletes the file)\n", c->dir,
                    name, s->size ? what : "empty");
            c->r->torn++;
            return 0;
        }
        fprintf(c->out, "corrupt header: %s/%s at offset 0 (%s)\n", c->dir, name, what);
        c->r->corrupt++;
        if (s->size <= KLOG_SEG_HDR)
            return 0;
    }
    rc = scan_seg(c, s, name, newest);
    if (rc == 0 && s->hint) {
        if (s->sub == 0)
            fprintf(c->out, "ignored: %s/%s.hint (a write-path segment; open scans it)\n", c->dir,
                    name);
        else
            check_hint(c, s);
    }
    return rc;
}

static void summary_kvs(struct ctx *c)
{
    struct kvs_check_report *r = c->r;
    fprintf(c->out, "verified: ENGINE record, segment headers, every record's header check and "
                    "checksum, hints against their segments\n");
    fprintf(c->out,
            "segments: %" PRIu64 ", records: %" PRIu64 " (%" PRIu64 " puts, %" PRIu64
            " removes, %" PRIu64 " clears, %" PRIu64 " bytes)\n",
            r->segments, r->records, r->puts, r->dels, r->clears, r->record_bytes);
    fprintf(c->out, "hints: %" PRIu64 " checked, %" PRIu64 " entries verified, %" PRIu64 " bad\n",
            r->hints, r->hint_entries, r->bad_hints);
    uint64_t expires, expired;
    ktab_expiry(&c->keys, kvs_now_ms(), &expires, &expired);
    fprintf(c->out, "live keys: %" PRIu64 "\n", r->live_keys);
    fprintf(c->out,
            "expiry: %" PRIu64 " live keys with an expiry time, %" PRIu64
            " of them past it (read as absent)\n",
            expires, expired);
    fprintf(c->out,
            "torn tails: %" PRIu64 ", corrupt: %" PRIu64 " (%" PRIu64 " bytes), leftovers: %" PRIu64
            "\n",
            r->torn, r->corrupt, r->corrupt_bytes, r->leftovers);
}

static int check_kvs(struct ctx *c)
{
    int rc = list_dir(c);
    for (size_t i = 0; rc == 0 && i < c->nsegs; i++)
        rc = check_seg(c, &c->segs[i], i + 1 == c->nsegs);
    c->r->live_keys = c->keys.n;
    c->r->problems += c->r->torn + c->r->corrupt + c->r->bad_hints;
    if (rc == 0)
        summary_kvs(c);
    return rc;
}

/* ---- the entry point ---- */

int klog_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
               struct kvs_check_report *r, char *why)
{
    struct ctx c = {
        .dir = dir, .dir_fd = dir_fd, .out = out, .r = r, .salvage = salvage, .why = why};
    int rc = check_kvs(&c);
    for (size_t i = 0; i < c.nsegs; i++) {
        if (c.segs[i].map)
            munmap((void *)c.segs[i].map, c.segs[i].size);
    }
    free(c.segs);
    free(c.recs);
    ktab_free(&c.keys);
    return rc;
}
