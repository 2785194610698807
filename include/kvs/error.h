/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs error codes.
 *
 * One closed error space, generated from one X-macro so that the enum, the
 * names and the messages cannot drift apart. 0 is success; every failure is
 * negative. Raw errno values and library codes (LMDB's MDB_*) are mapped onto
 * this space once, at an engine's edge, and never leak past it.
 */
#ifndef KVS_ERROR_H
#define KVS_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) */
#define KVS_ERROR_MAP(X)                                                                           \
    X(OK, 0, "success")                                                                            \
    X(ENOTFOUND, -1, "key not found")                                                              \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(ENOMEM, -3, "out of memory")                                                                 \
    X(EIO, -4, "I/O error")                                                                        \
    X(ENOSPC, -5, "no space left on device")                                                       \
    X(ECORRUPT, -6, "data corruption detected")                                                    \
    X(EKEYSIZE, -7, "key is longer than the engine's maximum key length")                          \
    X(EVALSIZE, -8, "value is longer than the engine's maximum value length")                      \
    X(ENOENGINE, -9, "no engine registered under that name")                                       \
    X(EWRONGENGINE, -10, "data directory belongs to a different engine")                           \
    X(ELOCKED, -11, "data directory is in use by another process")                                 \
    X(EVERSION, -12, "unsupported on-disk format version")                                         \
    X(ENOTSUP, -13, "operation not supported by this engine")                                      \
    X(EREADONLY, -14, "store refuses writes after a failed fsync; restart to recover")             \
    X(EACCES, -15, "permission denied")                                                            \
    X(ECLOSED, -16, "connection closed")                                                           \
    X(EPROTO, -17, "protocol error")                                                               \
    X(ESERVER, -18, "server replied with an error")                                                \
    X(ECONNECT, -19, "cannot connect to server")                                                   \
    X(ENOTEMPTY, -20, "directory is not empty")                                                    \
    X(EFULL, -21, "the store's memory limit is reached; the write was refused")                    \
    X(EBUSY, -22, "a save is already in progress")

typedef enum kvs_err {
#define KVS__ERR_ENUM(name, value, msg) KVS_##name = (value),
    KVS_ERROR_MAP(KVS__ERR_ENUM)
#undef KVS__ERR_ENUM
} kvs_err;

/*
 * kvs_strerror - a human-readable message for an error code.
 * Returns a static string; never NULL, also for codes it does not know.
 */
const char *kvs_strerror(int err);

/*
 * kvs_err_name - the symbolic name of an error code ("KVS_ENOTFOUND").
 * Returns a static string; never NULL.
 */
const char *kvs_err_name(int err);

/*
 * kvs_err_from_errno - map a positive errno value onto the kvs error space.
 * Used by engines at their edge; ENOSPC/EDQUOT become KVS_ENOSPC, ENOMEM
 * KVS_ENOMEM, EACCES/EPERM/EROFS KVS_EACCES, anything else KVS_EIO.
 */
int kvs_err_from_errno(int errnum);

#ifdef __cplusplus
}
#endif
#endif
