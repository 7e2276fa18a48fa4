/* libFuzzer harness for the way a /simpleenroll body becomes a CSR the core accepts.
 *
 * It runs the real code: est_csr_decode (web/est_csr.h), the CSR signature check, the core's
 * key policy and subjectAltName extraction (appliance/core_internal.h), then does what the
 * certificate builder and the ledger do with the result (copy the subject, print the names,
 * re-encode).
 *
 * Input: the request body as sent (base64, possibly wrapped). A custom mutator mostly mutates
 * the decoded DER and re-encodes it, so that most inputs get past base64 to the DER parser;
 * one mutation in eight works on the text itself (wrapping, bad characters, padding). */
#include "base64.h"
#include "core_internal.h"
#include "est_csr.h"

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

/* What the ledger does with the requested names: print each, and certbuild encodes them. */
static void requested_san(X509_REQ *csr)
{
    GENERAL_NAMES *san = NULL;
    if (core_csr_subject_alt_name(csr, &san, NULL) != ESTCA_OK || san == NULL)
        return;
    BIO *bio = BIO_new(BIO_s_mem());
    for (int i = 0; bio != NULL && i < sk_GENERAL_NAME_num(san); i++)
        GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(san, i));
    BIO_free(bio);
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
    X509_REQ *csr = NULL;
    (void)est_csr_decode(body, size, &csr, NULL);
    free(body);
    if (csr != NULL) {
        EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
        if (key != NULL)
            (void)X509_REQ_verify(csr, key);
        (void)core_check_csr_key(csr, NULL);
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
