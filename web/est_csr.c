#include "est_csr.h"

#include "base64.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdbool.h>

int est_csr_decode(const char *body, size_t len, X509_REQ **out, estca_reason *why)
{
    *out = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    estca_reason inner = {{0}};
    if (base64_decode(body, len, &der, &der_len, &inner) != ESTCA_OK)
        return estca_fail(why, ESTCA_E_INVALID, "request body is not base64 (%s)", inner.text);
    const unsigned char *p = der;
    X509_REQ *csr = d2i_X509_REQ(NULL, &p, (long)der_len);
    bool exact = csr != NULL && p == der + der_len;
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
