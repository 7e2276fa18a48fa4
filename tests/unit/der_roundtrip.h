/* Test helper: a certificate as a peer receives it, i.e. encoded and parsed again. certbuild
 * copies public keys as encoded without decoding them, so X509_get0_pubkey() and chain
 * verification need the parsed form, as every real consumer has. */
#ifndef ESTCA_TEST_DER_ROUNDTRIP_H
#define ESTCA_TEST_DER_ROUNDTRIP_H

#include <openssl/x509.h>

/* Frees cert and returns its re-parsed copy; Criterion-asserts on failure. */
X509 *der_roundtrip(X509 *cert);

#endif
