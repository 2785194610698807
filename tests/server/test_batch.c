/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The batching of writes (issue 5): a worker applies the SET/DEL/MSET of
 * all the commands it parsed in one loop turn with one kvs_db_write() and
 * answers them afterwards. What a client must not be able to tell: replies
 * come in the order of its commands, a read after a write on the same
 * connection sees it, connections sending at once each get their own
 * answers, MSET is all or nothing, and one failing write in a batch gets
 * its error while the others around it behave as if sent alone.
 *
 * Commands are sent as one pipeline before any reply is read, so that the
 * server reads them in as few turns as it can.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"
#include "proto/resp.h"

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(batch, name)                                                       \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, batch, name, .timeout = 60)

/* Append a command of C-string arguments to out. */
static void add(kvs_buf *out, size_t argc, const char *const *argv)
{
    kvs_slice s[16];
    cr_assert(argc <= 16);
    for (size_t i = 0; i < argc; i++)
        s[i] = (kvs_slice){argv[i], strlen(argv[i])};
    cr_assert_eq(resp_add_command(out, argc, s), 0);
}
#define ADD(out, ...)                                                                              \
    add((out), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),                       \
        (const char *[]){__VA_ARGS__})

static void send_buf(int fd, kvs_buf *b)
{
    h_send(fd, b->data, b->len);
    b->len = 0;
}

static void read_after_write(const char *engine, const char *const *extra)
{
    struct h_server h;
    h_start(&h, engine, extra);
    int fd = h_connect(&h);
    kvs_buf b = {0};
    ADD(&b, "SET", "k", "v1");
    ADD(&b, "GET", "k");
    ADD(&b, "SET", "k", "v2");
    ADD(&b, "GET", "k");
    ADD(&b, "DEL", "k", "k", "nope");
    ADD(&b, "GET", "k");
    ADD(&b, "SET", "k", "v3");
    ADD(&b, "EXISTS", "k");
    ADD(&b, "PING");
    ADD(&b, "SET", "k", "v4", "NX"); /* not batched: reads k, which must be there */
    ADD(&b, "SET", "k", "v5", "XX");
    ADD(&b, "SET", "k", "v6");
    ADD(&b, "SET", "k", "v7", "GET");
    ADD(&b, "GET", "k");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n$2\r\nv1\r\n+OK\r\n$2\r\nv2\r\n:1\r\n$-1\r\n+OK\r\n:1\r\n+PONG\r\n"
                 "$-1\r\n+OK\r\n+OK\r\n$2\r\nv6\r\n$2\r\nv7\r\n");
    /* Writes only, then one read: a pipeline of writes is one batch. */
    for (int i = 0; i < 200; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        ADD(&b, "SET", "n", v);
    }
    ADD(&b, "GET", "n");
    send_buf(fd, &b);
    for (int i = 0; i < 200; i++)
        H_EXPECT(fd, "+OK\r\n");
    H_EXPECT(fd, "$3\r\n199\r\n");
    /* A remove sees the set before it in the same batch, and a key named
       twice in one DEL is removed once. */
    ADD(&b, "SET", "y", "1");
    ADD(&b, "DEL", "y", "y");
    ADD(&b, "SET", "y", "2");
    ADD(&b, "DEL", "y");
    ADD(&b, "DEL", "y");
    ADD(&b, "MSET", "y", "3", "z", "4");
    ADD(&b, "DEL", "z", "y");
    ADD(&b, "EXISTS", "y", "z");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n:1\r\n+OK\r\n:1\r\n:0\r\n+OK\r\n:2\r\n:0\r\n");
    kvs_buf_free(&b);
    close(fd);
    h_stop(&h);
}

ENGINE_TEST(read_after_write_same_connection)
{
    read_after_write(engine->name, NULL);
}

/* The same under --fsync always, where the engine applies a batch only
   once an fsync covers it. */
ENGINE_TEST(read_after_write_fsync_always)
{
    static const char *const always[] = {"--fsync", "always", NULL};
    read_after_write(engine->name, always);
}

/* Several connections, each sending its whole pipeline before reading, on
   keys of their own and on one they share. */
ENGINE_TEST(interleaved_connections)
{
    enum { NCONN = 8, ROUNDS = 50 };
    struct h_server h;
    h_start(&h, engine->name, NULL);
    struct timeval tv = {10, 0};
    redisContext *rc[NCONN];
    for (int i = 0; i < NCONN; i++) {
        rc[i] = redisConnectWithTimeout("127.0.0.1", h.s.port, tv);
        cr_assert(rc[i] && !rc[i]->err);
        redisSetTimeout(rc[i], tv);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < NCONN; i++) {
            redisAppendCommand(rc[i], "SET own:%d %d", i, r);
            redisAppendCommand(rc[i], "SET shared %d", i);
            redisAppendCommand(rc[i], "GET own:%d", i);
            redisAppendCommand(rc[i], "MSET a:%d %d b:%d %d", i, r, i, r);
            redisAppendCommand(rc[i], "MGET a:%d b:%d own:%d", i, i, i);
            redisAppendCommand(rc[i], "DEL a:%d", i);
            redisAppendCommand(rc[i], "GET shared");
        }
        for (int i = 0; i < NCONN; i++) {
            redisReply *rp;
            char want[16];
            snprintf(want, sizeof(want), "%d", r);
            for (int k = 0; k < 7; k++) {
                cr_assert_eq(redisGetReply(rc[i], (void **)&rp), REDIS_OK);
                switch (k) {
                case 0:
                case 1:
                case 3:
                    cr_expect(rp->type == REDIS_REPLY_STATUS && !strcmp(rp->str, "OK"));
                    break;
                case 2:
                    cr_expect(rp->type == REDIS_REPLY_STRING && !strcmp(rp->str, want));
                    break;
                case 4:
                    cr_assert_eq(rp->type, REDIS_REPLY_ARRAY);
                    cr_assert_eq(rp->elements, 3);
                    for (size_t e = 0; e < 3; e++)
                        cr_expect(rp->element[e]->type == REDIS_REPLY_STRING &&
                                  !strcmp(rp->element[e]->str, want));
                    break;
                case 5:
                    cr_expect(rp->type == REDIS_REPLY_INTEGER && rp->integer == 1);
                    break;
                case 6: /* some connection's number */
                    cr_expect(rp->type == REDIS_REPLY_STRING && atoi(rp->str) >= 0 &&
                              atoi(rp->str) < NCONN);
                    break;
                }
                freeReplyObject(rp);
            }
        }
    }
    for (int i = 0; i < NCONN; i++)
        redisFree(rc[i]);
    h_stop(&h);
}

ENGINE_TEST(mset_then_mget)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    kvs_buf b = {0};
    ADD(&b, "MSET", "a", "1", "b", "2", "c", "3");
    ADD(&b, "MGET", "a", "b", "c", "d");
    ADD(&b, "MSET", "a", "x", "d", "4", "a", "y"); /* the last of a key wins */
    ADD(&b, "DEL", "b", "zz");
    ADD(&b, "MGET", "a", "b", "c", "d");
    ADD(&b, "MSET", "odd");
    ADD(&b, "MSET", "e", "5", "f");
    ADD(&b, "DBSIZE");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n+OK\r\n:1\r\n"
                 "*4\r\n$1\r\ny\r\n$-1\r\n$1\r\n3\r\n$1\r\n4\r\n"
                 "-ERR wrong number of arguments for 'mset' command\r\n"
                 "-ERR wrong number of arguments for 'mset' command\r\n:3\r\n");
    kvs_buf_free(&b);
    close(fd);
    h_stop(&h);
}

/* A key over the engine's limit fails its own command only: the writes
   before and after it in the same batch are applied and answered OK, an
   MSET holding it writes none of its pairs, and a DEL holding it removes
   nothing. */
ENGINE_TEST(failing_write_in_a_batch)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    size_t max = kvs_engine_max_key(kvs_engine_find(engine->name));
    char *big = malloc(max + 2);
    cr_assert(big);
    memset(big, 'k', max + 1);
    big[max + 1] = '\0';
    char err[160];
    snprintf(err, sizeof(err), "-ERR key too long: engine %s accepts keys up to %zu bytes\r\n",
             engine->name, max);
    int fd = h_connect(&h);
    kvs_buf b = {0};
    ADD(&b, "SET", "before", "1");
    ADD(&b, "SET", big, "v");
    ADD(&b, "SET", "after", "2");
    ADD(&b, "MSET", "m1", "x", big, "y", "m2", "z");
    ADD(&b, "DEL", "before", big);
    ADD(&b, "MGET", "before", "after", "m1", "m2");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n");
    h_expect(fd, err, strlen(err));
    H_EXPECT(fd, "+OK\r\n");
    h_expect(fd, err, strlen(err));
    h_expect(fd, err, strlen(err));
    H_EXPECT(fd, "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$-1\r\n");
    /* Another connection, meanwhile, is unaffected. */
    int other = h_connect(&h);
    ADD(&b, "GET", "after");
    send_buf(other, &b);
    H_EXPECT(other, "$1\r\n2\r\n");
    close(other);
    kvs_buf_free(&b);
    free(big);
    close(fd);
    h_stop(&h);
}

/* What ends a connection after queued writes still comes after their
   replies: a protocol error, and QUIT. */
ENGINE_TEST(end_after_queued_writes)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    kvs_buf b = {0};
    ADD(&b, "SET", "p", "1");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n");
    ADD(&b, "SET", "p", "2");
    ADD(&b, "DEL", "p");
    h_send(fd, b.data, b.len);
    b.len = 0;
    static const char bad[] = "*1\r\n$x\r\n";
    h_send(fd, bad, sizeof(bad) - 1);
    H_EXPECT(fd, "+OK\r\n:1\r\n-ERR Protocol error: invalid bulk length\r\n");
    cr_expect(h_closed(fd));
    close(fd);

    fd = h_connect(&h);
    ADD(&b, "SET", "q", "1");
    ADD(&b, "QUIT");
    ADD(&b, "SET", "q", "2");
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n+OK\r\n");
    cr_expect(h_closed(fd));
    close(fd);

    fd = h_connect(&h);
    ADD(&b, "MGET", "p", "q");
    send_buf(fd, &b);
    H_EXPECT(fd, "*2\r\n$-1\r\n$1\r\n1\r\n");
    close(fd);
    kvs_buf_free(&b);
    h_stop(&h);
}

/* The writes of a client that closes right after sending them are applied
   before its connection goes, and a stop answers what was sent. */
ENGINE_TEST(close_with_writes_queued)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    kvs_buf b = {0};
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "c%d", i);
        ADD(&b, "SET", k, "v");
    }
    send_buf(fd, &b);
    close(fd);
    fd = h_connect(&h);
    /* Its writes are applied once its connection has been read; wait. */
    for (int tries = 0; tries < 1000; tries++) {
        char reply[16] = {0};
        ADD(&b, "EXISTS", "c99");
        send_buf(fd, &b);
        h_recv(fd, reply, 4);
        if (!memcmp(reply, ":1\r\n", 4))
            break;
        cr_assert(tries < 999, "the writes of a closed connection were lost");
        usleep(1000);
    }
    ADD(&b, "DBSIZE");
    send_buf(fd, &b);
    H_EXPECT(fd, ":100\r\n");
    close(fd);
    kvs_buf_free(&b);
    h_stop(&h);
}

/* Expect the bulk reply value. */
static void expect_bulk(int fd, const char *value)
{
    char want[4200];
    int n = snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", strlen(value), value);
    cr_assert(n > 0 && (size_t)n < sizeof(want));
    h_expect(fd, want, (size_t)n);
}

/* Append printf-formatted text to b. */
static void addf(kvs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(kvs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && kvs_buf_reserve(b, b->len + (size_t)n + 1) == 0);
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Inline commands with quoted words, pipelined: the quoted words of a
   queued SET (unescaped into the parser, not in the input) must stay what
   they were until the batch is applied, however many lines follow in the
   same turn. The audit's pipelines stored "xyllo world" under ka and the
   value of "key one" under "zzy one"; a longer second line read freed
   memory. */
ENGINE_TEST(inline_quoted_words_pipelined)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    static const char one[] = "SET ka \"hello world\"\r\nSET kb \"xy\"\r\n";
    h_send(fd, one, sizeof(one) - 1);
    H_EXPECT(fd, "+OK\r\n+OK\r\n");
    H_ROUNDTRIP(fd, "GET ka\r\n", "$11\r\nhello world\r\n");
    H_ROUNDTRIP(fd, "GET kb\r\n", "$2\r\nxy\r\n");

    static const char two[] = "SET \"key one\" v1\r\nSET \"zz\" v2\r\n";
    h_send(fd, two, sizeof(two) - 1);
    H_EXPECT(fd, "+OK\r\n+OK\r\n");
    H_ROUNDTRIP(fd, "GET \"key one\"\r\n", "$2\r\nv1\r\n");
    H_ROUNDTRIP(fd, "GET zz\r\n", "$2\r\nv2\r\n");
    H_ROUNDTRIP(fd, "EXISTS \"zzy one\"\r\n", ":0\r\n");

    /* A second line longer than the first. */
    char longer[301];
    memset(longer, 'L', 300);
    longer[300] = '\0';
    kvs_buf b = {0};
    addf(&b, "SET kc \"short\"\r\nSET kd \"%s\"\r\n", longer);
    send_buf(fd, &b);
    H_EXPECT(fd, "+OK\r\n+OK\r\n");
    H_ROUNDTRIP(fd, "GET kc\r\n", "$5\r\nshort\r\n");
    h_send(fd, "GET kd\r\n", 8);
    expect_bulk(fd, longer);

    /* Many such lines in one packet: they fill the parser's scratch more
       than once (the lines after wait for the batch), with a read in the
       middle (parsed again after the batch) and a line longer than the
       scratch. */
    enum { LINES = 300 };
    char big[3001];
    memset(big, 'B', 3000);
    big[3000] = '\0';
    for (int i = 0; i < LINES; i++) {
        if (i == 150)
            addf(&b, "GET \"key 10\"\r\n");
        if (i == 200)
            addf(&b, "SET \"big key\" \"%s\"\r\n", big);
        addf(&b, "SET \"key %d\" 'value %d, with a \\'quote\\' and padding'\r\n", i, i);
    }
    send_buf(fd, &b);
    for (int i = 0; i < LINES; i++) {
        if (i == 150)
            expect_bulk(fd, "value 10, with a 'quote' and padding");
        if (i == 200)
            H_EXPECT(fd, "+OK\r\n");
        H_EXPECT(fd, "+OK\r\n");
    }
    for (int i = 0; i < LINES; i++) {
        char want[64];
        addf(&b, "GET \"key %d\"\r\n", i);
        send_buf(fd, &b);
        snprintf(want, sizeof(want), "value %d, with a 'quote' and padding", i);
        expect_bulk(fd, want);
    }
    h_send(fd, "GET \"big key\"\r\n", 15);
    expect_bulk(fd, big);
    H_ROUNDTRIP(fd, "DBSIZE\r\n", ":307\r\n");
    kvs_buf_free(&b);
    close(fd);
    h_stop(&h);
}
