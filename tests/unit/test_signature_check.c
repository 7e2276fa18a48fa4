/* signature_check.h: for every request and certificate, good or spoiled, the verdict is
 * X509_REQ_verify's and X509_verify's, whichever road the check takes (its own for ECDSA, or
 * OpenSSL's), and for keys decoded either way (provider keys, and legacy EC_KEYs as
 * est_csr.c makes them). */
#define OPENSSL_SUPPRESS_DEPRECATED /* d2i_EC_PUBKEY, EVP_PKEY_assign_EC_KEY: legacy keys */

#include "signature_check.h"

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <string.h>

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *key = EVP_EC_gen(curve);
    cr_assert_not_null(key);
    return key;
}

/* The same public key as the legacy EVP_PKEY that est_csr.c decodes a CSR's key into. */
static EVP_PKEY *legacy_public(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    cr_assert_gt(len, 0);
    const unsigned char *p = der;
    EC_KEY *ec = d2i_EC_PUBKEY(NULL, &p, len);
    OPENSSL_free(der);
    EVP_PKEY *legacy = EVP_PKEY_new();
    cr_assert(ec != NULL && legacy != NULL && EVP_PKEY_assign_EC_KEY(legacy, ec));
    return legacy;
}

static X509_REQ *request(EVP_PKEY *subject_key, EVP_PKEY *signing_key, const EVP_MD *md)
{
    X509_REQ *req = X509_REQ_new();
    cr_assert_not_null(req);
    cr_assert(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                         (const unsigned char *)"device-7", -1, -1, 0));
    cr_assert(X509_REQ_set_pubkey(req, subject_key));
    cr_assert(X509_REQ_sign(req, signing_key, md) > 0);
    return req;
}

static unsigned char *encode_request(X509_REQ *req, int *len)
{
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    cr_assert_gt(*len, 0);
    return der;
}

static X509_REQ *decode_request(const unsigned char *der, int len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, len);
    cr_assert_not_null(req);
    return req;
}

/* Checks REQ (as a peer receives it) with its own key decoded both ways, against OpenSSL. */
static void expect_csr_verdict(X509_REQ *sent, int expected)
{
    int len = 0;
    unsigned char *der = encode_request(sent, &len);
    X509_REQ *req = decode_request(der, len);
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    cr_assert_not_null(key);
    int openssl = X509_REQ_verify(req, key) == 1;
    cr_assert_eq(openssl, expected, "X509_REQ_verify says %d", openssl);
    cr_assert_eq(signature_check_csr(req, key) == 1, expected);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        EVP_PKEY *legacy = legacy_public(key);
        cr_assert_eq(signature_check_csr(req, legacy) == 1, expected);
        EVP_PKEY_free(legacy);
    }
    X509_REQ_free(req);
    OPENSSL_free(der);
}

Test(signature_check, good_csrs_verify_for_each_curve_digest_and_rsa)
{
    const char *curves[] = {"P-256", "P-384", "P-521"};
    const EVP_MD *digests[] = {EVP_sha256(), EVP_sha384(), EVP_sha512()};
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *key = ec_key(curves[i]);
        for (size_t j = 0; j < 3; j++) {
            X509_REQ *req = request(key, key, digests[j]);
            expect_csr_verdict(req, 1);
            X509_REQ_free(req);
        }
        EVP_PKEY_free(key);
    }
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    cr_assert_not_null(rsa);
    X509_REQ *req = request(rsa, rsa, EVP_sha256());
    expect_csr_verdict(req, 1);
    X509_REQ_free(req);
    EVP_PKEY_free(rsa);
}

Test(signature_check, csr_signed_by_another_key_fails)
{
    EVP_PKEY *claimed = ec_key("P-256"), *signer = ec_key("P-256");
    X509_REQ *req = request(claimed, signer, EVP_sha256());
    expect_csr_verdict(req, 0);
    X509_REQ_free(req);
    EVP_PKEY_free(claimed);
    EVP_PKEY_free(signer);
}

/* Every single-byte change to the signed part or the signature must fail, as it does for
 * OpenSSL (changes that no longer parse are skipped). */
Test(signature_check, any_spoiled_byte_fails)
{
    EVP_PKEY *key = ec_key("P-256");
    X509_REQ *req = request(key, key, EVP_sha256());
    int len = 0;
    unsigned char *der = encode_request(req, &len);
    int checked = 0;
    for (int i = 4; i < len; i++) {
        unsigned char *copy = OPENSSL_memdup(der, (size_t)len);
        cr_assert_not_null(copy);
        copy[i] ^= 0x01;
        const unsigned char *p = copy;
        X509_REQ *spoiled = d2i_X509_REQ(NULL, &p, len);
        EVP_PKEY *spoiled_key = spoiled != NULL ? X509_REQ_get0_pubkey(spoiled) : NULL;
        if (spoiled_key != NULL) {
            int openssl = X509_REQ_verify(spoiled, spoiled_key) == 1;
            cr_assert_eq(signature_check_csr(spoiled, spoiled_key) == 1, openssl, "byte %d", i);
            cr_assert_eq(openssl, 0, "byte %d", i);
            checked++;
        }
        ERR_clear_error();
        X509_REQ_free(spoiled);
        OPENSSL_free(copy);
    }
    cr_assert_gt(checked, len / 3, "%d of %d bytes checked", checked, len);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

/* A signature BIT STRING that claims unused bits is refused, as ASN1_item_verify refuses it. */
Test(signature_check, signature_with_unused_bits_fails)
{
    EVP_PKEY *key = ec_key("P-256");
    X509_REQ *req = NULL;
    int len = 0;
    unsigned char *der = NULL;
    /* A signature whose last bit is 0, so that claiming one unused bit leaves its bytes as they
     * are (d2i clears the bits said to be unused): only the claim can fail it. */
    for (int attempt = 0; attempt < 64 && (der == NULL || (der[len - 1] & 1) != 0); attempt++) {
        OPENSSL_free(der);
        X509_REQ_free(req);
        req = request(key, key, EVP_sha256());
        der = encode_request(req, &len);
    }
    cr_assert_eq(der[len - 1] & 1, 0);
    /* The BIT STRING is the last element: tag 03, a one-byte length (an ECDSA signature is
     * short), then the unused-bits octet. */
    int at = -1;
    for (int i = len - 75; i < len - 2; i++) {
        if (der[i] == 0x03 && der[i + 1] == len - i - 2) {
            at = i + 2;
            break;
        }
    }
    cr_assert_geq(at, 0);
    cr_assert_eq(der[at], 0);
    der[at] = 1;
    X509_REQ *spoiled = decode_request(der, len);
    EVP_PKEY *spoiled_key = X509_REQ_get0_pubkey(spoiled);
    cr_assert_neq(X509_REQ_verify(spoiled, spoiled_key), 1);
    cr_assert_neq(signature_check_csr(spoiled, spoiled_key), 1);
    X509_REQ_free(spoiled);
    OPENSSL_free(der);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static size_t put_length(unsigned char *out, size_t len)
{
    if (len < 0x80) {
        out[0] = (unsigned char)len;
        return 1;
    }
    cr_assert_lt(len, 0x10000);
    out[0] = 0x82;
    out[1] = (unsigned char)(len >> 8);
    out[2] = (unsigned char)len;
    return 3;
}

/* SEQUENCE { SIGNED, ecdsa-with-SHA256, BIT STRING { signature by KEY over SIGNED } }: a CSR
 * or certificate whose signed part is exactly the bytes given. Returns its length in OUT. */
static size_t sign_as_is(const unsigned char *signed_part, size_t signed_len, EVP_PKEY *key,
                         unsigned char *out, size_t out_size)
{
    unsigned char signature[160];
    size_t signature_len = sizeof signature;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(md, signature, &signature_len, signed_part, signed_len) == 1);
    EVP_MD_CTX_free(md);
    static const unsigned char algorithm[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                              0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    unsigned char bit_string[8];
    size_t bit_string_len = 0;
    bit_string[bit_string_len++] = 0x03;
    bit_string_len += put_length(bit_string + bit_string_len, signature_len + 1);
    bit_string[bit_string_len++] = 0x00;
    size_t content = signed_len + sizeof algorithm + bit_string_len + signature_len;
    cr_assert_lt(content + 4, out_size);
    size_t n = 0;
    out[n++] = 0x30;
    n += put_length(out + n, content);
    memcpy(out + n, signed_part, signed_len);
    n += signed_len;
    memcpy(out + n, algorithm, sizeof algorithm);
    n += sizeof algorithm;
    memcpy(out + n, bit_string, bit_string_len);
    n += bit_string_len;
    memcpy(out + n, signature, signature_len);
    return n + signature_len;
}

/* A requester may sign a CertificationRequestInfo that is valid BER but not DER (here: a long
 * form length). The signature is over those bytes, not over their re-encoding. */
Test(signature_check, csr_checked_over_the_bytes_received)
{
    EVP_PKEY *key = ec_key("P-256");
    X509_REQ *req = request(key, key, EVP_sha256());
    unsigned char *info = NULL;
    int info_len = i2d_re_X509_REQ_tbs(req, &info);
    cr_assert(info_len > 2 && info_len < 128 + 2 && info[0] == 0x30 && info[1] < 0x80);
    /* 30 LL ... becomes 30 82 00 LL ... */
    size_t ber_len = (size_t)info_len + 2;
    unsigned char *ber = OPENSSL_malloc(ber_len);
    cr_assert_not_null(ber);
    ber[0] = 0x30;
    ber[1] = 0x82;
    ber[2] = 0x00;
    ber[3] = info[1];
    memcpy(ber + 4, info + 2, (size_t)info_len - 2);

    unsigned char csr[400];
    size_t n = sign_as_is(ber, ber_len, key, csr, sizeof csr);

    X509_REQ *received = decode_request(csr, (int)n);
    EVP_PKEY *received_key = X509_REQ_get0_pubkey(received);
    cr_assert_eq(X509_REQ_verify(received, received_key), 1);
    cr_assert_eq(signature_check_csr(received, received_key), 1);
    EVP_PKEY *legacy = legacy_public(received_key);
    cr_assert_eq(signature_check_csr(received, legacy), 1);

    EVP_PKEY_free(legacy);
    X509_REQ_free(received);
    OPENSSL_free(ber);
    OPENSSL_free(info);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static X509 *certificate(EVP_PKEY *subject_key, EVP_PKEY *issuer_key, const EVP_MD *md)
{
    X509 *cert = X509_new();
    cr_assert_not_null(cert);
    cr_assert(X509_set_version(cert, X509_VERSION_3) &&
              ASN1_INTEGER_set(X509_get_serialNumber(cert), 42) &&
              X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
              X509_gmtime_adj(X509_getm_notAfter(cert), 86400) &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                                         (const unsigned char *)"device-7", -1, -1, 0) &&
              X509_NAME_add_entry_by_txt(X509_get_issuer_name(cert), "CN", MBSTRING_ASC,
                                         (const unsigned char *)"issuing CA", -1, -1, 0) &&
              X509_set_pubkey(cert, subject_key) && X509_sign(cert, issuer_key, md) > 0);
    return cert;
}

static void expect_certificate_verdict(X509 *cert, EVP_PKEY *issuer_key, int expected)
{
    int openssl = X509_verify(cert, issuer_key) == 1;
    cr_assert_eq(openssl, expected, "X509_verify says %d", openssl);
    cr_assert_eq(signature_check_certificate(cert, issuer_key) == 1, expected);
}

Test(signature_check, certificate_verdicts_match_x509_verify)
{
    EVP_PKEY *ca = ec_key("P-256"), *other_ca = ec_key("P-256"), *device = ec_key("P-256");
    X509 *cert = certificate(device, ca, EVP_sha256());
    expect_certificate_verdict(cert, ca, 1);
    expect_certificate_verdict(cert, other_ca, 0);
    EVP_PKEY *legacy_ca = legacy_public(ca);
    cr_assert_eq(signature_check_certificate(cert, legacy_ca), 1);
    EVP_PKEY_free(legacy_ca);

    /* A changed field after signing (what a faulty token's signature looks like from here). */
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(cert), 43));
    expect_certificate_verdict(cert, ca, 0);
    X509_free(cert);

    EVP_PKEY *p384_ca = ec_key("P-384");
    cert = certificate(device, p384_ca, EVP_sha384());
    expect_certificate_verdict(cert, p384_ca, 1);
    expect_certificate_verdict(cert, ca, 0);
    X509_free(cert);

    EVP_PKEY *rsa_ca = EVP_RSA_gen(2048);
    cr_assert_not_null(rsa_ca);
    cert = certificate(device, rsa_ca, EVP_sha256());
    expect_certificate_verdict(cert, rsa_ca, 1);
    expect_certificate_verdict(cert, ca, 0);
    X509_free(cert);

    EVP_PKEY_free(rsa_ca);
    EVP_PKEY_free(p384_ca);
    EVP_PKEY_free(device);
    EVP_PKEY_free(other_ca);
    EVP_PKEY_free(ca);
}

/* The algorithm inside the TBSCertificate must be the one outside, as X509_verify demands: a
 * TBSCertificate naming ecdsa-with-SHA384, validly signed with ecdsa-with-SHA256, fails. */
Test(signature_check, certificate_with_mismatched_algorithms_fails)
{
    EVP_PKEY *ca = ec_key("P-256"), *device = ec_key("P-256");
    X509 *cert = certificate(device, ca, EVP_sha256());
    unsigned char *tbs = NULL;
    int tbs_len = i2d_re_X509_tbs(cert, &tbs);
    cr_assert_gt(tbs_len, 0);
    static const unsigned char sha256_oid[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    unsigned char *at = NULL;
    for (int i = 0; i + (int)sizeof sha256_oid <= tbs_len; i++) {
        if (memcmp(tbs + i, sha256_oid, sizeof sha256_oid) == 0) {
            at = tbs + i + sizeof sha256_oid - 1;
            break;
        }
    }
    cr_assert_not_null(at);
    *at = 0x03;
    unsigned char der[1024];
    size_t len = sign_as_is(tbs, (size_t)tbs_len, ca, der, sizeof der);
    const unsigned char *p = der;
    X509 *mismatched = d2i_X509(NULL, &p, (long)len);
    cr_assert_not_null(mismatched);
    expect_certificate_verdict(mismatched, ca, 0);
    X509_free(mismatched);
    OPENSSL_free(tbs);
    X509_free(cert);
    EVP_PKEY_free(device);
    EVP_PKEY_free(ca);
}
