/* Decoding a PKCS#10 body. d2i_X509_REQ in OpenSSL 3.0 decodes the subject's public key
 * through a decoder context that it builds afresh for every call: about 70 µs per CSR, more
 * than verifying the CSR's signature, and a tenth of an enrollment's whole CPU cost on a new
 * TLS connection. For the two key types devices use, RSA and EC, the request is therefore read
 * with a template of its own that keeps the SubjectPublicKeyInfo as bytes, the key is decoded
 * by the legacy decoder (about 5 µs), and the X509_REQ is assembled from the parts. It is used
 * only when its DER encoding is byte for byte the one received, so that the signature the core
 * checks is over exactly what the client signed; anything else takes d2i_X509_REQ. */
#define OPENSSL_SUPPRESS_DEPRECATED /* d2i_EC_PUBKEY, d2i_RSA_PUBKEY, EVP_PKEY_assign */

#include "est_csr.h"

#include "base64.h"

#include <openssl/asn1t.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

typedef struct {
    ASN1_ENCODING enc; /* the SubjectPublicKeyInfo as received */
    X509_ALGOR *algorithm;
    ASN1_BIT_STRING *key;
} WIRE_SPKI;

typedef struct {
    ASN1_ENCODING enc; /* the CertificationRequestInfo as received */
    ASN1_INTEGER *version;
    X509_NAME *subject;
    WIRE_SPKI *spki;
    STACK_OF(X509_ATTRIBUTE) *attributes;
} WIRE_REQUEST_INFO;

typedef struct {
    WIRE_REQUEST_INFO *info;
    X509_ALGOR *signature_algorithm;
    ASN1_BIT_STRING *signature;
} WIRE_REQUEST;

/* OpenSSL's template macros, laid out as its own sources do. */
/* clang-format off */
ASN1_SEQUENCE_enc(WIRE_SPKI, enc, NULL) = {
    ASN1_SIMPLE(WIRE_SPKI, algorithm, X509_ALGOR),
    ASN1_SIMPLE(WIRE_SPKI, key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END_enc(WIRE_SPKI, WIRE_SPKI)

ASN1_SEQUENCE_enc(WIRE_REQUEST_INFO, enc, NULL) = {
    ASN1_SIMPLE(WIRE_REQUEST_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(WIRE_REQUEST_INFO, subject, X509_NAME),
    ASN1_SIMPLE(WIRE_REQUEST_INFO, spki, WIRE_SPKI),
    ASN1_IMP_SET_OF_OPT(WIRE_REQUEST_INFO, attributes, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(WIRE_REQUEST_INFO, WIRE_REQUEST_INFO)

ASN1_SEQUENCE(WIRE_REQUEST) = {
    ASN1_SIMPLE(WIRE_REQUEST, info, WIRE_REQUEST_INFO),
    ASN1_SIMPLE(WIRE_REQUEST, signature_algorithm, X509_ALGOR),
    ASN1_SIMPLE(WIRE_REQUEST, signature, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(WIRE_REQUEST)

DECLARE_ASN1_FUNCTIONS(WIRE_REQUEST)
IMPLEMENT_ASN1_FUNCTIONS(WIRE_REQUEST)
/* clang-format on */

/* The curves devices use, built once: d2i_EC_PUBKEY builds the curve's group afresh for every
 * key (precomputing its Montgomery constants), which costs more than decoding and checking the
 * point; EC_KEY_set_group takes a copy of a ready one. */
static const int cached_curve_nids[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
#define CACHED_CURVES (sizeof cached_curve_nids / sizeof cached_curve_nids[0])
static EC_GROUP *cached_curves[CACHED_CURVES];
static pthread_once_t curves_once = PTHREAD_ONCE_INIT;

static void build_curves(void)
{
    for (size_t i = 0; i < CACHED_CURVES; i++)
        cached_curves[i] = EC_GROUP_new_by_curve_name(cached_curve_nids[i]);
    ERR_clear_error(); /* a curve that failed is decoded the general way */
}

/* An EC key on one of the cached named curves; NULL for anything else (other or explicit
 * curves, a point that is not on the curve), which d2i_EC_PUBKEY then decides. */
static EC_KEY *decode_named_curve_key(const WIRE_SPKI *spki)
{
    int parameter_type = 0;
    const void *curve = NULL;
    X509_ALGOR_get0(NULL, &parameter_type, &curve, spki->algorithm);
    if (parameter_type != V_ASN1_OBJECT || spki->key->length <= 0 || (spki->key->flags & 0x7) != 0)
        return NULL;
    int nid = OBJ_obj2nid(curve);
    pthread_once(&curves_once, build_curves);
    const EC_GROUP *group = NULL;
    for (size_t i = 0; i < CACHED_CURVES && group == NULL; i++) {
        if (cached_curve_nids[i] == nid)
            group = cached_curves[i];
    }
    EC_KEY *ec = group != NULL ? EC_KEY_new() : NULL;
    if (ec == NULL || !EC_KEY_set_group(ec, group) ||
        !EC_KEY_oct2key(ec, spki->key->data, (size_t)spki->key->length, NULL)) {
        EC_KEY_free(ec);
        ERR_clear_error();
        return NULL;
    }
    return ec;
}

/* NULL for key types other than RSA and EC, or keys the legacy decoder refuses. */
static EVP_PKEY *decode_public_key(const WIRE_SPKI *spki)
{
    const unsigned char *p = spki->enc.enc;
    long len = (long)spki->enc.len;
    EVP_PKEY *key = EVP_PKEY_new();
    if (key == NULL || p == NULL)
        goto fail;
    switch (OBJ_obj2nid(spki->algorithm->algorithm)) {
    case NID_X9_62_id_ecPublicKey: {
        EC_KEY *ec = decode_named_curve_key(spki);
        if (ec == NULL)
            ec = d2i_EC_PUBKEY(NULL, &p, len);
        if (ec == NULL || !EVP_PKEY_assign_EC_KEY(key, ec)) {
            EC_KEY_free(ec);
            goto fail;
        }
        return key;
    }
    case NID_rsaEncryption: {
        RSA *rsa = d2i_RSA_PUBKEY(NULL, &p, len);
        if (rsa == NULL || !EVP_PKEY_assign_RSA(key, rsa)) {
            RSA_free(rsa);
            goto fail;
        }
        return key;
    }
    default:
        break;
    }
fail:
    EVP_PKEY_free(key);
    return NULL;
}

static X509_REQ *assemble(const WIRE_REQUEST *wire, EVP_PKEY *key)
{
    const WIRE_REQUEST_INFO *info = wire->info;
    long version = ASN1_INTEGER_get(info->version);
    X509_REQ *req = X509_REQ_new();
    ASN1_BIT_STRING *signature = ASN1_STRING_dup(wire->signature);
    bool ok = req != NULL && signature != NULL && version >= 0 &&
              X509_REQ_set_version(req, version) && X509_REQ_set_subject_name(req, info->subject) &&
              X509_REQ_set_pubkey(req, key) &&
              X509_REQ_set1_signature_algo(req, wire->signature_algorithm);
    for (int i = 0; ok && i < sk_X509_ATTRIBUTE_num(info->attributes); i++)
        ok = X509_REQ_add1_attr(req, sk_X509_ATTRIBUTE_value(info->attributes, i));
    if (ok) {
        X509_REQ_set0_signature(req, signature);
        signature = NULL;
    }
    ASN1_BIT_STRING_free(signature);
    /* Faithful only if it encodes to the bytes received (a BER length, an attribute set out of
     * DER order, a compressed point re-encoded otherwise... all go the slow way). */
    unsigned char *tbs = NULL;
    int tbs_len = ok ? i2d_re_X509_REQ_tbs(req, &tbs) : -1;
    ok = tbs_len > 0 && (long)tbs_len == info->enc.len &&
         memcmp(tbs, info->enc.enc, (size_t)tbs_len) == 0;
    OPENSSL_free(tbs);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/* NULL when the fast way does not apply; the caller then uses d2i_X509_REQ. */
static X509_REQ *decode_fast(const unsigned char *der, size_t der_len)
{
    const unsigned char *p = der;
    WIRE_REQUEST *wire = d2i_WIRE_REQUEST(NULL, &p, (long)der_len);
    X509_REQ *req = NULL;
    if (wire != NULL && p == der + der_len) {
        EVP_PKEY *key = decode_public_key(wire->info->spki);
        if (key != NULL)
            req = assemble(wire, key);
        EVP_PKEY_free(key);
    }
    WIRE_REQUEST_free(wire);
    ERR_clear_error();
    return req;
}

int est_csr_decode(const char *body, size_t len, X509_REQ **out, estca_reason *why)
{
    *out = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    estca_reason inner = {{0}};
    if (base64_decode(body, len, &der, &der_len, &inner) != ESTCA_OK)
        return estca_fail(why, ESTCA_E_INVALID, "request body is not base64 (%s)", inner.text);
    X509_REQ *csr = decode_fast(der, der_len);
    bool exact = csr != NULL;
    if (csr == NULL) {
        const unsigned char *p = der;
        csr = d2i_X509_REQ(NULL, &p, (long)der_len);
        exact = csr != NULL && p == der + der_len;
    }
    OPENSSL_free(der);
    ERR_clear_error();
    if (!exact) {
        int rc = estca_fail(why, ESTCA_E_INVALID,
                            csr == NULL ? "request body is not a DER PKCS#10 request"
                                        : "trailing bytes after the PKCS#10 request");
        X509_REQ_free(csr);
        return rc;
    }
    *out = csr;
    return ESTCA_OK;
}
