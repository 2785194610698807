/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer harness for the kvs engine's recovery: the engine opens a data
 * directory holding fuzzed files, which is where the record and hint
 * decoders meet the rules around them (torn tails, hints, headers).
 *
 * Input: byte 0 holds flags, then a compaction output A (u16 length, bytes)
 * and its hint H (u16 length, bytes), then the newest segment B (the rest).
 * They become seg-0000000001-0001.log/.hint and seg-0000000002-0000.log in
 * a directory on /dev/shm. Flags make valid inputs reachable: FIX_SEG writes
 * a valid segment header, FIX_RECS writes each record's header check and
 * checksum, GEN_HINT replaces H by the hint the engine would write for A;
 * TMP_FILES adds the leftovers of an interrupted compaction.
 *
 * The harness predicts the outcome from the format's rules (DESIGN.md: a
 * torn tail of the newest segment is cut, corruption anywhere else is
 * reported; a bad hint falls back to a scan) and replays the records into a
 * model. A bad record of the newest segment is its tail unless a valid
 * record starts anywhere after it; a newest segment whose header is bad
 * (cut short, zeros or garbage) with no whole record after it was torn
 * before its header was complete, and is deleted. The
 * store must open exactly when predicted, hold exactly the model's keys and
 * values, and hold them again when reopened (after the cut tail and the
 * rewritten hint). A hint with a valid checksum but arbitrary entries
 * cannot be predicted: then only "no crash" is checked.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "engines/log/hint.h"
#include "engines/log/record.h"
#include "engines/log/segment.h"
#include "fuzz.h"
#include "kvs/engine.h"
#include "kvs/kvs.h"

enum {
    HAS_A = 1,       /* write the compaction output A */
    HAS_H = 2,       /* write its hint */
    HAS_B = 4,       /* write the newest segment B */
    FIX_SEG = 8,     /* write valid segment headers */
    FIX_RECS = 16,   /* write valid record checks and checksums */
    GEN_HINT = 32,   /* the hint is the one the engine writes for A */
    FIX_HINT = 64,   /* write H's magic, version, identity, size, checksum */
    TMP_FILES = 128, /* add the .tmp files of an interrupted compaction */
};

/* The expected contents: keys with values, in a small array. */
struct model {
    struct entry {
        const unsigned char *key, *val;
        uint32_t klen, vlen;
        bool live;
        int64_t expire_at;
    } e[4096];
    size_t n;
};

static struct entry *find(struct model *m, const void *key, uint32_t klen)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].klen == klen && (klen == 0 || memcmp(m->e[i].key, key, klen) == 0))
            return &m->e[i];
    return NULL;
}

static void apply(struct model *m, const struct klog_rec *r)
{
    if (r->type == KLOG_REC_CLEAR) {
        for (size_t i = 0; i < m->n; i++)
            m->e[i].live = false;
        return;
    }
    struct entry *e = find(m, r->key, r->klen);
    if (!e) {
        CHECK(m->n < sizeof(m->e) / sizeof(m->e[0]));
        e = &m->e[m->n++];
        e->key = r->key;
        e->klen = r->klen;
    }
    e->live = r->type == KLOG_REC_PUT;
    e->val = r->val;
    e->vlen = r->vlen;
    e->expire_at = r->expire_at;
}

/* The clock the engine judges expiry by, fixed, so that a record's time is
   before or after it the same way in every run. */
#define NOW_MS (INT64_C(1) << 40)

static int64_t fixed_clock(void)
{
    return NOW_MS;
}

struct seg {
    unsigned char *p;
    size_t len;
    uint64_t id;
    unsigned sub;
};

/* Does a whole valid record start anywhere in s from offset from? */
static bool record_from(const struct seg *s, size_t from)
{
    for (size_t at = from; at < s->len; at++) {
        struct klog_rec r;
        if (klog_rec_decode(s->p + at, s->len - at, &r) == KLOG_REC_OK)
            return true;
    }
    return false;
}

static void fix_records(struct seg *s)
{
    for (size_t off = KLOG_SEG_HDR; off + KLOG_REC_HDR <= s->len;) {
        unsigned char *h = s->p + off;
        kvs__put_le32(h + 8, XXH32(h + 12, KLOG_REC_HDR - 12, 0));
        uint64_t hl = h[13] & KLOG_REC_EXPIRES ? KLOG_REC_HDR_MAX : KLOG_REC_HDR;
        uint64_t len = hl + (uint64_t)kvs__get_le32(h + 16) + kvs__get_le32(h + 20);
        if (len > s->len - off)
            return;
        kvs__put_le64(h, klog_rec_sum(h, h + hl, kvs__get_le32(h + 16),
                                      h + hl + kvs__get_le32(h + 16), kvs__get_le32(h + 20)));
        off += (size_t)len;
    }
}

enum outcome { OPENS, FAILS, UNKNOWN };

/*
 * Replay s into m as recovery would. Returns OPENS or FAILS; *len_after is
 * the segment's size once a torn tail is cut, *puts_only whether a hint can
 * describe it.
 */
static enum outcome scan(const struct seg *s, bool newest, struct model *m, size_t *len_after,
                         bool *puts_only)
{
    *len_after = s->len;
    *puts_only = true;
    const char *what;
    if (klog_seg_head_check(s->p, s->len, s->id, s->sub, &what) != 0) {
        *len_after = 0;
        size_t from = s->len < KLOG_SEG_HDR ? s->len : KLOG_SEG_HDR;
        return newest && !record_from(s, from) ? OPENS : FAILS;
    }
    for (size_t off = KLOG_SEG_HDR; off < s->len;) {
        struct klog_rec r;
        enum klog_rec_status st = klog_rec_decode(s->p + off, s->len - off, &r);
        if (st != KLOG_REC_OK) {
            /* A tail, unless a valid record starts anywhere after it. */
            bool torn = true;
            for (size_t at = off + 1; torn && at < s->len; at++)
                torn = klog_rec_decode(s->p + at, s->len - at, &r) != KLOG_REC_OK;
            *len_after = off;
            return newest && torn ? OPENS : FAILS;
        }
        *puts_only = *puts_only && r.type == KLOG_REC_PUT;
        apply(m, &r);
        off += (size_t)r.len;
    }
    return OPENS;
}

/* The hint the engine writes for s (scanned without fault). */
static void make_hint(const struct seg *s, struct klog_hint_buf *h)
{
    CHECK(klog_hint_begin(h, s->id, s->sub) == 0);
    for (size_t off = KLOG_SEG_HDR; off < s->len;) {
        struct klog_rec r;
        CHECK(klog_rec_decode(s->p + off, s->len - off, &r) == KLOG_REC_OK);
        CHECK(klog_hint_add(h, klog_key_hash(r.key, r.klen), (uint32_t)off, (uint32_t)r.len,
                            r.expire_at) == 0);
        off += (size_t)r.len;
    }
    CHECK(klog_hint_finish(h, s->len) == 0);
}

/* ---- the directory ---- */

static char dir[64];

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    char path[128];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            CHECK(unlink(path) == 0);
        }
    closedir(d);
}

static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

static void put_file(const char *name, const void *p, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(p, 1, len, f) == len && fclose(f) == 0);
}

/* Open the store; on success check it against m (when known) and close. */
static int open_and_check(const struct model *m, bool exact)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = "kvs";
    opts.fsync = KVS_FSYNC_NO;
    kvs_db *db;
    char why[KVS_WHY_MAX];
    int rc = kvs_db_open(dir, &opts, &db, why);
    if (rc != 0)
        return rc;
    kvs_buf v = KVS_BUF_INIT;
    size_t live = 0, expires = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct entry *e = &m->e[i];
        int g = kvs_db_get(db, kvs_slice_of(e->key, e->klen), &v);
        if (!exact) {
            CHECK(g == 0 || g == KVS_ENOTFOUND || g == KVS_ECORRUPT);
            continue;
        }
        /* Stored (and counted) until removed; read as absent once past
           its time. */
        live += e->live;
        expires += e->live && e->expire_at;
        bool readable = e->live && !(e->expire_at && e->expire_at <= NOW_MS);
        CHECK(g == (readable ? 0 : KVS_ENOTFOUND));
        CHECK(!readable ||
              (v.len == e->vlen && (e->vlen == 0 || memcmp(v.data, e->val, e->vlen) == 0)));
    }
    kvs_stats st;
    CHECK(kvs_db_stats(db, &st) == 0);
    CHECK(!exact || (st.keys == live && st.expires == expires));
    kvs_buf_free(&v);
    CHECK(kvs_db_close(db) == 0);
    return 0;
}

static const char *seg_a = "seg-0000000001-0001.log", *hint_a = "seg-0000000001-0001.hint",
                  *seg_b = "seg-0000000002-0000.log";

static size_t take(const uint8_t **in, size_t *n)
{
    if (*n < 2) {
        *n = 0;
        return 0;
    }
    size_t len = (*in)[0] | (size_t)(*in)[1] << 8;
    *in += 2;
    *n -= 2;
    return len < *n ? len : *n;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
    kvs__now_hook = fixed_clock;
    if (n < 1)
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/dev/shm/kvs-fuzz-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
        atexit(remove_dir);
    }
    unsigned flags = in[0];
    in++, n--;
    struct seg a = {NULL, take(&in, &n), 1, 1};
    a.p = fuzz_dup(in, a.len);
    in += a.len, n -= a.len;
    size_t hlen = take(&in, &n);
    unsigned char *h = fuzz_dup(in, hlen);
    in += hlen, n -= hlen;
    struct seg b = {fuzz_dup(in, n), n, 2, 0};

    struct seg *segs[2] = {flags & HAS_A ? &a : NULL, flags & HAS_B ? &b : NULL};
    for (int i = 0; i < 2; i++) {
        if (segs[i] && (flags & FIX_SEG) && segs[i]->len >= KLOG_SEG_HDR)
            klog_seg_head_encode(segs[i]->p, segs[i]->id, segs[i]->sub);
        if (segs[i] && (flags & FIX_RECS))
            fix_records(segs[i]);
    }

    /* Predict. A's hint, when it is valid, stands in for scanning A. */
    static struct model m;
    m.n = 0;
    enum outcome want = OPENS;
    bool exact = true;
    size_t after;
    bool puts_only;
    struct klog_hint_buf gen = {NULL, 0, 0};
    if (segs[0]) {
        enum outcome o = scan(&a, !segs[1], &m, &after, &puts_only);
        if ((flags & HAS_H) && (flags & GEN_HINT) && o == OPENS && after == a.len && puts_only) {
            make_hint(&a, &gen);
            free(h);
            h = fuzz_dup(gen.data, gen.len);
            hlen = gen.len;
        } else if ((flags & HAS_H) && (flags & FIX_HINT) && hlen >= KLOG_HINT_HDR + 8) {
            memcpy(h, "KVSHINT", 8);
            kvs__put_le32(h + 8, KLOG_HINT_VERSION);
            kvs__put_le32(h + 12, a.sub);
            kvs__put_le64(h + 16, a.id);
            kvs__put_le64(h + 24, a.len);
            kvs__put_le64(h + hlen - 8, XXH3_64bits(h, hlen - 8));
        }
        struct klog_hint_view view;
        if ((flags & HAS_H) && klog_hint_parse(h, hlen, a.id, a.sub, a.len, &view) == NULL &&
            !(gen.len == hlen && memcmp(gen.data, h, hlen) == 0)) {
            exact = false;
            want = UNKNOWN;
        } else if (o == FAILS) {
            want = FAILS;
        }
    }
    if (segs[1] && want == OPENS)
        want = scan(&b, true, &m, &after, &puts_only);

    empty_dir();
    if (segs[0])
        put_file(seg_a, a.p, a.len);
    if (flags & HAS_H) /* without A, an orphan the engine deletes */
        put_file(hint_a, h, hlen);
    if (segs[1])
        put_file(seg_b, b.p, b.len);
    if (flags & TMP_FILES) { /* the engine deletes them */
        put_file("seg-0000000003-0001.log.tmp", b.p, b.len);
        put_file("seg-0000000003-0001.hint.tmp", h, hlen);
    }

    int rc = open_and_check(&m, exact);
    if (want == OPENS)
        CHECK(rc == 0);
    else if (want == FAILS)
        CHECK(rc == KVS_ECORRUPT || rc == KVS_EVERSION);
    else
        CHECK(rc == 0 || rc == KVS_ECORRUPT || rc == KVS_EVERSION);
    /* Recovery is repeatable: reopening finds the same store. */
    if (rc == 0)
        CHECK(open_and_check(&m, exact) == 0);

    klog_hint_buf_free(&gen);
    free(a.p);
    free(b.p);
    free(h);
    return 0;
}
