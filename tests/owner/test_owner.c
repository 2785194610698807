/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which engine owns a data directory (engines/owner.c, engines/db.c): the
 * ENGINE record, refusals that name both engines and touch nothing, the
 * default engine of a fresh directory, engine files without a record, the
 * directory lock, and kvs_dir_engine().
 *
 * "Touches nothing" is checked by a snapshot of the directory taken before
 * and after: every entry's name, inode, size, mtime, ctime and content, and
 * the directory's own mtime and ctime.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvs/kvs.h"
#include "support/tmpdir.h"

static char root[PATH_MAX];    /* fresh per test, removed after */
static char dir[PATH_MAX + 8]; /* the data directory under test: root/data */
static kvs_db *db;
static kvs_db *other; /* an open that should have been refused */

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(root), 0, "mkdtemp failed");
    snprintf(dir, sizeof(dir), "%s/data", root);
}

static void free_snapshots(void);

static void teardown(void)
{
    kvs_db_close(other);
    kvs_db_close(db);
    db = other = NULL;
    free_snapshots();
    if (root[0])
        ts_tmpdir_remove(root);
}

TestSuite(owner, .init = setup, .fini = teardown, .timeout = 60);

static int open_as(const char *engine, kvs_db **out, char *why)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = KVS_FSYNC_NO;
    why[0] = '\0';
    return kvs_db_open(dir, &opts, out, why);
}

/* A store of engine name in dir holding key=value, closed again. */
static void make_store(const char *engine, const char *key, const char *value)
{
    char why[KVS_WHY_MAX];
    int rc = open_as(engine, &db, why);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", engine, kvs_err_name(rc), why);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str(key), kvs_slice_str(value)), 0);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
}

static void write_file(const char *name, const char *content)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    mkdir(dir, 0755);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(content, f);
    cr_assert_eq(fclose(f), 0);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            buf = realloc(buf, cap *= 2);
            cr_assert_not_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

struct entry {
    char name[256];
    struct stat st;
    char *content;
    size_t len;
};

struct snapshot {
    struct stat dir_st;
    struct entry e[32];
    size_t n;
};

/* Taken before and after a refused open; freed in teardown. */
static struct snapshot before, after;

static void free_snapshots(void)
{
    for (size_t i = 0; i < before.n; i++)
        free(before.e[i].content);
    for (size_t i = 0; i < after.n; i++)
        free(after.e[i].content);
    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void snap(struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    cr_assert_eq(stat(dir, &s->dir_st), 0);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        cr_assert_lt(s->n, 32);
        struct entry *e = &s->e[s->n++];
        snprintf(e->name, sizeof(e->name), "%s", de->d_name);
        char path[2 * PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        cr_assert_eq(lstat(path, &e->st), 0);
        if (S_ISREG(e->st.st_mode))
            e->content = read_file(path, &e->len);
    }
    closedir(d);
    qsort(s->e, s->n, sizeof(s->e[0]), by_name);
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Assert that nothing in dir changed between before and after. */
static void expect_untouched(void)
{
    const struct snapshot *a = &before, *b = &after;
    cr_assert(same_time(a->dir_st.st_mtim, b->dir_st.st_mtim) &&
                  same_time(a->dir_st.st_ctim, b->dir_st.st_ctim),
              "the directory itself changed");
    cr_assert_eq(a->n, b->n, "entries: %zu before, %zu after", a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct entry *x = &a->e[i], *y = &b->e[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert(x->st.st_ino == y->st.st_ino && x->st.st_size == y->st.st_size &&
                      same_time(x->st.st_mtim, y->st.st_mtim) &&
                      same_time(x->st.st_ctim, y->st.st_ctim),
                  "%s changed", x->name);
        cr_assert(x->len == y->len && (x->len == 0 || memcmp(x->content, y->content, x->len) == 0),
                  "the content of %s changed", x->name);
    }
}

static void expect_names(const char *why, const char *a, const char *b)
{
    cr_assert_not_null(strstr(why, a), "'%s' not in: %s", a, why);
    cr_assert_not_null(strstr(why, b), "'%s' not in: %s", b, why);
}

static void expect_record(const char *want)
{
    char name[64];
    int rc = kvs_dir_engine(dir, name, sizeof(name));
    cr_assert_eq(rc, 0, "kvs_dir_engine: %s", kvs_err_name(rc));
    cr_assert_str_eq(name, want);
}

Test(owner, mismatch_is_refused_naming_both_and_touching_nothing)
{
    make_store("lmdb", "k", "v");
    snap(&before);
    char why[KVS_WHY_MAX];
    int rc = open_as("kvs", &other, why);
    cr_assert_eq(rc, KVS_EWRONGENGINE, "open as kvs: %s (%s)", kvs_err_name(rc), why);
    cr_assert_null(other);
    expect_names(why, "'lmdb'", "'kvs'");
    snap(&after);
    expect_untouched();
    expect_record("lmdb");
}

Test(owner, kvs_record_is_refused_as_lmdb)
{
    write_file("ENGINE", "kvs\n");
    write_file("seg-0000000001-0000.log", "not really a segment");
    snap(&before);
    char why[KVS_WHY_MAX];
    int rc = open_as("lmdb", &other, why);
    cr_assert_eq(rc, KVS_EWRONGENGINE, "open as lmdb: %s (%s)", kvs_err_name(rc), why);
    expect_names(why, "'kvs'", "'lmdb'");
    snap(&after);
    expect_untouched(); /* no data.mdb or lock.mdb appeared */
}

/* Needs the kvs engine: fails while engines/log/ is a placeholder. */
Test(owner, fresh_directory_defaults_to_kvs)
{
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, NULL, &db, why); /* dir does not exist yet */
    cr_assert_eq(rc, 0, "open with defaults: %s (%s)", kvs_err_name(rc), why);
    cr_assert_str_eq(kvs_engine_name(kvs_db_engine(db)), "kvs");
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/ENGINE", dir);
    size_t len;
    char *text = read_file(path, &len);
    bool exact = len == 4 && memcmp(text, "kvs\n", 4) == 0;
    free(text);
    cr_assert(exact, "ENGINE does not hold exactly \"kvs\\n\"");
    expect_record("kvs");
}

static void expect_foreign_file_refused(const char *file, const char *engine, const char *owner)
{
    write_file(file, "engine file without a record");
    snap(&before);
    char why[KVS_WHY_MAX];
    int rc = open_as(engine, &other, why);
    cr_assert_eq(rc, KVS_EWRONGENGINE, "%s opened as %s: %s (%s)", file,
                 engine ? engine : "default", kvs_err_name(rc), why);
    cr_assert_null(other);
    cr_assert_not_null(strstr(why, file), "'%s' not in: %s", file, why);
    char quoted_owner[40], quoted_engine[40];
    snprintf(quoted_owner, sizeof(quoted_owner), "'%s'", owner);
    snprintf(quoted_engine, sizeof(quoted_engine), "'%s'", engine ? engine : "kvs");
    expect_names(why, quoted_owner, quoted_engine);
    snap(&after);
    expect_untouched(); /* in particular, no ENGINE written */
    char name[64];
    cr_assert_eq(kvs_dir_engine(dir, name, sizeof(name)), KVS_ENOTFOUND);
}

Test(owner, lmdb_file_without_record_is_refused_as_kvs)
{
    expect_foreign_file_refused("data.mdb", "kvs", "lmdb");
}

Test(owner, lmdb_file_without_record_is_refused_by_default)
{
    expect_foreign_file_refused("data.mdb", NULL, "lmdb");
}

Test(owner, lmdb_lock_file_without_record_is_refused_as_kvs)
{
    expect_foreign_file_refused("lock.mdb", "kvs", "lmdb");
}

/* Needs the kvs engine's signature files: fails while it is a placeholder. */
Test(owner, log_segment_without_record_is_refused_as_lmdb)
{
    expect_foreign_file_refused("seg-0000000001-0000.log", "lmdb", "kvs");
}

Test(owner, no_engine_opens_the_recorded_one)
{
    make_store("lmdb", "k", "stored by lmdb");
    char why[KVS_WHY_MAX];
    int rc = open_as(NULL, &db, why);
    cr_assert_eq(rc, 0, "open with no engine: %s (%s)", kvs_err_name(rc), why);
    cr_assert_str_eq(kvs_engine_name(kvs_db_engine(db)), "lmdb");
    kvs_buf buf = KVS_BUF_INIT;
    cr_assert_eq(kvs_db_get(db, kvs_slice_str("k"), &buf), 0);
    bool same = buf.len == 14 && memcmp(buf.data, "stored by lmdb", 14) == 0;
    kvs_buf_free(&buf);
    cr_assert(same);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    rc = kvs_db_open(dir, NULL, &db, why); /* NULL options too */
    cr_assert_eq(rc, 0, "open with default options: %s (%s)", kvs_err_name(rc), why);
    cr_assert_str_eq(kvs_engine_name(kvs_db_engine(db)), "lmdb");
    expect_record("lmdb");
}

Test(owner, unknown_engine_names_the_registered_ones)
{
    char why[KVS_WHY_MAX];
    int rc = open_as("rocksdb", &other, why);
    cr_assert_eq(rc, KVS_ENOENGINE, "%s (%s)", kvs_err_name(rc), why);
    cr_assert_null(other);
    cr_assert_not_null(strstr(why, "rocksdb"), "why: %s", why);
    for (size_t i = 0; i < kvs_engine_count(); i++) {
        const char *name = kvs_engine_name(kvs_engine_at(i));
        cr_assert_not_null(strstr(why, name), "'%s' not in: %s", name, why);
    }
    struct stat st;
    cr_assert_eq(stat(dir, &st), -1, "the directory was created");
    cr_assert_eq(errno, ENOENT);
}

Test(owner, recorded_unknown_engine_is_refused)
{
    write_file("ENGINE", "rocksdb\n");
    snap(&before);
    char why[KVS_WHY_MAX];
    int rc = open_as(NULL, &other, why);
    cr_assert_eq(rc, KVS_ENOENGINE, "%s (%s)", kvs_err_name(rc), why);
    cr_assert_not_null(strstr(why, "rocksdb"), "why: %s", why);
    snap(&after);
    expect_untouched();
}

Test(owner, second_open_is_locked)
{
    make_store("lmdb", "k", "v");
    char why[KVS_WHY_MAX];
    int rc = open_as("lmdb", &db, why);
    cr_assert_eq(rc, 0, "%s (%s)", kvs_err_name(rc), why);
    rc = open_as("lmdb", &other, why);
    cr_assert_eq(rc, KVS_ELOCKED, "second open in this process: %s", kvs_err_name(rc));
    cr_assert_null(other);
    rc = open_as(NULL, &other, why);
    cr_assert_eq(rc, KVS_ELOCKED, "second open with no engine: %s", kvs_err_name(rc));

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        kvs_db *child = NULL;
        char child_why[KVS_WHY_MAX];
        _exit(open_as("lmdb", &child, child_why) == KVS_ELOCKED ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "another process was not refused with KVS_ELOCKED");

    /* The first handle still works, and closing it releases the lock. */
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("w")), 0);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    rc = open_as("lmdb", &db, why);
    cr_assert_eq(rc, 0, "open after close: %s (%s)", kvs_err_name(rc), why);
}

Test(owner, dir_engine_reports_the_record)
{
    char name[64];
    cr_assert_eq(kvs_dir_engine(dir, name, sizeof(name)), KVS_ENOTFOUND, "no directory");
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(kvs_dir_engine(dir, name, sizeof(name)), KVS_ENOTFOUND, "empty directory");
    char why[KVS_WHY_MAX];
    int rc = open_as("lmdb", &db, why);
    cr_assert_eq(rc, 0, "%s (%s)", kvs_err_name(rc), why);
    expect_record("lmdb"); /* while open */
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    expect_record("lmdb");
}

Test(owner, malformed_record_is_refused)
{
    write_file("ENGINE", "lmdb"); /* no newline */
    char name[64];
    cr_assert_eq(kvs_dir_engine(dir, name, sizeof(name)), KVS_ECORRUPT);
    snap(&before);
    char why[KVS_WHY_MAX];
    int rc = open_as("lmdb", &other, why);
    cr_assert_eq(rc, KVS_ECORRUPT, "%s (%s)", kvs_err_name(rc), why);
    cr_assert_not_null(strstr(why, "ENGINE"), "why: %s", why);
    snap(&after);
    expect_untouched();
}
