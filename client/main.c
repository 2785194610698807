/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-client: the command-line client.
 *
 *   kvs-client set KEY VALUE [--addr ADDR] [-a PASS]   prints nothing
 *   kvs-client get KEY [--addr ADDR] [-a PASS]         prints the value, or "Key not found"
 *   kvs-client rm KEY [--addr ADDR] [-a PASS]          "Key not found" on stderr, exit 1
 *
 * ADDR is IP:PORT, [IPv6]:PORT or HOST:PORT. The password may come from
 * $KVS_PASSWORD instead of -a/--pass, out of other users' ps.
 *
 * Exit status: 0 success (also get of a missing key), 1 a missing key for rm
 * or a server/connection error, 2 a usage error. Options may come before or
 * after the positional arguments; "--" ends the options so that a key or
 * value may start with '-'.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kvs/addr.h"
#include "kvs/client.h"
#include "kvs/kvs.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: kvs-client <command> [--addr ADDR] [-a PASSWORD]\n"
    "\n"
    "commands:\n"
    "  set KEY VALUE    store VALUE under KEY\n"
    "  get KEY          print the value of KEY, or \"Key not found\"\n"
    "  rm KEY           remove KEY\n"
    "\n"
    "options:\n"
    "  --addr ADDR      server to talk to: IP:PORT, [IPv6]:PORT or HOST:PORT\n"
    "                   (default " KVS_ADDR_DEFAULT ")\n"
    "  -a, --pass PASSWORD  authenticate (AUTH) first; $KVS_PASSWORD does the\n"
    "                   same without showing it to other users' ps\n"
    "  -h, --help       print this help and exit\n"
    "  -V, --version    print the version and exit\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvs-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: kvs-client set KEY VALUE | get KEY | rm KEY [--addr ADDR] [-a PASSWORD]\n"
          "Try 'kvs-client --help' for more information.\n",
          stderr);
    return EXIT_USAGE;
}

struct command {
    const char *name;
    int nargs; /* positional arguments after the command name */
};

static const struct command commands[] = {
    {"set", 2},
    {"get", 1},
    {"rm", 1},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Flush stdout and report a failed write (a full disk, a closed pipe). */
static int finish_stdout(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("kvs-client: writing output");
        return EXIT_FAILURE;
    }
    return status;
}

static int run(const struct command *cmd, char **pos, const char *addr, const char *pass)
{
    char why[256];
    kvs_client *c = NULL;
    int rc = kvs_client_connect(addr, KVS_CLIENT_TIMEOUT_MS, &c, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "kvs-client: %s\n", why[0] ? why : kvs_strerror(rc));
        return EXIT_FAILURE;
    }
    if (pass && (rc = kvs_client_auth(c, NULL, kvs_slice_str(pass))) != 0) {
        const char *detail = kvs_client_last_error(c);
        fprintf(stderr, "kvs-client: AUTH failed: %s\n", *detail ? detail : kvs_strerror(rc));
        kvs_client_close(c);
        return EXIT_FAILURE;
    }
    kvs_slice key = kvs_slice_str(pos[0]);
    kvs_buf value = KVS_BUF_INIT;
    int status = EXIT_SUCCESS;
    if (strcmp(cmd->name, "set") == 0) {
        rc = kvs_client_set(c, key, kvs_slice_str(pos[1]));
    } else if (strcmp(cmd->name, "get") == 0) {
        rc = kvs_client_get(c, key, &value);
        if (rc == 0) {
            fwrite(value.data, 1, value.len, stdout);
            putchar('\n');
        } else if (rc == KVS_ENOTFOUND) {
            puts("Key not found");
            rc = 0;
        }
    } else {
        rc = kvs_client_remove(c, key);
        if (rc == KVS_ENOTFOUND) {
            fputs("Key not found\n", stderr);
            status = EXIT_FAILURE;
            rc = 0;
        }
    }
    if (rc != 0) {
        const char *detail = kvs_client_last_error(c);
        fprintf(stderr, "kvs-client: %s\n", *detail ? detail : kvs_strerror(rc));
        status = EXIT_FAILURE;
    }
    kvs_buf_free(&value);
    kvs_client_close(c);
    return finish_stdout(status);
}

/* The password, copied, and the argument overwritten: out of
   /proc/PID/cmdline from now on (ps may have seen it already; hence
   $KVS_PASSWORD). */
static const char *hide(char *arg)
{
    static char *copy;
    free(copy);
    copy = strdup(arg);
    memset(arg, 'x', strlen(arg));
    return copy ? copy : "";
}

/* IP:PORT, [IPv6]:PORT or HOST:PORT in form (a name is resolved later). */
static bool looks_like_addr(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (kvs_addr_parse(addr, &ss, &len) == 0)
        return true;
    const char *colon = strrchr(addr, ':');
    return colon && colon != addr && addr[0] != '[' && !memchr(addr, ':', (size_t)(colon - addr)) &&
           colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
           strlen(colon + 1) <= 5 && atoi(colon + 1) <= 65535;
}

int main(int argc, char **argv)
{
    const char *addr = KVS_ADDR_DEFAULT;
    const char *pass = getenv("KVS_PASSWORD");
    if (pass && !*pass)
        pass = NULL;
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    if (!pos) {
        perror("kvs-client");
        return EXIT_FAILURE;
    }
    int npos = 0;
    bool options = true;
    int status = -1;
    for (int i = 1; i < argc && status < 0; i++) {
        const char *arg = argv[i];
        if (!options || arg[0] != '-' || arg[1] == '\0') {
            pos[npos++] = argv[i];
        } else if (strcmp(arg, "--") == 0) {
            options = false;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_text, stdout);
            status = finish_stdout(EXIT_SUCCESS);
        } else if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0) {
            puts("kvs-client " KVS_VERSION);
            status = finish_stdout(EXIT_SUCCESS);
        } else if (strcmp(arg, "--addr") == 0) {
            if (i + 1 == argc)
                status = usage_error("option '%s' needs a value", arg);
            else
                addr = argv[++i];
        } else if (strncmp(arg, "--addr=", 7) == 0) {
            addr = arg + 7;
        } else if (strcmp(arg, "-a") == 0 || strcmp(arg, "--pass") == 0) {
            if (i + 1 == argc) {
                status = usage_error("option '%s' needs a value", arg);
            } else {
                pass = hide(argv[++i]);
            }
        } else if (strncmp(arg, "--pass=", 7) == 0) {
            pass = hide(argv[i] + 7);
        } else {
            status = usage_error("unknown option '%s'", arg);
        }
    }
    if (status < 0) {
        const struct command *cmd = npos > 0 ? find_command(pos[0]) : NULL;
        if (npos == 0)
            status = usage_error("missing command");
        else if (!cmd)
            status = usage_error("unknown command '%s'", pos[0]);
        else if (npos - 1 < cmd->nargs)
            status = usage_error("missing argument for '%s'", cmd->name);
        else if (npos - 1 > cmd->nargs)
            status = usage_error("unexpected argument '%s'", pos[cmd->nargs + 1]);
        else if (!looks_like_addr(addr))
            status = usage_error("invalid address '%s' (expected IP:PORT, [IPv6]:PORT or "
                                 "HOST:PORT)",
                                 addr);
        else
            status = run(cmd, pos + 1, addr, pass);
    }
    free(pos);
    return status;
}
