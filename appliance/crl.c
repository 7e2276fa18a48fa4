#include "crl.h"

#include "certbuild.h"

#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

static const char *const reason_names[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL /* 7 unused */,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

int crl_reason_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < (int)(sizeof reason_names / sizeof *reason_names); i++) {
        if (reason_names[i] != NULL && strcmp(reason_names[i], name) == 0)
            return i;
    }
    return -1;
}

/* "2026-11-26T23:16:14Z" (the ledger's form) as an ASN1_TIME. */
static ASN1_TIME *time_from_iso8601(const char *iso)
{
    int y, mo, d, h, mi, s;
    if (iso == NULL || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6)
        return NULL;
    char generalized[sizeof "20261126231614Z"];
    snprintf(generalized, sizeof generalized, "%04d%02d%02d%02d%02d%02dZ", y, mo, d, h, mi, s);
    ASN1_TIME *t = ASN1_TIME_new();
    if (t != NULL && !ASN1_TIME_set_string_X509(t, generalized)) {
        ASN1_TIME_free(t);
        return NULL;
    }
    return t;
}

static int add_entry(const struct ledger_revoked *revoked, void *arg)
{
    X509_CRL *crl = arg;
    X509_REVOKED *entry = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = time_from_iso8601(revoked->revoked_at);
    ASN1_ENUMERATED *reason = NULL;
    int ok = entry != NULL && when != NULL && BN_hex2bn(&bn, revoked->serial) > 0 &&
             (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
             X509_REVOKED_set_serialNumber(entry, serial) &&
             X509_REVOKED_set_revocationDate(entry, when);
    /* RFC 5280 §5.3.1: omit the extension rather than say "unspecified". */
    if (ok && revoked->reason != 0)
        ok = (reason = ASN1_ENUMERATED_new()) != NULL &&
             ASN1_ENUMERATED_set(reason, revoked->reason) &&
             X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, 0) == 1;
    if (ok)
        ok = X509_CRL_add0_revoked(crl, entry);
    if (!ok)
        X509_REVOKED_free(entry);
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok ? ESTCA_OK : ESTCA_E_CRYPTO;
}

static int add_extensions(X509_CRL *crl, X509 *ca_certificate, long number, estca_reason *why)
{
    ASN1_INTEGER *crl_number = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_certificate);
    int ok = crl_number != NULL && akid != NULL && ASN1_INTEGER_set(crl_number, number) &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) == 1;
    if (ok && ski != NULL) {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
        ok = akid->keyid != NULL &&
             X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1;
    }
    ASN1_INTEGER_free(crl_number);
    AUTHORITY_KEYID_free(akid);
    return ok ? ESTCA_OK : estca_fail_openssl(why, ESTCA_E_CRYPTO, "CRL extensions");
}

int crl_build(struct ledger *ledger, const char *ca_name, X509 *ca_certificate, EVP_PKEY *ca_key,
              int validity_hours, X509_CRL **out, estca_reason *why)
{
    *out = NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *this_update = ASN1_TIME_set(NULL, time(NULL));
    ASN1_TIME *next_update = ASN1_TIME_adj(NULL, time(NULL), 0, (long)validity_hours * 3600);
    int rc = ESTCA_OK;
    if (crl == NULL || this_update == NULL || next_update == NULL ||
        !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_certificate)) ||
        !X509_CRL_set1_lastUpdate(crl, this_update) || !X509_CRL_set1_nextUpdate(crl, next_update))
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "CRL fields");
    if (rc == ESTCA_OK) {
        rc = ledger_each_revoked(ledger, ca_name, add_entry, crl, why);
        if (rc == ESTCA_E_CRYPTO) /* from add_entry, which leaves only the error queue */
            rc = estca_fail_openssl(why, rc, "CRL entry");
    }
    long number = 0;
    if (rc == ESTCA_OK)
        rc = ledger_next_crl_number(ledger, ca_name, &number, why);
    if (rc == ESTCA_OK)
        rc = add_extensions(crl, ca_certificate, number, why);
    if (rc == ESTCA_OK &&
        (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca_key, certbuild_signing_digest(ca_key)) <= 0))
        rc = estca_fail_openssl(why, ESTCA_E_TOKEN, "signing the CRL on the token");
    ASN1_TIME_free(this_update);
    ASN1_TIME_free(next_update);
    if (rc != ESTCA_OK) {
        X509_CRL_free(crl);
        return rc;
    }
    *out = crl;
    return ESTCA_OK;
}
