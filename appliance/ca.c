/* One CA instance: its key on the token and its certificate chain from PEM files, checked
 * once at start-up so that a misconfigured CA stops estcad instead of issuing bad chains. */
#include "core_internal.h"
#include "pem_file.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_certificate(const char *path, X509 **out, estca_reason *why)
{
    STACK_OF(X509) *certs = NULL;
    int rc = pem_read_certificates(path, &certs, why);
    if (rc != ESTCA_OK)
        return rc;
    if (sk_X509_num(certs) != 1) {
        sk_X509_pop_free(certs, X509_free);
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s: expected one certificate (the chain goes "
                          "in 'chain')",
                          path);
    }
    *out = sk_X509_pop(certs);
    sk_X509_free(certs);
    return ESTCA_OK;
}

/* The chain above the CA certificate: the chain file without a leading copy of the CA
 * certificate itself (operators often have "CA + root" at hand). Empty for a root CA. */
static int read_issuers(const struct config_ca *config, X509 *certificate, STACK_OF(X509) **out,
                        estca_reason *why)
{
    if (config->chain_file == NULL) {
        *out = sk_X509_new_null();
        return *out != NULL ? ESTCA_OK : estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    int rc = pem_read_certificates(config->chain_file, out, why);
    if (rc != ESTCA_OK)
        return rc;
    if (X509_cmp(sk_X509_value(*out, 0), certificate) == 0)
        X509_free(sk_X509_shift(*out));
    return ESTCA_OK;
}

/* The trust anchor: the last issuer, or the CA certificate itself if it has none. Either must
 * be self-signed, with a signature that verifies. */
static int find_root(const struct config_ca *config, X509 *certificate, STACK_OF(X509) *issuers,
                     X509 **root, estca_reason *why)
{
    int n = sk_X509_num(issuers);
    *root = n > 0 ? sk_X509_value(issuers, n - 1) : certificate;
    if (X509_self_signed(*root, 1) == 1)
        return ESTCA_OK;
    ERR_clear_error();
    if (n == 0)
        return estca_fail(why, ESTCA_E_CONFIG,
                          "[ca:%s]: %s is not self-signed, and no 'chain' up to the root is "
                          "configured",
                          config->name, config->certificate_file);
    return estca_fail(why, ESTCA_E_CONFIG,
                      "[ca:%s]: the last certificate of %s is not a self-signed root", config->name,
                      config->chain_file);
}

/* Verifies certificate up to root through the other issuers and returns the verified chain,
 * certificate first, root last. Caller frees. */
static int verify_chain(const struct config_ca *config, X509 *certificate, STACK_OF(X509) *issuers,
                        X509 *root, STACK_OF(X509) **out, estca_reason *why)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL || !X509_STORE_add_cert(store, root) ||
        !X509_STORE_CTX_init(ctx, store, certificate, issuers)) {
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "[ca:%s]: chain check", config->name);
    }
    int rc = ESTCA_OK;
    if (X509_verify_cert(ctx) != 1)
        rc = estca_fail(why, ESTCA_E_CONFIG, "[ca:%s]: the chain of %s does not verify: %s",
                        config->name, config->certificate_file,
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    else if ((*out = X509_STORE_CTX_get1_chain(ctx)) == NULL)
        rc = estca_fail_openssl(why, ESTCA_E_NOMEM, "[ca:%s]: chain", config->name);
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

static int load_chain(struct ca_instance *ca, const struct config_ca *config, estca_reason *why)
{
    STACK_OF(X509) *issuers = NULL;
    int rc = read_issuers(config, ca->certificate, &issuers, why);
    if (rc != ESTCA_OK)
        return rc;
    X509 *root = NULL;
    rc = find_root(config, ca->certificate, issuers, &root, why);
    if (rc == ESTCA_OK) {
        /* The root is the anchor, so it need not be among the untrusted ones. */
        if (sk_X509_num(issuers) > 0)
            sk_X509_pop(issuers);
        rc = verify_chain(config, ca->certificate, issuers, root, &ca->chain, why);
        if (root != ca->certificate)
            X509_free(root);
    }
    sk_X509_pop_free(issuers, X509_free);
    return rc;
}

static int check_certificate(const struct ca_instance *ca, const struct config_ca *config,
                             estca_reason *why)
{
    if (X509_check_ca(ca->certificate) == 0)
        return estca_fail(why, ESTCA_E_CONFIG, "[ca:%s]: %s is not a CA certificate", config->name,
                          config->certificate_file);
    if (X509_check_private_key(ca->certificate, ca->key) != 1)
        return estca_fail_openssl(why, ESTCA_E_CONFIG,
                                  "[ca:%s]: the key %s does not match the certificate %s",
                                  config->name, config->key_uri, config->certificate_file);
    return ESTCA_OK;
}

int ca_instance_load(struct ca_instance *ca, const struct config_ca *config,
                     struct hsm_token *token, estca_reason *why)
{
    if ((ca->name = strdup(config->name)) == NULL ||
        (config->crl_url != NULL && (ca->crl_url = strdup(config->crl_url)) == NULL) ||
        (config->ca_issuers_url != NULL &&
         (ca->ca_issuers_url = strdup(config->ca_issuers_url)) == NULL) ||
        (config->crl_file != NULL && (ca->crl_file = strdup(config->crl_file)) == NULL))
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    ca->crl_validity_hours = config->crl_validity_hours > 0 ? config->crl_validity_hours : 24;
    int rc = read_certificate(config->certificate_file, &ca->certificate, why);
    if (rc == ESTCA_OK)
        rc = hsm_key_find(token, config->key_uri, &ca->key, why);
    if (rc == ESTCA_OK)
        rc = check_certificate(ca, config, why);
    if (rc == ESTCA_OK)
        rc = load_chain(ca, config, why);
    if (rc != ESTCA_OK)
        return rc;
    /* Fill OpenSSL's per-certificate extension cache now, while one thread runs: issuance
     * reads the SKI from many threads later. */
    X509_check_purpose(ca->certificate, -1, 0);
    return ESTCA_OK;
}

void ca_instance_clear(struct ca_instance *ca)
{
    sk_X509_pop_free(ca->chain, X509_free);
    X509_free(ca->certificate);
    EVP_PKEY_free(ca->key);
    free(ca->name);
    free(ca->crl_url);
    free(ca->ca_issuers_url);
    free(ca->crl_file);
    ca->crl_url = ca->ca_issuers_url = ca->crl_file = NULL;
    ca->chain = NULL;
    ca->certificate = NULL;
    ca->key = NULL;
    ca->name = NULL;
}
