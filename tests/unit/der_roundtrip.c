#include "der_roundtrip.h"

#include <criterion/criterion.h>

X509 *der_roundtrip(X509 *cert)
{
    cr_assert_not_null(cert);
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    cr_assert_gt(len, 0);
    const unsigned char *p = der;
    X509 *parsed = d2i_X509(NULL, &p, len);
    OPENSSL_free(der);
    X509_free(cert);
    cr_assert_not_null(parsed);
    return parsed;
}
