/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers of the crash tests; see crash.h. */
#include "crash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- checks and scenarios ---- */

static unsigned long failures;
static unsigned passed_runs, failed_runs;
static double started;

bool cx_check_at(const char *file, int line, bool ok, const char *fmt, ...)
{
    if (ok)
        return true;
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stdout, "  FAIL %s:%d: %s\n", file, line, msg);
    fflush(stdout);
    return false;
}

unsigned long cx_failures(void)
{
    return __atomic_load_n(&failures, __ATOMIC_RELAXED);
}

void cx_run(const char *name, void (*fn)(void *arg), void *arg)
{
    if (started == 0)
        started = cx_now();
    unsigned long before = cx_failures();
    double t0 = cx_now();
    printf("== %s\n", name);
    fflush(stdout);
    fn(arg);
    bool ok = cx_failures() == before;
    printf("%s %s (%.1f s)\n", ok ? "PASS" : "FAIL", name, cx_now() - t0);
    fflush(stdout);
    if (ok)
        passed_runs++;
    else
        failed_runs++;
}

int cx_finish(void)
{
    printf("%u passed, %u failed (%.1f s in all)\n", passed_runs, failed_runs,
           started ? cx_now() - started : 0.0);
    fflush(stdout);
    return failed_runs == 0 && passed_runs > 0 ? 0 : 1;
}

/* ---- randomness, time, environment ---- */

uint64_t cx_seed(void)
{
    static uint64_t seed;
    static bool have;
    if (!have) {
        const char *env = getenv("KVS_CRASH_SEED");
        seed = env && *env ? strtoull(env, NULL, 0) : cx_now_ns() ^ ((uint64_t)getpid() << 32);
        have = true;
        printf("seed %" PRIu64 " (set KVS_CRASH_SEED to repeat)\n", seed);
        fflush(stdout);
    }
    return seed;
}

uint64_t cx_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t cx_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
    return lo + cx_rand(state) % (hi - lo + 1);
}

unsigned cx_env_uint(const char *name, unsigned dflt)
{
    const char *env = getenv(name);
    if (!env || !*env)
        return dflt;
    return (unsigned)strtoul(env, NULL, 10);
}

uint64_t cx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double cx_now(void)
{
    return (double)cx_now_ns() / 1e9;
}

void cx_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- self-checking values ---- */

size_t cx_value(char *out, const char *key, unsigned writer, uint64_t seq, unsigned spread)
{
    int n = snprintf(out, CX_VALUE_MAX, "%.64s|%u|%" PRIu64 "|", key, writer, seq);
    size_t len = (size_t)n;
    uint64_t st = XXH64(out, len, 7);
    size_t fill = spread ? cx_rand(&st) % (spread < CX_SPREAD_MAX ? spread : CX_SPREAD_MAX) : 0;
    for (size_t i = 0; i < fill; i++)
        out[len++] = (char)('a' + cx_rand(&st) % 26);
    out[len++] = '|';
    snprintf(out + len, 17, "%016" PRIx64, XXH64(out, len, 0));
    return len + 16;
}

bool cx_value_parse(const void *v, size_t len, const char *key, unsigned *writer, uint64_t *seq)
{
    const char *p = v;
    if (len < 17 || len > CX_VALUE_MAX)
        return false;
    char sum[17];
    snprintf(sum, sizeof(sum), "%016" PRIx64, XXH64(p, len - 16, 0));
    if (memcmp(sum, p + len - 16, 16) != 0 || p[len - 17] != '|')
        return false;
    size_t klen = strlen(key);
    if (len < klen + 1 || memcmp(p, key, klen) != 0 || p[klen] != '|')
        return false;
    char head[64];
    size_t hl = len - klen - 1 < sizeof(head) - 1 ? len - klen - 1 : sizeof(head) - 1;
    memcpy(head, p + klen + 1, hl);
    head[hl] = '\0';
    unsigned w;
    uint64_t s;
    if (sscanf(head, "%u|%" SCNu64 "|", &w, &s) != 2)
        return false;
    *writer = w;
    *seq = s;
    return true;
}

/* ---- files ---- */

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cx_list(const char *dir, const char *prefix, const char *suffix, char (*names)[CX_NAME_MAX],
            int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || !ends_with(de->d_name, suffix))
            continue;
        if (n < max && strlen(de->d_name) < CX_NAME_MAX)
            strcpy(names[n], de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)(n < max ? n : max), CX_NAME_MAX, by_name);
    return n;
}

bool cx_newest_seg(const char *dir, char *path)
{
    static char names[4096][CX_NAME_MAX];
    int n = cx_list(dir, "seg-", ".log", names, 4096);
    if (n <= 0 || n > 4096)
        return false;
    snprintf(path, PATH_MAX, "%s/%s", dir, names[n - 1]);
    return true;
}

static bool write_flags(const char *path, const void *p, size_t len, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    if (fd < 0)
        return false;
    const char *b = p;
    while (len > 0) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return false;
        }
        b += n;
        len -= (size_t)n;
    }
    return close(fd) == 0;
}

bool cx_write_file(const char *path, const void *p, size_t len)
{
    return write_flags(path, p, len, O_TRUNC);
}

bool cx_append_file(const char *path, const void *p, size_t len)
{
    return write_flags(path, p, len, O_APPEND);
}

bool cx_flip_byte(const char *path, uint64_t off, unsigned char mask)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    unsigned char b;
    bool ok = pread(fd, &b, 1, (off_t)off) == 1;
    b ^= mask;
    ok = ok && pwrite(fd, &b, 1, (off_t)off) == 1;
    return close(fd) == 0 && ok;
}

long long cx_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

bool cx_copy_dir(const char *src, const char *dst)
{
    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        return false;
    DIR *d = opendir(src);
    if (!d)
        return false;
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(d)) != NULL) {
        char from[PATH_MAX], to[PATH_MAX];
        struct stat st;
        snprintf(from, sizeof(from), "%s/%s", src, de->d_name);
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(to, sizeof(to), "%s/%s", dst, de->d_name);
        size_t len;
        char *data = ts_read_file(from, &len);
        ok = data && cx_write_file(to, data, len);
        free(data);
    }
    closedir(d);
    return ok;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int cx_records(const unsigned char *p, size_t len, struct cx_rec *out, int max)
{
    /* Segment header 32 bytes; record header 24: sum(8) head(4) type(1)
       zero(3) klen(4) vlen(4), then key and value. */
    uint64_t off = 32;
    int n = 0;
    while (off + 24 <= len) {
        uint32_t klen = le32(p + off + 16), vlen = le32(p + off + 20);
        unsigned type = p[off + 12];
        uint64_t rlen = 24ull + klen + vlen;
        if (type < 1 || type > 3 || off + rlen > len)
            break;
        if (n < max) {
            struct cx_rec *r = &out[n];
            r->off = off;
            r->len = rlen;
            r->type = type;
            r->klen = klen;
            r->vlen = vlen;
            size_t kl = klen < CX_NAME_MAX - 1 ? klen : CX_NAME_MAX - 1;
            memcpy(r->key, p + off + 24, kl);
            r->key[kl] = '\0';
        }
        n++;
        off += rlen;
    }
    return n;
}

const struct cx_rec *cx_find_rec(const struct cx_rec *recs, int n, const char *key)
{
    const struct cx_rec *found = NULL;
    for (int i = 0; i < n; i++) {
        if (recs[i].klen == strlen(key) && strcmp(recs[i].key, key) == 0)
            found = &recs[i];
    }
    return found;
}

/* ---- servers ---- */

const char *cx_server_bin(void)
{
    const char *env = getenv("KVS_TEST_SERVER");
    return env && *env ? env : KVS_SERVER_BIN;
}

redisContext *cx_connect(const ts_server *s, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c)
        return NULL;
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static void start_args(const char **args, const char *engine, const char *data, const char *fsync)
{
    size_t n = 0;
    if (engine) {
        args[n++] = "--engine";
        args[n++] = engine;
    }
    args[n++] = "--data-dir";
    args[n++] = data;
    if (fsync) {
        args[n++] = "--fsync";
        args[n++] = fsync;
    }
    /* Two workers: the machine has two cores, shared. */
    args[n++] = "--threads";
    args[n++] = "2";
    args[n] = NULL;
}

bool cx_start(ts_server *s, const char *engine, const char *data, const char *fsync,
              const char *log)
{
    const char *args[12];
    start_args(args, engine, data, fsync);
    ts_server_opts o = {.binary = cx_server_bin(), .args = args, .log_path = log};
    int rc = ts_server_start(s, &o);
    if (rc != TS_READY) {
        s->pid = 0;
        return false;
    }
    /* Accepting is not serving: the store opens after the port is bound. */
    redisContext *c = cx_connect(s, TS_DEFAULT_TIMEOUT_MS);
    redisReply *r = c ? redisCommand(c, "PING") : NULL;
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    if (!ok) {
        ts_server_wait(s, 2000);
        s->pid = 0;
    }
    return ok;
}

int cx_start_refused(const char *engine, const char *data, const char *log, int timeout_ms)
{
    const char *args[12];
    start_args(args, engine, data, NULL);
    ts_server_opts o = {.binary = cx_server_bin(), .args = args, .log_path = log};
    ts_server s;
    int rc = ts_server_start(&s, &o);
    if (rc == TS_EXITED)
        return s.status;
    if (rc != TS_READY)
        return -1;
    int status = ts_server_wait(&s, timeout_ms);
    return s.timed_out ? -1 : status;
}

bool cx_expect(redisContext *c, const char *what, const char *key, const void *want,
               size_t want_len)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    if (!CK(r != NULL, "%s: GET %s: connection lost (%s)", what, key, c->errstr))
        return false;
    bool ok;
    if (!want)
        ok = CK(r->type == REDIS_REPLY_NIL, "%s: GET %s: expected nil, got type %d", what, key,
                r->type);
    else
        ok = CK(r->type == REDIS_REPLY_STRING && r->len == want_len &&
                    memcmp(r->str, want, want_len) == 0,
                "%s: GET %s: expected its value, got type %d (%.60s)", what, key, r->type,
                r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
    return ok;
}

/* ---- engine log lines ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

void cx_log_line(void *ctx, const char *line)
{
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(line);
    if (log_len + n + 2 < sizeof(log_text)) {
        memcpy(log_text + log_len, line, n);
        log_len += n;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

const char *cx_log_text(void)
{
    return log_text;
}

void cx_log_clear(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

void cx_print_tail(const char *path, size_t bytes)
{
    size_t len;
    char *text = ts_read_file(path, &len);
    if (!text)
        return;
    const char *from = len > bytes ? text + len - bytes : text;
    printf("  --- %s (last %zu bytes) ---\n%s  ---\n", path, bytes, from);
    fflush(stdout);
    free(text);
}

bool cx_file_has(const char *path, const char *needle)
{
    char *text = ts_read_file(path, NULL);
    bool has = text && strstr(text, needle) != NULL;
    free(text);
    return has;
}
