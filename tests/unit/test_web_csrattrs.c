/* The /csrattrs body (RFC 8951 §4): CsrAttrs DER for each kind of requirement, compared with
 * encodings written out by hand from the RFC, and read back with OpenSSL's generic decoder. */
#include "est_internal.h"

#include <criterion/criterion.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* The DER for want, as lower-case hex. Caller frees with free. */
static char *der_hex(const struct core_csr_attrs *want)
{
    unsigned char *der = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(est_csrattrs_der(want, &der, &len, &why), ESTCA_OK, "%s", why.text);
    char *hex = calloc(2 * len + 1, 1);
    cr_assert_not_null(hex);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", der[i]);
    OPENSSL_free(der);
    return hex;
}

static void expect_der(const struct core_csr_attrs *want, const char *hex)
{
    char *got = der_hex(want);
    cr_expect_str_eq(got, hex);
    free(got);
}

#define NOTHING                                                                                    \
    {                                                                                              \
        .key_algorithm = CORE_CSR_KEY_ANY, .hash_nid = NID_undef                                   \
    }

Test(csrattrs, nothing_is_an_empty_sequence_and_no_body)
{
    struct core_csr_attrs want = NOTHING;
    expect_der(&want, "3000");
    char *body = (char *)"untouched";
    size_t len = 99;
    estca_reason why = {{0}};
    cr_expect_eq(est_csrattrs_base64(&want, &body, &len, &why), ESTCA_OK);
    cr_expect_null(body);
    cr_expect_eq(len, 0);
}

/* RFC 8951 §4.5's example less its extensionRequest attribute. */
Test(csrattrs, rfc8951_example_p384)
{
    struct core_csr_attrs want = {.key_algorithm = CORE_CSR_KEY_EC,
                                  .ec_curve_nid = NID_secp384r1,
                                  .hash_nid = NID_sha384,
                                  .challenge_password = true};
    expect_der(&want, "3029"
                      "06092a864886f70d010907"
                      "301206072a8648ce3d0201310706052b81040022"
                      "06082a8648ce3d040303");
    char *body = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(est_csrattrs_base64(&want, &body, &len, &why), ESTCA_OK, "%s", why.text);
    cr_expect_str_eq(body, "MCkGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiBggqhkjOPQQDAw==");
    cr_expect_eq(len, strlen(body));
    OPENSSL_free(body);
}

Test(csrattrs, ec_p256_alone)
{
    struct core_csr_attrs want = {
        .key_algorithm = CORE_CSR_KEY_EC, .ec_curve_nid = NID_X9_62_prime256v1, .hash_nid = 0};
    expect_der(&want, "3017301506072a8648ce3d0201310a06082a8648ce3d030107");
}

Test(csrattrs, rsa_size_and_hash)
{
    struct core_csr_attrs want = {
        .key_algorithm = CORE_CSR_KEY_RSA, .rsa_bits = 3072, .hash_nid = NID_sha256};
    expect_der(&want, "301e"
                      "301106092a864886f70d010101310402020c00"
                      "06092a864886f70d01010b");
}

Test(csrattrs, hash_without_key_type_lists_both_signature_algorithms)
{
    struct core_csr_attrs want = NOTHING;
    want.hash_nid = NID_sha512;
    expect_der(&want, "3015"
                      "06082a8648ce3d040304"
                      "06092a864886f70d01010d");
}

Test(csrattrs, challenge_password_alone)
{
    struct core_csr_attrs want = NOTHING;
    want.challenge_password = true;
    expect_der(&want, "300b06092a864886f70d010907");
}

/* Read back without our templates: a SEQUENCE of an OID and an Attribute. */
Test(csrattrs, generic_decoder_reads_it)
{
    struct core_csr_attrs want = {.key_algorithm = CORE_CSR_KEY_RSA,
                                  .rsa_bits = 4096,
                                  .hash_nid = NID_sha512,
                                  .challenge_password = true};
    unsigned char *der = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(est_csrattrs_der(&want, &der, &len, &why), ESTCA_OK, "%s", why.text);
    const unsigned char *p = der;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    cr_assert_not_null(seq);
    cr_assert_eq(p, der + len);
    cr_assert_eq(sk_ASN1_TYPE_num(seq), 3);
    ASN1_TYPE *first = sk_ASN1_TYPE_value(seq, 0);
    cr_assert_eq(first->type, V_ASN1_OBJECT);
    cr_expect_eq(OBJ_obj2nid(first->value.object), NID_pkcs9_challengePassword);
    ASN1_TYPE *second = sk_ASN1_TYPE_value(seq, 1);
    cr_assert_eq(second->type, V_ASN1_SEQUENCE);
    const unsigned char *q = second->value.sequence->data;
    X509_ATTRIBUTE *attribute = d2i_X509_ATTRIBUTE(NULL, &q, second->value.sequence->length);
    cr_assert_not_null(attribute);
    cr_expect_eq(OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attribute)), NID_rsaEncryption);
    cr_assert_eq(X509_ATTRIBUTE_count(attribute), 1);
    ASN1_TYPE *bits = X509_ATTRIBUTE_get0_type(attribute, 0);
    cr_assert_eq(bits->type, V_ASN1_INTEGER);
    cr_expect_eq(ASN1_INTEGER_get(bits->value.integer), 4096);
    ASN1_TYPE *third = sk_ASN1_TYPE_value(seq, 2);
    cr_assert_eq(third->type, V_ASN1_OBJECT);
    cr_expect_eq(OBJ_obj2nid(third->value.object), NID_sha512WithRSAEncryption);
    X509_ATTRIBUTE_free(attribute);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    OPENSSL_free(der);
}
