/* The project-wide error convention, on the lowest floor so every floor can use it.
 *
 * Functions return ESTCA_OK (0) or one of the negative codes below; the reason, with the
 * OpenSSL error queue or the PKCS#11 CKR name attached, goes into a caller-supplied
 * estca_reason. A NULL reason pointer is allowed everywhere and means "not interested". */
#ifndef ESTCA_STATUS_H
#define ESTCA_STATUS_H

#include <stddef.h>

enum estca_status {
    ESTCA_OK = 0,
    ESTCA_E_INVALID = -1,     /* malformed input: the caller's fault (HTTP 400) */
    ESTCA_E_AUTH = -2,        /* missing or wrong credentials (HTTP 401) */
    ESTCA_E_FORBIDDEN = -3,   /* authenticated but not allowed (HTTP 403) */
    ESTCA_E_NOT_FOUND = -4,   /* no such object, label, key (HTTP 404) */
    ESTCA_E_UNAVAILABLE = -5, /* the token or another dependency is down (HTTP 503) */
    ESTCA_E_IO = -6,          /* file or socket error */
    ESTCA_E_CRYPTO = -7,      /* an OpenSSL call failed */
    ESTCA_E_NOMEM = -8,       /* allocation failed */
    ESTCA_E_CONFIG = -9,      /* configuration is wrong */
    ESTCA_E_TOKEN = -10,      /* a PKCS#11 call failed */
    ESTCA_E_LEDGER = -11,     /* the ledger could not record */
    ESTCA_E_POLICY = -12,     /* the request violates CA policy (HTTP 400) */
    ESTCA_E_TOO_LARGE = -13,  /* input exceeds a limit (HTTP 413) */
    ESTCA_E_PENDING = -14,    /* accepted, waiting for an operator's decision (HTTP 202) */
};

#define ESTCA_REASON_MAX 512

typedef struct estca_reason {
    char text[ESTCA_REASON_MAX];
} estca_reason;

/* Writes the formatted reason (if why != NULL) and returns status, so callers can write
 * `return estca_fail(why, ESTCA_E_INVALID, "bad %s", x);`. */
int estca_fail(estca_reason *why, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As estca_fail, then appends ": " and the OpenSSL error queue's reasons, and clears the
 * queue. */
int estca_fail_openssl(estca_reason *why, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short stable name of a status code, e.g. "invalid", "unavailable". */
const char *estca_status_name(int status);

#endif
