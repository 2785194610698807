/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Writes the seed corpora of the fuzz harnesses: gen_corpus DIR fills
 * DIR/resp, DIR/record, DIR/hint and DIR/recovery (which must exist). Run
 * by hand when a format changes; its output is checked in under
 * tests/fuzz/corpus.
 *
 * RESP seeds are commands (multibulk, inline, pipelines) and Redis's edge
 * cases, each behind the harness's two header bytes. Record, hint and
 * recovery seeds are the files of real stores: the kvs engine writes some
 * keys, removes one, then clears, compacts (which writes a hint) or not,
 * and writes again; each segment and hint is copied behind its harness's
 * flag bytes, plus a few records and hints made with the encoders directly.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engines/log/hint.h"
#include "engines/log/record.h"
#include "kvs/kvs.h"

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s\n", what);
    exit(1);
}

/* Write head (hlen bytes) then body (blen bytes) to dir/name. */
static void emit(const char *dir, const char *name, const void *head, size_t hlen, const void *body,
                 size_t blen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(head, 1, hlen, f) != hlen || fwrite(body, 1, blen, f) != blen ||
        fclose(f) != 0)
        die(path);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *p = malloc(n ? (size_t)n : 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void gen_resp(const char *dir)
{
    static const struct {
        const char *name;
        unsigned char head[4]; /* limits, split count, splits */
        size_t hlen;
        const char *body;
    } seeds[] = {
        {"set", {0, 0}, 2, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"},
        {"get-bytewise", {0, 1, 0}, 3, "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"},
        {"pipeline",
         {0, 2, 2, 6},
         4,
         "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n*3\r\n$4\r\nMSET\r\n$1\r\na\r\n$"
         "1\r\nb\r\n"},
        {"inline", {0, 1, 3}, 3, "SET k \"a \\x41\\n\" 'it\\'s'\r\nGET k\nPING\r\n\r\n"},
        {"inline-small-limits", {0x0d, 1, 1}, 3, "GET   abc\r\nDEL x\n"},
        {"mbulk-negative", {0, 0}, 2, "*-10\r\n*0\r\n*1\r\n$4\r\nPING\r\n"},
        {"mbulk-huge", {0, 0}, 2, "*3000000000\r\n"},
        {"bulk-bad", {0, 0}, 2, "*1\r\n$blabla\r\n"},
        {"bulk-huge", {0, 1, 4}, 3, "*1\r\n$2000000000\r\n"},
        {"expected-dollar", {0, 0}, 2, "*2\r\n$3\r\nGET\r\n:1\r\n"},
        {"bulk-small-limits", {0x60, 1, 0}, 3, "*2\r\n$2\r\nab\r\n$5\r\nabcde\r\n"},
        {"unbalanced", {0, 0}, 2, "SET \"abc\r\n"},
        {"replies", {0, 0}, 2, "+OK\r\n-ERR no\r\n:-42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n*-1\r\n"},
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        emit(dir, seeds[i].name, seeds[i].head, seeds[i].hlen, seeds[i].body,
             strlen(seeds[i].body));
}

/* The files of one store: the newest segment, a compaction output and
   its hint (any may be missing). */
struct store {
    void *newest, *output, *hint;
    size_t newest_len, output_len, hint_len;
};

/* Copy the segments and hints of the store in dir into the record and
   hint seeds, behind their flag bytes, with names starting with prefix;
   keep them in *st and empty dir. */
static void copy_store(const char *dir, const char *prefix, const char *rec_dir,
                       const char *hint_dir, struct store *st)
{
    DIR *d = opendir(dir);
    if (!d)
        die(dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096], seed[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(seed, sizeof(seed), "%s-%s", prefix, e->d_name);
        size_t len;
        unsigned long long id;
        unsigned sub;
        const char *ext = strrchr(e->d_name, '.');
        if (ext && strcmp(ext, ".log") == 0 && sscanf(e->d_name, "seg-%llu-%u", &id, &sub) == 2) {
            unsigned char flags = 4; /* SEG_HEAD */
            void *p = slurp(path, &len);
            emit(rec_dir, seed, &flags, 1, p, len);
            if (sub == 0) {
                st->newest = p;
                st->newest_len = len;
            } else {
                st->output = p;
                st->output_len = len;
            }
        } else if (ext && strcmp(ext, ".hint") == 0) {
            unsigned char flags[2] = {0, 0};
            void *p = slurp(path, &len);
            emit(hint_dir, seed, flags, 2, p, len);
            st->hint = p;
            st->hint_len = len;
            unsigned char name_flags[2] = {4, 0}; /* NAMES */
            snprintf(seed, sizeof(seed), "name-%s", e->d_name);
            emit(hint_dir, seed, name_flags, 2, e->d_name, strlen(e->d_name));
        }
        if (e->d_name[0] != '.')
            unlink(path);
    }
    closedir(d);
}

/* A fuzz_recovery seed: flags, A and H behind u16 lengths, then B. */
static void emit_recovery(const char *dir, const char *name, unsigned char flags, const void *a,
                          size_t alen, const void *h, size_t hlen, const void *b, size_t blen)
{
    unsigned char *p = malloc(1 + 2 + alen + 2 + hlen);
    if (!p)
        die("malloc");
    size_t n = 0;
    p[n++] = flags;
    p[n++] = (unsigned char)alen;
    p[n++] = (unsigned char)(alen >> 8);
    if (alen)
        memcpy(p + n, a, alen);
    n += alen;
    p[n++] = (unsigned char)hlen;
    p[n++] = (unsigned char)(hlen >> 8);
    memcpy(p + n, h, hlen);
    n += hlen;
    emit(dir, name, p, n, b, blen);
    free(p);
}

/* Recovery seeds from a store's files: as they are, with the newest
   segment torn, with a zeroed tail, and variations of the hint. */
static void gen_recovery(const char *dir, const char *prefix, const struct store *st)
{
    enum { HAS_A = 1, HAS_H = 2, HAS_B = 4, FIX_SEG = 8, GEN_HINT = 32, FIX_HINT = 64 };
    unsigned char flags = HAS_B | FIX_SEG | (st->output ? HAS_A | HAS_H | GEN_HINT : 0);
    size_t alen = st->output ? st->output_len : 0;
    char name[256];
    unsigned char b[4096] = {0};
    if (st->newest_len + 40 > sizeof(b))
        die("segment too big for a seed");
    memcpy(b, st->newest, st->newest_len);
    snprintf(name, sizeof(name), "%s", prefix);
    emit_recovery(dir, name, flags, st->output, alen, "", 0, b, st->newest_len);
    snprintf(name, sizeof(name), "%s-torn", prefix);
    emit_recovery(dir, name, flags, st->output, alen, "", 0, b, st->newest_len - 3);
    snprintf(name, sizeof(name), "%s-zero-tail", prefix);
    emit_recovery(dir, name, flags, st->output, alen, "", 0, b, st->newest_len + 40);
    if (st->output) {
        snprintf(name, sizeof(name), "%s-own-hint", prefix);
        emit_recovery(dir, name, HAS_A | HAS_H | HAS_B | FIX_SEG | FIX_HINT, st->output, alen,
                      st->hint, st->hint_len, b, st->newest_len);
        snprintf(name, sizeof(name), "%s-no-hint", prefix);
        emit_recovery(dir, name, HAS_A | HAS_B | FIX_SEG, st->output, alen, "", 0, b,
                      st->newest_len);
    }
}

static void set(kvs_db *db, const char *key, const char *val)
{
    if (kvs_db_set(db, kvs_slice_str(key), kvs_slice_str(val)) != 0)
        die("set");
}

/* Make three small stores and copy their files: each with overwrites and
   a removal, then nothing more, a clear, or a compaction (which writes a
   hint), then written again. */
static void gen_stores(const char *rec_dir, const char *hint_dir, const char *recovery_dir)
{
    char tmp[] = "/tmp/kvs-gen-corpus-XXXXXX";
    if (!mkdtemp(tmp))
        die("mkdtemp");
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = "kvs";
    opts.fsync = KVS_FSYNC_NO;
    static const char *const keys[] = {"user:1", "user:2", "", "k", "a-longer-key-here"};
    static const char *const names[] = {"plain", "cleared", "compacted"};
    for (int mode = 0; mode < 3; mode++) {
        kvs_db *db;
        char why[KVS_WHY_MAX];
        if (kvs_db_open(tmp, &opts, &db, why) != 0)
            die(why);
        for (int round = 0; round < 2; round++)
            for (size_t i = 0; i < 5; i++)
                set(db, keys[i], round ? "v2" : "");
        if (kvs_db_remove(db, kvs_slice_str("k")) != 0)
            die("remove");
        if (mode == 1 && kvs_db_clear(db) != 0)
            die("clear");
        if (mode == 2 && kvs_db_compact(db) != 0)
            die("compact");
        set(db, "after", names[mode]);
        if (kvs_db_remove(db, kvs_slice_str("user:1")) != 0 && mode != 1)
            die("remove");
        if (kvs_db_close(db) != 0)
            die("close");
        struct store st = {0};
        copy_store(tmp, names[mode], rec_dir, hint_dir, &st);
        if (!st.newest)
            die("no newest segment");
        gen_recovery(recovery_dir, names[mode], &st);
        free(st.newest);
        free(st.output);
        free(st.hint);
    }
    rmdir(tmp);
}

/* Records and a hint made with the encoders alone. */
static void gen_encoded(const char *rec_dir, const char *hint_dir)
{
    unsigned char rec[KLOG_REC_HDR_MAX + 8];
    unsigned char flags = 0;
    uint32_t hl =
        klog_rec_encode(rec, KLOG_REC_PUT, kvs_slice_of("key", 3), kvs_slice_of("value", 5), 0);
    memcpy(rec + hl, "keyvalue", 8);
    emit(rec_dir, "put", &flags, 1, rec, hl + 8);
    emit(rec_dir, "put-torn", &flags, 1, rec, hl + 8 - 3);
    hl = klog_rec_encode(rec, KLOG_REC_PUT, kvs_slice_of("key", 3), kvs_slice_of("value", 5),
                         INT64_C(1767225600000));
    memcpy(rec + hl, "keyvalue", 8);
    emit(rec_dir, "put-expiring", &flags, 1, rec, hl + 8);
    hl = klog_rec_encode(rec, KLOG_REC_DEL, kvs_slice_of("key", 3), kvs_slice_of(NULL, 0), 0);
    memcpy(rec + hl, "key", 3);
    flags = 3; /* FIX_HEAD | FIX_SUM */
    emit(rec_dir, "del-fixed", &flags, 1, rec, hl + 3);
    hl = klog_rec_encode(rec, KLOG_REC_CLEAR, kvs_slice_of(NULL, 0), kvs_slice_of(NULL, 0), 0);
    flags = 0;
    emit(rec_dir, "clear", &flags, 1, rec, hl);

    struct klog_hint_buf h = {NULL, 0, 0};
    if (klog_hint_begin(&h, 7, 1) != 0 || klog_hint_add(&h, 0x1234, 32, 40, 0) != 0 ||
        klog_hint_add(&h, 0x5678, 72, 24, INT64_C(1767225600000)) != 0 ||
        klog_hint_finish(&h, 96) != 0)
        die("hint");
    unsigned char hflags[2] = {0, 0};
    emit(hint_dir, "encoded", hflags, 2, h.data, h.len);
    hflags[0] = 3; /* FIX_SUM | FIX_MAGIC */
    emit(hint_dir, "encoded-fixed-empty", hflags, 2, h.data, KLOG_HINT_HDR + 8);
    klog_hint_buf_free(&h);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: gen_corpus DIR (with subfolders resp, record, hint, recovery)");
    char resp[4096], rec[4096], hint[4096], recovery[4096];
    snprintf(resp, sizeof(resp), "%s/resp", argv[1]);
    snprintf(rec, sizeof(rec), "%s/record", argv[1]);
    snprintf(hint, sizeof(hint), "%s/hint", argv[1]);
    snprintf(recovery, sizeof(recovery), "%s/recovery", argv[1]);
    gen_resp(resp);
    gen_stores(rec, hint, recovery);
    gen_encoded(rec, hint);
    return 0;
}
