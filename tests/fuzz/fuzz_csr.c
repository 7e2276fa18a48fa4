/* libFuzzer harness for the way a /simpleenroll body becomes a CSR the core accepts.
 *
 * web/est_enroll.c's decode_csr is static, and so are appliance/issuance.c's
 * verify_signature, check_key_policy and requested_san: this harness replicates their
 * sequence of calls (base64_decode, d2i_X509_REQ with the exact-length check,
 * X509_REQ_get0_pubkey + X509_REQ_verify, the key policy queries, X509_REQ_get_extensions +
 * X509V3_get_d2i(NID_subject_alt_name)), then does what the certificate builder and the
 * ledger do with the result (copy the subject, print the names, re-encode). Keep it in step
 * with those files.
 *
 * Input: the request body as sent (base64, possibly wrapped). A custom mutator mostly mutates
 * the decoded DER and re-encodes it, so that most inputs get past base64 to the DER parser;
 * one mutation in eight works on the text itself (wrapping, bad characters, padding). */
#include "base64.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* As web/est_enroll.c decode_csr: base64, then DER that ends where the bytes end. */
static X509_REQ *decode_csr(const char *body, size_t len)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (base64_decode(body, len, &der, &der_len, NULL) != 0)
        return NULL;
    const unsigned char *p = der;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long)der_len);
    int exact = csr != NULL && p == der + der_len;
    OPENSSL_free(der);
    if (!exact) {
        X509_REQ_free(csr);
        return NULL;
    }
    return csr;
}

/* As appliance/issuance.c check_key_policy / check_ec_curve (results not acted on here). */
static void key_policy(EVP_PKEY *key)
{
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        (void)EVP_PKEY_get_bits(key);
        break;
    case EVP_PKEY_EC: {
        char curve[64];
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve,
                                           NULL)) {
            int nid = OBJ_sn2nid(curve);
            if (nid == NID_undef)
                (void)EC_curve_nist2nid(curve);
        }
        break;
    }
    default:
        (void)OBJ_nid2sn(EVP_PKEY_get_base_id(key));
        break;
    }
}

/* As appliance/issuance.c requested_san, then the ledger's printing of each name. */
static void requested_san(X509_REQ *csr)
{
    STACK_OF(X509_EXTENSION) *extensions = X509_REQ_get_extensions(csr);
    if (extensions == NULL)
        return;
    int critical = -1;
    GENERAL_NAMES *san = X509V3_get_d2i(extensions, NID_subject_alt_name, &critical, NULL);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    if (san == NULL)
        return;
    BIO *bio = BIO_new(BIO_s_mem());
    for (int i = 0; bio != NULL && i < sk_GENERAL_NAME_num(san); i++)
        GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(san, i));
    BIO_free(bio);
    /* certbuild copies the names into the certificate's extension: encode them. */
    unsigned char *der = NULL;
    int len = i2d_GENERAL_NAMES(san, &der);
    if (len > 0)
        OPENSSL_free(der);
    GENERAL_NAMES_free(san);
}

static void subject(X509_REQ *csr)
{
    const X509_NAME *name = X509_REQ_get_subject_name(csr);
    (void)X509_NAME_entry_count(name);
    X509_NAME *copy = X509_NAME_dup(name);
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio != NULL)
        X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    BIO_free(bio);
    X509_NAME_free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data, size);
    X509_REQ *csr = decode_csr(body, size);
    free(body);
    if (csr != NULL) {
        EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
        if (key != NULL) {
            (void)X509_REQ_verify(csr, key);
            key_policy(key);
        }
        requested_san(csr);
        subject(csr);
        /* The ledger stores the CSR re-encoded. */
        unsigned char *der = NULL;
        int len = i2d_X509_REQ(csr, &der);
        if (len > 0)
            OPENSSL_free(der);
        X509_REQ_free(csr);
    }
    ERR_clear_error();
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (seed % 8 == 0 || base64_decode((const char *)data, size, &der, &der_len, NULL) != 0)
        return LLVMFuzzerMutate(data, size, max_size);
    size_t cap = max_size / 4 * 3;
    unsigned char *work = der_len <= cap ? malloc(cap) : NULL;
    size_t out = 0;
    if (work != NULL) {
        memcpy(work, der, der_len);
        size_t len = LLVMFuzzerMutate(work, der_len, cap);
        char *text = NULL;
        size_t text_len = 0;
        if (len > 0 && base64_encode(work, len, &text, &text_len, NULL) == 0 &&
            text_len <= max_size) {
            memcpy(data, text, text_len);
            out = text_len;
        }
        OPENSSL_free(text);
        free(work);
    }
    OPENSSL_free(der);
    return out > 0 ? out : LLVMFuzzerMutate(data, size, max_size);
}
