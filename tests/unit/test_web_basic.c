/* HTTP Basic parsing (RFC 7617) as the EST front needs it (RFC 7030 §3.2.3). */
#include "base64.h"
#include "http_basic.h"

#include <criterion/criterion.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

/* "Basic " + base64(payload), with the scheme spelled as given. */
static void header_for(const char *scheme, const char *payload, char *out, size_t cap)
{
    char *b64;
    size_t len;
    cr_assert_eq(base64_encode((const unsigned char *)payload, strlen(payload), &b64, &len, NULL),
                 ESTCA_OK);
    snprintf(out, cap, "%s %s", scheme, b64);
    OPENSSL_free(b64);
}

static void expect_credentials(const char *header, const char *user, const char *password)
{
    struct http_basic_credentials c;
    estca_reason why = {{0}};
    cr_assert_eq(http_basic_parse(header, &c, &why), ESTCA_OK, "%s: %s", header, why.text);
    cr_assert_str_eq(c.user, user);
    cr_assert_str_eq(c.password, password);
    http_basic_credentials_clear(&c);
    cr_assert_null(c.buf);
    cr_assert_null(c.user);
}

static void expect_refused(const char *header)
{
    struct http_basic_credentials c;
    estca_reason why = {{0}};
    cr_assert_eq(http_basic_parse(header, &c, &why), ESTCA_E_AUTH, "%s was accepted",
                 header != NULL ? header : "(null)");
    cr_assert(why.text[0] != '\0');
    cr_assert_null(c.buf);
    http_basic_credentials_clear(&c); /* harmless on a refused parse */
}

Test(basic, rfc7617_example)
{
    expect_credentials("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame");
}

Test(basic, scheme_is_case_insensitive_and_blanks_are_skipped)
{
    expect_credentials("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame");
    expect_credentials("BASIC QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame");
    expect_credentials("  Basic \t QWxhZGRpbjpvcGVuIHNlc2FtZQ==  ", "Aladdin", "open sesame");
}

Test(basic, password_keeps_colons_after_the_first)
{
    char header[256];
    header_for("Basic", "alice:pa:ss:word", header, sizeof header);
    expect_credentials(header, "alice", "pa:ss:word");
    header_for("Basic", "bob::", header, sizeof header);
    expect_credentials(header, "bob", ":");
}

Test(basic, empty_user_and_empty_password)
{
    char header[256];
    header_for("Basic", ":secret", header, sizeof header);
    expect_credentials(header, "", "secret"); /* RFC 7030 §3.2.3: empty user names are legal */
    header_for("Basic", "alice:", header, sizeof header);
    expect_credentials(header, "alice", "");
    header_for("Basic", ":", header, sizeof header);
    expect_credentials(header, "", "");
}

Test(basic, utf8_is_kept)
{
    char header[256];
    header_for("Basic", "j\xc3\xbcrgen:p\xc3\xa4ss", header, sizeof header);
    expect_credentials(header, "j\xc3\xbcrgen", "p\xc3\xa4ss");
}

Test(basic, refused)
{
    char header[256];
    expect_refused(NULL);
    expect_refused("");
    expect_refused("Basic");
    expect_refused("Basic ");
    expect_refused("BasicQWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    expect_refused("Bearer abc.def.ghi");
    expect_refused("Digest username=\"a\"");
    expect_refused("Basic !!!!");
    expect_refused("Basic QWxh ZGRp bjpv cGVu IHNl c2Ft ZQ=="); /* blanks inside the token */
    expect_refused("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ");         /* padding missing */
    header_for("Basic", "no-colon-here", header, sizeof header);
    expect_refused(header);
    header_for("Basic", "alice:pass\nword", header, sizeof header);
    expect_refused(header);
    header_for("Basic", "al\x01ice:password", header, sizeof header);
    expect_refused(header);
}

Test(basic, nul_in_payload_is_refused)
{
    /* "a\0b:c" would otherwise authenticate as "a". */
    char *b64;
    size_t len;
    cr_assert_eq(base64_encode((const unsigned char *)"a\0b:c", 5, &b64, &len, NULL), ESTCA_OK);
    char header[64];
    snprintf(header, sizeof header, "Basic %s", b64);
    OPENSSL_free(b64);
    expect_refused(header);
}

Test(basic, overlong_header_is_refused)
{
    static char header[HTTP_BASIC_HEADER_MAX + 64];
    memcpy(header, "Basic ", 6);
    memset(header + 6, 'A', HTTP_BASIC_HEADER_MAX);
    header[6 + HTTP_BASIC_HEADER_MAX] = '\0';
    expect_refused(header);
}

Test(basic, challenge_header)
{
    cr_assert_str_eq(HTTP_BASIC_CHALLENGE, "WWW-Authenticate: Basic realm=\"estca\"\r\n");
}
