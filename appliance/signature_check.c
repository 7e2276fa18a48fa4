/* Why not just X509_REQ_verify and X509_verify: in OpenSSL 3.0 they go through EVP_DigestVerify,
 * which fetches the digest and the signature implementation for every call and first copies a
 * legacy key (as est_csr.c decodes CSR keys) into the EC provider, building its curve group from
 * scratch. Together that is a third of an ECDSA verification, and an enrollment verifies two
 * (the CSR, and the token's signature). For an ECDSA signature from an EC key we therefore hash
 * the signed bytes with a digest fetched once and call ECDSA_verify on the key's EC_KEY, which
 * is the function OpenSSL's own ECDSA provider ends in; it also insists on the DER encoding of
 * the signature. The checks X509_verify makes before that are made here too: the algorithm is
 * an ECDSA one with a known digest, the key is EC, the BIT STRING has no unused bits. Any other
 * algorithm or key takes OpenSSL's functions unchanged. */
#define OPENSSL_SUPPRESS_DEPRECATED /* EVP_PKEY_get0_EC_KEY, ECDSA_verify: see above */

#include "signature_check.h"

#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <pthread.h>

enum { DIGEST_SHA256, DIGEST_SHA384, DIGEST_SHA512, DIGEST_COUNT };

static EVP_MD *fetched_digests[DIGEST_COUNT];
static pthread_once_t digests_once = PTHREAD_ONCE_INIT;

/* Kept for the process lifetime, like OpenSSL's own method store; a failed fetch leaves NULL,
 * which sends that digest to the general path. */
static void fetch_digests(void)
{
    fetched_digests[DIGEST_SHA256] = EVP_MD_fetch(NULL, "SHA256", NULL);
    fetched_digests[DIGEST_SHA384] = EVP_MD_fetch(NULL, "SHA384", NULL);
    fetched_digests[DIGEST_SHA512] = EVP_MD_fetch(NULL, "SHA512", NULL);
    ERR_clear_error();
}

/* The digest of an ECDSA signature algorithm, or NULL for anything else. */
static const EVP_MD *ecdsa_digest(const X509_ALGOR *algorithm)
{
    int digest_nid = NID_undef, key_nid = NID_undef;
    if (!OBJ_find_sigid_algs(OBJ_obj2nid(algorithm->algorithm), &digest_nid, &key_nid) ||
        key_nid != NID_X9_62_id_ecPublicKey)
        return NULL;
    pthread_once(&digests_once, fetch_digests);
    switch (digest_nid) {
    case NID_sha256:
        return fetched_digests[DIGEST_SHA256];
    case NID_sha384:
        return fetched_digests[DIGEST_SHA384];
    case NID_sha512:
        return fetched_digests[DIGEST_SHA512];
    default:
        return NULL;
    }
}

/* 1 or 0 as ECDSA_verify answers; -1 when this path does not apply (nothing was checked). */
static int ecdsa_check(const unsigned char *signed_der, long signed_len,
                       const X509_ALGOR *algorithm, const ASN1_BIT_STRING *signature, EVP_PKEY *key)
{
    const EVP_MD *digest = ecdsa_digest(algorithm);
    if (digest == NULL || signed_len <= 0 || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return -1;
    EC_KEY *ec = (EC_KEY *)EVP_PKEY_get0_EC_KEY(key);
    if (ec == NULL) {
        ERR_clear_error();
        return -1;
    }
    if (signature->type == V_ASN1_BIT_STRING && (signature->flags & 0x7) != 0) {
        ERR_raise(ERR_LIB_ASN1, ASN1_R_INVALID_BIT_STRING_BITS_LEFT);
        return 0;
    }
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hash_len = 0;
    if (!EVP_Digest(signed_der, (size_t)signed_len, hash, &hash_len, digest, NULL))
        return 0;
    return ECDSA_verify(0, hash, (int)hash_len, signature->data, signature->length, ec) == 1;
}

/* The first element of the DER SEQUENCE at DER: the signed part of a CSR or certificate.
 * NULL when it is not a definite-length SEQUENCE inside one. */
static const unsigned char *first_element(const unsigned char *der, long der_len, long *len)
{
    const unsigned char *p = der;
    long content_len = 0;
    int tag = 0, class = 0;
    int flags = ASN1_get_object(&p, &content_len, &tag, &class, der_len);
    if ((flags & 0x81) != 0 || tag != V_ASN1_SEQUENCE)
        return NULL;
    const unsigned char *element = p;
    flags = ASN1_get_object(&p, &content_len, &tag, &class, content_len);
    if ((flags & 0x81) != 0 || tag != V_ASN1_SEQUENCE)
        return NULL;
    *len = (long)(p - element) + content_len;
    return element;
}

int signature_check_csr(X509_REQ *csr, EVP_PKEY *key)
{
    const ASN1_BIT_STRING *signature = NULL;
    const X509_ALGOR *algorithm = NULL;
    X509_REQ_get0_signature(csr, &signature, &algorithm);
    /* i2d_X509_REQ reuses the CertificationRequestInfo's encoding as d2i received it, which is
     * what the requester signed and what X509_REQ_verify checks; i2d_re_X509_REQ_tbs would
     * re-encode it. */
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(csr, &der);
    long signed_len = 0;
    const unsigned char *signed_der = der_len > 0 ? first_element(der, der_len, &signed_len) : NULL;
    int verdict =
        signed_der != NULL ? ecdsa_check(signed_der, signed_len, algorithm, signature, key) : -1;
    OPENSSL_free(der);
    return verdict >= 0 ? verdict : X509_REQ_verify(csr, key);
}

int signature_check_certificate(X509 *certificate, EVP_PKEY *issuer_key)
{
    const ASN1_BIT_STRING *signature = NULL;
    const X509_ALGOR *algorithm = NULL;
    X509_get0_signature(&signature, &algorithm, certificate);
    /* X509_verify's first check: the algorithm outside the TBSCertificate is the one inside. */
    if (X509_ALGOR_cmp(algorithm, X509_get0_tbs_sigalg(certificate)) != 0)
        return 0;
    unsigned char *signed_der = NULL;
    int signed_len = i2d_re_X509_tbs(certificate, &signed_der);
    int verdict = ecdsa_check(signed_der, signed_len, algorithm, signature, issuer_key);
    OPENSSL_free(signed_der);
    return verdict >= 0 ? verdict : X509_verify(certificate, issuer_key);
}
