/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A look at data.mdb's two meta pages before LMDB opens it.
 *
 * mdb_env_open() checks a meta page's flags, magic and version, then
 * trusts the page size it records: a meta page torn or garbled after its
 * magic (a machine crash under MDB_NOSYNC can leave one) makes it divide
 * by that size, and a size of 0 kills the process with SIGFPE instead of
 * failing the open. So the pages are read here first, the way LMDB reads
 * them (page 0 at offset 0, page 1 one page size further), and a page
 * size LMDB could never have written is refused as corruption.
 *
 * Only what LMDB would accept is judged: a missing or short file, or a
 * page that is not a meta page, is left to mdb_env_open(), which fails
 * cleanly on those. The layout is LMDB 0.9's (lmdb.h, mdb.c): a 16-byte
 * page header (page number, padding, flags) then MDB_meta, whose free
 * database's md_pad holds the page size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lmdb_internal.h"

#define META_FLAGS_AT 10 /* mp_flags in the page header */
#define META_P_META 0x08
#define META_AT 16             /* PAGEHDRSZ on 64-bit builds */
#define META_MAGIC 0xBEEFC0DEu /* MDB_MAGIC */
#define META_VERSION 1u        /* MDB_DATA_VERSION */
/* mm_magic, mm_version, mm_address, mm_mapsize, then mm_dbs[FREE_DBI].md_pad */
#define META_PSIZE_AT (META_AT + 4 + 4 + 8 + 8)
#define META_READ 4096 /* what LMDB reads of each meta page */

static uint32_t u32_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v)); /* LMDB writes its own byte order */
    return v;
}

static bool page_size_possible(uint32_t psize)
{
    return psize >= 512 && psize <= 65536 && (psize & (psize - 1)) == 0;
}

int kvs__lmdb_meta_check(const char *dir, char *why)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
        return 0; /* LMDB will say what it thinks of the path */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* a new store, or LMDB reports the error */
    int rc = 0;
    off_t off = 0;
    for (int page = 0; page < 2 && rc == 0; page++) {
        unsigned char buf[META_READ];
        if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf))
            break;
        uint16_t flags;
        memcpy(&flags, buf + META_FLAGS_AT, sizeof(flags));
        if (!(flags & META_P_META) || u32_at(buf + META_AT) != META_MAGIC ||
            u32_at(buf + META_AT + 4) != META_VERSION)
            break;
        uint32_t psize = u32_at(buf + META_PSIZE_AT);
        if (!page_size_possible(psize)) {
            kvs__why(why, "lmdb: %s: meta page %d at offset %lld records a page size of %u", path,
                     page, (long long)off, (unsigned)psize);
            rc = KVS_ECORRUPT;
        }
        off += psize;
    }
    close(fd);
    return rc;
}
