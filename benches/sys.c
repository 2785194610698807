/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Operating-system helpers of kvs-bench (see sys.h).
 */
#include "sys.h"

#include <ftw.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            if (sscanf(line + 6, "%ld", &kb) != 1)
                kb = -1;
            break;
        }
    }
    fclose(f);
    return kb;
}

void heap_trim(void)
{
    malloc_trim(0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* nftw() offers no context pointer; the main thread alone walks trees. */
static long long walked_bytes;

static int count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F || flag == FTW_D || flag == FTW_DP)
        walked_bytes += (long long)st->st_blocks * 512;
    return 0;
}

long long tree_bytes(const char *path)
{
    walked_bytes = 0;
    if (nftw(path, count_one, 16, FTW_PHYS) != 0)
        return -1;
    return walked_bytes;
}
