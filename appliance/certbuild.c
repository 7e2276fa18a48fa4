/* Certificates from structures: every extension is built as its ASN.1 type and added with
 * X509_add1_ext_i2d, never parsed from a config string (which costs more than signing). */
#include "certbuild.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>

#define MAX_SERIAL_OCTETS 20 /* RFC 5280 §4.1.2.2 */

static bool is_ca_profile(enum certbuild_profile profile)
{
    return profile == CERTBUILD_ROOT_CA || profile == CERTBUILD_ISSUING_CA;
}

static int check_params(const struct certbuild_params *p, estca_reason *why)
{
    if (p->subject == NULL || p->subject_public_key == NULL || p->issuer_key == NULL)
        return estca_fail(why, ESTCA_E_INVALID,
                          "certbuild: subject, subject_public_key and issuer_key are required");
    if (p->serial == NULL || p->serial_len == 0 || p->serial_len > MAX_SERIAL_OCTETS)
        return estca_fail(why, ESTCA_E_INVALID, "certbuild: serial must be 1..%d octets",
                          MAX_SERIAL_OCTETS);
    if (p->profile == CERTBUILD_ROOT_CA && p->issuer != NULL)
        return estca_fail(why, ESTCA_E_INVALID, "certbuild: a root CA is self-signed");
    if (p->profile != CERTBUILD_ROOT_CA && p->issuer == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "certbuild: this profile needs an issuer");
    if (p->not_after <= p->not_before)
        return estca_fail(why, ESTCA_E_INVALID, "certbuild: notAfter is not after notBefore");
    return ESTCA_OK;
}

/* ---- name, serial, validity, key ---- */

/* The serial as a positive, non-zero INTEGER: read unsigned (which amounts to a leading zero
 * octet in DER when the top bit is set), with the top bit cleared when that zero would make
 * it longer than RFC 5280 allows. */
static int set_serial(X509 *cert, const unsigned char *bytes, size_t len, estca_reason *why)
{
    BIGNUM *bn = BN_bin2bn(bytes, (int)len, NULL);
    if (bn == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: serial");
    if (len == MAX_SERIAL_OCTETS && BN_num_bits(bn) == 8 * MAX_SERIAL_OCTETS)
        BN_clear_bit(bn, 8 * MAX_SERIAL_OCTETS - 1);
    if (BN_is_zero(bn)) {
        BN_free(bn);
        return estca_fail(why, ESTCA_E_INVALID, "certbuild: serial is zero");
    }
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    int ok = serial != NULL && X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    return ok ? ESTCA_OK : estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: serial");
}

static int set_time(X509 *cert, time_t when, bool not_after, estca_reason *why)
{
    /* ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime after, as RFC 5280 asks. */
    ASN1_TIME *time = ASN1_TIME_set(NULL, when);
    int ok = time != NULL &&
             (not_after ? X509_set1_notAfter(cert, time) : X509_set1_notBefore(cert, time));
    ASN1_TIME_free(time);
    return ok ? ESTCA_OK : estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: validity");
}

static int set_validity(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    int rc = set_time(cert, p->not_before, false, why);
    if (rc != ESTCA_OK)
        return rc;
    const ASN1_TIME *issuer_end = p->issuer != NULL ? X509_get0_notAfter(p->issuer) : NULL;
    if (issuer_end == NULL || ASN1_TIME_cmp_time_t(issuer_end, p->not_after) >= 0)
        return set_time(cert, p->not_after, true, why);
    /* A certificate must not outlive its issuer: clip to the issuer's notAfter. */
    if (ASN1_TIME_cmp_time_t(issuer_end, p->not_before) <= 0)
        return estca_fail(why, ESTCA_E_POLICY,
                          "certbuild: the issuer certificate expires "
                          "before the new certificate would begin");
    if (!X509_set1_notAfter(cert, issuer_end))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: validity");
    return ESTCA_OK;
}

/* Copies the SubjectPublicKeyInfo as encoded. X509_set_pubkey would encode an EVP_PKEY and
 * decode it again through OpenSSL 3.0's decoder framework: measured with callgrind, that
 * round trip was 39% of an issuance. */
static int copy_public_key(X509 *cert, const X509_PUBKEY *from)
{
    ASN1_OBJECT *key_oid;
    const unsigned char *bits;
    int bits_len;
    X509_ALGOR *algorithm;
    if (!X509_PUBKEY_get0_param(&key_oid, &bits, &bits_len, &algorithm, from))
        return 0;
    const ASN1_OBJECT *oid;
    int parameter_type;
    const void *parameter;
    X509_ALGOR_get0(&oid, &parameter_type, &parameter, algorithm);
    ASN1_OBJECT *oid_copy = OBJ_dup(oid);
    void *parameter_copy = NULL;
    if (parameter_type == V_ASN1_OBJECT)
        parameter_copy = OBJ_dup(parameter);
    else if (parameter_type != V_ASN1_UNDEF && parameter_type != V_ASN1_NULL)
        parameter_copy = ASN1_STRING_dup(parameter);
    unsigned char *bits_copy = OPENSSL_memdup(bits, (size_t)bits_len);
    bool copied = oid_copy != NULL && bits_copy != NULL &&
                  (parameter == NULL || parameter_type == V_ASN1_NULL || parameter_copy != NULL);
    if (copied && X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), oid_copy, parameter_type,
                                         parameter_copy, bits_copy, bits_len))
        return 1;
    ASN1_OBJECT_free(oid_copy);
    if (parameter_type == V_ASN1_OBJECT)
        ASN1_OBJECT_free(parameter_copy);
    else
        ASN1_STRING_free(parameter_copy);
    OPENSSL_free(bits_copy);
    return 0;
}

static int set_fields(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    const X509_NAME *issuer_name =
        p->issuer != NULL ? X509_get_subject_name(p->issuer) : p->subject;
    if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_subject_name(cert, p->subject) ||
        !X509_set_issuer_name(cert, issuer_name) || !copy_public_key(cert, p->subject_public_key))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: certificate fields");
    int rc = set_serial(cert, p->serial, p->serial_len, why);
    if (rc == ESTCA_OK)
        rc = set_validity(cert, p, why);
    return rc;
}

/* ---- extensions ---- */

static int add_ext(X509 *cert, int nid, void *value, bool critical, estca_reason *why)
{
    if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: extension %s", OBJ_nid2sn(nid));
    return ESTCA_OK;
}

static int add_basic_constraints(X509 *cert, enum certbuild_profile profile, estca_reason *why)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (bc == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: basicConstraints");
    bc->ca = is_ca_profile(profile) ? 0xFF : 0;
    /* An issuing CA signs end entities only: pathLenConstraint 0. */
    if (profile == CERTBUILD_ISSUING_CA &&
        ((bc->pathlen = ASN1_INTEGER_new()) == NULL || !ASN1_INTEGER_set(bc->pathlen, 0))) {
        BASIC_CONSTRAINTS_free(bc);
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: basicConstraints");
    }
    int rc = add_ext(cert, NID_basic_constraints, bc, true, why);
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

/* Plain RSA only: an RSA-PSS key is restricted to signing and must not encipher. */
static bool is_rsa(const X509_PUBKEY *key)
{
    ASN1_OBJECT *oid = NULL;
    return X509_PUBKEY_get0_param(&oid, NULL, NULL, NULL, key) &&
           OBJ_obj2nid(oid) == NID_rsaEncryption;
}

/* Bit numbers of KeyUsage (RFC 5280 §4.2.1.3). */
enum {
    BIT_DIGITAL_SIGNATURE = 0,
    BIT_KEY_ENCIPHERMENT = 2,
    BIT_KEY_CERT_SIGN = 5,
    BIT_CRL_SIGN = 6
};

static int add_key_usage(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    ASN1_BIT_STRING *usage = ASN1_BIT_STRING_new();
    if (usage == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: keyUsage");
    int ok = 1;
    if (is_ca_profile(p->profile)) {
        ok = ASN1_BIT_STRING_set_bit(usage, BIT_KEY_CERT_SIGN, 1) &&
             ASN1_BIT_STRING_set_bit(usage, BIT_CRL_SIGN, 1);
    } else if (p->key_usage_bits != 0) {
        for (int bit = 0; ok && bit < 9; bit++) {
            if (p->key_usage_bits & (1u << bit))
                ok = ASN1_BIT_STRING_set_bit(usage, bit, 1);
        }
    } else {
        ok = ASN1_BIT_STRING_set_bit(usage, BIT_DIGITAL_SIGNATURE, 1);
        /* RSA key transport in TLS 1.2 and CMS needs it; EC keys never encipher. */
        if (ok && is_rsa(p->subject_public_key))
            ok = ASN1_BIT_STRING_set_bit(usage, BIT_KEY_ENCIPHERMENT, 1);
    }
    int rc = ok ? add_ext(cert, NID_key_usage, usage, true, why)
                : estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: keyUsage");
    ASN1_BIT_STRING_free(usage);
    return rc;
}

static int add_extended_key_usage(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    if (is_ca_profile(p->profile))
        return ESTCA_OK;
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (eku == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: extendedKeyUsage");
    /* OBJ_nid2obj returns static objects: the stack only borrows them. */
    int ok = 1;
    for (size_t i = 0; ok && i < p->n_eku; i++)
        ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(p->eku_nids[i])) > 0;
    if (ok && p->n_eku == 0)
        ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0;
    if (ok && p->n_eku == 0 && p->profile == CERTBUILD_END_ENTITY)
        ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0;
    int rc = ok ? add_ext(cert, NID_ext_key_usage, eku, false, why)
                : estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: extendedKeyUsage");
    sk_ASN1_OBJECT_free(eku);
    return rc;
}

static int add_subject_alt_name(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    if (p->san == NULL || sk_GENERAL_NAME_num(p->san) == 0)
        return ESTCA_OK;
    /* With an empty subject the SAN is the only name, and RFC 5280 §4.2.1.6 makes it
     * critical. */
    bool critical = X509_NAME_entry_count(p->subject) == 0;
    return add_ext(cert, NID_subject_alt_name, (void *)p->san, critical, why);
}

/* SHA-1 of the subjectPublicKey BIT STRING: method (1) of RFC 5280 §4.2.1.2. */
static ASN1_OCTET_STRING *key_identifier(X509 *cert)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!X509_pubkey_digest(cert, EVP_sha1(), digest, &len))
        return NULL;
    ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    if (id != NULL && !ASN1_OCTET_STRING_set(id, digest, (int)len)) {
        ASN1_OCTET_STRING_free(id);
        return NULL;
    }
    return id;
}

static int add_subject_key_id(X509 *cert, estca_reason *why)
{
    ASN1_OCTET_STRING *id = key_identifier(cert);
    if (id == NULL)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: subjectKeyIdentifier");
    int rc = add_ext(cert, NID_subject_key_identifier, id, false, why);
    ASN1_OCTET_STRING_free(id);
    return rc;
}

/* The issuer's own SKI when it has one (it must match what verifiers chain on), else computed
 * from its key the same way ours is. */
static ASN1_OCTET_STRING *issuer_key_identifier(X509 *issuer)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    return ski != NULL ? ASN1_OCTET_STRING_dup(ski) : key_identifier(issuer);
}

static int add_authority_key_id(X509 *cert, X509 *issuer, estca_reason *why)
{
    if (issuer == NULL)
        return ESTCA_OK; /* self-signed: the SKI says it all */
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (akid == NULL || (akid->keyid = issuer_key_identifier(issuer)) == NULL) {
        AUTHORITY_KEYID_free(akid);
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "certbuild: authorityKeyIdentifier");
    }
    int rc = add_ext(cert, NID_authority_key_identifier, akid, false, why);
    AUTHORITY_KEYID_free(akid);
    return rc;
}

static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_IA5STRING *text = ASN1_IA5STRING_new();
    if (name == NULL || text == NULL || !ASN1_STRING_set(text, url, -1)) {
        GENERAL_NAME_free(name);
        ASN1_IA5STRING_free(text);
        return NULL;
    }
    GENERAL_NAME_set0_value(name, GEN_URI, text);
    return name;
}

static int add_crl_distribution_point(X509 *cert, const char *url, estca_reason *why)
{
    if (url == NULL)
        return ESTCA_OK;
    CRL_DIST_POINTS *points = sk_DIST_POINT_new_null();
    DIST_POINT *point = DIST_POINT_new();
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *name = uri_name(url);
    int ok = points != NULL && point != NULL && names != NULL && name != NULL &&
             (point->distpoint = DIST_POINT_NAME_new()) != NULL &&
             sk_GENERAL_NAME_push(names, name) > 0;
    if (ok) {
        name = NULL;                /* names owns it */
        point->distpoint->type = 0; /* fullName */
        point->distpoint->name.fullname = names;
        names = NULL;
        ok = sk_DIST_POINT_push(points, point) > 0;
        if (ok)
            point = NULL;
    }
    int rc = ok ? add_ext(cert, NID_crl_distribution_points, points, false, why)
                : estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: cRLDistributionPoints");
    GENERAL_NAME_free(name);
    GENERAL_NAMES_free(names);
    DIST_POINT_free(point);
    CRL_DIST_POINTS_free(points);
    return rc;
}

static int add_ca_issuers(X509 *cert, const char *url, estca_reason *why)
{
    if (url == NULL)
        return ESTCA_OK;
    AUTHORITY_INFO_ACCESS *access = sk_ACCESS_DESCRIPTION_new_null();
    ACCESS_DESCRIPTION *description = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *location = uri_name(url);
    int ok = access != NULL && description != NULL && location != NULL;
    if (ok) {
        description->method = OBJ_nid2obj(NID_ad_ca_issuers);
        GENERAL_NAME_free(description->location);
        description->location = location;
        location = NULL;
        ok = sk_ACCESS_DESCRIPTION_push(access, description) > 0;
        if (ok)
            description = NULL;
    }
    int rc = ok ? add_ext(cert, NID_info_access, access, false, why)
                : estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: authorityInfoAccess");
    GENERAL_NAME_free(location);
    ACCESS_DESCRIPTION_free(description);
    AUTHORITY_INFO_ACCESS_free(access);
    return rc;
}

static int add_extensions(X509 *cert, const struct certbuild_params *p, estca_reason *why)
{
    int rc = add_basic_constraints(cert, p->profile, why);
    if (rc == ESTCA_OK)
        rc = add_key_usage(cert, p, why);
    if (rc == ESTCA_OK)
        rc = add_extended_key_usage(cert, p, why);
    if (rc == ESTCA_OK)
        rc = add_subject_alt_name(cert, p, why);
    if (rc == ESTCA_OK)
        rc = add_subject_key_id(cert, why);
    if (rc == ESTCA_OK)
        rc = add_authority_key_id(cert, p->issuer, why);
    if (rc == ESTCA_OK && !is_ca_profile(p->profile))
        rc = add_crl_distribution_point(cert, p->crl_url, why);
    if (rc == ESTCA_OK && !is_ca_profile(p->profile))
        rc = add_ca_issuers(cert, p->ca_issuers_url, why);
    return rc;
}

/* ---- signature ---- */

/* SHA-384 for P-384 keys (matching strength, CNSA), SHA-512 for larger curves, SHA-256
 * otherwise. EVP_PKEY_get_bits also works for libp11's legacy token keys. */
const EVP_MD *certbuild_signing_digest(EVP_PKEY *issuer_key)
{
    if (EVP_PKEY_get_base_id(issuer_key) != EVP_PKEY_EC)
        return EVP_sha256();
    int bits = EVP_PKEY_get_bits(issuer_key);
    if (bits > 384)
        return EVP_sha512();
    return bits > 256 ? EVP_sha384() : EVP_sha256();
}

/* X509_sign, not EVP_DigestSign with a context, because that is what works with libp11's
 * legacy RSA_METHOD / EC_KEY_METHOD keys under OpenSSL 3. Its failure is reported as
 * ESTCA_E_TOKEN: the only way it fails on a well-formed certificate is a key that cannot
 * sign, which in this appliance means the token. */
static int sign(X509 *cert, EVP_PKEY *issuer_key, estca_reason *why)
{
    if (X509_sign(cert, issuer_key, certbuild_signing_digest(issuer_key)) <= 0)
        return estca_fail_openssl(why, ESTCA_E_TOKEN, "certbuild: signing failed");
    return ESTCA_OK;
}

int certbuild_sign(const struct certbuild_params *params, X509 **out, estca_reason *why)
{
    *out = NULL;
    int rc = check_params(params, why);
    if (rc != ESTCA_OK)
        return rc;
    X509 *cert = X509_new();
    if (cert == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "certbuild: X509_new");
    rc = set_fields(cert, params, why);
    if (rc == ESTCA_OK)
        rc = add_extensions(cert, params, why);
    if (rc == ESTCA_OK)
        rc = sign(cert, params->issuer_key, why);
    if (rc != ESTCA_OK) {
        X509_free(cert);
        return rc;
    }
    *out = cert;
    return ESTCA_OK;
}
