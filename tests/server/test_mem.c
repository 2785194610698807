/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server on the mem engine, end to end: --maxmemory (Redis's OOM reply,
 * byte for byte against a real redis-server), snapshots (SAVE, BGSAVE,
 * LASTSAVE, the INFO persistence fields, kill -9 losing exactly what came
 * after the last snapshot), what a stop saves (SIGTERM, SHUTDOWN SAVE and
 * NOSAVE, --snapshot-interval 0), periodic snapshots, refusing a damaged
 * or torn snapshot at startup, and CONFIG GET / INFO memory.
 *
 * Commands go through a raw socket (h_send_cmd, h_read_reply) where many
 * are sent or the exact reply bytes matter, through redis-cli otherwise.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAXMEMORY 2097152 /* --maxmemory 2mb */
#define VALUE_LEN 1024
#define FILL_MAX 20000 /* SETs of VALUE_LEN before a fill gives up: ten times 2mb */
#define SNAP "mem.snapshot"

static const char oom_reply[] = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/* Run redis-cli and compare its whole output. */
#define CLI_IS(h, expected, ...)                                                                   \
    do {                                                                                           \
        char *out_ = h_cli((h), __VA_ARGS__, NULL);                                                \
        cr_expect_str_eq(out_, (expected));                                                        \
        free(out_);                                                                                \
    } while (0)

/* Run redis-cli and look for text in its output. */
#define CLI_HAS(h, text, ...)                                                                      \
    do {                                                                                           \
        char *out_ = h_cli((h), __VA_ARGS__, NULL);                                                \
        cr_expect(strstr(out_, (text)) != NULL, "expected \"%s\" in \"%s\"", (text), out_);        \
        free(out_);                                                                                \
    } while (0)

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The wall clock in seconds as the server reads it (CLOCK_REALTIME):
   time() reads a coarse clock that can lag a second boundary by a tick,
   so a save stamped just after it looked later than a time() taken after
   the save's reply. */
static long long wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- commands over a socket ---- */

/* Send argc C strings as a command and return the reply's bytes. */
static char *ask(int fd, size_t argc, ...)
{
    kvs_slice argv[16];
    cr_assert_leq(argc, 16);
    va_list ap;
    va_start(ap, argc);
    for (size_t i = 0; i < argc; i++)
        argv[i] = kvs_slice_str(va_arg(ap, const char *));
    va_end(ap);
    h_send_cmd(fd, argc, argv);
    size_t len;
    return h_read_reply(fd, &len);
}

/* Send a command and expect the reply's exact bytes. */
#define ASK_IS(fd, expected, argc, ...)                                                            \
    do {                                                                                           \
        char *r_ = ask((fd), (argc), __VA_ARGS__);                                                 \
        cr_expect_str_eq(r_, (expected));                                                          \
        free(r_);                                                                                  \
    } while (0)

static void key_of(char *out, size_t size, const char *prefix, size_t i)
{
    snprintf(out, size, "%s:%06zu", prefix, i);
}

/* The value of key i: VALUE_LEN bytes that name the key, so that a value
   read back is known to be the one written for that key. */
static void value_of(char *out, size_t i)
{
    memset(out, 'a' + (int)(i % 26), VALUE_LEN);
    int n = snprintf(out, VALUE_LEN, "value %zu ", i);
    out[n] = '.';
}

static char *set_one(int fd, const char *prefix, size_t i)
{
    char key[64], value[VALUE_LEN];
    key_of(key, sizeof(key), prefix, i);
    value_of(value, i);
    kvs_slice argv[3] = {kvs_slice_str("SET"), kvs_slice_str(key), {value, VALUE_LEN}};
    h_send_cmd(fd, 3, argv);
    size_t len;
    return h_read_reply(fd, &len);
}

/* SET prefix:0, prefix:1... until a SET is refused: the count written
   is returned and the refusal's reply bytes put in refusal (malloc'd).
   Fails the test on any other reply, or when nothing is refused within
   FILL_MAX. */
static size_t fill(int fd, const char *prefix, char **refusal)
{
    for (size_t i = 0; i < FILL_MAX; i++) {
        char *r = set_one(fd, prefix, i);
        if (strcmp(r, "+OK\r\n") == 0) {
            free(r);
            continue;
        }
        cr_assert(r[0] == '-', "SET %s:%zu: unexpected reply %s", prefix, i, r);
        *refusal = r;
        return i;
    }
    cr_assert_fail("%d SETs of %d bytes, none refused", FILL_MAX, VALUE_LEN);
    return 0;
}

/* GET prefix:i answers its value exactly. */
static void expect_value(int fd, const char *prefix, size_t i)
{
    char key[64], value[VALUE_LEN], want[VALUE_LEN + 32];
    key_of(key, sizeof(key), prefix, i);
    value_of(value, i);
    int n = snprintf(want, sizeof(want), "$%d\r\n", VALUE_LEN);
    memcpy(want + n, value, VALUE_LEN);
    memcpy(want + n + VALUE_LEN, "\r\n", 3);
    char *r = ask(fd, 2, "GET", key);
    cr_expect_str_eq(r, want, "GET %s", key);
    free(r);
}

/* DEL prefix:from .. prefix:to-1, one key a command; each must answer 1. */
static void del_range(int fd, const char *prefix, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        char key[64];
        key_of(key, sizeof(key), prefix, i);
        char *r = ask(fd, 2, "DEL", key);
        cr_assert_str_eq(r, ":1\r\n", "DEL %s", key);
        free(r);
    }
}

/* ---- INFO ---- */

/* The integer value of field in an INFO text; fails the test if absent. */
static long long field_of(const char *info, const char *field)
{
    char needle[96];
    snprintf(needle, sizeof(needle), "\n%s:", field);
    const char *p = strstr(info, needle);
    cr_assert_not_null(p, "INFO lacks %s: %s", field, info);
    char *end;
    long long v = strtoll(p + strlen(needle), &end, 10);
    cr_assert(end != p + strlen(needle) && (*end == '\r' || *end == '\n'),
              "INFO %s is not an integer: %s", field, info);
    return v;
}

static long long info_field(struct h_server *h, const char *section, const char *field)
{
    char *info = h_cli(h, "INFO", section, NULL);
    long long v = field_of(info, field);
    free(info);
    return v;
}

/* Poll INFO persistence until no save is in progress and rdb_saves has
   reached saves; fails the test at the deadline. */
static void wait_saves(struct h_server *h, long long saves)
{
    long long deadline = now_ms() + H_TIMEOUT_MS;
    for (;;) {
        char *info = h_cli(h, "INFO", "persistence", NULL);
        bool done =
            field_of(info, "rdb_bgsave_in_progress") == 0 && field_of(info, "rdb_saves") >= saves;
        if (done) {
            free(info);
            return;
        }
        if (now_ms() > deadline) {
            static char shown[2048];
            snprintf(shown, sizeof(shown), "%s", info);
            free(info);
            cr_assert_fail("no save number %lld: %s", saves, shown);
        }
        free(info);
        pause_ms(20);
    }
}

static long long cli_ll(struct h_server *h, const char *cmd)
{
    char *out = h_cli(h, cmd, NULL);
    long long v = atoll(out);
    free(out);
    return v;
}

/* ---- files ---- */

static void snap_path(struct h_server *h, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", h->data, SNAP);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool log_has(struct h_server *h, const char *text)
{
    char *log = ts_read_file(h->log, NULL);
    bool has = log && strstr(log, text);
    free(log);
    return has;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* ---- 1. --maxmemory ---- */

static const char *const mem_2mb[] = {"--maxmemory", "2mb", "--snapshot-interval", "0", NULL};

/* Full: SETs refused with Redis's text and nothing written; reads and
   deletes go on; deleting gives the memory back for new writes. */
Test(mem, maxmemory_refuses_writes, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", mem_2mb);
    int fd = h_connect(&h);
    char *refusal = NULL;
    size_t n = fill(fd, "k", &refusal);
    cr_expect_str_eq(refusal, oom_reply);
    free(refusal);
    /* What the values alone take bounds the count: at most 2mb of them
       and the eighth of headroom, at least half of 2mb (the rest is
       the engine's overhead on 1 KiB items). */
    cr_expect_leq(n, (MAXMEMORY + MAXMEMORY / 8) / VALUE_LEN, "%zu SETs taken", n);
    cr_expect_geq(n, MAXMEMORY / 2 / VALUE_LEN, "%zu SETs taken", n);
    long long used = info_field(&h, "memory", "used_memory");
    cr_expect_geq(used, MAXMEMORY, "refused at used_memory %lld", used);
    cr_log_info("maxmemory 2mb: %zu SETs of %d bytes taken, refused at used_memory %lld", n,
                VALUE_LEN, used);

    /* Still full: every write refused, a new key, an old one, MSET. */
    char key[64];
    key_of(key, sizeof(key), "k", n);
    ASK_IS(fd, oom_reply, 3, "SET", key, "small");
    ASK_IS(fd, oom_reply, 3, "SET", "k:000000", "small");
    ASK_IS(fd, oom_reply, 5, "MSET", "m1", "x", "m2", "y");
    ASK_IS(fd, "$-1\r\n", 2, "GET", key);
    ASK_IS(fd, "$-1\r\n", 2, "GET", "m1");
    ASK_IS(fd, ":0\r\n", 3, "EXISTS", "m1", "m2");
    /* Reads go on, and what was written is intact. */
    expect_value(fd, "k", 0);
    expect_value(fd, "k", n / 2);
    expect_value(fd, "k", n - 1);
    char *r = ask(fd, 1, "DBSIZE");
    char want[32];
    snprintf(want, sizeof(want), ":%zu\r\n", n);
    cr_expect_str_eq(r, want);
    free(r);

    /* Deletes go on; once half is gone, writes are taken again. */
    del_range(fd, "k", 0, n / 2);
    ASK_IS(fd, "+OK\r\n", 3, "SET", key, "small");
    ASK_IS(fd, "+OK\r\n", 5, "MSET", "m1", "x", "m2", "y");
    ASK_IS(fd, "$5\r\nsmall\r\n", 2, "GET", key);
    used = info_field(&h, "memory", "used_memory");
    cr_expect_lt(used, MAXMEMORY, "used_memory %lld after deleting half", used);
    /* The memory freed is reused: a second fill takes about what was
       deleted (at least half of it), and stops at the limit again. */
    size_t again = fill(fd, "j", &refusal);
    cr_log_info("%zu SETs taken again after deleting %zu (used_memory %lld then)", again, n / 2,
                used);
    cr_expect_str_eq(refusal, oom_reply);
    free(refusal);
    cr_expect_geq(again, n / 2 / 2, "%zu SETs after deleting %zu", again, n / 2);
    cr_expect_leq(again, n, "%zu SETs after deleting %zu", again, n / 2);
    expect_value(fd, "k", n - 1);
    expect_value(fd, "j", 0);
    close(fd);
    h_stop(&h);
}

/* The same sequence on kvs and on redis-server, both with maxmemory 2mb
   and noeviction: the replies that matter compared byte for byte. */
Test(mem, maxmemory_replies_as_redis, .timeout = 60)
{
    if (access(REDIS_SERVER, X_OK) != 0)
        cr_skip_test("redis-server (%s) is not installed: no comparison", REDIS_SERVER);
    /* redis is an h_server only for h_connect(), which needs its port. */
    struct h_server h, redis;
    h_start(&h, "mem", mem_2mb);

    memset(&redis, 0, sizeof(redis));
    cr_assert_eq(ts_tmpdir_make(redis.dir), 0);
    snprintf(redis.log, sizeof(redis.log), "%s/redis.log", redis.dir);
    uint16_t port = ts_free_port(NULL);
    cr_assert_neq(port, 0);
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    const char *args[] = {"--port",
                          port_text,
                          "--bind",
                          "127.0.0.1",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--maxmemory",
                          "2mb",
                          "--maxmemory-policy",
                          "noeviction",
                          "--dir",
                          redis.dir,
                          "--daemonize",
                          "no",
                          NULL};
    ts_server_opts opts = {
        .binary = REDIS_SERVER, .args = args, .log_path = redis.log, .no_addr = true, .port = port};
    cr_assert_eq(ts_server_start(&redis.s, &opts), TS_READY, "redis-server did not start");

    int fds[2] = {h_connect(&h), h_connect(&redis)};
    char *refusal[2];
    size_t n[2];
    for (int i = 0; i < 2; i++)
        n[i] = fill(fds[i], "k", &refusal[i]);
    cr_expect_str_eq(refusal[0], refusal[1], "kvs and redis refuse differently");
    cr_expect_str_eq(refusal[1], oom_reply, "redis-server's own text");
    for (int i = 0; i < 2; i++)
        free(refusal[i]);

    /* When full, on both. Where Redis refuses depends on the command's
       own size (its arguments are counted in used_memory while it is
       judged): it may take a small SET right after refusing one of 1 KiB.
       So the writes here carry BIG, twice what was just refused, which
       both must refuse. */
    static char big[2 * VALUE_LEN];
    memset(big, 'b', sizeof(big));
    const kvs_slice BIG = {big, sizeof(big)};
#define ARG(lit) kvs_slice_str(lit)
    const struct {
        size_t argc;
        kvs_slice argv[5];
    } script[] = {
        {3, {ARG("SET"), ARG("k:999999"), BIG}},
        {3, {ARG("SET"), ARG("k:000000"), BIG}},
        {5, {ARG("MSET"), ARG("m1"), BIG, ARG("m2"), BIG}},
        {2, {ARG("GET"), ARG("m1")}},
        {3, {ARG("EXISTS"), ARG("m1"), ARG("k:000000")}},
        {2, {ARG("GET"), ARG("k:999999")}},
        {3, {ARG("DEL"), ARG("k:000001"), ARG("k:000002")}},
        {2, {ARG("DEL"), ARG("k:000001")}},
        {3, {ARG("CONFIG"), ARG("GET"), ARG("maxmemory")}},
        {3, {ARG("CONFIG"), ARG("GET"), ARG("maxmemory-policy")}},
    };
#undef ARG
    for (size_t s = 0; s < sizeof(script) / sizeof(script[0]); s++) {
        char *r[2];
        for (int i = 0; i < 2; i++) {
            h_send_cmd(fds[i], script[s].argc, script[s].argv);
            size_t len;
            r[i] = h_read_reply(fds[i], &len);
        }
        cr_expect_str_eq(r[0], r[1], "%.*s %.*s: kvs \"%.200s\", redis \"%.200s\"",
                         (int)script[s].argv[0].len, (const char *)script[s].argv[0].data,
                         (int)script[s].argv[1].len, (const char *)script[s].argv[1].data, r[0],
                         r[1]);
        free(r[0]);
        free(r[1]);
    }
    for (int i = 0; i < 2; i++) {
        expect_value(fds[i], "k", 0);
        expect_value(fds[i], "k", n[i] - 1);
        /* Half deleted: writes are taken again. */
        del_range(fds[i], "k", 3, n[i] / 2);
        ASK_IS(fds[i], "+OK\r\n", 3, "SET", "k:999999", "small");
        close(fds[i]);
    }
    cr_expect_eq(ts_server_stop(&redis.s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(redis.dir);
    h_stop(&h);
}

/* ---- 2. SAVE, BGSAVE, LASTSAVE, INFO persistence, kill -9 ---- */

static const char *const no_periodic[] = {"--snapshot-interval", "0", NULL};

#define SAVED_KEYS 50

/* SAVE writes a snapshot; kill -9 loses exactly the writes after it. */
Test(mem, save_then_kill, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", no_periodic);
    char *info = h_cli(&h, "INFO", "persistence", NULL);
    cr_expect_eq(field_of(info, "rdb_changes_since_last_save"), 0, "%s", info);
    cr_expect_eq(field_of(info, "rdb_saves"), 0, "%s", info);
    cr_expect_eq(field_of(info, "rdb_bgsave_in_progress"), 0, "%s", info);
    free(info);
    int fd = h_connect(&h);
    for (size_t i = 0; i < SAVED_KEYS; i++) {
        char *r = set_one(fd, "s", i);
        cr_assert_str_eq(r, "+OK\r\n");
        free(r);
    }
    cr_expect_eq(info_field(&h, "persistence", "rdb_changes_since_last_save"), SAVED_KEYS);
    char snap[PATH_MAX + 32];
    snap_path(&h, snap, sizeof(snap));
    cr_expect(!exists(snap), "a snapshot before any save");

    long long before = wall_s();
    ASK_IS(fd, "+OK\r\n", 1, "SAVE");
    long long after = wall_s();
    cr_expect(exists(snap), "SAVE answered OK and wrote no %s", snap);
    info = h_cli(&h, "INFO", "persistence", NULL);
    cr_expect_eq(field_of(info, "rdb_changes_since_last_save"), 0, "%s", info);
    cr_expect_eq(field_of(info, "rdb_saves"), 1, "%s", info);
    cr_expect(strstr(info, "\nrdb_last_bgsave_status:ok\r\n"), "%s", info);
    long long last = field_of(info, "rdb_last_save_time");
    free(info);
    cr_expect(last >= before && last <= after, "rdb_last_save_time %lld, SAVE ran in %lld..%lld",
              last, before, after);
    cr_expect_eq(cli_ll(&h, "LASTSAVE"), last);

    /* After the save: a new key, a changed one, a deleted one. */
    ASK_IS(fd, "+OK\r\n", 3, "SET", "after", "1");
    ASK_IS(fd, "+OK\r\n", 3, "SET", "s:000001", "changed");
    ASK_IS(fd, ":1\r\n", 2, "DEL", "s:000002");
    cr_expect_eq(info_field(&h, "persistence", "rdb_changes_since_last_save"), 3);
    close(fd);

    cr_expect_eq(ts_server_kill(&h.s), 137);
    h_restart(&h, no_periodic);
    cr_expect(log_has(&h, "50 keys"), "the load is not logged");
    fd = h_connect(&h);
    char want[32];
    snprintf(want, sizeof(want), ":%d\r\n", SAVED_KEYS);
    ASK_IS(fd, want, 1, "DBSIZE");
    ASK_IS(fd, "$-1\r\n", 2, "GET", "after");
    expect_value(fd, "s", 0);
    expect_value(fd, "s", 1);
    expect_value(fd, "s", 2);
    expect_value(fd, "s", SAVED_KEYS - 1);
    /* A loaded snapshot is no change. */
    cr_expect_eq(info_field(&h, "persistence", "rdb_changes_since_last_save"), 0);
    close(fd);
    h_stop(&h);
}

/* BGSAVE answers at once, the snapshot follows; LASTSAVE moves. */
Test(mem, bgsave_and_lastsave, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", no_periodic);
    CLI_IS(&h, "OK\n", "SET", "x", "1");
    CLI_IS(&h, "OK\n", "SET", "y", "2");
    long long last0 = cli_ll(&h, "LASTSAVE");
    cr_expect_eq(info_field(&h, "persistence", "rdb_last_save_time"), last0);
    /* LASTSAVE is in seconds: wait for the clock to pass it, so that a
       save can show as a new value. */
    long long deadline = now_ms() + 3000;
    while (wall_s() <= last0 && now_ms() < deadline)
        pause_ms(20);
    cr_assert_gt(wall_s(), last0);

    CLI_IS(&h, "Background saving started\n", "BGSAVE");
    wait_saves(&h, 1);
    char *info = h_cli(&h, "INFO", "persistence", NULL);
    cr_expect_eq(field_of(info, "rdb_changes_since_last_save"), 0, "%s", info);
    cr_expect(strstr(info, "\nrdb_last_bgsave_status:ok\r\n"), "%s", info);
    long long last1 = field_of(info, "rdb_last_save_time");
    free(info);
    cr_expect_gt(last1, last0, "LASTSAVE did not move");
    cr_expect_eq(cli_ll(&h, "LASTSAVE"), last1);
    cr_expect_leq(last1, wall_s());
    CLI_HAS(&h, "ERR syntax error", "BGSAVE", "NOW");

    /* Writes after it count again, and are what kill -9 loses. */
    CLI_IS(&h, "OK\n", "SET", "z", "3");
    CLI_IS(&h, "1\n", "DEL", "x");
    cr_expect_eq(info_field(&h, "persistence", "rdb_changes_since_last_save"), 2);
    cr_expect_eq(ts_server_kill(&h.s), 137);
    h_restart(&h, no_periodic);
    CLI_IS(&h, "1\n2\n\n", "MGET", "x", "y", "z");
    h_stop(&h);
}

/* ---- 3. what a stop saves ---- */

/* A snapshot interval that never comes during a test: only a stop (or a
   command) can have written the snapshot. */
static const char *const rare_periodic[] = {"--snapshot-interval", "3600", NULL};

Test(mem, sigterm_saves, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", rare_periodic);
    CLI_IS(&h, "OK\n", "MSET", "a", "1", "b", "2", "c", "3");
    CLI_IS(&h, "1\n", "DEL", "c");
    cr_expect_eq(info_field(&h, "persistence", "rdb_saves"), 0);
    h_stop_keep(&h);
    cr_expect(log_has(&h, "snapshot of"), "the stop logged no snapshot");
    char snap[PATH_MAX + 32];
    snap_path(&h, snap, sizeof(snap));
    cr_expect(exists(snap), "SIGTERM wrote no %s", snap);
    h_restart(&h, rare_periodic);
    CLI_IS(&h, "2\n", "DBSIZE");
    CLI_IS(&h, "1\n2\n\n", "MGET", "a", "b", "c");
    h_stop(&h);
}

/* SHUTDOWN over a socket: no reply, the connection closes, exit 0. */
static void shutdown_with(struct h_server *h, const char *mode)
{
    int fd = h_connect(h);
    kvs_slice argv[2] = {kvs_slice_str("SHUTDOWN"), kvs_slice_str(mode)};
    h_send_cmd(fd, 2, argv);
    cr_expect(h_closed(fd), "SHUTDOWN %s: the connection stayed open", mode);
    close(fd);
    cr_expect_eq(ts_server_wait(&h->s, H_TIMEOUT_MS), 0, "SHUTDOWN %s: exit status", mode);
}

Test(mem, shutdown_nosave_loses_unsaved, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", rare_periodic);
    CLI_IS(&h, "OK\n", "SET", "saved", "1");
    CLI_IS(&h, "OK\n", "SAVE");
    CLI_IS(&h, "OK\n", "SET", "unsaved", "2");
    CLI_IS(&h, "OK\n", "SET", "saved", "changed");
    shutdown_with(&h, "NOSAVE");
    h_restart(&h, rare_periodic);
    CLI_IS(&h, "1\n\n", "MGET", "saved", "unsaved");
    h_stop(&h);
}

Test(mem, shutdown_save_without_interval, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", no_periodic);
    CLI_IS(&h, "OK\n", "SET", "k", "v");
    CLI_IS(&h, "OK\n", "SET", "gone", "v");
    CLI_IS(&h, "1\n", "DEL", "gone");
    CLI_HAS(&h, "ERR syntax error", "SHUTDOWN", "SAVE", "NOSAVE");
    CLI_HAS(&h, "ERR syntax error", "SHUTDOWN", "LATER");
    shutdown_with(&h, "SAVE");
    h_restart(&h, no_periodic);
    CLI_IS(&h, "v\n\n", "MGET", "k", "gone");
    CLI_IS(&h, "1\n", "DBSIZE");
    h_stop(&h);
}

/* --snapshot-interval 0 means no snapshot at a stop either (--help: "0 for
   neither"), as Redis with save "" writes none at SIGTERM: a stop keeps
   the last snapshot, or nothing if there was none. */
Test(mem, sigterm_without_interval_does_not_save, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", no_periodic);
    CLI_IS(&h, "OK\n", "SET", "k", "v");
    h_stop_keep(&h);
    char snap[PATH_MAX + 32];
    snap_path(&h, snap, sizeof(snap));
    cr_expect(!exists(snap), "SIGTERM with --snapshot-interval 0 wrote %s", snap);
    h_restart(&h, no_periodic);
    CLI_IS(&h, "0\n", "DBSIZE");
    CLI_IS(&h, "OK\n", "SET", "saved", "1");
    CLI_IS(&h, "OK\n", "SAVE");
    CLI_IS(&h, "OK\n", "SET", "unsaved", "2");
    h_stop_keep(&h);
    h_restart(&h, no_periodic);
    CLI_IS(&h, "1\n\n", "MGET", "saved", "unsaved");
    h_stop(&h);
}

/* ---- 4. periodic snapshots ---- */

Test(mem, periodic_snapshot_survives_kill, .timeout = 60)
{
    struct h_server h;
    static const char *const every_second[] = {"--snapshot-interval", "1", NULL};
    h_start(&h, "mem", every_second);
    CLI_IS(&h, "save\n1 1\n", "CONFIG", "GET", "save");
    CLI_IS(&h, "OK\n", "MSET", "p1", "a", "p2", "b");
    long long t0 = now_ms();
    /* No command asks for it: the interval alone writes it. */
    wait_saves(&h, 1);
    long long took = now_ms() - t0;
    cr_expect_lt(took, 5000, "the first periodic snapshot took %lld ms", took);
    cr_expect_eq(info_field(&h, "persistence", "rdb_changes_since_last_save"), 0);
    CLI_IS(&h, "OK\n", "SET", "p3", "c");
    wait_saves(&h, 2);
    cr_expect_eq(ts_server_kill(&h.s), 137);
    h_restart(&h, every_second);
    CLI_IS(&h, "a\nb\nc\n", "MGET", "p1", "p2", "p3");
    h_stop(&h);
}

/* ---- 5. damaged snapshots ---- */

/* Start kvs-server on h's data directory and expect a refusal: exit 1,
   nothing served, stderr naming the snapshot and an offset within
   [min_off, max_off]. */
static void expect_refused_start(struct h_server *h, long long min_off, long long max_off,
                                 const char *what)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)ts_free_port(NULL));
    const char *argv[] = {h_server_binary(), "--addr", addr,        "--engine", "mem",
                          "--data-dir",      h->data,  "--threads", "2",        NULL};
    ts_result r;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
    cr_expect(!r.timed_out, "%s: the server started", what);
    cr_expect_eq(r.status, 1, "%s: exit %d: %s", what, r.status, r.err);
    char snap[PATH_MAX + 32];
    snap_path(h, snap, sizeof(snap));
    cr_expect(strstr(r.err, snap), "%s: stderr does not name %s: %s", what, snap, r.err);
    const char *at = strstr(r.err, "offset ");
    cr_expect_not_null(at, "%s: stderr names no offset: %s", what, r.err);
    if (at) {
        long long off = atoll(at + 7);
        cr_expect(off >= min_off && off <= max_off, "%s: offset %lld, expected %lld..%lld: %s",
                  what, off, min_off, max_off, r.err);
    }
    ts_result_free(&r);
}

Test(mem, damaged_snapshot_refused, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", NULL);
    int fd = h_connect(&h);
    for (size_t i = 0; i < 100; i++) {
        char *r = set_one(fd, "d", i);
        cr_assert_str_eq(r, "+OK\r\n");
        free(r);
    }
    close(fd);
    h_stop_keep(&h);
    char snap[PATH_MAX + 32];
    snap_path(&h, snap, sizeof(snap));
    size_t size = 0;
    char *good = ts_read_file(snap, &size);
    cr_assert_not_null(good, "the stop wrote no %s", snap);
    cr_assert_gt(size, 100 * VALUE_LEN);

    /* A byte flipped in the middle: refused, the file left as it was. */
    char *bad = malloc(size);
    cr_assert_not_null(bad);
    memcpy(bad, good, size);
    bad[size / 2] ^= 0x5a;
    write_file(snap, bad, size);
    expect_refused_start(&h, 32, (long long)size / 2, "a flipped byte");
    size_t len = 0;
    char *now = ts_read_file(snap, &len);
    cr_expect(now && len == size && memcmp(now, bad, size) == 0, "the refused file was changed");
    free(now);
    free(bad);

    /* Torn: cut in the middle, and only its last byte cut off. */
    write_file(snap, good, size / 2);
    expect_refused_start(&h, 0, (long long)size / 2, "cut in half");
    write_file(snap, good, size - 1);
    expect_refused_start(&h, 0, (long long)size - 1, "last byte cut off");
    write_file(snap, good, 10);
    expect_refused_start(&h, 0, 10, "cut to 10 bytes");

    /* The whole file again, beside the temporary file of a save a crash
       interrupted: it loads, and the temporary file is deleted. */
    write_file(snap, good, size);
    char tmp[PATH_MAX + 48];
    snprintf(tmp, sizeof(tmp), "%s.tmp", snap);
    write_file(tmp, good, size / 3);
    h_restart(&h, NULL);
    cr_expect(!exists(tmp), "%s was left", tmp);
    CLI_IS(&h, "100\n", "DBSIZE");
    fd = h_connect(&h);
    expect_value(fd, "d", 0);
    expect_value(fd, "d", 99);
    close(fd);
    free(good);
    h_stop(&h);
}

/* ---- 6. CONFIG GET and INFO memory ---- */

Test(mem, config_and_info_memory, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "mem", mem_2mb);
    CLI_IS(&h, "maxmemory\n2097152\n", "CONFIG", "GET", "maxmemory");
    CLI_IS(&h, "maxmemory-policy\nnoeviction\n", "CONFIG", "GET", "maxmemory-policy");
    CLI_IS(&h, "save\n\n", "CONFIG", "GET", "save");
    char *info = h_cli(&h, "INFO", "memory", NULL);
    cr_expect(strncmp(info, "# Memory\r\n", 10) == 0, "%s", info);
    cr_expect_eq(field_of(info, "maxmemory"), MAXMEMORY, "%s", info);
    cr_expect(strstr(info, "\nmaxmemory_human:2.00M\r\n"), "%s", info);
    cr_expect(strstr(info, "\nmaxmemory_policy:noeviction\r\n"), "%s", info);
    long long used0 = field_of(info, "used_memory");
    free(info);
    cr_expect_lt(used0, MAXMEMORY / 2, "used_memory %lld when empty", used0);
    int fd = h_connect(&h);
    for (size_t i = 0; i < 500; i++) {
        char *r = set_one(fd, "i", i);
        cr_assert_str_eq(r, "+OK\r\n");
        free(r);
    }
    close(fd);
    long long used1 = info_field(&h, "memory", "used_memory");
    cr_expect_geq(used1 - used0, 500 * VALUE_LEN, "used_memory %lld -> %lld for 500 KiB", used0,
                  used1);
    cr_expect_lt(used1, MAXMEMORY, "used_memory %lld", used1);
    h_stop(&h);

    /* No --maxmemory: 0, no limit. */
    h_start(&h, "mem", NULL);
    CLI_IS(&h, "maxmemory\n0\n", "CONFIG", "GET", "maxmemory");
    cr_expect_eq(info_field(&h, "memory", "maxmemory"), 0);
    CLI_IS(&h, "save\n5 1\n", "CONFIG", "GET", "save");
    h_stop(&h);
}
