/* Client-certificate authentication per label (client_trust.h, core_authenticate_certificate):
 * RFC 5280 path validation with X509_verify_cert and the sslclient purpose against stores
 * built at start-up. X509_STORE is safe to share between threads for verification; each
 * request gets its own X509_STORE_CTX. */
#include "client_trust.h"

#include "authz.h"
#include "core_internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct client_trust {
    bool cert_auth;
    X509_STORE *client_store; /* client_ca (+ client_crl); NULL: none */
    X509_STORE *own_store;    /* the label's CA alone (a partial chain); cert_auth only */
    X509_STORE *ra_store;     /* ra_ca; NULL: no RAs */
};

void client_trust_free(struct client_trust *trust)
{
    if (trust == NULL)
        return;
    X509_STORE_free(trust->client_store);
    X509_STORE_free(trust->own_store);
    X509_STORE_free(trust->ra_store);
    free(trust);
}

/* Every certificate of a PEM file into store; at least one. */
static int add_certificates(X509_STORE *store, const char *path, estca_reason *why)
{
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL)
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot open %s", path);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL)
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot read PEM certificates from %s",
                                  path);
    int added = 0, rc = ESTCA_OK;
    for (int i = 0; rc == ESTCA_OK && i < sk_X509_INFO_num(infos); i++) {
        X509 *certificate = sk_X509_INFO_value(infos, i)->x509;
        if (certificate == NULL)
            continue;
        if (!X509_STORE_add_cert(store, certificate))
            rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot add a certificate of %s", path);
        added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (rc == ESTCA_OK && added == 0)
        rc = estca_fail(why, ESTCA_E_CONFIG, "%s holds no PEM certificate", path);
    return rc;
}

/* PEM CRLs (any number), else one DER CRL. */
static int add_crls(X509_STORE *store, const char *path, estca_reason *why)
{
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL)
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot open %s", path);
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    int added = 0, rc = ESTCA_OK;
    for (int i = 0; rc == ESTCA_OK && i < sk_X509_INFO_num(infos); i++) {
        X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;
        if (crl == NULL)
            continue;
        if (!X509_STORE_add_crl(store, crl))
            rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot add a CRL of %s", path);
        added++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (rc == ESTCA_OK && added == 0) {
        ERR_clear_error();
        X509_CRL *crl = BIO_reset(bio) == 0 ? d2i_X509_CRL_bio(bio, NULL) : NULL;
        if (crl == NULL || !X509_STORE_add_crl(store, crl))
            rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "%s holds no PEM or DER CRL", path);
        X509_CRL_free(crl);
    }
    BIO_free(bio);
    return rc;
}

static int store_new(X509_STORE **out, estca_reason *why)
{
    if ((*out = X509_STORE_new()) == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot make a certificate store");
    return ESTCA_OK;
}

static int load_stores(struct client_trust *trust, const struct config_label *source,
                       X509 *label_ca, estca_reason *why)
{
    int rc = ESTCA_OK;
    if (source->client_ca != NULL) {
        rc = store_new(&trust->client_store, why);
        if (rc == ESTCA_OK)
            rc = add_certificates(trust->client_store, source->client_ca, why);
    }
    if (rc == ESTCA_OK && source->client_crl != NULL) {
        rc = add_crls(trust->client_store, source->client_crl, why);
        /* Fails closed: a certificate whose CRL is missing or expired does not verify. */
        if (rc == ESTCA_OK &&
            !X509_STORE_set_flags(trust->client_store,
                                  X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
            rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot enable CRL checking");
    }
    if (rc == ESTCA_OK && trust->cert_auth) {
        rc = store_new(&trust->own_store, why);
        /* Trusting only the label's CA certificate accepts exactly what it issued. */
        if (rc == ESTCA_OK && (!X509_STORE_add_cert(trust->own_store, label_ca) ||
                               !X509_STORE_set_flags(trust->own_store, X509_V_FLAG_PARTIAL_CHAIN)))
            rc = estca_fail_openssl(why, ESTCA_E_CONFIG, "cannot trust the label's CA");
    }
    if (rc == ESTCA_OK && source->ra_ca != NULL) {
        rc = store_new(&trust->ra_store, why);
        if (rc == ESTCA_OK)
            rc = add_certificates(trust->ra_store, source->ra_ca, why);
    }
    return rc;
}

int client_trust_load(const struct estca_config *config, const struct config_label *source,
                      X509 *label_ca, struct client_trust **out, estca_reason *why)
{
    *out = NULL;
    if (source->client_crl != NULL && source->client_ca == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "%s: [label:%s]: client_crl needs client_ca",
                          config->path, source->name);
    bool cert_auth = source->cert_auth == 1;
    if (!cert_auth && source->ra_ca == NULL)
        return ESTCA_OK;
    struct client_trust *trust = calloc(1, sizeof *trust);
    if (trust == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    trust->cert_auth = cert_auth;
    estca_reason load_why = {{0}};
    int rc = load_stores(trust, source, label_ca, &load_why);
    if (rc != ESTCA_OK) {
        client_trust_free(trust);
        return estca_fail(why, rc, "[label:%s]: %.400s", source->name, load_why.text);
    }
    *out = trust;
    return ESTCA_OK;
}

/* ---- at request time ---- */

/* X509_V_OK, or what X509_verify_cert found wrong. */
static int verify(X509_STORE *store, X509 *certificate, STACK_OF(X509) *chain, estca_reason *why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int result = X509_V_ERR_UNSPECIFIED;
    if (ctx != NULL && X509_STORE_CTX_init(ctx, store, certificate, chain) &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
        result = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    else
        estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot set up certificate verification");
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return result;
}

static bool has_cmc_ra(X509 *certificate)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(certificate, NID_ext_key_usage, NULL, NULL);
    bool found = false;
    for (int i = 0; !found && i < sk_ASN1_OBJECT_num(eku); i++)
        found = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_cmcRA;
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
    return found;
}

/* A certificate of the label's own CA is good only while the ledger has it unrevoked (the CA
 * publishes its CRL, but the ledger is the truth and is never stale). */
static int check_ledger(struct ca_core *core, const struct core_label *label, X509 *certificate,
                        estca_reason *why)
{
    if (X509_check_issued(label->ca->certificate, certificate) != X509_V_OK)
        return ESTCA_OK; /* another CA's: its CRL, if configured, has spoken */
    struct ledger_state state = {0};
    int rc = ledger_lookup(core->ledger, label->ca->name, certificate, &state, why);
    if (rc == ESTCA_E_NOT_FOUND)
        return estca_fail(why, ESTCA_E_AUTH,
                          "the TLS client certificate names this CA as issuer but is not in "
                          "its ledger");
    if (rc != ESTCA_OK)
        return ESTCA_E_LEDGER;
    if (state.revoked)
        return estca_fail(why, ESTCA_E_FORBIDDEN, "the TLS client certificate is revoked");
    return ESTCA_OK;
}

/* An RA: verifies against ra_ca and carries id-kp-cmcRA. */
static int authenticate_ra(struct ca_core *core, const struct core_label *label, X509 *certificate,
                           STACK_OF(X509) *chain, char *identity, size_t size, estca_reason *why)
{
    int result = verify(label->client_trust->ra_store, certificate, chain, why);
    if (result == X509_V_ERR_CERT_REVOKED)
        return estca_fail(why, ESTCA_E_FORBIDDEN, "the RA certificate is revoked");
    if (result != X509_V_OK)
        return estca_fail(why, ESTCA_E_AUTH, "not an RA certificate of label %s: %s", label->name,
                          X509_verify_cert_error_string(result));
    if (!has_cmc_ra(certificate))
        return estca_fail(why, ESTCA_E_FORBIDDEN,
                          "the certificate verifies against label %s's ra_ca but lacks the "
                          "id-kp-cmcRA extended key usage (1.3.6.1.5.5.7.3.28): not an RA",
                          label->name);
    int rc = check_ledger(core, label, certificate, why);
    if (rc == ESTCA_OK)
        rc = authz_certificate_identity("ra:", certificate, identity, size, why);
    return rc;
}

/* A device: verifies against client_ca, or is one of the label's CA's own certificates. */
static int authenticate_device(struct ca_core *core, const struct core_label *label,
                               X509 *certificate, STACK_OF(X509) *chain, char *identity,
                               size_t size, estca_reason *why)
{
    const struct client_trust *trust = label->client_trust;
    int client_result = X509_V_ERR_UNSPECIFIED;
    if (trust->client_store != NULL) {
        client_result = verify(trust->client_store, certificate, chain, why);
        if (client_result == X509_V_ERR_CERT_REVOKED)
            return estca_fail(why, ESTCA_E_FORBIDDEN,
                              "the TLS client certificate is revoked (client_crl)");
    }
    int own_result = client_result == X509_V_OK ? X509_V_ERR_UNSPECIFIED
                                                : verify(trust->own_store, certificate, chain, why);
    if (client_result != X509_V_OK && own_result != X509_V_OK)
        return estca_fail(
            why, ESTCA_E_AUTH, "the TLS client certificate is not accepted by label %s: %s%s%s",
            label->name,
            trust->client_store != NULL ? X509_verify_cert_error_string(client_result) : "",
            trust->client_store != NULL ? "; against its own CA: " : "",
            X509_verify_cert_error_string(own_result));
    int rc = check_ledger(core, label, certificate, why);
    if (rc == ESTCA_OK)
        rc = authz_certificate_identity("cert:", certificate, identity, size, why);
    return rc;
}

int core_authenticate_certificate(struct ca_core *core, const struct core_label *label,
                                  X509 *certificate, STACK_OF(X509) *chain, char *identity,
                                  size_t size, estca_reason *why)
{
    if (identity != NULL && size > 0)
        identity[0] = '\0';
    if (core == NULL || label == NULL || identity == NULL || label->client_trust == NULL)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "label does not authenticate by certificate");
    if (certificate == NULL)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no TLS client certificate");
    const struct client_trust *trust = label->client_trust;
    int rc = ESTCA_E_AUTH;
    if (trust->ra_store != NULL)
        rc = authenticate_ra(core, label, certificate, chain, identity, size, why);
    if (rc == ESTCA_E_AUTH && trust->cert_auth)
        rc = authenticate_device(core, label, certificate, chain, identity, size, why);
    if (rc != ESTCA_OK && identity != NULL)
        identity[0] = '\0';
    return rc;
}
