/* libFuzzer harness for web/http_basic.c: the Authorization header value of every
 * /simpleenroll, as CivetWeb hands it over (a NUL-terminated string).
 *
 * Properties: on success user and password are NUL-terminated strings inside the private
 * buffer, free of control characters, and "user:password" is exactly the decoded payload;
 * on failure the struct is left zeroed; clear is idempotent. */
#include "http_basic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_credentials(const struct http_basic_credentials *c)
{
    if (c->user == NULL || c->password == NULL || c->buf == NULL)
        abort();
    const char *start = (const char *)c->buf;
    const char *end = start + c->buf_len;
    size_t user_len = strlen(c->user);
    size_t password_len = strlen(c->password);
    if (c->user != start || c->password != c->user + user_len + 1 ||
        c->password + password_len + 1 != end)
        abort();
    for (const char *p = start; p < end - 1; p++) {
        unsigned char ch = (unsigned char)*p;
        if (p != c->user + user_len && (ch < 0x20 || ch == 0x7f))
            abort();
    }
    if (strchr(c->user, ':') != NULL)
        abort(); /* the user ends at the first ':' */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *header = malloc(size + 1);
    if (header == NULL)
        return 0;
    memcpy(header, data, size);
    header[size] = '\0';
    struct http_basic_credentials credentials;
    memset(&credentials, 0xa5, sizeof credentials); /* parse must initialise it */
    estca_reason why;
    int rc = http_basic_parse(header, &credentials, &why);
    if (rc == 0) {
        check_credentials(&credentials);
    } else {
        if (rc != ESTCA_E_AUTH || credentials.buf != NULL || credentials.user != NULL)
            abort();
        if (strnlen(why.text, sizeof why.text) == sizeof why.text)
            abort(); /* the reason is a terminated string */
    }
    http_basic_credentials_clear(&credentials);
    http_basic_credentials_clear(&credentials);
    free(header);
    return 0;
}
