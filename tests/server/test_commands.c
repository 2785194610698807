/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every command of kvs-server through redis-cli, the reference client:
 * each test starts a server per engine, runs redis-cli as a subprocess and
 * checks its output (redis-cli prints replies raw when not on a terminal:
 * nil as an empty line, errors as their text).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kvs/engine.h"
#include "kvs/kvs.h"

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

ParameterizedTestParameters(commands, strings)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, strings, .timeout = 60)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    CLI_IS(&h, "OK\n", "SET", "k", "v");
    CLI_IS(&h, "v\n", "GET", "k");
    CLI_IS(&h, "\n", "GET", "missing");
    CLI_IS(&h, "OK\n", "set", "empty", "");
    CLI_IS(&h, "\n", "get", "empty");
    CLI_IS(&h, "2\n", "exists", "empty", "k");
    /* NX, XX and GET, alone and together. */
    CLI_IS(&h, "\n", "SET", "k", "v2", "NX");
    CLI_IS(&h, "v\n", "GET", "k");
    CLI_IS(&h, "OK\n", "SET", "k", "v2", "XX");
    CLI_IS(&h, "v2\n", "GET", "k");
    CLI_IS(&h, "\n", "SET", "new", "v", "xx");
    CLI_IS(&h, "0\n", "EXISTS", "new");
    CLI_IS(&h, "OK\n", "SET", "new", "v", "nx");
    CLI_IS(&h, "v2\n", "SET", "k", "v3", "GET");
    CLI_IS(&h, "\n", "SET", "fresh", "v", "GET");
    CLI_IS(&h, "v3\n", "SET", "k", "v4", "NX", "GET");
    CLI_IS(&h, "v3\n", "GET", "k");
    /* Bad options are refused, and nothing is written. */
    CLI_HAS(&h, "ERR syntax error", "SET", "k", "v", "NX", "XX");
    CLI_HAS(&h, "ERR syntax error", "SET", "k", "v", "BOGUS");
    CLI_HAS(&h, "ERR syntax error", "SET", "k", "v", "EX");
    CLI_HAS(&h, "ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "0");
    CLI_HAS(&h, "ERR value is not an integer", "SET", "k", "v", "PX", "x");
    CLI_IS(&h, "v3\n", "GET", "k");
    /* Times: relative, absolute, kept, cleared (the differential test
       holds the rest). */
    CLI_IS(&h, "OK\n", "SET", "k", "v", "EX", "100");
    CLI_IS(&h, "100\n", "TTL", "k");
    CLI_IS(&h, "OK\n", "SET", "k", "v", "PXAT", "4102444800000");
    CLI_IS(&h, "4102444800\n", "EXPIRETIME", "k");
    CLI_IS(&h, "OK\n", "SET", "k", "v5", "KEEPTTL");
    CLI_IS(&h, "4102444800000\n", "PEXPIRETIME", "k");
    CLI_IS(&h, "OK\n", "SET", "k", "v6");
    CLI_IS(&h, "-1\n", "TTL", "k");
    CLI_IS(&h, "-2\n", "TTL", "missing");
    CLI_IS(&h, "v6\n", "GET", "k");
    CLI_HAS(&h, "ERR wrong number of arguments for 'set' command", "SET", "k");
    h_stop(&h);
}

ParameterizedTestParameters(commands, multi_keys)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, multi_keys, .timeout = 60)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    CLI_IS(&h, "0\n", "DBSIZE");
    CLI_IS(&h, "OK\n", "MSET", "a", "1", "b", "2", "c", "3");
    CLI_IS(&h, "1\n2\n\n3\n", "MGET", "a", "b", "zz", "c");
    CLI_IS(&h, "3\n", "EXISTS", "a", "b", "zz", "a");
    CLI_IS(&h, "3\n", "DBSIZE");
    CLI_HAS(&h, "ERR wrong number of arguments for 'mset' command", "MSET", "a", "1", "b");
    CLI_HAS(&h, "ERR wrong number of arguments for 'mget' command", "MGET");
    CLI_HAS(&h, "ERR wrong number of arguments for 'del' command", "DEL");
    CLI_IS(&h, "2\n", "DEL", "a", "b", "zz");
    CLI_IS(&h, "0\n", "DEL", "a");
    CLI_IS(&h, "1\n", "DBSIZE");
    CLI_IS(&h, "OK\n", "FLUSHDB");
    CLI_IS(&h, "0\n", "DBSIZE");
    CLI_IS(&h, "OK\n", "SET", "x", "1");
    CLI_IS(&h, "OK\n", "FLUSHALL", "SYNC");
    CLI_IS(&h, "\n", "GET", "x");
    CLI_HAS(&h, "ERR syntax error", "FLUSHDB", "NOW");
    h_stop(&h);
}

ParameterizedTestParameters(commands, connection)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, connection, .timeout = 60)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    CLI_IS(&h, "PONG\n", "PING");
    CLI_IS(&h, "hello world\n", "PING", "hello world");
    CLI_HAS(&h, "ERR wrong number of arguments for 'ping' command", "PING", "a", "b");
    CLI_IS(&h, "a b\n", "ECHO", "a b");
    CLI_IS(&h, "OK\n", "SELECT", "0");
    CLI_HAS(&h, "ERR DB index is out of range", "SELECT", "1");
    CLI_HAS(&h, "ERR value is not an integer or out of range", "SELECT", "x");
    CLI_IS(&h, "OK\n", "QUIT");
    CLI_HAS(&h, "server\nkvs\nversion\n" KVS_VERSION "\nproto\n2\nid\n", "HELLO", "2");
    CLI_HAS(&h, "mode\nstandalone\nrole\nmaster\nmodules\n", "HELLO");
    CLI_HAS(&h, "NOPROTO unsupported protocol version", "HELLO", "3");
    CLI_HAS(&h, "proto\n2\n", "HELLO", "2", "AUTH", "default", "any", "SETNAME", "me");

    /* One connection for the rest: redis-cli reads commands from stdin. */
    static const char script[] = "CLIENT GETNAME\n"
                                 "CLIENT SETNAME worker-1\n"
                                 "CLIENT GETNAME\n"
                                 "CLIENT SETNAME \"a b\"\n"
                                 "CLIENT GETNAME\n"
                                 "CLIENT NOSUCH\n"
                                 "CLIENT SETNAME\n"
                                 "HELLO 2 SETNAME via-hello\n"
                                 "CLIENT GETNAME\n";
    char *out = h_cli_stdin(&h, script, sizeof(script) - 1, NULL);
    cr_expect(strstr(out, "\nOK\nworker-1\nERR Client names cannot contain spaces") != NULL, "%s",
              out);
    cr_expect(strstr(out, "worker-1\nERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.") != NULL,
              "%s", out);
    cr_expect(strstr(out, "ERR wrong number of arguments for 'client|setname' command") != NULL,
              "%s", out);
    cr_expect(strstr(out, "via-hello\n") != NULL, "%s", out);
    free(out);

    /* Client ids grow with each connection. */
    char *id1 = h_cli(&h, "CLIENT", "ID", NULL);
    char *id2 = h_cli(&h, "CLIENT", "ID", NULL);
    cr_expect_gt(atoll(id2), atoll(id1));
    cr_expect_gt(atoll(id1), 0);
    free(id1);
    free(id2);
    h_stop(&h);
}

ParameterizedTestParameters(commands, errors)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, errors, .timeout = 60)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    /* Redis 7's texts, byte for byte. */
    CLI_IS(&h, "ERR unknown command 'foo', with args beginning with: 'a' 'b' \n\n", "foo", "a",
           "b");
    CLI_IS(&h, "ERR unknown command 'FOO', with args beginning with: \n\n", "FOO");
    CLI_IS(&h, "ERR wrong number of arguments for 'get' command\n\n", "GET");
    CLI_IS(&h, "ERR wrong number of arguments for 'get' command\n\n", "get", "a", "b");
    /* Arguments of an unknown command are cut after 128 bytes. */
    char longarg[300];
    memset(longarg, 'x', sizeof(longarg) - 1);
    longarg[sizeof(longarg) - 1] = '\0';
    char *out = h_cli(&h, "nosuch", longarg, "second", NULL);
    char expect[400];
    snprintf(expect, sizeof(expect),
             "ERR unknown command 'nosuch', with args beginning with: '%.128s' \n\n", longarg);
    cr_expect_str_eq(out, expect);
    free(out);
    h_stop(&h);
}

ParameterizedTestParameters(commands, server)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, server, .timeout = 60)
{
    struct h_server h;
    static const char *const args[] = {"--fsync", "always", "--timeout", "300", NULL};
    h_start(&h, engine->name, args);
    CLI_IS(&h, "OK\n", "SET", "k", "v");
    /* An in-memory engine persists by snapshots, as Redis's RDB: no AOF. */
    bool in_memory = kvs_engine_traits(kvs_engine_find(engine->name)) & KVS_ENGINE_VOLATILE;

    char *info = h_cli(&h, "INFO", NULL);
    static const char *const wanted[] = {"# Server\r\n",
                                         "redis_version:",
                                         "kvs_version:" KVS_VERSION "\r\n",
                                         "tcp_port:",
                                         "uptime_in_seconds:",
                                         "\r\n\r\n# Clients\r\n",
                                         "connected_clients:",
                                         "maxclients:10000\r\n",
                                         "# Stats\r\n",
                                         "total_commands_processed:",
                                         "keyspace_hits:",
                                         "keyspace_misses:",
                                         "# Persistence\r\n",
                                         "rdb_changes_since_last_save:",
                                         "rdb_last_bgsave_status:ok\r\n",
                                         "appendfsync:always\r\n",
                                         "# Memory\r\n",
                                         "used_memory:",
                                         "maxmemory_policy:noeviction\r\n",
                                         "# Engine\r\n",
                                         "live_bytes:",
                                         "disk_bytes:",
                                         "stale_bytes:",
                                         "compactions:",
                                         "# Keyspace\r\n",
                                         "db0:keys=1,expires=0,avg_ttl=0\r\n"};
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        cr_expect(strstr(info, wanted[i]) != NULL, "INFO lacks \"%s\": %s", wanted[i], info);
    char engine_line[64];
    snprintf(engine_line, sizeof(engine_line), "engine:%s\r\n", engine->name);
    cr_expect(strstr(info, engine_line) != NULL, "%s", info);
    cr_expect(strstr(info, in_memory ? "aof_enabled:0\r\n" : "aof_enabled:1\r\n"), "%s", info);
    free(info);

    info = h_cli(&h, "INFO", "keyspace", NULL);
    cr_expect(strncmp(info, "# Keyspace\r\n", 12) == 0, "%s", info);
    cr_expect(strstr(info, "# Server") == NULL, "%s", info);
    free(info);
    info = h_cli(&h, "INFO", "stats", "clients", NULL);
    cr_expect(strstr(info, "# Stats") && strstr(info, "# Clients") && !strstr(info, "# Server"),
              "%s", info);
    free(info);
    CLI_IS(&h, "", "INFO", "nosuchsection"); /* an empty bulk string */

    /* COMMAND: enough for redis-cli and for client libraries' discovery. */
    char *count = h_cli(&h, "COMMAND", "COUNT", NULL);
    cr_expect_geq(atoi(count), 19, "%s", count);
    free(count);
    CLI_IS(&h, "\n", "COMMAND", "DOCS");
    CLI_IS(&h, "\n", "COMMAND", "DOCS", "get");
    CLI_HAS(&h, "get\n2\nreadonly\nfast\n1\n1\n1\n", "COMMAND", "INFO", "get");
    CLI_HAS(&h, "mset\n-3\nwrite\ndenyoom\n1\n-1\n2\n", "COMMAND");
    CLI_HAS(&h, "ERR unknown subcommand 'NOPE'. Try COMMAND HELP.", "COMMAND", "NOPE");

    /* CONFIG GET: what redis-benchmark and clients ask for. */
    CLI_IS(&h, in_memory ? "save\n5 1\n" : "save\n\n", "CONFIG", "GET", "save");
    CLI_IS(&h, in_memory ? "appendonly\nno\n" : "appendonly\nyes\n", "CONFIG", "GET", "appendonly");
    CLI_IS(&h, "appendfsync\nalways\n", "CONFIG", "GET", "appendfsync");
    CLI_IS(&h, "maxclients\n10000\n", "CONFIG", "GET", "maxclients");
    CLI_IS(&h, "timeout\n300\n", "CONFIG", "GET", "timeout");
    CLI_IS(&h, "DATABASES\n1\n", "CONFIG", "GET", "DATABASES"); /* as typed, as Redis */
    CLI_IS(&h, "\n", "CONFIG", "GET", "nosuchparam");
    CLI_IS(&h, "maxmemory\n0\n", "CONFIG", "GET", "maxmemory");
    CLI_IS(&h, "maxmemory-policy\nnoeviction\n", "CONFIG", "GET", "maxmemory-policy");
    char *some = h_cli(&h, "CONFIG", "GET", "timeout", "max*", NULL);
    cr_expect(strstr(some, "maxclients\n10000\n") && strstr(some, "timeout\n300\n") &&
                  strstr(some, "maxmemory\n0\n") && !strstr(some, "appendonly"),
              "%s", some);
    free(some);
    char *all = h_cli(&h, "CONFIG", "GET", "*", NULL);
    cr_expect(strstr(all, "save\n") && strstr(all, "databases\n1\n"), "%s", all);
    free(all);

    /* CONFIG SET: the limits can change at run time, the rest cannot. */
    CLI_IS(&h, "OK\n", "CONFIG", "SET", "timeout", "0", "maxclients", "500");
    CLI_IS(&h, "timeout\n0\n", "CONFIG", "GET", "timeout");
    CLI_IS(&h, "maxclients\n500\n", "CONFIG", "GET", "maxclients");
    CLI_HAS(&h, "can't set immutable config", "CONFIG", "SET", "appendonly", "no");
    CLI_HAS(&h, "argument must be between", "CONFIG", "SET", "maxclients", "0");
    CLI_HAS(&h, "Unknown option or number of arguments for CONFIG SET - 'nosuch'", "CONFIG", "SET",
            "nosuch", "1");
    CLI_HAS(&h, "ERR wrong number of arguments for 'config|set' command", "CONFIG", "SET",
            "timeout");
    CLI_IS(&h, "maxclients\n500\n", "CONFIG", "GET", "maxclients");

    /* CONFIG RESETSTAT zeroes the counters INFO reports. */
    CLI_IS(&h, "v\n", "GET", "k");
    CLI_IS(&h, "OK\n", "CONFIG", "RESETSTAT");
    info = h_cli(&h, "INFO", "stats", NULL);
    cr_expect(strstr(info, "keyspace_hits:0\r\n") != NULL, "%s", info);
    cr_expect(strstr(info, "total_commands_processed:1\r\n") != NULL, "%s", info);
    free(info);
    h_stop(&h);
}

ParameterizedTestParameters(commands, appendonly_follows_fsync)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *engine, commands, appendonly_follows_fsync, .timeout = 60)
{
    struct h_server h;
    static const char *const args[] = {"--fsync", "no", NULL};
    h_start(&h, engine->name, args);
    CLI_IS(&h, "appendonly\nno\n", "CONFIG", "GET", "appendonly");
    CLI_IS(&h, "appendfsync\nno\n", "CONFIG", "GET", "appendfsync");
    h_stop(&h);
}

ParameterizedTestParameters(commands, shutdown)
{
    H_ENGINE_PARAMS;
}

/* SHUTDOWN stops the server as SIGTERM does: exit 0, data kept. */
ParameterizedTest(struct ts_engine_param *engine, commands, shutdown, .timeout = 60)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    CLI_IS(&h, "OK\n", "SET", "kept", "yes");
    CLI_HAS(&h, "ERR syntax error", "SHUTDOWN", "LATER");
    CLI_IS(&h, "", "SHUTDOWN");
    cr_assert_eq(ts_server_wait(&h.s, H_TIMEOUT_MS), 0);
    h_restart(&h, NULL);
    CLI_IS(&h, "yes\n", "GET", "kept");
    h_stop(&h);
}
