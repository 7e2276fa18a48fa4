/* The certs-only Simple PKI Response (RFC 7030 §4.1.3, §4.2.3; RFC 5272 §4.1): a degenerate
 * PKCS#7 SignedData with certificates, no signers, and an encapsulated content of type data
 * whose content is absent. */
#include "base64.h"
#include "est_internal.h"

#include <openssl/pkcs7.h>

static int build(STACK_OF(X509) *certs, PKCS7 **out, estca_reason *why)
{
    PKCS7 *p7 = PKCS7_new();
    if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
        !PKCS7_content_new(p7, NID_pkcs7_data)) {
        PKCS7_free(p7);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot build PKCS#7 SignedData");
    }
    /* PKCS7_content_new gives the data an empty OCTET STRING; RFC 5272 wants eContent
     * absent, as `openssl crl2pkcs7 -nocrl` writes it. */
    PKCS7 *inner = p7->d.sign->contents;
    ASN1_OCTET_STRING_free(inner->d.data);
    inner->d.data = NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (!PKCS7_add_certificate(p7, sk_X509_value(certs, i))) {
            PKCS7_free(p7);
            return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot add a certificate");
        }
    }
    *out = p7;
    return ESTCA_OK;
}

int est_certs_only_base64(STACK_OF(X509) *certs, char **out, size_t *out_len, estca_reason *why)
{
    *out = NULL;
    *out_len = 0;
    if (sk_X509_num(certs) <= 0)
        return estca_fail(why, ESTCA_E_INVALID, "no certificate to send");
    PKCS7 *p7 = NULL;
    int rc = build(certs, &p7, why);
    if (rc != ESTCA_OK)
        return rc;
    unsigned char *der = NULL;
    int der_len = i2d_PKCS7(p7, &der);
    PKCS7_free(p7);
    if (der_len <= 0)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot encode PKCS#7 SignedData");
    rc = base64_encode(der, (size_t)der_len, out, out_len, why);
    OPENSSL_free(der);
    return rc;
}
