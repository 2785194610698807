/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test 4: corruption that no crash explains (engine kvs).
 *
 * Refusal: a byte flipped in the middle of a segment (in a value, in a
 * record header, in a sealed older segment's last record, in a segment
 * header). kvs-server must exit non-zero without serving, with a message
 * naming the file and the offset of the bad record, and leave the file as
 * it was.
 *
 * Hints: a hint file flipped, truncated, emptied, or swapped with another
 * segment's. The server must start, say it ignored the hint, serve every
 * key right (the segment is scanned instead) and write the hint again, so
 * that the next start uses it without complaint.
 *
 * Reads: while the server runs, a byte of a stored record is flipped under
 * it (the file is shared-mapped, so the server sees the change at once): in
 * a value, a checksum, a header, a key; in a compaction output (opened
 * from its hint) and in a plain segment. GET and MGET must never return a
 * wrong value: an error reply is the right answer. Flipping the byte back
 * must make the key readable again.
 *
 * Restart over a damaged compaction output whose hint is intact: the hint
 * spares the scan, so the server may start; then a GET of the damaged key
 * must answer an error and every other key must be right.
 *
 * lmdb is not run here: LMDB keeps no checksums of its own, so a flipped
 * byte in data.mdb is returned as data or crashes the reader; there is
 * nothing of kvs's to test.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
#include "kvs/kvs.h"

#define NKEYS 300
#define SPREAD 300
#define MAX_SEGS 512
#define MAX_RECS 64

/* The expected content of the store built by build_hinted(). */
struct model {
    bool present[NKEYS];
    uint64_t ver[NKEYS];
};

static void key_name(char *out, unsigned k)
{
    snprintf(out, 32, "h%03u", k);
}

static size_t value_of(char *out, unsigned k, uint64_t ver)
{
    char key[32];
    key_name(key, k);
    return cx_value(out, key, 0, ver, SPREAD);
}

/* Where the last record of a key is. */
struct where {
    char name[CX_NAME_MAX];
    struct cx_rec rec;
    bool newest_seg; /* in the newest segment */
    bool last_in_seg;
};

/* Find the last record of key across the segments of dir (name order is
   replay order). */
static bool locate(const char *dir, const char *key, struct where *w)
{
    static char names[MAX_SEGS][CX_NAME_MAX];
    static struct cx_rec recs[MAX_RECS];
    int n = cx_list(dir, "seg-", ".log", names, MAX_SEGS);
    bool found = false;
    for (int i = 0; i < n && i < MAX_SEGS; i++) {
        char path[PATH_MAX + CX_NAME_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
            continue;
        size_t len;
        unsigned char *data = (unsigned char *)ts_read_file(path, &len);
        int nr = data ? cx_records(data, len, recs, MAX_RECS) : 0;
        const struct cx_rec *r = cx_find_rec(recs, nr < MAX_RECS ? nr : MAX_RECS, key);
        if (r) {
            if (snprintf(w->name, sizeof(w->name), "%s", names[i]) >= (int)sizeof(w->name))
                continue;
            w->rec = *r;
            w->newest_seg = i == n - 1;
            w->last_in_seg = r->off + r->len == len;
            found = true;
        }
        free(data);
    }
    return found;
}

/* ---- a store with plain segments and hinted compaction outputs ---- */

static bool build_hinted(const char *dir, struct model *m)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "kvs";
    o.segment_max_bytes = 4096;
    o.compact_min_stale_bytes = UINT64_MAX; /* only the compaction asked for */
    kvs_db *db = NULL;
    int rc = kvs_db_open(dir, &o, &db, NULL);
    char key[32], val[CX_VALUE_MAX];
    memset(m, 0, sizeof(*m));
    /* Everything, rewrites, removals; a compaction; then keys 0-39 are
       written again and 40-49 removed, in plain segments after it. */
    for (unsigned pass = 0; rc == 0 && pass < 4; pass++) {
        for (unsigned k = 0; rc == 0 && k < NKEYS; k++) {
            bool write = pass == 0 || (pass == 1 && k % 3 == 0) || (pass == 3 && k < 40);
            bool remove = (pass == 1 && k % 7 == 1) || (pass == 3 && k >= 40 && k < 50);
            key_name(key, k);
            if (write) {
                size_t len = value_of(val, k, ++m->ver[k]);
                rc = kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, len));
                m->present[k] = true;
            } else if (remove && m->present[k]) {
                rc = kvs_db_remove(db, kvs_slice_str(key));
                m->present[k] = false;
            }
        }
        if (rc == 0 && pass == 2)
            rc = kvs_db_compact(db);
    }
    int crc = kvs_db_close(db);
    return CK(rc == 0 && crc == 0, "building %s: %s", dir, kvs_strerror(rc ? rc : crc));
}

/* GET every key of the model through s; skip is a key not to check. */
static bool check_model(ts_server *s, const struct model *m, const char *what, int skip)
{
    redisContext *c = cx_connect(s, 10000);
    if (!CK(c != NULL, "%s: connect", what))
        return false;
    char key[32], val[CX_VALUE_MAX];
    bool ok = true;
    for (unsigned k = 0; k < NKEYS; k++) {
        if ((int)k == skip)
            continue;
        key_name(key, k);
        size_t len = value_of(val, k, m->ver[k]);
        ok = cx_expect(c, what, key, m->present[k] ? val : NULL, len) && ok;
    }
    redisFree(c);
    return ok;
}

/* ---- refusal ---- */

/* Print the line of the log at path that holds needle. */
static void print_line(const char *path, const char *needle)
{
    char *text = ts_read_file(path, NULL);
    char *p = text ? strstr(text, needle) : NULL;
    if (p) {
        char *end = strchr(p, '\n');
        printf("    \"%.*s\"\n", end ? (int)(end - p) : (int)strlen(p), p);
    }
    free(text);
}

struct refuse_case {
    const char *name;
    bool older_seg; /* damage the older segment, else the newest */
    int rec;        /* record index; -1: the segment's last record */
    int field;      /* byte offset in the record: 30 value, 17 klen, -1: segment header */
};

static void refuse_middle(void *arg)
{
    (void)arg;
    char root[PATH_MAX], pristine[PATH_MAX + 16], log[PATH_MAX + 16];
    if (!CK(ts_tmpdir_make(root) == 0, "temp dir"))
        return;
    snprintf(pristine, sizeof(pristine), "%s/pristine", root);
    snprintf(log, sizeof(log), "%s/server.log", root);
    /* Two server runs: 20 keys, then 10 more in a second segment. */
    ts_server s;
    char key[32], val[CX_VALUE_MAX];
    for (unsigned run = 0; run < 2; run++) {
        if (!CK(cx_start(&s, "kvs", pristine, NULL, log), "server start"))
            goto out;
        redisContext *c = cx_connect(&s, 10000);
        for (unsigned k = run * 20; c && k < run * 20 + (run ? 10 : 20); k++) {
            size_t len = value_of(val, k, 1);
            key_name(key, k);
            redisReply *r = redisCommand(c, "SET %s %b", key, val, len);
            CK(r && r->type == REDIS_REPLY_STATUS, "SET %s", key);
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
        CK(ts_server_stop(&s, 10000) == 0, "stop");
    }
    char names[4][CX_NAME_MAX];
    if (!CK(cx_list(pristine, "seg-", ".log", names, 4) == 2, "expected two segments"))
        goto out;
    static const struct refuse_case cases[] = {
        {"value byte of a record in the middle of the newest segment", false, 4, 30},
        {"key length of a record in the middle of the newest segment", false, 4, 17},
        {"value byte of the last record of an older segment", true, -1, 30},
        {"value byte of the first record of an older segment", true, 0, 30},
        {"header of an older segment", true, 0, -1},
    };
    unsigned refused = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct refuse_case *rc = &cases[i];
        char work[PATH_MAX + 16], seg[PATH_MAX + 96], wlog[PATH_MAX + 16];
        snprintf(work, sizeof(work), "%s/w%zu", root, i);
        snprintf(wlog, sizeof(wlog), "%s/w%zu.log", root, i);
        const char *name = names[rc->older_seg ? 0 : 1];
        snprintf(seg, sizeof(seg), "%s/%s", work, name);
        if (!CK(cx_copy_dir(pristine, work), "copy"))
            continue;
        size_t len;
        unsigned char *data = (unsigned char *)ts_read_file(seg, &len);
        struct cx_rec recs[32];
        int n = data ? cx_records(data, len, recs, 32) : 0;
        if (!CK(n >= 5 && n <= 32, "%s: %d records", name, n)) {
            free(data);
            continue;
        }
        const struct cx_rec *r = &recs[rc->rec < 0 ? n - 1 : rc->rec];
        uint64_t off = rc->field < 0 ? 2 : r->off + (uint64_t)rc->field;
        free(data);
        CK(cx_flip_byte(seg, off, 0x5a), "flip");
        data = (unsigned char *)ts_read_file(seg, &len);
        int st = cx_start_refused("kvs", work, wlog, 5000);
        bool ok = CK(st > 0 && st < 128, "%s: the server did not refuse (status %d)", rc->name, st);
        char where[64];
        snprintf(where, sizeof(where), "offset %" PRIu64, r->off);
        ok = CK(cx_file_has(wlog, name) && (rc->field < 0 || cx_file_has(wlog, where)),
                "%s: the message does not name %s and %s", rc->name, name, where) &&
             ok;
        size_t len2;
        unsigned char *after = (unsigned char *)ts_read_file(seg, &len2);
        ok = CK(after && data && len2 == len && !memcmp(after, data, len),
                "%s: the refused start changed %s", rc->name, name) &&
             ok;
        free(after);
        free(data);
        printf("  %s:\n", rc->name);
        print_line(wlog, "cannot open the store");
        if (!ok)
            cx_print_tail(wlog, 1000);
        refused += ok;
    }
    printf("  kvs: %u of %zu damaged stores refused with file and offset named, files untouched\n",
           refused, sizeof(cases) / sizeof(cases[0]));
out:
    ts_tmpdir_remove(root);
}

/* ---- bad hints ---- */

enum hint_damage { H_FLIP, H_TRUNCATE, H_EMPTY, H_SWAP };

static void bad_hints(void *arg)
{
    (void)arg;
    char root[PATH_MAX], pristine[PATH_MAX + 16];
    static struct model m;
    if (!CK(ts_tmpdir_make(root) == 0, "temp dir"))
        return;
    snprintf(pristine, sizeof(pristine), "%s/pristine", root);
    static char hints[MAX_SEGS][CX_NAME_MAX];
    int nh;
    if (!build_hinted(pristine, &m) ||
        !CK((nh = cx_list(pristine, "seg-", ".hint", hints, MAX_SEGS)) >= 3 && nh < MAX_SEGS,
            "expected compaction outputs with hints"))
        goto out;
    static const char *const names[] = {"flipped byte", "truncated", "empty", "another segment's"};
    unsigned rebuilt = 0;
    for (int d = H_FLIP; d <= H_SWAP; d++) {
        char work[PATH_MAX + 16], log[PATH_MAX + 16], path[PATH_MAX + 96], other[PATH_MAX + 96];
        snprintf(work, sizeof(work), "%s/w%d", root, d);
        snprintf(log, sizeof(log), "%s/w%d.log", root, d);
        const char *victim = hints[nh / 2];
        snprintf(path, sizeof(path), "%s/%s", work, victim);
        snprintf(other, sizeof(other), "%s/%s", work, hints[nh / 2 + 1]);
        if (!CK(cx_copy_dir(pristine, work), "copy"))
            continue;
        size_t len;
        char *orig = ts_read_file(path, &len);
        bool damaged = orig != NULL;
        if (damaged && d == H_FLIP)
            damaged = cx_flip_byte(path, len / 2, 0x01);
        else if (damaged && d == H_TRUNCATE)
            damaged = truncate(path, (off_t)(len - 8)) == 0;
        else if (damaged && d == H_EMPTY)
            damaged = cx_write_file(path, "", 0);
        else if (damaged) {
            size_t olen;
            char *o = ts_read_file(other, &olen);
            damaged = o && cx_write_file(path, o, olen);
            free(o);
        }
        ts_server s;
        bool ok =
            CK(damaged, "damaging %s", victim) &&
            CK(cx_start(&s, "kvs", work, NULL, log), "%s hint: the server did not start", names[d]);
        if (ok) {
            printf("  %s hint:\n", names[d]);
            print_line(log, "ignoring hint");
            ok = CK(cx_file_has(log, "ignoring hint") && cx_file_has(log, victim),
                    "%s hint: the log does not say %s was ignored", names[d], victim);
            ok = check_model(&s, &m, names[d], -1) && ok;
            ok = CK(ts_server_stop(&s, 10000) == 0, "stop") && ok;
        }
        /* Rewritten: the next start takes it without complaint. */
        if (ok && CK(cx_start(&s, "kvs", work, NULL, log), "%s hint: no second start", names[d])) {
            ok = CK(!cx_file_has(log, "ignoring hint"), "%s hint: still ignored after rewriting",
                    names[d]);
            ok = check_model(&s, &m, names[d], -1) && ok;
            ok = CK(ts_server_stop(&s, 10000) == 0, "stop") && ok;
            size_t nlen;
            char *now = ts_read_file(path, &nlen);
            if (now && orig && (nlen != len || memcmp(now, orig, len)))
                printf("  note: the rebuilt %s differs from the one compaction wrote\n", victim);
            free(now);
        }
        if (!ok)
            cx_print_tail(log, 1500);
        rebuilt += ok;
        free(orig);
    }
    printf("  kvs: %u of 4 damaged hints ignored and rebuilt, %d hints in the store, %u keys "
           "checked per start\n",
           rebuilt, nh, NKEYS);
out:
    ts_tmpdir_remove(root);
}

/* ---- reads of damaged records while the server runs ---- */

struct read_case {
    const char *name;
    unsigned key;
    int field; /* byte of the record to flip: 0 checksum, 21 vlen, 25 key, 40 value */
};

static void damaged_reads(void *arg)
{
    (void)arg;
    char root[PATH_MAX], work[PATH_MAX + 16], log[PATH_MAX + 16];
    static struct model m;
    if (!CK(ts_tmpdir_make(root) == 0, "temp dir"))
        return;
    snprintf(work, sizeof(work), "%s/data", root);
    snprintf(log, sizeof(log), "%s/server.log", root);
    ts_server s;
    if (!build_hinted(work, &m) || !CK(cx_start(&s, "kvs", work, NULL, log), "server start"))
        goto out;
    /* Keys 0-39 were last written after the compaction (plain segments);
       key 201 (201 % 3 == 0) was rewritten before it, so it lives in a
       compaction output. */
    static const struct read_case cases[] = {
        {"value byte, compaction output", 201, 40},   {"value byte, plain segment", 12, 40},
        {"checksum byte, compaction output", 205, 0}, {"checksum byte, plain segment", 15, 0},
        {"value length, compaction output", 207, 21}, {"value length, plain segment", 18, 21},
        {"key byte, compaction output", 210, 25},     {"key byte, plain segment", 21, 25},
    };
    redisContext *c = cx_connect(&s, 10000);
    unsigned errors = 0, nils = 0, wrong = 0;
    for (size_t i = 0; c && i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct read_case *rc = &cases[i];
        char key[32], val[CX_VALUE_MAX], path[PATH_MAX + 96];
        key_name(key, rc->key);
        size_t len = value_of(val, rc->key, m.ver[rc->key]);
        struct where w;
        if (!CK(m.present[rc->key] && locate(work, key, &w), "%s: cannot find %s", rc->name, key))
            continue;
        CK((strstr(w.name, "-0000.log") == NULL) == (rc->key >= 50), "%s: %s is in %s", rc->name,
           key, w.name);
        snprintf(path, sizeof(path), "%s/%s", work, w.name);
        uint64_t off = w.rec.off + (uint64_t)rc->field;
        cx_expect(c, rc->name, key, val, len);
        CK(cx_flip_byte(path, off, 0x20), "flip");
        redisReply *r = redisCommand(c, "GET %s", key);
        if (!CK(r != NULL, "%s: connection lost", rc->name))
            break;
        bool is_wrong = r->type == REDIS_REPLY_STRING;
        errors += r->type == REDIS_REPLY_ERROR;
        nils += r->type == REDIS_REPLY_NIL;
        wrong += is_wrong;
        CK(r->type == REDIS_REPLY_ERROR || (rc->field == 25 && r->type == REDIS_REPLY_NIL),
           "%s: GET %s of a damaged record answered type %d (%.40s)", rc->name, key, r->type,
           is_wrong || r->type == REDIS_REPLY_ERROR ? r->str : "");
        if (r->type == REDIS_REPLY_NIL)
            printf("  note: %s: GET of the damaged record answers nil, not an error\n", rc->name);
        freeReplyObject(r);
        /* MGET with a good key on each side. */
        char k1[32], k2[32];
        key_name(k1, 100);
        key_name(k2, 150);
        r = redisCommand(c, "MGET %s %s %s", k1, key, k2);
        if (!CK(r != NULL, "%s: connection lost on MGET", rc->name))
            break;
        bool mget_ok =
            r->type == REDIS_REPLY_ERROR || (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                                             r->element[1]->type != REDIS_REPLY_STRING);
        CK(mget_ok, "%s: MGET returned a value for the damaged record", rc->name);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[1]->type == REDIS_REPLY_NIL)
            printf("  note: %s: MGET answers nil for the damaged record\n", rc->name);
        freeReplyObject(r);
        CK(cx_flip_byte(path, off, 0x20), "flip back");
        cx_expect(c, rc->name, key, val, len);
    }
    if (c)
        redisFree(c);
    check_model(&s, &m, "after the damaged reads", -1);
    CK(ts_server_stop(&s, 10000) == 0, "stop");
    printf("  kvs: %zu damaged records read while serving: %u error replies, %u nil, %u wrong "
           "values\n",
           sizeof(cases) / sizeof(cases[0]), errors, nils, wrong);
out:
    ts_tmpdir_remove(root);
}

/* ---- restart over a damaged, hinted compaction output ---- */

static void damaged_output_restart(void *arg)
{
    (void)arg;
    char root[PATH_MAX], work[PATH_MAX + 16], log[PATH_MAX + 16];
    static struct model m;
    if (!CK(ts_tmpdir_make(root) == 0, "temp dir"))
        return;
    snprintf(work, sizeof(work), "%s/data", root);
    snprintf(log, sizeof(log), "%s/server.log", root);
    char key[32], path[PATH_MAX + 96], where[64];
    struct where w;
    const unsigned victim = 201;
    key_name(key, victim);
    if (!build_hinted(work, &m) || !CK(locate(work, key, &w), "cannot find %s", key))
        goto out;
    snprintf(path, sizeof(path), "%s/%s", work, w.name);
    snprintf(where, sizeof(where), "offset %" PRIu64, w.rec.off);
    CK(cx_flip_byte(path, w.rec.off + 40, 0x20), "flip");
    ts_server s;
    if (!cx_start(&s, "kvs", work, NULL, log)) {
        CK(cx_file_has(log, w.name) && cx_file_has(log, where),
           "refused, but the message does not name %s and %s", w.name, where);
        printf("  kvs: the server refused to start over a damaged compaction output\n");
        goto out;
    }
    redisContext *c = cx_connect(&s, 10000);
    redisReply *r = c ? redisCommand(c, "GET %s", key) : NULL;
    CK(r && r->type == REDIS_REPLY_ERROR, "GET of the damaged record answered type %d",
       r ? r->type : -1);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    check_model(&s, &m, "damaged output", (int)victim);
    CK(ts_server_stop(&s, 10000) == 0, "stop");
    printf("  kvs: the server started over a damaged compaction output (%s, %s) because its "
           "hint spares the scan; GET of the damaged key answered an error, %u other keys "
           "right\n",
           w.name, where, NKEYS - 1);
out:
    ts_tmpdir_remove(root);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    cx_run("corruption in the middle: the server refuses to start", refuse_middle, NULL);
    cx_run("bad hint files: ignored and rebuilt", bad_hints, NULL);
    cx_run("damaged records read while the server runs", damaged_reads, NULL);
    cx_run("restart over a damaged compaction output", damaged_output_restart, NULL);
    printf("lmdb: not run; LMDB keeps no checksums, so there is no detection of its to test\n");
    return cx_finish();
}
