/* SPDX-License-Identifier: BSD-3-Clause */
/* Criterion helpers for the kvs engine's tests; see helpers.h. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *lt_tmpdir_or_fail(void)
{
    char *dir = lt_tmpdir();
    cr_assert_not_null(dir, "cannot create a directory under /tmp");
    return dir;
}

kvs_db *lt_open(const char *dir, const kvs_options *o)
{
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, o, &db, why);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", dir, kvs_strerror(rc), why);
    return db;
}

void lt_set(kvs_db *db, const char *key, const char *val)
{
    int rc = kvs_db_set(db, kvs_slice_str(key), kvs_slice_str(val));
    cr_assert_eq(rc, 0, "set %s: %s", key, kvs_strerror(rc));
}

void lt_expect(kvs_db *db, const char *key, const char *val)
{
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(db, kvs_slice_str(key), &buf);
    if (!val) {
        kvs_buf_free(&buf);
        cr_assert_eq(rc, KVS_ENOTFOUND, "get %s: expected not found, got %s", key,
                     kvs_strerror(rc));
        return;
    }
    cr_assert_eq(rc, 0, "get %s: %s", key, kvs_strerror(rc));
    bool same = buf.len == strlen(val) && memcmp(buf.data, val, buf.len) == 0;
    kvs_buf_free(&buf);
    cr_assert(same, "get %s: wrong value", key);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

size_t lt_list(const char *dir, const char *suffix, char (*names)[64], size_t max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0, sl = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= sl && l < 64 && strcmp(de->d_name + l - sl, suffix) == 0 && n < max)
            memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, n, 64, by_name);
    return n;
}

void lt_path(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

void lt_copy(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY);
    cr_assert_geq(in, 0, "open %s", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(out, 0, "create %s", dst);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

uint64_t lt_file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

void lt_flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= 0x5a;
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}
