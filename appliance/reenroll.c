/* core_reenroll (RFC 7030 §4.2.2): the TLS client certificate says which certificate is being
 * renewed; it must be this label's CA's own, valid and not revoked, and the CSR may not change
 * the names it certifies. The issuance itself is core_issue's. */
#include "core_internal.h"

#include "authz.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

/* Trusting only the label's CA certificate (a partial chain) accepts exactly what it issued. */
static int verify_current(const struct core_label *label, X509 *current,
                          STACK_OF(X509) *presented_chain, estca_reason *why)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = ESTCA_OK;
    if (store == NULL || ctx == NULL || !X509_STORE_add_cert(store, label->ca->certificate) ||
        !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) ||
        !X509_STORE_CTX_init(ctx, store, current, presented_chain) ||
        !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT))
        rc = estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot set up certificate verification");
    if (rc == ESTCA_OK && X509_verify_cert(ctx) != 1)
        rc = estca_fail(why, ESTCA_E_AUTH,
                        "the TLS client certificate is not one of label %s's CA: %s", label->name,
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* Equal as encoded; both absent is equal too. */
static bool same_names(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    unsigned char *der_a = NULL, *der_b = NULL;
    int len_a = i2d_GENERAL_NAMES(a, &der_a);
    int len_b = i2d_GENERAL_NAMES(b, &der_b);
    bool same = len_a > 0 && len_a == len_b && memcmp(der_a, der_b, (size_t)len_a) == 0;
    OPENSSL_free(der_a);
    OPENSSL_free(der_b);
    return same;
}

static int check_same_names(X509_REQ *csr, X509 *current, estca_reason *why)
{
    if (X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(current)) != 0)
        return estca_fail(why, ESTCA_E_INVALID,
                          "the CSR's subject differs from the certificate being renewed "
                          "(RFC 7030 section 4.2.2)");
    GENERAL_NAMES *requested = NULL;
    int rc = core_csr_subject_alt_name(csr, &requested, why);
    if (rc != ESTCA_OK)
        return rc;
    GENERAL_NAMES *certified = X509_get_ext_d2i(current, NID_subject_alt_name, NULL, NULL);
    if (!same_names(requested, certified))
        rc = estca_fail(why, ESTCA_E_INVALID,
                        "the CSR's subjectAltName differs from the certificate being renewed "
                        "(RFC 7030 section 4.2.2)");
    GENERAL_NAMES_free(requested);
    GENERAL_NAMES_free(certified);
    return rc;
}

int core_reenroll(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                  X509 *current, STACK_OF(X509) *presented_chain, const char *requester, X509 **out,
                  estca_reason *why)
{
    *out = NULL;
    if (core == NULL || label == NULL || csr == NULL || current == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "core_reenroll: bad arguments");
    int rc = verify_current(label, current, presented_chain, why);
    struct ledger_state state = {0};
    if (rc == ESTCA_OK) {
        rc = ledger_lookup(core->ledger, label->ca->name, current, &state, why);
        if (rc == ESTCA_E_NOT_FOUND)
            rc = estca_fail(why, ESTCA_E_AUTH,
                            "the TLS client certificate was not issued by "
                            "this appliance (not in its ledger)");
        else if (rc != ESTCA_OK)
            rc = ESTCA_E_LEDGER;
    }
    if (rc == ESTCA_OK && state.revoked)
        rc = estca_fail(why, ESTCA_E_FORBIDDEN, "the certificate being renewed is revoked");
    if (rc == ESTCA_OK)
        rc = check_same_names(csr, current, why);
    /* Policies name certificates by their RFC 2253 subject, whatever requester says. */
    char identity[AUTHZ_IDENTITY_MAX];
    if (rc == ESTCA_OK)
        rc = authz_certificate_identity("cert:", current, identity, sizeof identity, why);
    if (rc == ESTCA_OK)
        rc = authz_decide(core, label, csr, &(struct core_identity){identity, current},
                          "simplereenroll", AUTHZ_RENEWAL, NULL, why);
    if (rc == ESTCA_OK)
        rc = core_issue(core, label, csr, requester, state.id, 0, out, why);
    return core_audit_issuance(core, "simplereenroll", label, requester, rc, *out, why);
}
