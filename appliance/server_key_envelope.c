/* Server-side key generation with additional encryption (RFC 7030 §4.4.1.2, §4.4.2): which key
 * a CSR asks the generated key to be encrypted to, and the CMS that carries it there. The
 * generated PKCS#8 key becomes an RFC 5958 AsymmetricKeyPackage, signed by the label's CA
 * (SignedData, the CA's key on the token) and encrypted to the recipient (EnvelopedData). */
#include "certbuild.h"
#include "core_internal.h"

#include <limits.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <string.h>

/* RFC 7030 §4.4.1.2: id-aa-asymmDecryptKeyID, an OCTET STRING naming the client's key. */
#define OID_ASYMMETRIC_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.54"
/* RFC 7030 §4.4.1.1: id-aa-KP-contentDecryptKeyID (DecryptKeyIdentifier), a symmetric key's
 * name. */
#define OID_SYMMETRIC_DECRYPT_KEY_ID "2.16.840.1.101.2.1.5.66"
/* RFC 5958 §4: id-ct-KP-aKeyPackage, the content type of an AsymmetricKeyPackage. */
#define OID_ASYMMETRIC_KEY_PACKAGE "2.16.840.1.101.2.1.2.78.5"

/* The one OCTET STRING value of the CSR's attribute oid (borrowed from csr); *out NULL when the
 * CSR lacks the attribute. what names it in the client's error. */
static int find_key_id(X509_REQ *csr, const char *oid, const char *what,
                       const ASN1_OCTET_STRING **out, estca_reason *why)
{
    *out = NULL;
    ASN1_OBJECT *type = OBJ_txt2obj(oid, 1);
    if (type == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot make the OID of %s", what);
    int index = X509_REQ_get_attr_by_OBJ(csr, type, -1);
    int repeated = index >= 0 ? X509_REQ_get_attr_by_OBJ(csr, type, index) : -1;
    ASN1_OBJECT_free(type);
    if (index < 0)
        return ESTCA_OK;
    if (repeated >= 0)
        return estca_fail(why, ESTCA_E_INVALID, "the CSR carries %s more than once", what);
    X509_ATTRIBUTE *attribute = X509_REQ_get_attr(csr, index);
    ASN1_TYPE *value = attribute != NULL && X509_ATTRIBUTE_count(attribute) == 1
                           ? X509_ATTRIBUTE_get0_type(attribute, 0)
                           : NULL;
    if (value == NULL || value->type != V_ASN1_OCTET_STRING ||
        ASN1_STRING_length(value->value.octet_string) == 0)
        return estca_fail(why, ESTCA_E_INVALID,
                          "the CSR's %s must hold exactly one non-empty OCTET STRING", what);
    *out = value->value.octet_string;
    return ESTCA_OK;
}

/* presented is trusted for this only because TLS proved its private key is the client's: the
 * new key is encrypted to whoever holds it, so no chain to any CA is needed. */
int core_server_key_recipient(const struct core_label *label, X509_REQ *csr, X509 *presented,
                              X509 **recipient, estca_reason *why)
{
    *recipient = NULL;
    if (label == NULL || csr == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_server_key_recipient: bad arguments");
    int rc = core_serverkeygen_offered(label, why);
    if (rc != ESTCA_OK)
        return rc;
    const ASN1_OCTET_STRING *symmetric = NULL, *asymmetric = NULL;
    rc = find_key_id(csr, OID_SYMMETRIC_DECRYPT_KEY_ID, "DecryptKeyIdentifier", &symmetric, why);
    if (rc == ESTCA_OK)
        rc = find_key_id(csr, OID_ASYMMETRIC_DECRYPT_KEY_ID, "AsymmetricDecryptKeyIdentifier",
                         &asymmetric, why);
    if (rc != ESTCA_OK)
        return rc;
    /* §4.4.1.1-2: a key the server does not have ends the request with an error. */
    if (symmetric != NULL)
        return estca_fail(why, ESTCA_E_INVALID,
                          "the CSR's DecryptKeyIdentifier names a symmetric key; this server "
                          "holds none (use AsymmetricDecryptKeyIdentifier)");
    if (asymmetric == NULL)
        return ESTCA_OK;
    if (presented == NULL)
        return estca_fail(why, ESTCA_E_INVALID,
                          "the CSR's AsymmetricDecryptKeyIdentifier names no key this server has: "
                          "present the key's certificate as the TLS client certificate");
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(presented);
    if (ski == NULL || ASN1_OCTET_STRING_cmp(ski, asymmetric) != 0)
        return estca_fail(why, ESTCA_E_INVALID,
                          "the CSR's AsymmetricDecryptKeyIdentifier names no key this server has: "
                          "it is not the TLS client certificate's subjectKeyIdentifier");
    EVP_PKEY *key = X509_get0_pubkey(presented);
    int type = key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
    ERR_clear_error();
    if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC)
        return estca_fail(why, ESTCA_E_POLICY,
                          "the TLS client certificate's key cannot receive the key (RSA or EC "
                          "only)");
    *recipient = presented;
    return ESTCA_OK;
}

/* RFC 5958: AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey, and a version
 * 1 OneAsymmetricKey is encoded exactly as PKCS#8 PrivateKeyInfo, so the package is the PKCS#8
 * DER under one SEQUENCE header. *out holds the key: the caller wipes it. */
static int key_package(const unsigned char *pkcs8, size_t len, unsigned char **out, size_t *out_len,
                       estca_reason *why)
{
    int total = len < INT_MAX ? ASN1_object_size(1, (int)len, V_ASN1_SEQUENCE) : -1;
    if (total <= 0)
        return estca_fail(why, ESTCA_E_INVALID, "the key is too large for a key package");
    unsigned char *package = OPENSSL_malloc((size_t)total);
    if (package == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    unsigned char *p = package;
    ASN1_put_object(&p, 1, (int)len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, pkcs8, len);
    *out = package;
    *out_len = (size_t)total;
    return ESTCA_OK;
}

/* The DER of cms, into *out (OPENSSL_malloc'd). */
static int encode(CMS_ContentInfo *cms, const char *what, unsigned char **out, size_t *out_len,
                  estca_reason *why)
{
    unsigned char *der = NULL;
    int len = i2d_CMS_ContentInfo(cms, &der);
    if (len <= 0)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot encode the %s", what);
    *out = der;
    *out_len = (size_t)len;
    return ESTCA_OK;
}

/* SignedData over the package, eContentType id-ct-KP-aKeyPackage, signed on the token by the
 * label's CA, whose certificate it carries. *out holds the key in clear: the caller wipes it. */
static int sign_package(const struct ca_instance *ca, const unsigned char *package, size_t len,
                        unsigned char **out, size_t *out_len, estca_reason *why)
{
    /* BINARY: the package is DER, not text to canonicalise. No SMIMECapabilities: the
     * signature is not an S/MIME mail's. PARTIAL: the signer and content type come after. */
    const unsigned int flags = CMS_BINARY | CMS_NOSMIMECAP | CMS_PARTIAL;
    ASN1_OBJECT *type = OBJ_txt2obj(OID_ASYMMETRIC_KEY_PACKAGE, 1);
    BIO *content = len <= INT_MAX ? BIO_new_mem_buf(package, (int)len) : NULL;
    CMS_ContentInfo *cms =
        type != NULL && content != NULL ? CMS_sign(NULL, NULL, NULL, NULL, flags) : NULL;
    int rc = ESTCA_OK;
    if (cms == NULL || !CMS_set1_eContentType(cms, type) || !CMS_set_detached(cms, 0))
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set up the key package SignedData");
    if (rc == ESTCA_OK && CMS_add1_signer(cms, ca->certificate, ca->key,
                                          certbuild_signing_digest(ca->key), flags) == NULL)
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot add CA %s as the signer", ca->name);
    /* The signature is made here, on the token. */
    if (rc == ESTCA_OK && !CMS_final(cms, content, NULL, CMS_BINARY))
        rc = estca_fail_openssl(why, ESTCA_E_TOKEN, "cannot sign the key package with CA %s",
                                ca->name);
    if (rc == ESTCA_OK)
        rc = encode(cms, "key package SignedData", out, out_len, why);
    /* The embedded copy of the package is the key in clear too. */
    ASN1_OCTET_STRING **embedded = cms != NULL ? CMS_get0_content(cms) : NULL;
    if (embedded != NULL && *embedded != NULL && (*embedded)->length > 0)
        OPENSSL_cleanse((*embedded)->data, (size_t)(*embedded)->length);
    CMS_ContentInfo_free(cms);
    BIO_free(content);
    ASN1_OBJECT_free(type);
    return rc;
}

/* Stronger than OpenSSL's defaults, which every CMS reader of the last decade understands:
 * RSAES-OAEP with SHA-256 rather than PKCS#1 v1.5 (Bleichenbacher), and for ECDH the X9.63
 * KDF with SHA-256 rather than SHA-1 (dhSinglePass-stdDH-sha256kdf-scheme). */
static int set_key_transport(CMS_RecipientInfo *info, estca_reason *why)
{
    EVP_PKEY_CTX *ctx = CMS_RecipientInfo_get0_pkey_ctx(info);
    int ok = ctx != NULL;
    if (ok && CMS_RecipientInfo_type(info) == CMS_RECIPINFO_TRANS)
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0;
    else if (ok)
        ok = EVP_PKEY_CTX_set_ecdh_kdf_md(ctx, EVP_sha256()) > 0;
    if (!ok)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set the key transport parameters");
    return ESTCA_OK;
}

/* EnvelopedData of the SignedData for recipient: AES-256-CBC content encryption (EnvelopedData
 * has no AEAD; GCM would need AuthEnvelopedData, which RFC 7030 does not name), the CEK by
 * ktri for RSA, kari for EC. */
static int envelope(X509 *recipient, const unsigned char *signed_der, size_t len,
                    unsigned char **out, size_t *out_len, estca_reason *why)
{
    BIO *content = len <= INT_MAX ? BIO_new_mem_buf(signed_der, (int)len) : NULL;
    CMS_ContentInfo *cms = content != NULL ? CMS_EnvelopedData_create(EVP_aes_256_cbc()) : NULL;
    int rc = ESTCA_OK;
    /* Not detached: the encrypted content travels inside, as CMS_encrypt would put it. */
    if (cms == NULL || !CMS_set1_eContentType(cms, OBJ_nid2obj(NID_pkcs7_signed)) ||
        !CMS_set_detached(cms, 0))
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set up the EnvelopedData");
    /* KEY_PARAM: the key transport parameters are set before the CEK is encrypted. */
    CMS_RecipientInfo *info =
        rc == ESTCA_OK ? CMS_add1_recipient_cert(cms, recipient, CMS_KEY_PARAM) : NULL;
    if (rc == ESTCA_OK && info == NULL)
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot add the recipient");
    if (rc == ESTCA_OK)
        rc = set_key_transport(info, why);
    if (rc == ESTCA_OK && !CMS_final(cms, content, NULL, CMS_BINARY))
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot encrypt the key package");
    if (rc == ESTCA_OK)
        rc = encode(cms, "EnvelopedData", out, out_len, why);
    CMS_ContentInfo_free(cms);
    BIO_free(content);
    return rc;
}

int core_envelope_server_key(const struct core_label *label, const unsigned char *pkcs8, size_t len,
                             X509 *recipient, unsigned char **der, size_t *der_len,
                             estca_reason *why)
{
    if (der != NULL)
        *der = NULL;
    if (der_len != NULL)
        *der_len = 0;
    if (label == NULL || pkcs8 == NULL || len == 0 || recipient == NULL || der == NULL ||
        der_len == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_envelope_server_key: bad arguments");
    unsigned char *package = NULL, *signed_der = NULL;
    size_t package_len = 0, signed_len = 0;
    int rc = key_package(pkcs8, len, &package, &package_len, why);
    if (rc == ESTCA_OK)
        rc = sign_package(label->ca, package, package_len, &signed_der, &signed_len, why);
    if (rc == ESTCA_OK)
        rc = envelope(recipient, signed_der, signed_len, der, der_len, why);
    OPENSSL_clear_free(package, package_len);
    OPENSSL_clear_free(signed_der, signed_len);
    return rc;
}
