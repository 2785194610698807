/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-convert SRC_DIR DST_DIR --engine NAME: copy every key of a stopped
 * store into a new directory written by the named engine, then verify the
 * copy.
 *
 * The source is opened as a store (its lock refuses a directory a server
 * has open) and only read: a pass of kvs_db_scan() with values, each step's
 * pairs written to the destination as one kvs_db_write() batch, each key
 * with its expiry time (a key whose time has passed is not copied: it is
 * gone already). The
 * destination must be new or empty (kvs_db_open_new), is written without
 * fsyncs and synced once at the end. Verification reads both stores again
 * and compares the number of pairs and a checksum over them that does not
 * depend on their order (each engine iterates in its own), together with
 * the destination's own count of keys.
 *
 * Exit status: 0 copied and verified, 1 the copy or its verification
 * failed (the source is untouched; the message says what to delete),
 * 2 usage.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kvs/kvs.h"

/* Keys asked of the source per step, and the most bytes of keys and values
   a step's batch may hold before it is written. */
#define STEP_KEYS 1024
#define BATCH_BYTES (8u << 20)

static void usage(void)
{
    printf("usage: kvs-convert SRC_DIR DST_DIR --engine NAME\n"
           "Copy every key of the stopped store in SRC_DIR into DST_DIR, a new or\n"
           "empty directory, written by engine NAME (");
    for (size_t i = 0; i < kvs_engine_count(); i++)
        printf("%s%s", i ? ", " : "", kvs_engine_name(kvs_engine_at(i)));
    printf("), then verify the copy.\n"
           "\n"
           "  --engine NAME   the engine of the copy\n"
           "  -h, --help      print this help and exit\n"
           "  -V, --version   print the version and exit\n"
           "\n"
           "Exit status: 0 copied and verified, 1 failed (SRC_DIR untouched), 2 usage.\n");
}

/* A usage error: what is wrong, then the short usage, on stderr; exit 2. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvs-convert: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: kvs-convert SRC_DIR DST_DIR --engine NAME\n"
          "Try 'kvs-convert --help' for more information.\n",
          stderr);
    return 2;
}

/* The count of pairs and a checksum over them, whatever their order. */
struct digest {
    uint64_t pairs;
    uint64_t sum;
    uint64_t bytes;
};

static void digest_add(struct digest *d, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    /* The key's hash seeds the value's, so that a pair's bytes cannot be
       moved between its key and its value unnoticed; the expiry time seeds
       the key's. */
    uint64_t kh = XXH3_64bits_withSeed(key.data, key.len, key.len ^ (uint64_t)expire_at);
    d->sum += XXH3_64bits_withSeed(value.data, value.len, kh);
    d->pairs++;
    d->bytes += key.len + value.len;
}

/* A step's pairs, copied out of the source (scan lends them for the call
   only) to be written as one batch. */
struct batch {
    kvs_buf arena; /* keys and values back to back */
    kvs_op *ops;
    size_t n, cap;
    struct digest *d;
};

static int collect(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    struct batch *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : STEP_KEYS;
        kvs_op *ops = realloc(b->ops, cap * sizeof(*ops));
        if (!ops)
            return KVS_ENOMEM;
        b->ops = ops;
        b->cap = cap;
    }
    size_t at = b->arena.len;
    int rc = kvs_buf_reserve(&b->arena, at + key.len + value->len);
    if (rc != 0)
        return rc;
    /* Offsets for now: the arena may move while the step goes on. */
    if (key.len)
        memcpy((char *)b->arena.data + at, key.data, key.len);
    if (value->len)
        memcpy((char *)b->arena.data + at + key.len, value->data, value->len);
    b->arena.len = at + key.len + value->len;
    b->ops[b->n++] =
        (kvs_op){KVS_OP_SET, {(const void *)at, key.len}, {NULL, value->len}, 0, expire_at};
    digest_add(b->d, key, *value, expire_at);
    return 0;
}

/* Turn the batch's offsets into slices and write it. */
static int write_batch(kvs_db *dst, struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        size_t at = (size_t)b->ops[i].key.data;
        b->ops[i].key.data = (const char *)b->arena.data + at;
        b->ops[i].value.data = (const char *)b->arena.data + at + b->ops[i].key.len;
    }
    int rc = b->n ? kvs_db_write(dst, b->ops, b->n) : 0;
    b->n = 0;
    b->arena.len = 0;
    return rc;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Progress on a terminal, about five times a second. */
struct progress {
    bool on;
    uint64_t total;
    double start, last;
};

static void progress_show(struct progress *p, const struct digest *d, bool done)
{
    if (!p->on)
        return;
    double t = now_s();
    if (!done && t - p->last < 0.2)
        return;
    p->last = t;
    double pct = p->total ? 100.0 * (double)d->pairs / (double)p->total : 100.0;
    fprintf(stderr, "\rkvs-convert: %llu of %llu keys (%.0f%%), %.1f MiB, %.1f s",
            (unsigned long long)d->pairs, (unsigned long long)p->total, pct > 100 ? 100 : pct,
            (double)d->bytes / (1 << 20), t - p->start);
    if (done)
        fputc('\n', stderr);
}

/* Copy every pair of src into dst, digesting them. */
static int copy(kvs_db *src, kvs_db *dst, struct digest *d, struct progress *p)
{
    struct batch b = {.d = d};
    uint64_t cursor = 0;
    int rc;
    do {
        rc = kvs_db_scan(src, cursor, STEP_KEYS, KVS_SCAN_VALUES, collect, &b, &cursor);
        if (rc == 0 && (b.arena.len >= BATCH_BYTES || b.n >= STEP_KEYS || cursor == 0))
            rc = write_batch(dst, &b);
        progress_show(p, d, false);
    } while (rc == 0 && cursor != 0);
    kvs_buf_free(&b.arena);
    free(b.ops);
    return rc;
}

static int digest_one(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    digest_add(ctx, key, *value, expire_at);
    return 0;
}

/* Digest every pair of db. */
static int digest_all(kvs_db *db, struct digest *d)
{
    uint64_t cursor = 0;
    int rc;
    do
        rc = kvs_db_scan(db, cursor, STEP_KEYS, KVS_SCAN_VALUES, digest_one, d, &cursor);
    while (rc == 0 && cursor != 0);
    return rc;
}

static kvs_db *open_or_say(const char *dir, const kvs_options *o, bool fresh, const char *other)
{
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = fresh ? kvs_db_open_new(dir, other, o, &db, why) : kvs_db_open(dir, o, &db, why);
    if (rc != 0) {
        fprintf(stderr, "kvs-convert: %s\n", why[0] ? why : kvs_strerror(rc));
        return NULL;
    }
    return db;
}

int main(int argc, char **argv)
{
    const char *src_dir = NULL, *dst_dir = NULL, *engine = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage();
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            puts("kvs-convert " KVS_VERSION);
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (strcmp(arg, "--engine") == 0) {
            if (i + 1 == argc)
                return usage_error("option '%s' needs a value", arg);
            if (engine)
                return usage_error("option '%s' given twice", arg);
            engine = argv[++i];
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error("unknown option '%s'", arg);
        } else if (!src_dir) {
            src_dir = arg;
        } else if (!dst_dir) {
            dst_dir = arg;
        } else {
            return usage_error("unexpected argument '%s'", arg);
        }
    }
    if (!src_dir || !dst_dir)
        return usage_error("missing %s", src_dir ? "DST_DIR" : "SRC_DIR");
    if (!engine)
        return usage_error("missing --engine NAME");
    if (!kvs_engine_find(engine))
        return usage_error("unknown engine '%s'", engine);
    char src_engine[64];
    int rc = kvs_dir_engine(src_dir, src_engine, sizeof(src_engine));
    if (rc != 0) {
        fprintf(stderr, "kvs-convert: %s holds no store (%s)\n", src_dir,
                rc == KVS_ENOTFOUND ? "no ENGINE record" : kvs_strerror(rc));
        return 1;
    }

    kvs_options so, dopts;
    kvs_options_init(&so);
    so.fsync = KVS_FSYNC_NO;
    so.compact_min_stale_bytes = UINT64_MAX; /* only read: nothing to compact */
    kvs_options_init(&dopts);
    dopts.engine = engine;
    dopts.fsync = KVS_FSYNC_NO; /* one sync at the end */
    kvs_db *src = open_or_say(src_dir, &so, false, NULL);
    if (!src)
        return 1;
    kvs_stats st;
    struct progress p = {.on = isatty(STDERR_FILENO), .start = now_s()};
    if (kvs_db_stats(src, &st) == 0)
        p.total = st.keys;
    kvs_db *dst = open_or_say(dst_dir, &dopts, true, src_dir);
    if (!dst) {
        kvs_db_close(src);
        return 1;
    }

    struct digest copied = {0}, in_src = {0}, in_dst = {0};
    const char *step = "copying";
    rc = copy(src, dst, &copied, &p);
    progress_show(&p, &copied, true);
    if (rc == 0) {
        step = "syncing the destination";
        rc = kvs_db_sync(dst);
    }
    if (rc == 0) {
        step = "reading the source again";
        rc = digest_all(src, &in_src);
    }
    if (rc == 0) {
        step = "reading the destination";
        rc = digest_all(dst, &in_dst);
    }
    kvs_stats dst_st = {0};
    if (rc == 0) {
        step = "counting the destination's keys";
        rc = kvs_db_stats(dst, &dst_st);
    }
    int crc = kvs_db_close(dst);
    if (rc == 0 && crc != 0) {
        step = "closing the destination";
        rc = crc;
    }
    kvs_db_close(src);
    if (rc != 0) {
        fprintf(stderr,
                "kvs-convert: %s failed: %s\n"
                "kvs-convert: %s is untouched; %s holds an incomplete copy: delete it "
                "(rm -r %s) before trying again\n",
                step, kvs_strerror(rc), src_dir, dst_dir, dst_dir);
        return 1;
    }
    bool same = in_src.pairs == copied.pairs && in_src.sum == copied.sum &&
                in_dst.pairs == in_src.pairs && in_dst.sum == in_src.sum &&
                dst_st.keys == in_src.pairs;
    if (!same) {
        fprintf(stderr,
                "kvs-convert: verification failed: source %llu pairs (checksum %016llx), "
                "copied %llu, destination %llu pairs (checksum %016llx, %llu keys counted)\n"
                "kvs-convert: %s is untouched; delete %s (rm -r %s)\n",
                (unsigned long long)in_src.pairs, (unsigned long long)in_src.sum,
                (unsigned long long)copied.pairs, (unsigned long long)in_dst.pairs,
                (unsigned long long)in_dst.sum, (unsigned long long)dst_st.keys, src_dir, dst_dir,
                dst_dir);
        return 1;
    }
    printf("converted %s (%s) into %s (%s): %llu keys, %.1f MiB of keys and values, "
           "verified (checksum %016llx), %.2f s\n",
           src_dir, src_engine, dst_dir, engine, (unsigned long long)in_src.pairs,
           (double)in_src.bytes / (1 << 20), (unsigned long long)in_src.sum, now_s() - p.start);
    return 0;
}
