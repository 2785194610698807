/* SPDX-License-Identifier: BSD-3-Clause */
/* Which engine owns a data directory; see owner.h. */
#include "owner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

#define NAME_MAX_LEN 64

int kvs__owner_read(int dir_fd, char *name, size_t size)
{
    int fd = openat(dir_fd, KVS__OWNER_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KVS_ENOTFOUND : kvs_err_from_errno(errno);
    char text[NAME_MAX_LEN + 2];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    int saved = errno;
    close(fd);
    if (n < 0)
        return kvs_err_from_errno(saved);
    text[n] = '\0';
    char *nl = strchr(text, '\n');
    if (!nl || nl == text || nl[1] != '\0')
        return KVS_ECORRUPT;
    if ((size_t)(nl - text) >= size)
        return KVS_EINVAL;
    *nl = '\0';
    memcpy(name, text, (size_t)(nl - text) + 1);
    return 0;
}

/* Look for a file that a registered engine other than self claims as its
   own. Returns 0 with *owner NULL when there is none, 0 with *owner and
   found set when there is, or an error when the directory cannot be listed. */
static int foreign_file(int dir_fd, const struct kvs_engine *self, const struct kvs_engine **owner,
                        char *found, size_t size)
{
    *owner = NULL;
    int fd = dup(dir_fd);
    if (fd < 0)
        return kvs_err_from_errno(errno);
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = kvs_err_from_errno(errno);
        close(fd);
        return rc;
    }
    rewinddir(d);
    struct dirent *de;
    while (!*owner && (de = readdir(d)) != NULL) {
        for (size_t i = 0; i < kvs_engine_count() && !*owner; i++) {
            const struct kvs_engine *e = kvs_engine_at(i);
            if (e == self || !e->signature_files)
                continue;
            for (const char *const *pat = e->signature_files; *pat; pat++) {
                if (fnmatch(*pat, de->d_name, 0) == 0) {
                    snprintf(found, size, "%s", de->d_name);
                    *owner = e;
                    break;
                }
            }
        }
    }
    closedir(d);
    return 0;
}

int kvs__owner_claim(int dir_fd, const char *dir, const char *wanted, const struct kvs_engine **out,
                     bool *fresh, char *why)
{
    char recorded[NAME_MAX_LEN + 1];
    int rc = kvs__owner_read(dir_fd, recorded, sizeof(recorded));
    if (rc == 0) {
        if (wanted && strcmp(wanted, recorded) != 0) {
            kvs__why(why,
                     "data directory %s was written by engine '%s'; refusing to open it with "
                     "engine '%s'",
                     dir, recorded, wanted);
            return KVS_EWRONGENGINE;
        }
        *out = kvs_engine_find(recorded);
        if (!*out) {
            kvs__why(why, "data directory %s was written by engine '%s', which this build lacks",
                     dir, recorded);
            return KVS_ENOENGINE;
        }
        *fresh = false;
        return 0;
    }
    if (rc != KVS_ENOTFOUND) {
        kvs__why(why, "%s/%s is not a valid engine record: %s", dir, KVS__OWNER_FILE,
                 kvs_strerror(rc));
        return rc;
    }

    /* No record: a fresh directory, or one whose first open was cut short
       before its record was written. Another engine's files there mean the
       directory is not ours to claim; the user can name that engine. */
    const struct kvs_engine *engine = kvs_engine_find(wanted ? wanted : "kvs");
    if (!engine) {
        kvs__why(why, "unknown engine '%s'", wanted);
        return KVS_ENOENGINE;
    }
    const struct kvs_engine *owner;
    char found[256];
    rc = foreign_file(dir_fd, engine, &owner, found, sizeof(found));
    if (rc != 0) {
        kvs__why(why, "cannot list data directory %s: %s", dir, kvs_strerror(rc));
        return rc;
    }
    if (owner) {
        kvs__why(why,
                 "data directory %s holds %s, a file of engine '%s', but no %s record; "
                 "refusing to open it with engine '%s'",
                 dir, found, owner->name, KVS__OWNER_FILE, engine->name);
        return KVS_EWRONGENGINE;
    }
    *out = engine;
    *fresh = true;
    return 0;
}

const struct kvs_engine *kvs__owner_guess(int dir_fd)
{
    const struct kvs_engine *owner = NULL;
    char found[256];
    return foreign_file(dir_fd, NULL, &owner, found, sizeof(found)) == 0 ? owner : NULL;
}

int kvs__owner_record(int dir_fd, const char *dir, const struct kvs_engine *engine, char *why)
{
    char text[NAME_MAX_LEN + 2];
    int len = snprintf(text, sizeof(text), "%s\n", engine->name);
    int rc = kvs__write_file_atomic(dir_fd, KVS__OWNER_FILE, text, (size_t)len);
    if (rc != 0)
        kvs__why(why, "cannot write %s/%s: %s", dir, KVS__OWNER_FILE, kvs_strerror(rc));
    return rc;
}
