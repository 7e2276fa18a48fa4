/* Decoding a PKCS#10 body (est_csr.h): whichever way est_csr_decode takes (its own template
 * for RSA and EC keys, d2i_X509_REQ for the rest and for encodings that are not DER), the
 * request must be the one received, byte for byte, with a usable key and a signature that
 * verifies over what the client signed. */
#include "base64.h"
#include "est_csr.h"

#include <criterion/criterion.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

static X509_REQ *signed_request(EVP_PKEY *key, const EVP_MD *md)
{
    X509_REQ *req = X509_REQ_new();
    cr_assert_not_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"device-1", -1, -1, 0));
    cr_assert(X509_REQ_set_pubkey(req, key));
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san =
        X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:device-1.example.test");
    cr_assert_not_null(san);
    sk_X509_EXTENSION_push(exts, san);
    cr_assert(X509_REQ_add_extensions(req, exts));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    cr_assert(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_ASC,
                                        (const unsigned char *)"binding", -1));
    cr_assert(X509_REQ_sign(req, key, md) > 0);
    return req;
}

static char *as_body(const unsigned char *der, size_t len)
{
    char *b64 = NULL;
    size_t b64_len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(base64_encode(der, len, &b64, &b64_len, &why), ESTCA_OK, "%s", why.text);
    return b64;
}

/* Decodes DER sent as a body and checks the result is that DER and verifies. */
static X509_REQ *decode_and_check(const unsigned char *der, size_t len)
{
    char *body = as_body(der, len);
    X509_REQ *csr = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(est_csr_decode(body, strlen(body), &csr, &why), ESTCA_OK, "%s", why.text);
    free(body);
    unsigned char *again = NULL;
    int again_len = i2d_X509_REQ(csr, &again);
    cr_assert_eq(again_len, (int)len);
    cr_assert(memcmp(again, der, len) == 0, "the decoded request encodes differently");
    OPENSSL_free(again);
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    cr_assert_not_null(key);
    cr_assert_eq(X509_REQ_verify(csr, key), 1, "the request's signature does not verify");
    return csr;
}

static X509_REQ *roundtrip(EVP_PKEY *key, const EVP_MD *md)
{
    X509_REQ *req = signed_request(key, md);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    cr_assert_gt(len, 0);
    X509_REQ *csr = decode_and_check(der, (size_t)len);
    X509_NAME *subject = X509_REQ_get_subject_name(csr);
    cr_assert_eq(X509_NAME_cmp(subject, X509_REQ_get_subject_name(req)), 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    cr_assert_eq(sk_X509_EXTENSION_num(exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    cr_assert_geq(X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1), 0);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return csr;
}

Test(csr, ec_p256_key_usable_by_the_profile_checks)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
    X509_REQ *csr = roundtrip(key, EVP_sha256());
    EVP_PKEY *public_key = X509_REQ_get0_pubkey(csr);
    cr_assert(EVP_PKEY_is_a(public_key, "EC"));
    char curve[64];
    cr_assert(EVP_PKEY_get_utf8_string_param(public_key, OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                             sizeof curve, NULL));
    cr_assert(strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0, "%s", curve);
    cr_assert_eq(EVP_PKEY_get_bits(public_key), 256);
    cr_assert_eq(EVP_PKEY_eq(public_key, key), 1);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

/* Keys on the curves decoded onto ready-made groups (P-256, P-384, P-521) and on one that is
 * not (secp256k1), with the point sent uncompressed and compressed: the same key, the same
 * curve, the same bytes. */
Test(csr, ec_curves_and_point_forms)
{
    const char *curves[] = {"P-256", "P-384", "P-521", "secp256k1"};
    const char *expected_names[] = {"prime256v1", "secp384r1", "secp521r1", "secp256k1"};
    const char *forms[] = {"uncompressed", "compressed"};
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 2; j++) {
            EVP_PKEY *key = EVP_EC_gen(curves[i]);
            cr_assert_not_null(key);
            cr_assert(EVP_PKEY_set_utf8_string_param(
                key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, (char *)forms[j]));
            X509_REQ *csr = roundtrip(key, EVP_sha256());
            EVP_PKEY *public_key = X509_REQ_get0_pubkey(csr);
            char curve[64];
            cr_assert(EVP_PKEY_get_utf8_string_param(public_key, OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                                     sizeof curve, NULL));
            cr_assert_str_eq(curve, expected_names[i]);
            cr_assert_eq(EVP_PKEY_eq(public_key, key), 1, "%s %s", curves[i], forms[j]);
            X509_REQ_free(csr);
            EVP_PKEY_free(key);
        }
    }
}

Test(csr, rsa_2048)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    cr_assert_not_null(key);
    X509_REQ *csr = roundtrip(key, EVP_sha256());
    cr_assert(EVP_PKEY_is_a(X509_REQ_get0_pubkey(csr), "RSA"));
    cr_assert_eq(EVP_PKEY_get_bits(X509_REQ_get0_pubkey(csr)), 2048);
    cr_assert_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), key), 1);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(csr, other_key_types_decode_too)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(key);
    X509_REQ *csr = roundtrip(key, NULL);
    cr_assert(EVP_PKEY_is_a(X509_REQ_get0_pubkey(csr), "ED25519"));
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

/* A request whose CertificationRequestInfo has a non-minimal (BER) length, signed as sent: the
 * signature is over those bytes, so a decoder that re-encoded the request would break it. */
Test(csr, ber_lengths_keep_the_signed_bytes)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = signed_request(key, EVP_sha256());
    unsigned char *tbs = NULL;
    int tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    cr_assert(tbs_len > 130 && tbs_len < 256 && tbs[1] == 0x81, "length form %02x", tbs[1]);
    /* 30 81 LL ... becomes 30 82 00 LL ... */
    size_t ber_len = (size_t)tbs_len + 1;
    unsigned char *ber = OPENSSL_malloc(ber_len);
    ber[0] = 0x30, ber[1] = 0x82, ber[2] = 0x00;
    memcpy(ber + 3, tbs + 2, (size_t)tbs_len - 2);

    unsigned char sig[128];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1);
    cr_assert(EVP_DigestSign(md, sig, &sig_len, ber, ber_len) == 1);
    EVP_MD_CTX_free(md);
    const X509_ALGOR *alg = NULL;
    X509_REQ_get0_signature(req, NULL, &alg);
    unsigned char *alg_der = NULL;
    int alg_len = i2d_X509_ALGOR(alg, &alg_der);
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    cr_assert(ASN1_BIT_STRING_set(bits, sig, (int)sig_len));
    bits->flags = (bits->flags & ~0x07) | ASN1_STRING_FLAG_BITS_LEFT;
    unsigned char *bits_der = NULL;
    int bits_len = i2d_ASN1_BIT_STRING(bits, &bits_der);
    cr_assert(alg_len > 0 && bits_len > 0);

    size_t content = ber_len + (size_t)alg_len + (size_t)bits_len;
    unsigned char whole[1024];
    cr_assert_lt(content, 65536);
    whole[0] = 0x30, whole[1] = 0x82;
    whole[2] = (unsigned char)(content >> 8), whole[3] = (unsigned char)content;
    memcpy(whole + 4, ber, ber_len);
    memcpy(whole + 4 + ber_len, alg_der, (size_t)alg_len);
    memcpy(whole + 4 + ber_len + alg_len, bits_der, (size_t)bits_len);
    X509_REQ *csr = decode_and_check(whole, content + 4);

    X509_REQ_free(csr);
    ASN1_BIT_STRING_free(bits);
    OPENSSL_free(bits_der);
    OPENSSL_free(alg_der);
    OPENSSL_free(ber);
    OPENSSL_free(tbs);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

Test(csr, trailing_bytes_and_garbage_are_refused)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = signed_request(key, EVP_sha256());
    unsigned char der[1024];
    unsigned char *p = der;
    int len = i2d_X509_REQ(req, &p);
    cr_assert(len > 0 && len < (int)sizeof der - 1);
    der[len] = 0x00;
    char *body = as_body(der, (size_t)len + 1);
    X509_REQ *csr = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(est_csr_decode(body, strlen(body), &csr, &why), ESTCA_E_INVALID);
    cr_assert_null(csr);
    cr_assert(strstr(why.text, "trailing bytes") != NULL, "%s", why.text);
    free(body);

    der[10] ^= 0xff; /* inside the subject */
    body = as_body(der, (size_t)len);
    cr_assert_eq(est_csr_decode(body, strlen(body), &csr, &why), ESTCA_E_INVALID);
    cr_assert_null(csr);
    free(body);
    cr_assert_eq(est_csr_decode("not base64!", 11, &csr, &why), ESTCA_E_INVALID);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}
