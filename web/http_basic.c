#include "http_basic.h"

#include "base64.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7235 token68: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "=" padding. */
static bool is_token68(const char *s, size_t len)
{
    size_t i = 0;
    for (; i < len && s[i] != '='; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-._~+/", c) != NULL;
        if (!ok)
            return false;
    }
    for (; i < len; i++) {
        if (s[i] != '=')
            return false;
    }
    return len > 0;
}

/* Finds the token68 after "Basic": *start and *len, without surrounding blanks. */
static int find_token(const char *header, const char **start, size_t *len, estca_reason *why)
{
    if (header == NULL)
        return estca_fail(why, ESTCA_E_AUTH, "no credentials");
    if (strlen(header) > HTTP_BASIC_HEADER_MAX)
        return estca_fail(why, ESTCA_E_AUTH, "Authorization header too long");
    while (is_blank(*header))
        header++;
    if (strncasecmp(header, "Basic", 5) != 0 || !is_blank(header[5]))
        return estca_fail(why, ESTCA_E_AUTH, "not HTTP Basic credentials");
    const char *p = header + 5;
    while (is_blank(*p))
        p++;
    size_t n = strlen(p);
    while (n > 0 && is_blank(p[n - 1]))
        n--;
    if (!is_token68(p, n))
        return estca_fail(why, ESTCA_E_AUTH, "malformed HTTP Basic credentials");
    *start = p;
    *len = n;
    return ESTCA_OK;
}

/* RFC 7617 §2: neither user-id nor password contains control characters. A NUL would also
 * cut our C strings short. */
static bool has_control(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return true;
    }
    return false;
}

int http_basic_parse(const char *header, struct http_basic_credentials *out, estca_reason *why)
{
    memset(out, 0, sizeof *out);
    const char *token = NULL;
    size_t token_len = 0;
    int rc = find_token(header, &token, &token_len, why);
    if (rc != ESTCA_OK)
        return rc;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    if (base64_decode(token, token_len, &raw, &raw_len, NULL) != ESTCA_OK)
        return estca_fail(why, ESTCA_E_AUTH, "HTTP Basic credentials are not base64");
    /* One more byte to hold the terminator that splits user from password. */
    unsigned char *buf = OPENSSL_malloc(raw_len + 1);
    if (buf != NULL)
        memcpy(buf, raw, raw_len);
    OPENSSL_clear_free(raw, raw_len);
    if (buf == NULL)
        return estca_fail(why, ESTCA_E_AUTH, "out of memory");
    buf[raw_len] = '\0';
    unsigned char *colon = memchr(buf, ':', raw_len);
    if (colon == NULL || has_control(buf, raw_len)) {
        OPENSSL_clear_free(buf, raw_len + 1);
        return estca_fail(why, ESTCA_E_AUTH, "malformed HTTP Basic credentials");
    }
    *colon = '\0';
    out->buf = buf;
    out->buf_len = raw_len + 1;
    out->user = (const char *)buf;
    out->password = (const char *)colon + 1;
    return ESTCA_OK;
}

void http_basic_credentials_clear(struct http_basic_credentials *credentials)
{
    if (credentials->buf != NULL)
        OPENSSL_clear_free(credentials->buf, credentials->buf_len);
    memset(credentials, 0, sizeof *credentials);
}
