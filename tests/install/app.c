/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program of a user of libkvs-client, built by tests/install/run.sh
 * against the installed headers and library found through kvs-client.pc:
 * SET, GET and DEL against the server at argv[1].
 */
#include <kvs/client.h>
#include <kvs/version.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: app HOST:PORT\n");
        return 2;
    }
    char why[256] = "";
    kvs_client *c = NULL;
    int rc = kvs_client_connect(argv[1], 5000, &c, why, sizeof(why));
    if (rc != 0) {
        fprintf(stderr, "app: connect: %s\n", why[0] ? why : kvs_strerror(rc));
        return 1;
    }
    kvs_buf value = KVS_BUF_INIT;
    if ((rc = kvs_client_set(c, kvs_slice_str("app:key"), kvs_slice_str("installed"))) != 0 ||
        (rc = kvs_client_get(c, kvs_slice_str("app:key"), &value)) != 0 ||
        (rc = kvs_client_remove(c, kvs_slice_str("app:key"))) != 0) {
        fprintf(stderr, "app: %s: %s\n", kvs_strerror(rc), kvs_client_last_error(c));
        kvs_client_close(c);
        kvs_buf_free(&value);
        return 1;
    }
    int ok = value.len == 9 && memcmp(value.data, "installed", 9) == 0;
    printf("libkvs-client %s: %s\n", KVS_VERSION, ok ? "ok" : "wrong value");
    kvs_buf_free(&value);
    kvs_client_close(c);
    return ok ? 0 : 1;
}
