/* certbuild_sign with software keys: root -> issuing -> leaf chains that verify, and the
 * extensions, serial and validity each profile promises. */
#include "certbuild.h"
#include "der_roundtrip.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#define DAY 86400

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *key = EVP_EC_gen(curve);
    cr_assert_not_null(key);
    return key;
}

static X509_NAME *name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    cr_assert_not_null(n);
    if (cn != NULL)
        cr_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                             -1, 0));
    return n;
}

static GENERAL_NAMES *dns_san(const char *dns)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    cr_assert(names && gn && ia5 && ASN1_STRING_set(ia5, dns, -1));
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    cr_assert(sk_GENERAL_NAME_push(names, gn));
    return names;
}

static const unsigned char default_serial[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                                 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

/* Builds one certificate; subject is a CN, or NULL for an empty subject. */
static X509 *build(enum certbuild_profile profile, const char *cn, EVP_PKEY *key, X509 *issuer,
                   EVP_PKEY *issuer_key, int days, const GENERAL_NAMES *san)
{
    X509_NAME *subject = name(cn);
    time_t now = time(NULL);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = profile,
        .subject = subject,
        .subject_public_key = public_key,
        .san = san,
        .issuer = issuer,
        .issuer_key = issuer_key,
        .serial = default_serial,
        .serial_len = sizeof default_serial,
        .not_before = now - 60,
        .not_after = now + (time_t)days * DAY,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    int rc = certbuild_sign(&params, &cert, &why);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    cr_assert_eq(rc, ESTCA_OK, "certbuild_sign: %s", why.text);
    cr_assert_not_null(cert);
    return der_roundtrip(cert);
}

struct chain {
    EVP_PKEY *root_key, *issuing_key, *leaf_key;
    X509 *root, *issuing, *leaf;
    GENERAL_NAMES *san;
};

static void make_chain(struct chain *c, EVP_PKEY *leaf_key, int issuing_days)
{
    c->root_key = ec_key("P-384");
    c->issuing_key = ec_key("P-256");
    c->leaf_key = leaf_key;
    c->san = dns_san("device.example");
    c->root = build(CERTBUILD_ROOT_CA, "Root", c->root_key, NULL, c->root_key, 3650, NULL);
    c->issuing = build(CERTBUILD_ISSUING_CA, "Issuing", c->issuing_key, c->root, c->root_key,
                       issuing_days, NULL);
    c->leaf =
        build(CERTBUILD_END_ENTITY, "device", c->leaf_key, c->issuing, c->issuing_key, 365, c->san);
}

static void free_chain(struct chain *c)
{
    X509_free(c->leaf);
    X509_free(c->issuing);
    X509_free(c->root);
    EVP_PKEY_free(c->leaf_key);
    EVP_PKEY_free(c->issuing_key);
    EVP_PKEY_free(c->root_key);
    GENERAL_NAMES_free(c->san);
}

static int critical(X509 *cert, int nid)
{
    int index = X509_get_ext_by_NID(cert, nid, -1);
    cr_assert_geq(index, 0, "extension %s missing", OBJ_nid2sn(nid));
    return X509_EXTENSION_get_critical(X509_get_ext(cert, index));
}

static void expect_ski_of_own_key(X509 *cert)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
    cr_assert_not_null(ski);
    unsigned char digest[20];
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(cert);
    cr_assert(EVP_Digest(bits->data, (size_t)bits->length, digest, NULL, EVP_sha1(), NULL));
    cr_expect_eq(ASN1_STRING_length(ski), 20);
    cr_expect_arr_eq(ASN1_STRING_get0_data(ski), digest, 20);
}

static void expect_aki_is(X509 *cert, X509 *issuer)
{
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
    cr_assert_not_null(aki);
    cr_expect_eq(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(issuer)), 0);
}

Test(certbuild, chain_verifies)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 1000);
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    cr_assert(store && ctx && untrusted && X509_STORE_add_cert(store, c.root) &&
              sk_X509_push(untrusted, c.issuing));
    cr_assert(X509_STORE_CTX_init(ctx, store, c.leaf, untrusted));
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    cr_expect_eq(X509_verify_cert(ctx), 1, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    /* P-384 issuer signs with SHA-384, P-256 with SHA-256. */
    cr_expect_eq(X509_get_signature_nid(c.issuing), NID_ecdsa_with_SHA384);
    cr_expect_eq(X509_get_signature_nid(c.leaf), NID_ecdsa_with_SHA256);
    cr_expect_eq(X509_get_version(c.leaf), X509_VERSION_3);
    free_chain(&c);
}

Test(certbuild, ca_extensions)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 1000);
    cr_expect(X509_get_extension_flags(c.root) & EXFLAG_CA);
    cr_expect(critical(c.root, NID_basic_constraints));
    cr_expect_eq(X509_get_pathlen(c.root), -1);
    cr_expect_eq(X509_get_key_usage(c.root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    cr_expect(critical(c.root, NID_key_usage));
    cr_expect_eq(X509_get_ext_by_NID(c.root, NID_ext_key_usage, -1), -1);
    cr_expect_null(X509_get0_authority_key_id(c.root));
    expect_ski_of_own_key(c.root);
    cr_expect_eq(X509_self_signed(c.root, 1), 1);

    cr_expect(X509_get_extension_flags(c.issuing) & EXFLAG_CA);
    cr_expect_eq(X509_get_pathlen(c.issuing), 0);
    cr_expect_eq(X509_get_key_usage(c.issuing), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    expect_ski_of_own_key(c.issuing);
    expect_aki_is(c.issuing, c.root);
    free_chain(&c);
}

Test(certbuild, end_entity_extensions)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 1000);
    cr_expect_not(X509_get_extension_flags(c.leaf) & EXFLAG_CA);
    cr_expect_eq(X509_check_ca(c.leaf), 0);
    cr_expect(critical(c.leaf, NID_basic_constraints));
    cr_expect_eq(X509_get_key_usage(c.leaf), KU_DIGITAL_SIGNATURE);
    cr_expect_eq(X509_get_extended_key_usage(c.leaf), XKU_SSL_CLIENT | XKU_SSL_SERVER);
    expect_ski_of_own_key(c.leaf);
    expect_aki_is(c.leaf, c.issuing);
    cr_expect_not(critical(c.leaf, NID_subject_alt_name)); /* the subject is not empty */
    GENERAL_NAMES *san = X509_get_ext_d2i(c.leaf, NID_subject_alt_name, NULL, NULL);
    cr_assert_not_null(san);
    cr_assert_eq(sk_GENERAL_NAME_num(san), 1);
    cr_expect_eq(GENERAL_NAME_cmp(sk_GENERAL_NAME_value(san, 0), sk_GENERAL_NAME_value(c.san, 0)),
                 0);
    GENERAL_NAMES_free(san);
    cr_expect_eq(EVP_PKEY_eq(X509_get0_pubkey(c.leaf), c.leaf_key), 1);
    free_chain(&c);
}

Test(certbuild, rsa_end_entity_has_key_encipherment)
{
    struct chain c;
    make_chain(&c, EVP_RSA_gen(2048), 1000);
    cr_expect_eq(X509_get_key_usage(c.leaf), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    free_chain(&c);
}

Test(certbuild, tls_server_profile)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 1000);
    EVP_PKEY *key = ec_key("P-256");
    X509 *tls = build(CERTBUILD_TLS_SERVER, "localhost", key, c.issuing, c.issuing_key, 30, c.san);
    cr_expect_eq(X509_get_extended_key_usage(tls), XKU_SSL_SERVER);
    cr_expect_eq(X509_get_key_usage(tls), KU_DIGITAL_SIGNATURE);
    cr_expect_eq(X509_check_ca(tls), 0);
    X509_free(tls);
    EVP_PKEY_free(key);
    free_chain(&c);
}

Test(certbuild, empty_subject_makes_san_critical)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 1000);
    EVP_PKEY *key = ec_key("P-256");
    X509 *cert = build(CERTBUILD_END_ENTITY, NULL, key, c.issuing, c.issuing_key, 30, c.san);
    cr_expect_eq(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
    cr_expect(critical(cert, NID_subject_alt_name));
    X509_free(cert);
    EVP_PKEY_free(key);
    free_chain(&c);
}

Test(certbuild, not_after_clipped_to_issuer)
{
    struct chain c;
    make_chain(&c, ec_key("P-256"), 10); /* issuing CA lives 10 days, the leaf asks 365 */
    cr_expect_eq(ASN1_TIME_compare(X509_get0_notAfter(c.leaf), X509_get0_notAfter(c.issuing)), 0);
    int days = 0, seconds = 0;
    cr_assert(
        ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(c.leaf), X509_get0_notAfter(c.leaf)));
    cr_expect_eq(days, 10);
    free_chain(&c);
}

static X509 *with_serial(const unsigned char *serial, size_t len, int expect_rc)
{
    EVP_PKEY *key = ec_key("P-256");
    X509_NAME *subject = name("serial");
    time_t now = time(NULL);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = CERTBUILD_ROOT_CA,
        .subject = subject,
        .subject_public_key = public_key,
        .issuer_key = key,
        .serial = serial,
        .serial_len = len,
        .not_before = now,
        .not_after = now + DAY,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(certbuild_sign(&params, &cert, &why), expect_rc, "%s", why.text);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    return cert;
}

Test(certbuild, serial_is_positive_and_at_most_20_octets)
{
    unsigned char top_bit[16];
    memset(top_bit, 0xff, sizeof top_bit);
    X509 *cert = with_serial(top_bit, sizeof top_bit, ESTCA_OK);
    cr_assert_not_null(cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    cr_expect_not(BN_is_negative(bn));
    cr_expect_eq(BN_num_bits(bn), 128); /* kept whole: a leading zero octet in DER */
    BN_free(bn);
    X509_free(cert);

    unsigned char longest[20];
    memset(longest, 0xff, sizeof longest);
    cert = with_serial(longest, sizeof longest, ESTCA_OK);
    cr_assert_not_null(cert);
    unsigned char *der = NULL;
    int der_len = i2d_ASN1_INTEGER((ASN1_INTEGER *)X509_get0_serialNumber(cert), &der);
    cr_expect_eq(der_len, 2 + 20, "the INTEGER's content must fit in 20 octets");
    OPENSSL_free(der);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    cr_expect_not(BN_is_negative(bn));
    BN_free(bn);
    X509_free(cert);
}

Test(certbuild, zero_serial_refused)
{
    unsigned char zero[16] = {0};
    cr_expect_null(with_serial(zero, sizeof zero, ESTCA_E_INVALID));
}

Test(certbuild, non_root_needs_issuer)
{
    EVP_PKEY *key = ec_key("P-256");
    X509_NAME *subject = name("x");
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = CERTBUILD_END_ENTITY,
        .subject = subject,
        .subject_public_key = public_key,
        .issuer_key = key,
        .serial = default_serial,
        .serial_len = sizeof default_serial,
        .not_before = 1000,
        .not_after = 2000,
    };
    X509 *cert = NULL;
    cr_expect_eq(certbuild_sign(&params, &cert, NULL), ESTCA_E_INVALID);
    X509_PUBKEY_free(public_key);
    cr_expect_null(cert);
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
}
