/*
 * Temporary data directories for tests: a fresh directory under /tmp per
 * test, removed with everything in it when the test ends. Shared by the
 * contract, lmdb and owner suites.
 */
#ifndef KVS_TESTS_CONTRACT_TESTDIR_H
#define KVS_TESTS_CONTRACT_TESTDIR_H

#include <stddef.h>

/* Create /tmp/kvs-TAG-XXXXXX into buf (size bytes); returns buf or NULL. */
char *kvs_test_mkdtemp(char *buf, size_t size, const char *tag);

/* Remove path and everything below it; 0 or -1 (errno set). */
int kvs_test_rmtree(const char *path);

#endif
