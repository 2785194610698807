/* Temporary data directories for tests; see testdir.h. */
#include "testdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

char *kvs_test_mkdtemp(char *buf, size_t size, const char *tag)
{
    int n = snprintf(buf, size, "/tmp/kvs-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    return mkdtemp(buf);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int kvs_test_rmtree(const char *path)
{
    /* Depth first, so directories are empty when removed; do not follow links. */
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
