/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's checker (kvs/check.h): read the snapshot as a load
 * would, verifying the header, the end block and every block's checksum
 * and records, but going on past a damaged block; copy every record it
 * can read to the salvage sink when there is one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvs/check.h"
#include "mem_db.h"

struct check {
    FILE *out;
    const char *path;
    const struct kvs_salvage *salvage;
    struct kvs_check_report *r;
    int64_t now;
    uint64_t bytes, expires, expired;
};

static int check_record(void *ctx, kvs_slice key, kvs_slice value, int64_t expire_at,
                        uint64_t offset)
{
    struct check *c = ctx;
    (void)offset;
    c->r->records++;
    c->r->live_keys++;
    c->bytes += key.len + value.len;
    c->expires += expire_at != 0;
    c->expired += expire_at != 0 && expire_at <= c->now;
    if (!c->salvage)
        return 0;
    int rc = c->salvage->set(c->salvage->ctx, key, value, expire_at);
    if (rc == 0)
        c->r->salvaged++;
    return rc;
}

static void check_damage(void *ctx, uint64_t offset, uint64_t bytes, const char *what)
{
    struct check *c = ctx;
    fprintf(c->out, "corrupt: %s at offset %" PRIu64 " (%s; %" PRIu64 " bytes skipped)\n", c->path,
            offset, what, bytes);
    c->r->corrupt++;
    c->r->corrupt_bytes += bytes;
    c->r->problems++;
}

int kmem_check(const char *dir, int dir_fd, const struct kvs_salvage *salvage, FILE *out,
               struct kvs_check_report *r, char *why)
{
    if (faccessat(dir_fd, KMEM_SNAP_TMP, F_OK, 0) == 0) {
        fprintf(out, "leftover: %s/%s (a snapshot that was not finished; open deletes it)\n", dir,
                KMEM_SNAP_TMP);
        r->leftovers++;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, KMEM_SNAP_NAME);
    int fd = openat(dir_fd, KMEM_SNAP_NAME, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            int rc = kvs_err_from_errno(errno);
            kvs__why(why, "cannot open %s: %s", path, strerror(errno));
            return rc;
        }
        fprintf(out, "no snapshot: the store is empty\n");
        return 0;
    }
    struct check c = {.out = out, .path = path, .salvage = salvage, .r = r, .now = kvs_now_ms()};
    struct kmem_snap_calls calls = {
        .record = check_record,
        .damage = check_damage,
        .ctx = &c,
    };
    struct kmem_snap_summary sum;
    char err[KVS_WHY_MAX] = "";
    int rc = kmem_snap_read(fd, path, &calls, NULL, &sum, err);
    close(fd);
    if (rc == KVS_ECORRUPT || rc == KVS_EVERSION) {
        fprintf(out, "corrupt: %s\n", err);
        r->corrupt++;
        r->problems++;
    } else if (rc != 0) {
        kvs__why(why, "%s", err[0] ? err : kvs_strerror(rc));
        return rc;
    } else {
        time_t cut = (time_t)(sum.cut_ms / 1000);
        char when[64] = "?";
        struct tm tm;
        if (gmtime_r(&cut, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
        fprintf(out,
                "snapshot: %s, %" PRIu64 " bytes, %" PRIu64 " records in %" PRIu64
                " blocks, taken at %s\n",
                path, sum.bytes, sum.records, sum.blocks, when);
    }
    fprintf(out, "verified: header, end block, every block's checksum and records\n");
    fprintf(out, "read: %" PRIu64 " keys, %" PRIu64 " bytes of keys and values\n", r->live_keys,
            c.bytes);
    fprintf(out,
            "expiry: %" PRIu64 " keys with an expiry time, %" PRIu64
            " of them past it (a load leaves them out)\n",
            c.expires, c.expired);
    return 0;
}
