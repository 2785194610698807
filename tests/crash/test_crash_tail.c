/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Crash test 3: torn and garbage tails of the newest segment (engine kvs).
 *
 * A store holds KEYS keys and then one last small record. Its newest
 * segment is then damaged the ways a crash can leave it:
 *   - the last record cut at every length from 0 to its size - 1;
 *   - 12 KiB of zeros appended (a power loss after the size grew);
 *   - the last record cut and zeros after it;
 *   - random bytes appended (1 to 4096 of them).
 * The store must open, drop exactly the partial record or the garbage (the
 * file ends where the last whole record ends, every earlier key intact,
 * the cut key gone), and a write made after the repair must survive the
 * next crash and restart.
 *
 * Every cut length is run through libkvs (fast); a selection of them and
 * every appended-garbage case also through kvs-server: start on the damaged
 * directory, check every key with GET, SET a new key, kill -9, start again,
 * check again, stop.
 *
 * lmdb is not run here: LMDB updates pages in place and commits by writing
 * a meta page, so cutting data.mdb or appending to it does not model
 * anything a crash of LMDB can leave.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"
#include "kvs/kvs.h"

#define KEYS 30
#define SPREAD 200

struct pristine {
    char dir[PATH_MAX + 16];    /* the undamaged store */
    char seg_name[CX_NAME_MAX]; /* its newest segment */
    unsigned char *seg;
    size_t seg_len;
    struct cx_rec last; /* the last record in it, of key "last" */
};

/* A damage: keep `keep` bytes of the last record, then append `extra`
   bytes, zeros or random. */
struct damage {
    const char *name;
    uint64_t keep;
    size_t extra;
    bool random;
    bool last_survives; /* the last record is whole */
};

static void key_name(char *out, unsigned k)
{
    snprintf(out, 32, "t%02u", k);
}

static size_t value_of(char *out, const char *key)
{
    return cx_value(out, key, 0, 1, strcmp(key, "last") ? SPREAD : 0);
}

/* The store through libkvs or the server: KEYS keys, then "last". */
static bool build_lib(const char *dir)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "kvs";
    kvs_db *db = NULL;
    int rc = kvs_db_open(dir, &o, &db, NULL);
    char key[32], val[CX_VALUE_MAX];
    for (unsigned k = 0; rc == 0 && k <= KEYS; k++) {
        if (k < KEYS)
            key_name(key, k);
        else
            strcpy(key, "last");
        size_t len = value_of(val, key);
        rc = kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, len));
    }
    int crc = kvs_db_close(db);
    return CK(rc == 0 && crc == 0, "building %s: %s", dir, kvs_strerror(rc ? rc : crc));
}

static bool build_server(const char *dir, const char *log)
{
    ts_server s;
    if (!CK(cx_start(&s, "kvs", dir, NULL, log), "server did not start on %s", dir))
        return false;
    redisContext *c = cx_connect(&s, 10000);
    bool ok = CK(c != NULL, "connect");
    char key[32], val[CX_VALUE_MAX];
    for (unsigned k = 0; ok && k <= KEYS; k++) {
        if (k < KEYS)
            key_name(key, k);
        else
            strcpy(key, "last");
        size_t len = value_of(val, key);
        redisReply *r = redisCommand(c, "SET %s %b", key, val, len);
        ok = CK(r && r->type == REDIS_REPLY_STATUS, "SET %s", key);
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return CK(ts_server_stop(&s, 10000) == 0, "server stop") && ok;
}

static bool load_pristine(struct pristine *p)
{
    char path[PATH_MAX];
    static struct cx_rec recs[KEYS + 8];
    if (!CK(cx_newest_seg(p->dir, path), "no segment in %s", p->dir))
        return false;
    snprintf(p->seg_name, sizeof(p->seg_name), "%s", strrchr(path, '/') + 1);
    p->seg = (unsigned char *)ts_read_file(path, &p->seg_len);
    int n = p->seg ? cx_records(p->seg, p->seg_len, recs, KEYS + 8) : 0;
    if (!CK(n == KEYS + 1 && !strcmp(recs[n - 1].key, "last") &&
                recs[n - 1].off + recs[n - 1].len == p->seg_len,
            "%s does not end in the record of \"last\" (%d records)", path, n))
        return false;
    p->last = recs[n - 1];
    return true;
}

/* Copy the pristine store to work and damage its newest segment. */
static bool damage_copy(const struct pristine *p, const struct damage *d, const char *work,
                        uint64_t *rng)
{
    char seg[PATH_MAX + CX_NAME_MAX];
    if (!CK(snprintf(seg, sizeof(seg), "%s/%s", work, p->seg_name) < (int)sizeof(seg),
            "%s: path too long", d->name))
        return false;
    size_t len = (size_t)(p->last.off + d->keep);
    unsigned char *buf = malloc(len + d->extra + 1);
    if (!CK(buf && cx_copy_dir(p->dir, work), "copying %s", p->dir)) {
        free(buf);
        return false;
    }
    memcpy(buf, p->seg, len);
    for (size_t i = 0; i < d->extra; i++)
        buf[len + i] = d->random ? (unsigned char)cx_rand(rng) : 0;
    bool ok = CK(cx_write_file(seg, buf, len + d->extra), "writing %s", seg);
    free(buf);
    return ok;
}

/* ---- through libkvs ---- */

static bool lib_expect(kvs_db *db, const char *what, const char *key, bool present)
{
    char want[CX_VALUE_MAX];
    size_t len = value_of(want, key);
    kvs_buf v = KVS_BUF_INIT;
    int rc = kvs_db_get(db, kvs_slice_str(key), &v);
    bool ok = present ? CK(rc == 0 && v.len == len && !memcmp(v.data, want, len),
                           "%s: %s: %s or wrong value", what, key, kvs_strerror(rc))
                      : CK(rc == KVS_ENOTFOUND, "%s: %s should be gone: %s", what, key,
                           rc ? kvs_strerror(rc) : "present");
    kvs_buf_free(&v);
    return ok;
}

static bool lib_check(kvs_db *db, const char *what, bool last, bool after)
{
    char key[32];
    bool ok = true;
    for (unsigned k = 0; k < KEYS; k++) {
        key_name(key, k);
        ok = lib_expect(db, what, key, true) && ok;
    }
    ok = lib_expect(db, what, "last", last) && ok;
    return lib_expect(db, what, "after", after) && ok;
}

/* Open the damaged copy, check, write, close, reopen, check. */
static void lib_case(const struct pristine *p, const struct damage *d, const char *work,
                     uint64_t *rng)
{
    if (!damage_copy(p, d, work, rng))
        return;
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "kvs";
    o.log = cx_log_line;
    cx_log_clear();
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(work, &o, &db, why);
    if (!CK(rc == 0, "%s: open failed: %s (%s)", d->name, kvs_strerror(rc), why))
        return;
    char seg[PATH_MAX + CX_NAME_MAX];
    if (!CK(snprintf(seg, sizeof(seg), "%s/%s", work, p->seg_name) < (int)sizeof(seg),
            "%s: path too long", d->name))
        return;
    uint64_t end = d->last_survives ? p->seg_len : p->last.off;
    long long size = cx_file_size(seg);
    CK(size == (long long)end, "%s: segment is %lld bytes after open, expected %" PRIu64, d->name,
       size, end);
    bool damaged = (d->keep != 0 && d->keep != p->last.len) || d->extra;
    CK(!damaged || strstr(cx_log_text(), "cutting torn record"),
       "%s: nothing logged about the cut: \"%s\"", d->name, cx_log_text());
    lib_check(db, d->name, d->last_survives, false);
    char val[CX_VALUE_MAX];
    size_t len = value_of(val, "after");
    CK(kvs_db_set(db, kvs_slice_str("after"), kvs_slice_of(val, len)) == 0, "%s: set", d->name);
    kvs_db_close(db);
    rc = kvs_db_open(work, &o, &db, why);
    if (CK(rc == 0, "%s: second open failed: %s (%s)", d->name, kvs_strerror(rc), why)) {
        lib_check(db, d->name, d->last_survives, true);
        kvs_db_close(db);
    }
}

/* ---- through kvs-server ---- */

static bool srv_check(ts_server *s, const char *what, bool last, bool after)
{
    redisContext *c = cx_connect(s, 10000);
    if (!CK(c != NULL, "%s: connect", what))
        return false;
    char key[32], val[CX_VALUE_MAX];
    bool ok = true;
    for (unsigned k = 0; k <= KEYS + 1; k++) {
        bool want = true;
        if (k < KEYS) {
            key_name(key, k);
        } else {
            strcpy(key, k == KEYS ? "last" : "after");
            want = k == KEYS ? last : after;
        }
        size_t len = value_of(val, key);
        ok = cx_expect(c, what, key, want ? val : NULL, len) && ok;
    }
    redisFree(c);
    return ok;
}

static void srv_case(const struct pristine *p, const struct damage *d, const char *work,
                     const char *log, uint64_t *rng)
{
    if (!damage_copy(p, d, work, rng))
        return;
    ts_server s;
    if (!CK(cx_start(&s, "kvs", work, NULL, log), "%s: the server did not start", d->name)) {
        cx_print_tail(log, 1500);
        return;
    }
    bool damaged = (d->keep != 0 && d->keep != p->last.len) || d->extra;
    CK(!damaged || (cx_file_has(log, "cutting torn record") && cx_file_has(log, p->seg_name)),
       "%s: the server log does not name the cut in %s", d->name, p->seg_name);
    srv_check(&s, d->name, d->last_survives, false);
    redisContext *c = cx_connect(&s, 10000);
    char val[CX_VALUE_MAX];
    size_t len = value_of(val, "after");
    redisReply *r = c ? redisCommand(c, "SET after %b", val, len) : NULL;
    CK(r && r->type == REDIS_REPLY_STATUS, "%s: SET after the repair", d->name);
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    ts_server_kill(&s);
    if (CK(cx_start(&s, "kvs", work, NULL, log), "%s: no restart after kill -9", d->name)) {
        srv_check(&s, d->name, d->last_survives, true);
        CK(ts_server_stop(&s, 10000) == 0, "%s: stop", d->name);
    }
}

/* ---- the scenarios ---- */

struct tail_ctx {
    bool server;
    unsigned cases, cuts;
};

static void run_damage(struct tail_ctx *t, const struct pristine *p, const struct damage *d,
                       const char *root, uint64_t *rng)
{
    char work[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(work, sizeof(work), "%s/w%u", root, t->cases);
    snprintf(log, sizeof(log), "%s/w%u.log", root, t->cases);
    unsigned long before = cx_failures();
    if (t->server)
        srv_case(p, d, work, log, rng);
    else
        lib_case(p, d, work, rng);
    if (cx_failures() != before)
        printf("  case \"%s\" failed\n", d->name);
    t->cases++;
}

static void torn_tails(void *arg)
{
    struct tail_ctx *t = arg;
    char root[PATH_MAX];
    struct pristine p = {0};
    if (!CK(ts_tmpdir_make(root) == 0, "temp dir"))
        return;
    snprintf(p.dir, sizeof(p.dir), "%s/pristine", root);
    char log[PATH_MAX + 16];
    snprintf(log, sizeof(log), "%s/build.log", root);
    uint64_t rng = cx_seed() ^ 0x33;
    if (!(t->server ? build_server(p.dir, log) : build_lib(p.dir)) || !load_pristine(&p))
        goto out;
    uint64_t rl = p.last.len, kl = p.last.klen;
    char name[64];
    /* Cut lengths: all of them through libkvs; through the server the
       edges (inside the header, at its end, inside the key, the value). */
    uint64_t server_cuts[] = {0, 1, 11, 23, 24, 24 + kl / 2, 24 + kl, rl - 1};
    size_t ncuts = t->server ? sizeof(server_cuts) / sizeof(server_cuts[0]) : rl;
    for (size_t i = 0; i < ncuts; i++) {
        uint64_t keep = t->server ? server_cuts[i] : i;
        snprintf(name, sizeof(name), "last record cut to %" PRIu64 " of %" PRIu64 " bytes", keep,
                 rl);
        struct damage d = {name, keep, 0, false, false};
        run_damage(t, &p, &d, root, &rng);
        t->cuts++;
    }
    struct damage fixed[] = {
        {"12 KiB of zeros appended", rl, 12288, false, true},
        {"last record cut in its value, then 12 KiB of zeros", rl - 3, 12288, false, false},
        {"last record cut in its header, then 12 KiB of zeros", 10, 12288, false, false},
        {"1 random byte appended", rl, 1, true, true},
        {"23 random bytes appended", rl, 23, true, true},
        {"24 random bytes appended", rl, 24, true, true},
        {"100 random bytes appended", rl, 100, true, true},
        {"4096 random bytes appended", rl, 4096, true, true},
        {"last record cut in its value, then 100 random bytes", rl - 3, 100, true, false},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        run_damage(t, &p, &fixed[i], root, &rng);
    printf("  kvs via %s: %u damaged stores opened (%u cut lengths of a %" PRIu64
           "-byte record, %zu appended-garbage cases), %u keys each checked twice\n",
           t->server ? "kvs-server" : "libkvs", t->cases, t->cuts, rl,
           sizeof(fixed) / sizeof(fixed[0]), KEYS + 2);
out:
    free(p.seg);
    ts_tmpdir_remove(root);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    cx_seed();
    struct tail_ctx lib = {.server = false}, srv = {.server = true};
    cx_run("torn and garbage tails, every cut length (libkvs, engine kvs)", torn_tails, &lib);
    cx_run("torn and garbage tails (kvs-server, engine kvs)", torn_tails, &srv);
    printf("lmdb: not run; LMDB writes pages in place and commits with a meta page, so a cut or "
           "appended data.mdb models no crash it can suffer\n");
    return cx_finish();
}
