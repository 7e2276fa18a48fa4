/* Builds and signs X.509 certificates from structures (no string-parsed extension configs,
 * which cost more than an EC signature). Used for end-entity issuance and by provisioning for
 * root, issuing and TLS certificates. The signing key may live on a token. */
#ifndef ESTCA_CERTBUILD_H
#define ESTCA_CERTBUILD_H

#include "status.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

enum certbuild_profile {
    CERTBUILD_ROOT_CA,    /* CA:TRUE critical, keyCertSign+cRLSign, self-signed */
    CERTBUILD_ISSUING_CA, /* CA:TRUE pathlen:0 critical, keyCertSign+cRLSign */
    CERTBUILD_END_ENTITY, /* CA:FALSE critical, digitalSignature+keyEncipherment (RSA) or
                             digitalSignature (EC), EKU clientAuth+serverAuth */
    CERTBUILD_TLS_SERVER, /* CA:FALSE critical, digitalSignature(+keyEncipherment), EKU
                             serverAuth */
};

struct certbuild_params {
    enum certbuild_profile profile;
    const X509_NAME *subject;
    const X509_PUBKEY *subject_public_key; /* copied as encoded, never decoded */
    const GENERAL_NAMES *san;              /* NULL: no subjectAltName */
    X509 *issuer;                          /* NULL: self-signed by issuer_key */
    EVP_PKEY *issuer_key;                  /* signs; may be a token key */
    const unsigned char *serial;           /* big-endian, positive is ensured by the builder */
    size_t serial_len;
    time_t not_before;
    time_t not_after; /* clipped to the issuer's notAfter */
    /* End-entity profile (0 / NULL: the defaults above). */
    unsigned key_usage_bits; /* bit i set: KeyUsage bit i (0 digitalSignature, 2 keyEnc...) */
    const int *eku_nids;     /* NID_client_auth, NID_server_auth, ... */
    size_t n_eku;
    const char *crl_url;        /* CRL distribution point (NULL: none) */
    const char *ca_issuers_url; /* authorityInfoAccess caIssuers (NULL: none) */
};

/* The public key is copied as encoded and not decoded (OpenSSL 3.0's decoders cost more than the
 * signature): X509_get0_pubkey() on *out is NULL until it is parsed from DER again.
 * Always adds subjectKeyIdentifier, and authorityKeyIdentifier (keyid) when issued by
 * another certificate. Digest: SHA-256 (SHA-384 for P-384 issuers). Caller frees *out. */
int certbuild_sign(const struct certbuild_params *params, X509 **out, estca_reason *why);

/* The digest a signature by issuer_key uses: SHA-384 for P-384, SHA-512 for larger curves,
 * SHA-256 otherwise (also for CRLs, so certificates and CRLs of one CA agree). */
const EVP_MD *certbuild_signing_digest(EVP_PKEY *issuer_key);

#endif
