/* Postern error codes: one enum for the whole project (libuv style).
 * Every function that can fail returns 0 (PST_OK) or a negative PST_E_*
 * code; pst_strerror() turns any code into a static, human-readable string. */
#ifndef PST_ERROR_H
#define PST_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define PST_ERRNO_MAP(X)                                                                           \
    X(INVAL, -1, "invalid argument")                                                               \
    X(NOMEM, -2, "out of memory")                                                                  \
    X(NOSPACE, -3, "output buffer too small")                                                      \
    X(TRUNCATED, -4, "input truncated")                                                            \
    X(TRAILING, -5, "trailing bytes after the record")                                             \
    X(MALFORMED, -6, "malformed msgpack")                                                          \
    X(TYPE, -7, "field has the wrong type")                                                        \
    X(FIELDS, -8, "wrong number of fields")                                                        \
    X(VERSION, -9, "unsupported version")                                                          \
    X(RECTYPE, -10, "unknown or unexpected record type")                                           \
    X(TOOBIG, -11, "field or record over its size limit")                                          \
    X(NESTING, -12, "nesting too deep")                                                            \
    X(NONCANONICAL, -13, "non-canonical encoding")                                                 \
    X(SIGNATURE, -14, "bad signature")                                                             \
    X(EXPIRED, -15, "record expired")                                                              \
    X(NOTYET, -16, "record created in the future")                                                 \
    X(RANGE, -17, "value out of range")                                                            \
    X(CRYPTO, -18, "decryption or authentication failed")                                          \
    X(STAMP_FORMAT, -19, "hashcash stamp is malformed")                                            \
    X(STAMP_BITS, -20, "hashcash stamp has too few bits")                                          \
    X(STAMP_RESOURCE, -21, "hashcash stamp is for another resource")                               \
    X(STAMP_DATE, -22, "hashcash stamp date is outside the accepted window")                       \
    X(STAMP_EXT, -23, "hashcash stamp extension does not match")                                   \
    X(CANCELLED, -24, "operation cancelled")                                                       \
    X(SIGNER, -25, "record signed by the wrong key")                                               \
    X(MISMATCH, -26, "record does not match what was expected")                                    \
    X(IO, -27, "input/output error")                                                               \
    X(NOTFOUND, -28, "not found")                                                                  \
    X(EXISTS, -29, "already exists")                                                               \
    X(PERM, -30, "permission denied or unsafe file permissions")                                   \
    X(STORE, -31, "storage error")                                                                 \
    X(TIMEOUT, -32, "operation timed out")                                                         \
    X(REVOKED, -33, "key revoked")                                                                 \
    X(STALE, -34, "older sequence number than the one already known")                              \
    X(DUPLICATE, -35, "duplicate (already seen)")                                                  \
    X(PROTO, -36, "protocol violation")                                                            \
    X(BUSY, -37, "resource busy or limit reached")                                                 \
    X(CLOSED, -38, "connection or handle closed")                                                  \
    X(NOKEY, -39, "no identity here: run 'postern init' first")                                    \
    X(PASSPHRASE, -40, "wrong passphrase or tampered key file")                                    \
    X(DISKFULL, -41, "no space left on the disk (or over quota)")                                  \
    X(CHECKSUM, -42, "integrity check failed: the file is damaged")

typedef enum {
    PST_OK = 0,
#define PST_ERRNO_ENUM(name, value, text) PST_E_##name = (value),
    PST_ERRNO_MAP(PST_ERRNO_ENUM)
#undef PST_ERRNO_ENUM
} pst_err;

/* Static description of err (never NULL, never freed). Unknown codes give
 * "unknown error". */
const char *pst_strerror(int err);

/* Stable symbolic name of err, e.g. "PST_E_SIGNATURE", for logs, counters
 * and JSON output. Never NULL. */
const char *pst_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
