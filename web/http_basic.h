/* HTTP Basic credentials (RFC 7617) from an Authorization header value. Pure parsing, so it is
 * unit-tested alone; the password check itself is the core's (core_check_password). */
#ifndef ESTCA_HTTP_BASIC_H
#define ESTCA_HTTP_BASIC_H

#include "status.h"

#include <stddef.h>

#define HTTP_BASIC_REALM "estca"
#define HTTP_BASIC_CHALLENGE "WWW-Authenticate: Basic realm=\"" HTTP_BASIC_REALM "\"\r\n"

/* Longest Authorization header value considered; longer ones are refused unread. */
#define HTTP_BASIC_HEADER_MAX 4096

struct http_basic_credentials {
    const char *user;     /* may be "" (RFC 7030 §3.2.3) */
    const char *password; /* everything after the first ':'; may contain ':' */
    /* private: both strings live here; cleansed by http_basic_credentials_clear */
    unsigned char *buf;
    size_t buf_len;
};

/* Parses "Basic <token68>" (scheme case-insensitive, surrounding blanks allowed). A NULL or
 * malformed header, a payload without ':', or one holding control characters is ESTCA_E_AUTH
 * with the reason in why. On success the caller must call http_basic_credentials_clear. */
int http_basic_parse(const char *header, struct http_basic_credentials *out, estca_reason *why);

/* Cleanses and frees the decoded payload; safe on a zeroed or already cleared struct. */
void http_basic_credentials_clear(struct http_basic_credentials *credentials);

#endif
