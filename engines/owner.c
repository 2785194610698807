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
    if (!nl || nl == text || nl[1] != '\0' || (size_t)(nl - text) >= size)
        return KVS_ECORRUPT;
    *nl = '\0';
    memcpy(name, text, (size_t)(nl - text) + 1);
    return 0;
}

/* The first file in the directory that a registered engine other than self
   claims as its own, or NULL. Its owner goes to *owner. */
static const char *foreign_file(int dir_fd, const struct kvs_engine *self,
                                const struct kvs_engine **owner, char *found, size_t size)
{
    int fd = dup(dir_fd);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return NULL;
    }
    const char *result = NULL;
    struct dirent *de;
    while (!result && (de = readdir(d)) != NULL) {
        for (size_t i = 0; i < kvs_engine_count() && !result; i++) {
            const struct kvs_engine *e = kvs_engine_at(i);
            if (e == self || !e->signature_files)
                continue;
            for (const char *const *pat = e->signature_files; *pat; pat++) {
                if (fnmatch(*pat, de->d_name, 0) == 0) {
                    snprintf(found, size, "%s", de->d_name);
                    *owner = e;
                    result = found;
                    break;
                }
            }
        }
    }
    closedir(d);
    return result;
}

int kvs__owner_claim(int dir_fd, const char *dir, const char *wanted, const struct kvs_engine **out,
                     char *why)
{
    char recorded[NAME_MAX_LEN + 1];
    int rc = kvs__owner_read(dir_fd, recorded, sizeof(recorded));
    if (rc == KVS_ECORRUPT) {
        kvs__why(why, "%s/%s is not a valid engine record", dir, KVS__OWNER_FILE);
        return rc;
    }
    if (rc != 0 && rc != KVS_ENOTFOUND) {
        kvs__why(why, "cannot read %s/%s: %s", dir, KVS__OWNER_FILE, kvs_strerror(rc));
        return rc;
    }
    bool fresh = rc == KVS_ENOTFOUND;
    const char *name = fresh ? (wanted ? wanted : "kvs") : recorded;

    if (!fresh && wanted && strcmp(wanted, recorded) != 0) {
        kvs__why(
            why,
            "data directory %s was written by engine '%s'; refusing to open it with engine '%s'",
            dir, recorded, wanted);
        return KVS_EWRONGENGINE;
    }
    const struct kvs_engine *engine = kvs_engine_find(name);
    if (!engine) {
        if (fresh)
            kvs__why(why, "unknown engine '%s'", name);
        else
            kvs__why(why,
                     "data directory %s was written by engine '%s', which this build does not have",
                     dir, name);
        return KVS_ENOENGINE;
    }
    if (fresh) {
        const struct kvs_engine *owner = NULL;
        char found[256];
        if (foreign_file(dir_fd, engine, &owner, found, sizeof(found))) {
            kvs__why(why,
                     "data directory %s holds %s, a file of engine '%s', but no %s record; "
                     "refusing to open it with engine '%s'",
                     dir, found, owner->name, KVS__OWNER_FILE, engine->name);
            return KVS_EWRONGENGINE;
        }
        char text[NAME_MAX_LEN + 2];
        int len = snprintf(text, sizeof(text), "%s\n", engine->name);
        rc = kvs__write_file_atomic(dir_fd, KVS__OWNER_FILE, text, (size_t)len);
        if (rc != 0) {
            kvs__why(why, "cannot write %s/%s: %s", dir, KVS__OWNER_FILE, kvs_strerror(rc));
            return rc;
        }
    }
    *out = engine;
    return 0;
}
