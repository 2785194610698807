/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server's configuration end to end: a file in redis.conf's form
 * (comments, quoting, Redis's names, Redis directives kvs ignores), the
 * command line winning over it, errors naming file and line, every
 * option of --help answered by CONFIG GET, CONFIG SET of what can change
 * live (and Redis's errors for the rest), CONFIG REWRITE keeping comments
 * and writing atomically, and CONFIG HELP / CLIENT HELP; the quoting and
 * the CONFIG errors compared with redis-server's.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "differential.h"
#include "harness.h"

struct cs {
    ts_server s;
    char dir[PATH_MAX];
    char conf[PATH_MAX + 16];
    char log[PATH_MAX + 16];
    uint16_t port;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

/* A directory, a free port and the file text (with "%PORT%" and "%DIR%"
   replaced); the server is not started. */
static void cs_prepare(struct cs *c, const char *text)
{
    memset(c, 0, sizeof(*c));
    cr_assert_eq(ts_tmpdir_make(c->dir), 0);
    snprintf(c->conf, sizeof(c->conf), "%s/kvs.conf", c->dir);
    snprintf(c->log, sizeof(c->log), "%s/server.log", c->dir);
    c->port = ts_free_port(NULL);
    char out[8192];
    size_t o = 0;
    for (const char *p = text; *p && o < sizeof(out) - 600;) {
        if (strncmp(p, "%PORT%", 6) == 0) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%u", (unsigned)c->port);
            p += 6;
        } else if (strncmp(p, "%DIR%", 5) == 0) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", c->dir);
            p += 5;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    write_file(c->conf, out);
}

/* Start kvs-server CONF [extra...]. */
static void cs_start(struct cs *c, const char *const *extra)
{
    const char *args[16] = {c->conf};
    size_t n = 1;
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    ts_server_opts o = {.binary = h_server_binary(),
                        .args = args,
                        .log_path = c->log,
                        .no_addr = true,
                        .port = c->port};
    int rc = ts_server_start(&c->s, &o);
    char *log = ts_read_file(c->log, NULL);
    cr_assert_eq(rc, TS_READY, "kvs-server did not start: %s", log ? log : "");
    free(log);
}

static void cs_stop(struct cs *c)
{
    cr_expect_eq(ts_server_stop(&c->s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(c->dir);
}

static redisContext *cs_connect(uint16_t port, const char *pass)
{
    struct timeval tv = {10, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(rc && !rc->err, "connect: %s", rc ? rc->errstr : "?");
    redisSetTimeout(rc, tv);
    if (pass) {
        redisReply *r = redisCommand(rc, "AUTH %s", pass);
        cr_assert(r && r->type == REDIS_REPLY_STATUS, "AUTH: %s", r ? r->str : "?");
        freeReplyObject(r);
    }
    return rc;
}

/* CONFIG GET name's value, malloc'd ("" when not answered). */
static char *get(redisContext *rc, const char *name)
{
    redisReply *r = redisCommand(rc, "CONFIG GET %s", name);
    cr_assert(r && r->type == REDIS_REPLY_ARRAY, "CONFIG GET %s", name);
    char *v = strdup(r->elements == 2 ? r->element[1]->str : "");
    freeReplyObject(r);
    return v;
}

#define EXPECT_GET(rc, name, want)                                                                 \
    do {                                                                                           \
        char *v_ = get((rc), (name));                                                              \
        cr_expect_str_eq(v_, (want), "CONFIG GET %s", (name));                                     \
        free(v_);                                                                                  \
    } while (0)

/* A command's reply as "+OK", "-ERR ...", ":1" or the string. */
static char *ask(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "%s: no reply", fmt);
    char *out = NULL;
    if (r->type == REDIS_REPLY_ERROR)
        cr_assert_neq(asprintf(&out, "-%s", r->str), -1);
    else if (r->type == REDIS_REPLY_STATUS)
        cr_assert_neq(asprintf(&out, "+%s", r->str), -1);
    else if (r->type == REDIS_REPLY_INTEGER)
        cr_assert_neq(asprintf(&out, ":%lld", r->integer), -1);
    else if (r->type == REDIS_REPLY_STRING)
        out = strdup(r->str);
    else
        out = strdup("?");
    freeReplyObject(r);
    return out;
}

#define EXPECT_ASK(rc, want, ...)                                                                  \
    do {                                                                                           \
        char *a_ = ask((rc), __VA_ARGS__);                                                         \
        cr_expect_str_eq(a_, (want));                                                              \
        free(a_);                                                                                  \
    } while (0)

static const char base_conf[] = "# kvs test configuration\n"
                                "port %PORT%\n"
                                "bind 127.0.0.1 -::1\n"
                                "dir \"%DIR%/data\"\n"
                                "   # an indented comment\n"
                                "\n"
                                "requirepass \"a b\\x41\\n\"\n"
                                "masterauth 'it\\'s'\n"
                                "save 900 1\n"
                                "daemonize no\n"
                                "appendfsync always\n"
                                "LogLevel notice\n"
                                "maxclients 77\n"
                                "timeout 5\n"
                                "client-output-buffer-limit normal 0 0 0 replica 64mb 0 0 pubsub "
                                "32mb 8mb 60\n"
                                "threads 1\n";

/* The file's settings, Redis's quoting, names and ignored directives;
   the command line wins. */
Test(config, file_and_command_line, .timeout = 60)
{
    struct cs c;
    cs_prepare(&c, base_conf);
    static const char *const extra[] = {"--maxclients", "99", "--hz=20", NULL};
    cs_start(&c, extra);
    redisContext *rc = cs_connect(c.port, "a bA\n");
    EXPECT_GET(rc, "requirepass", "a bA\n");
    EXPECT_GET(rc, "masterauth", "it's");
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)c.port);
    EXPECT_GET(rc, "port", port);
    EXPECT_GET(rc, "bind", "127.0.0.1");
    char data[PATH_MAX + 16];
    snprintf(data, sizeof(data), "%s/data", c.dir);
    EXPECT_GET(rc, "dir", data);
    EXPECT_GET(rc, "data-dir", data);
    EXPECT_GET(rc, "appendfsync", "always");
    EXPECT_GET(rc, "loglevel", "info");
    EXPECT_GET(rc, "maxclients", "99");
    EXPECT_GET(rc, "timeout", "5");
    EXPECT_GET(rc, "hz", "20");
    EXPECT_GET(rc, "max-output-buffer", "0");
    EXPECT_GET(rc, "replica-output-buffer-limit", "67108864");
    EXPECT_GET(rc, "engine", "kvs");
    redisFree(rc);
    char *log = ts_read_file(c.log, NULL);
    cr_expect(strstr(log, "kvs.conf:9: 'save' is a Redis setting kvs has no use for"), "%s", log);
    cr_expect(strstr(log, "'-::1' is ignored"), "%s", log);
    free(log);
    cs_stop(&c);
}

/* A bad file stops the server before it touches anything, naming the
   file and the line. */
Test(config, bad_files, .timeout = 60)
{
    static const struct {
        const char *text, *why;
    } cases[] = {
        {"port 1\nrequirepass \"open\n", "kvs.conf:2: unbalanced quotes"},
        {"port 1\nrequirepass 'a'b\n", "kvs.conf:2: unbalanced quotes"},
        {"# c\n\nnosuch 1\n", "kvs.conf:3: unknown directive 'nosuch'"},
        {"hz 0\n", "kvs.conf:1: invalid hz '0': argument must be between 1 and 500 inclusive"},
        {"threads 1 2\n", "kvs.conf:1: option 'threads' takes 1 value, not 2"},
        {"port\n", "kvs.conf:1: option 'port' needs a value"},
        {"include other.conf\n", "'include' is not supported"},
        {"appendfsync sometimes\n", "invalid appendfsync 'sometimes'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cs c;
        cs_prepare(&c, cases[i].text);
        char data[PATH_MAX + 16];
        snprintf(data, sizeof(data), "%s/data", c.dir);
        const char *argv[] = {h_server_binary(), c.conf, "--dir", data, NULL};
        ts_result r;
        cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &r), 0);
        cr_expect_eq(r.status, 1, "%s", cases[i].text);
        cr_expect(strstr(r.err, cases[i].why), "%s: %s", cases[i].text, r.err);
        struct stat st;
        cr_expect_neq(stat(data, &st), 0, "the data directory was made");
        ts_result_free(&r);
        ts_tmpdir_remove(c.dir);
    }
    const char *missing[] = {h_server_binary(), "/nonexistent/kvs.conf", NULL};
    ts_result r;
    cr_assert_eq(ts_run(missing, NULL, 0, H_TIMEOUT_MS, &r), 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "cannot read the configuration file '/nonexistent/kvs.conf'"), "%s",
              r.err);
    ts_result_free(&r);
}

/* Every option --help lists is a directive CONFIG GET answers. */
Test(config, every_option_answers, .timeout = 60)
{
    const char *argv[] = {h_server_binary(), "--help", NULL};
    ts_result help;
    cr_assert_eq(ts_run(argv, NULL, 0, H_TIMEOUT_MS, &help), 0);
    struct h_server h;
    h_start(&h, "kvs", NULL);
    redisContext *rc = cs_connect(h.s.port, NULL);
    size_t seen = 0;
    for (const char *p = help.out; (p = strstr(p, "  --")) != NULL;) {
        p += 4;
        char name[64];
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, p, n);
        name[n] = '\0';
        if (strcmp(name, "version") == 0 || strcmp(name, "help") == 0)
            continue;
        redisReply *r = redisCommand(rc, "CONFIG GET %s", name);
        cr_expect(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "CONFIG GET %s: no answer",
                  name);
        freeReplyObject(r);
        seen++;
    }
    /* The second name of a line ("--bind IP, --port N"). */
    for (const char *p = help.out; (p = strstr(p, ", --")) != NULL;) {
        p += 4;
        char name[64];
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, p, n);
        name[n] = '\0';
        if (strcmp(name, "version") == 0 || strcmp(name, "help") == 0)
            continue;
        redisReply *r = redisCommand(rc, "CONFIG GET %s", name);
        cr_expect(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "CONFIG GET %s: no answer",
                  name);
        freeReplyObject(r);
    }
    cr_expect_geq(seen, 30, "only %zu options in --help", seen);
    ts_result_free(&help);
    redisFree(rc);
    h_stop(&h);
}

/* What CONFIG SET changes takes effect; what it cannot change says so. */
Test(config, set_live, .timeout = 60)
{
    struct h_server h;
    h_start(&h, "kvs", NULL);
    redisContext *rc = cs_connect(h.s.port, NULL);
    EXPECT_ASK(rc, "+OK", "CONFIG SET loglevel debug hz 50 timeout 0");
    EXPECT_GET(rc, "loglevel", "debug");
    EXPECT_GET(rc, "log-level", "debug");
    EXPECT_GET(rc, "hz", "50");
    EXPECT_ASK(rc, "+OK", "CONFIG SET client-query-buffer-limit 2mb");
    EXPECT_GET(rc, "max-query-buffer", "2097152");
    /* A password: new connections must AUTH, this one stays served. */
    EXPECT_ASK(rc, "+OK", "CONFIG SET requirepass s3cret");
    EXPECT_ASK(rc, "+PONG", "PING");
    redisContext *other = cs_connect(h.s.port, NULL);
    EXPECT_ASK(other, "-NOAUTH Authentication required.", "PING");
    EXPECT_ASK(other, "+OK", "AUTH s3cret");
    EXPECT_ASK(other, "+PONG", "PING");
    redisFree(other);
    EXPECT_ASK(rc, "+OK", "CONFIG SET requirepass %s", "");
    other = cs_connect(h.s.port, NULL);
    EXPECT_ASK(other, "+PONG", "PING");
    redisFree(other);
    /* All or nothing, with Redis's errors. */
    EXPECT_ASK(rc,
               "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set "
               "immutable config",
               "CONFIG SET hz 10 port 1");
    EXPECT_GET(rc, "hz", "50");
    EXPECT_ASK(rc,
               "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be "
               "between 1 and 500 inclusive",
               "CONFIG SET timeout 3 hz 0");
    EXPECT_GET(rc, "timeout", "0");
    EXPECT_ASK(rc, "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'",
               "CONFIG SET engine lmdb nosuch 1");
    /* Help texts: CONFIG HELP names what can change. */
    redisReply *r = redisCommand(rc, "CONFIG HELP");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements > 8);
    bool live = false, rewrite = false;
    for (size_t i = 0; i < r->elements; i++) {
        live |= strstr(r->element[i]->str, "maxclients, timeout, loglevel") != NULL;
        rewrite |= strcmp(r->element[i]->str, "REWRITE") == 0;
    }
    cr_expect(live && rewrite);
    freeReplyObject(r);
    r = redisCommand(rc, "CLIENT HELP");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements > 4);
    cr_expect_str_eq(r->element[0]->str,
                     "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    cr_expect_str_eq(r->element[r->elements - 2]->str, "HELP");
    freeReplyObject(r);
    EXPECT_ASK(rc, "-ERR The server is running without a config file", "CONFIG REWRITE");
    redisFree(rc);
    char *log = ts_read_file(h.log, NULL);
    cr_expect(strstr(log, "CONFIG SET requirepass by client id="), "%s", log);
    free(log);
    h_stop(&h);
}

/* No temporary file is left beside the configuration file. */
static void expect_only_conf(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        cr_expect(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
    closedir(d);
}

/* CONFIG REWRITE: values replaced where they are, comments and Redis's
   ignored lines kept, new values appended; the server starts from it. */
Test(config, rewrite, .timeout = 60)
{
    struct cs c;
    cs_prepare(&c, base_conf);
    chmod(c.conf, 0600);
    cs_start(&c, NULL);
    redisContext *rc = cs_connect(c.port, "a bA\n");
    EXPECT_ASK(rc, "+OK", "CONFIG SET maxclients 123 active-expire-effort 3");
    EXPECT_ASK(rc, "+OK", "CONFIG SET requirepass %s", "new \"pass\"");
    EXPECT_ASK(rc, "+OK", "CONFIG REWRITE");
    redisFree(rc);
    char *text = ts_read_file(c.conf, NULL);
    cr_assert_not_null(text);
    cr_expect(strncmp(text, "# kvs test configuration\nport ", 30) == 0, "%s", text);
    cr_expect(strstr(text, "\n   # an indented comment\n\nrequirepass \"new \\\"pass\\\"\"\n"),
              "%s", text);
    cr_expect(strstr(text, "\nmasterauth \"it's\"\nsave 900 1\ndaemonize no\n"), "%s", text);
    cr_expect(strstr(text, "\nLogLevel info\nmaxclients 123\ntimeout 5\n"), "%s", text);
    cr_expect(strstr(text, "\n\n# Generated by CONFIG REWRITE\n"), "%s", text);
    cr_expect(strstr(text, "\nactive-expire-effort 3\n"), "%s", text);
    free(text);
    struct stat st;
    cr_assert_eq(stat(c.conf, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    expect_only_conf(c.dir);
    /* A second rewrite changes nothing. */
    rc = cs_connect(c.port, "new \"pass\"");
    char *before = ts_read_file(c.conf, NULL);
    EXPECT_ASK(rc, "+OK", "CONFIG REWRITE");
    char *after = ts_read_file(c.conf, NULL);
    cr_expect_str_eq(after, before);
    free(before);
    free(after);
    redisFree(rc);
    cr_expect_eq(ts_server_stop(&c.s, H_TIMEOUT_MS), 0);
    /* And the server starts from it with the values it had. */
    cs_start(&c, NULL);
    rc = cs_connect(c.port, "new \"pass\"");
    EXPECT_GET(rc, "maxclients", "123");
    EXPECT_GET(rc, "active-expire-effort", "3");
    redisFree(rc);
    cs_stop(&c);
}

/* The same file's quoted values and the same CONFIG mistakes, answered by
   redis-server and by kvs-server. */
Test(config, differential, .timeout = 60)
{
    static const char quoted[] = "requirepass \"a b\\x41\\n\\\\\\\"\"\n"
                                 "masterauth 'it\\'s \"x\"'\n";
    struct cs k, r;
    char conf[512];
    snprintf(conf, sizeof(conf), "port %%PORT%%\ndir %%DIR%%/data\n%s", quoted);
    cs_prepare(&k, conf);
    cs_start(&k, NULL);
    snprintf(conf, sizeof(conf),
             "port %%PORT%%\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir %%DIR%%\n%s", quoted);
    cs_prepare(&r, conf);
    {
        const char *args[] = {r.conf, NULL};
        ts_server_opts o = {.binary = REDIS_SERVER,
                            .args = args,
                            .log_path = r.log,
                            .no_addr = true,
                            .port = r.port};
        cr_assert_eq(ts_server_start(&r.s, &o), TS_READY);
    }
    const char *pass = "a bA\n\\\"";
    int fds[2] = {d_connect_port(k.port), d_connect_port(r.port)};
    static const struct dcmd cmds[] = {
        CMD(EXACT, S("CONFIG"), S("GET"), S("requirepass")),
        CMD(EXACT, S("CONFIG"), S("GET"), S("masterauth")),
        CMD(EXACT, S("CONFIG"), S("GET"), S("MAXCLIENTS")),
        CMD(EXACT, S("CONFIG"), S("GET"), S("timeout"), S("TIMEOUT")),
        CMD(EXACT, S("CONFIG"), S("GET"), S("nosuch*")),
        CMD(EXACT, S("CONFIG"), S("GET")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("maxclients"), S("abc")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("timeout"), S("-1")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("protected-mode"), S("maybe")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("nosuch"), S("1")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("maxclients"), S("5"), S("maxclients"), S("6")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("maxclients"), S("1"), S("timeout")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("timeout")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("databases"), S("2")),
        CMD(EXACT, S("CONFIG"), S("SET"), S("timeout"), S("7"), S("maxclients"), S("500")),
        CMD(EXACT, S("CONFIG"), S("GET"), S("timeout")),
        CMD(EXACT, S("CONFIG"), S("NOPE")),
    };
    for (int s = 0; s < 2; s++) {
        kvs_slice auth[] = {S("AUTH"), {pass, strlen(pass)}};
        size_t len;
        char *ok = d_ask(fds[s], 2, auth, &len);
        cr_assert_str_eq(ok, "+OK\r\n", "AUTH on %s", s ? "redis" : "kvs");
        free(ok);
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        size_t klen, rlen;
        char *kv = d_ask(fds[0], cmds[i].argc, cmds[i].argv, &klen);
        char *rv = d_ask(fds[1], cmds[i].argc, cmds[i].argv, &rlen);
        cr_expect(klen == rlen && memcmp(kv, rv, klen) == 0,
                  "command %zu (%.*s %.*s): kvs %s, redis %s", i, (int)cmds[i].argv[1].len,
                  (const char *)cmds[i].argv[1].data,
                  (int)(cmds[i].argc > 2 ? cmds[i].argv[2].len : 0),
                  cmds[i].argc > 2 ? (const char *)cmds[i].argv[2].data : "", kv, rv);
        free(kv);
        free(rv);
    }
    close(fds[0]);
    close(fds[1]);
    cs_stop(&k);
    cs_stop(&r);
}
