/* base64 as EST wants it (RFC 8951 §3): tolerant of CR LF SP TAB, strict about everything
 * else, and one line out. */
#include "base64.h"

#include <criterion/criterion.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

static int decode(const char *in, unsigned char **out, size_t *out_len)
{
    return base64_decode(in, strlen(in), out, out_len, NULL);
}

static void expect_decodes_to(const char *in, const char *expected)
{
    unsigned char *out = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    int rc = base64_decode(in, strlen(in), &out, &len, &why);
    cr_assert_eq(rc, ESTCA_OK, "decoding \"%s\" failed: %s", in, why.text);
    cr_assert_eq(len, strlen(expected), "\"%s\": length %zu", in, len);
    cr_assert(memcmp(out, expected, len) == 0, "\"%s\" decoded wrongly", in);
    OPENSSL_free(out);
}

static void expect_rejected(const char *in)
{
    unsigned char *out = (unsigned char *)"sentinel";
    size_t len = 99;
    estca_reason why = {{0}};
    int rc = base64_decode(in, strlen(in), &out, &len, &why);
    cr_assert_eq(rc, ESTCA_E_INVALID, "\"%s\" was accepted", in);
    cr_assert_null(out);
    cr_assert_eq(len, 0);
    cr_assert(why.text[0] != '\0', "no reason for \"%s\"", in);
}

Test(base64, rfc4648_vectors)
{
    expect_decodes_to("Zg==", "f");
    expect_decodes_to("Zm8=", "fo");
    expect_decodes_to("Zm9v", "foo");
    expect_decodes_to("Zm9vYg==", "foob");
    expect_decodes_to("Zm9vYmE=", "fooba");
    expect_decodes_to("Zm9vYmFy", "foobar");
}

Test(base64, encoder_vectors_one_line_without_newline)
{
    static const char *plain[] = {"f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 6; i++) {
        char *out;
        size_t len;
        cr_assert_eq(
            base64_encode((const unsigned char *)plain[i], strlen(plain[i]), &out, &len, NULL),
            ESTCA_OK);
        cr_assert_str_eq(out, coded[i]);
        cr_assert_eq(len, strlen(coded[i]));
        OPENSSL_free(out);
    }
}

Test(base64, encoder_writes_one_line_for_large_input)
{
    unsigned char data[5000];
    cr_assert_eq(RAND_bytes(data, sizeof data), 1);
    char *out;
    size_t len;
    cr_assert_eq(base64_encode(data, sizeof data, &out, &len, NULL), ESTCA_OK);
    cr_assert_eq(len, (sizeof data + 2) / 3 * 4);
    cr_assert_eq(strlen(out), len);
    cr_assert_null(strpbrk(out, "\r\n \t"), "the encoder wrapped its output");
    OPENSSL_free(out);
}

Test(base64, encoder_empty_input)
{
    char *out;
    size_t len;
    cr_assert_eq(base64_encode((const unsigned char *)"", 0, &out, &len, NULL), ESTCA_OK);
    cr_assert_str_eq(out, "");
    cr_assert_eq(len, 0);
    OPENSSL_free(out);
}

Test(base64, round_trips_every_length)
{
    unsigned char data[300];
    cr_assert_eq(RAND_bytes(data, sizeof data), 1);
    for (size_t n = 1; n <= sizeof data; n++) {
        char *text;
        size_t text_len;
        cr_assert_eq(base64_encode(data, n, &text, &text_len, NULL), ESTCA_OK);
        unsigned char *back;
        size_t back_len;
        cr_assert_eq(base64_decode(text, text_len, &back, &back_len, NULL), ESTCA_OK, "length %zu",
                     n);
        cr_assert_eq(back_len, n);
        cr_assert(memcmp(back, data, n) == 0, "length %zu", n);
        OPENSSL_free(back);
        OPENSSL_free(text);
    }
}

Test(base64, whitespace_anywhere)
{
    expect_decodes_to("Zm9v\r\nYmFy", "foobar");
    expect_decodes_to("Zm9vYmFy\n", "foobar");
    expect_decodes_to("Zm9vYmFy\r\n", "foobar");
    expect_decodes_to("\r\n Zm9vYmFy", "foobar");
    expect_decodes_to("Z m 9 v\tY\rm\nF y", "foobar");
    expect_decodes_to("Zm9vYg=\r\n=", "foob");
    expect_decodes_to("Zm9vYg==\r\n\r\n", "foob");
    expect_decodes_to("  Zg==  ", "f");
}

Test(base64, wrapped_at_64_columns_with_crlf)
{
    unsigned char data[200];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7);
    char *text;
    size_t len;
    cr_assert_eq(base64_encode(data, sizeof data, &text, &len, NULL), ESTCA_OK);
    char wrapped[600];
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        wrapped[w++] = text[i];
        if (i % 64 == 63) {
            wrapped[w++] = '\r';
            wrapped[w++] = '\n';
        }
    }
    wrapped[w++] = '\r';
    wrapped[w++] = '\n';
    unsigned char *back;
    size_t back_len;
    cr_assert_eq(base64_decode(wrapped, w, &back, &back_len, NULL), ESTCA_OK);
    cr_assert_eq(back_len, sizeof data);
    cr_assert(memcmp(back, data, sizeof data) == 0);
    OPENSSL_free(back);
    OPENSSL_free(text);
}

Test(base64, bad_characters)
{
    expect_rejected("Zm9v!mFy");
    expect_rejected("Zm9vYmFy.");
    expect_rejected("Zm9v-mFy"); /* base64url is not EST's alphabet */
    expect_rejected("Zm9v_mFy");
    expect_rejected("this is not base64!");
    expect_rejected("Zm9v\vYmFy"); /* only CR LF SP TAB are tolerated */
    expect_rejected("Zm9v\fYmFy");
}

Test(base64, nul_inside_is_rejected)
{
    static const char in[] = "Zm9v\0YmFy";
    unsigned char *out;
    size_t len;
    cr_assert_eq(base64_decode(in, sizeof in - 1, &out, &len, NULL), ESTCA_E_INVALID);
}

Test(base64, bad_padding)
{
    expect_rejected("Zg");       /* padding missing */
    expect_rejected("Zg=");      /* padding short */
    expect_rejected("Zm9");      /* length not a multiple of 4 */
    expect_rejected("Zg===");    /* too much */
    expect_rejected("Z===");     /* pad in second place */
    expect_rejected("====");     /* only padding */
    expect_rejected("=Zm9");     /* leading pad */
    expect_rejected("Zg==Zm9v"); /* data after the end */
    expect_rejected("Zm=v");     /* data after a pad in the same quartet */
    expect_rejected("Zg==\r\nZg==");
    expect_rejected("Zh=="); /* non-zero bits under the padding */
    expect_rejected("Zm9=");
}

Test(base64, empty_input)
{
    unsigned char *out;
    size_t len;
    cr_assert_eq(base64_decode("", 0, &out, &len, NULL), ESTCA_E_INVALID);
    expect_rejected("\r\n \t");
}

Test(base64, reason_names_the_offset)
{
    unsigned char *out;
    size_t len;
    estca_reason why = {{0}};
    cr_assert_eq(base64_decode("Zm9v#", 5, &out, &len, &why), ESTCA_E_INVALID);
    cr_assert(strstr(why.text, "offset 4") != NULL, "reason: %s", why.text);
    cr_assert_eq(decode("QUJD", &out, &len), ESTCA_OK);
    OPENSSL_free(out);
}
