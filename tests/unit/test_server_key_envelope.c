/* The encrypted server-generated key (RFC 7030 §4.4.1.2, §4.4.2) on a private SoftHSM2 token:
 * which key a CSR's AsymmetricDecryptKeyIdentifier names (only the presented certificate's
 * SKI counts; anything else, or a symmetric DecryptKeyIdentifier, is refused), and the CMS
 * built for it, opened again as a client would: EnvelopedData decrypted with the recipient's
 * key, SignedData verified against the CA, the key package holding exactly the PKCS#8 key. */
#include "certbuild.h"
#include "config.h"
#include "core.h"
#include "der_roundtrip.h"
#include "keygen.h"
#include "softhsm_fixture.h"

#include <criterion/criterion.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#define CA_URI FIXTURE_TOKEN_URI ";object=ca"
#define ASYMMETRIC_KEY_ID "1.2.840.113549.1.9.16.2.54"
#define SYMMETRIC_KEY_ID "2.16.840.1.101.2.1.5.66"
#define KEY_PACKAGE "2.16.840.1.101.2.1.2.78.5"

static struct softhsm_fixture f;
static struct estca_config *config;
static struct ca_core *core;
static EVP_PKEY *ca_key;
static X509 *ca_cert;

/* ---- a root CA on the token and a core around it ---- */

static X509 *issue(enum certbuild_profile profile, const char *cn, EVP_PKEY *key)
{
    X509_NAME *subject = X509_NAME_new();
    cr_assert(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                         -1, -1, 0));
    unsigned char serial[16];
    cr_assert_eq(hsm_random(f.token, serial, sizeof serial, NULL), ESTCA_OK);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    time_t now = time(NULL);
    struct certbuild_params params = {
        .profile = profile,
        .subject = subject,
        .subject_public_key = public_key,
        .issuer = profile == CERTBUILD_ROOT_CA ? NULL : ca_cert,
        .issuer_key = ca_key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = now - 60,
        .not_after = now + 86400,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(certbuild_sign(&params, &cert, &why), ESTCA_OK, "%s", why.text);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    return der_roundtrip(cert);
}

static void path_in(char *out, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", f.dir, name);
    cr_assert(n > 0 && n < PATH_MAX);
}

/* text, or cert as PEM, into the fixture's directory. */
static void write_file(const char *name, const char *text, X509 *cert)
{
    char path[PATH_MAX];
    path_in(path, name);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    cr_assert(cert != NULL ? PEM_write_X509(file, cert) == 1 : fputs(text, file) >= 0);
    fclose(file);
}

static void setup_with(const char *ca_algorithm)
{
    softhsm_fixture_setup(&f);
    estca_reason why = {{0}};
    cr_assert_eq(hsm_keygen_ca(f.token, CA_URI, ca_algorithm, &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(hsm_key_find(f.token, CA_URI, &ca_key, &why), ESTCA_OK, "%s", why.text);
    ca_cert = issue(CERTBUILD_ROOT_CA, "Envelope Test CA", ca_key);
    write_file("ca.pem", NULL, ca_cert);
    write_file(
        "estca.conf",
        "[token]\nuri = " FIXTURE_TOKEN_URI "\npin_file = user.pin\n"
        "[server]\ndefault_label = default\ntls_certificate = tls.pem\ntls_key = " FIXTURE_TOKEN_URI
        ";object=tls\n"
        "[ledger]\npath = ledger.sqlite\n"
        "[ca:root]\nkey = " CA_URI "\ncertificate = ca.pem\n"
        "[label:default]\nca = root\nserverkeygen = yes\n"
        "[label:closed]\nca = root\n",
        NULL);
    char path[PATH_MAX];
    path_in(path, "estca.conf");
    cr_assert_eq(config_load(path, &config, &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(core_open(config, f.token, &core, &why), ESTCA_OK, "%s", why.text);
}

static void setup_ec(void)
{
    setup_with("ec:P-256");
}

static void setup_rsa(void)
{
    setup_with("rsa:2048");
}

static void teardown(void)
{
    core_free(core);
    config_free(config);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    core = NULL;
    config = NULL;
    ca_cert = NULL;
    ca_key = NULL;
    softhsm_fixture_teardown(&f);
}

TestSuite(recipient, .init = setup_ec, .fini = teardown, .timeout = 120);
TestSuite(envelope, .init = setup_ec, .fini = teardown, .timeout = 120);
TestSuite(envelope_rsa_ca, .init = setup_rsa, .fini = teardown, .timeout = 120);

/* ---- requests ---- */

/* A CSR for a throw-away key; attribute oid (NULL: none) with value of type type. */
static X509_REQ *csr_with(const char *oid, int type, const unsigned char *value, int len)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    cr_assert(key != NULL && req != NULL && X509_REQ_set_pubkey(req, key));
    cr_assert(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                         (const unsigned char *)"device", -1, -1, 0));
    if (oid != NULL) {
        ASN1_OBJECT *object = OBJ_txt2obj(oid, 1);
        cr_assert(X509_REQ_add1_attr_by_OBJ(req, object, type, value, len));
        ASN1_OBJECT_free(object);
    }
    cr_assert(X509_REQ_sign(req, key, EVP_sha256()));
    EVP_PKEY_free(key);
    return req;
}

static X509_REQ *csr_naming(X509 *cert)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
    cr_assert_not_null(ski);
    return csr_with(ASYMMETRIC_KEY_ID, V_ASN1_OCTET_STRING, ASN1_STRING_get0_data(ski),
                    ASN1_STRING_length(ski));
}

/* A client's certificate from the CA, for key (the CA puts an SKI in every certificate). */
static X509 *client_certificate(EVP_PKEY *key)
{
    return issue(CERTBUILD_END_ENTITY, "client", key);
}

static void expect_refused(X509_REQ *csr, X509 *presented, int status, const char *reason)
{
    X509 *recipient = (X509 *)1;
    estca_reason why = {{0}};
    cr_expect_eq(
        core_server_key_recipient(core_find_label(core, NULL), csr, presented, &recipient, &why),
        status, "%s", why.text);
    cr_expect_null(recipient);
    cr_expect_not_null(strstr(why.text, reason), "reason: %s", why.text);
}

Test(recipient, none_asked_without_the_attribute)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key);
    X509_REQ *csr = csr_with(NULL, 0, NULL, 0);
    X509 *recipient = (X509 *)1;
    estca_reason why = {{0}};
    cr_expect_eq(
        core_server_key_recipient(core_find_label(core, NULL), csr, cert, &recipient, &why),
        ESTCA_OK, "%s", why.text);
    cr_expect_null(recipient);
    X509_REQ_free(csr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

Test(recipient, the_presented_certificate_when_its_ski_is_named)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key);
    X509_REQ *csr = csr_naming(cert);
    X509 *recipient = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(
        core_server_key_recipient(core_find_label(core, NULL), csr, cert, &recipient, &why),
        ESTCA_OK, "%s", why.text);
    cr_expect_eq(recipient, cert);
    X509_REQ_free(csr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

Test(recipient, a_label_without_serverkeygen_refuses_first)
{
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key), *other = client_certificate(other_key);
    X509_REQ *csr = csr_naming(other);
    X509 *recipient = (X509 *)1;
    estca_reason why = {{0}};
    cr_expect_eq(
        core_server_key_recipient(core_find_label(core, "closed"), csr, cert, &recipient, &why),
        ESTCA_E_FORBIDDEN, "%s", why.text);
    cr_expect_null(recipient);
    X509_REQ_free(csr);
    X509_free(cert);
    X509_free(other);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
}

Test(recipient, another_key_is_refused)
{
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key), *other = client_certificate(other_key);
    X509_REQ *csr = csr_naming(other);
    expect_refused(csr, cert, ESTCA_E_INVALID, "names no key");
    expect_refused(csr, NULL, ESTCA_E_INVALID, "TLS client certificate");
    X509_REQ_free(csr);
    X509_free(cert);
    X509_free(other);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other_key);
}

Test(recipient, symmetric_and_malformed_identifiers_are_refused)
{
    static const unsigned char id[] = {1, 2, 3, 4, 5, 6, 7, 8};
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key);
    X509_REQ *csr = csr_with(SYMMETRIC_KEY_ID, V_ASN1_OCTET_STRING, id, sizeof id);
    expect_refused(csr, cert, ESTCA_E_INVALID, "symmetric");
    X509_REQ_free(csr);
    csr = csr_with(ASYMMETRIC_KEY_ID, V_ASN1_UTF8STRING, id, sizeof id);
    expect_refused(csr, cert, ESTCA_E_INVALID, "OCTET STRING");
    X509_REQ_free(csr);
    csr = csr_with(ASYMMETRIC_KEY_ID, V_ASN1_OCTET_STRING, id, 0);
    expect_refused(csr, cert, ESTCA_E_INVALID, "OCTET STRING");
    X509_REQ_free(csr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* A CSR naming cert's SKI in two attributes: OpenSSL refuses to build one, so the second is
 * written under the neighbouring OID (…2.55) and renamed in the DER. */
static X509_REQ *csr_naming_twice(X509 *cert)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
    X509_REQ *one = csr_with("1.2.840.113549.1.9.16.2.55", V_ASN1_OCTET_STRING,
                             ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski));
    ASN1_OBJECT *object = OBJ_txt2obj(ASYMMETRIC_KEY_ID, 1);
    cr_assert(X509_REQ_add1_attr_by_OBJ(one, object, V_ASN1_OCTET_STRING,
                                        ASN1_STRING_get0_data(ski), ASN1_STRING_length(ski)));
    ASN1_OBJECT_free(object);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(one, &der);
    X509_REQ_free(one);
    static const unsigned char neighbour[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                              0x0d, 0x01, 0x09, 0x10, 0x02, 0x37};
    unsigned char *at = memmem(der, (size_t)len, neighbour, sizeof neighbour);
    cr_assert_not_null(at);
    at[sizeof neighbour - 1] = 0x36;
    const unsigned char *p = der;
    X509_REQ *twice = d2i_X509_REQ(NULL, &p, len);
    OPENSSL_free(der);
    cr_assert_not_null(twice);
    return twice;
}

Test(recipient, an_identifier_given_twice_is_refused)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key);
    X509_REQ *csr = csr_naming_twice(cert);
    expect_refused(csr, cert, ESTCA_E_INVALID, "more than once");
    X509_REQ_free(csr);
    /* One attribute with two values. */
    csr = csr_naming(cert);
    X509_ATTRIBUTE *attribute = X509_REQ_get_attr(csr, 0);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
    cr_assert(X509_ATTRIBUTE_set1_data(attribute, V_ASN1_OCTET_STRING, ASN1_STRING_get0_data(ski),
                                       ASN1_STRING_length(ski)));
    cr_assert_eq(X509_ATTRIBUTE_count(attribute), 2);
    expect_refused(csr, cert, ESTCA_E_INVALID, "exactly one");
    X509_REQ_free(csr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* A self-signed Ed25519 certificate with an SKI (certbuild makes RSA and EC only). */
static X509 *ed25519_certificate(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    cr_assert(cert != NULL && X509_set_version(cert, X509_VERSION_3) &&
              X509_set_pubkey(cert, key) && ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) &&
              X509_gmtime_adj(X509_getm_notBefore(cert), 0) &&
              X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ski = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
    cr_assert(ski != NULL && X509_add_ext(cert, ski, -1));
    X509_EXTENSION_free(ski);
    cr_assert(X509_sign(cert, key, NULL) > 0);
    return der_roundtrip(cert);
}

Test(recipient, a_key_that_cannot_receive_is_refused)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(key);
    X509 *cert = ed25519_certificate(key);
    X509_REQ *csr = csr_naming(cert);
    expect_refused(csr, cert, ESTCA_E_POLICY, "RSA or EC");
    X509_REQ_free(csr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- the CMS, opened as the client opens it ---- */

static unsigned char *pkcs8_of(EVP_PKEY *key, int *len)
{
    unsigned char *der = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    cr_assert_not_null(p8);
    *len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    cr_assert_gt(*len, 0);
    return der;
}

static BIO *bio_of(CMS_ContentInfo *cms, X509 *recipient, EVP_PKEY *recipient_key)
{
    BIO *out = BIO_new(BIO_s_mem());
    cr_assert(CMS_decrypt(cms, recipient_key, recipient, NULL, out, CMS_BINARY) == 1,
              "the recipient cannot decrypt");
    return out;
}

/* Enveloped for recipient: decrypts, verifies with the CA as the only trust anchor, and holds
 * the package SEQUENCE { pkcs8 }. */
static void expect_opens(const unsigned char *der, size_t len, X509 *recipient,
                         EVP_PKEY *recipient_key, const unsigned char *pkcs8, int pkcs8_len)
{
    const unsigned char *p = der;
    CMS_ContentInfo *enveloped = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    cr_assert_not_null(enveloped);
    cr_expect_eq(OBJ_obj2nid(CMS_get0_type(enveloped)), NID_pkcs7_enveloped);
    cr_expect_eq(OBJ_obj2nid(CMS_get0_eContentType(enveloped)), NID_pkcs7_signed);
    BIO *signed_bio = bio_of(enveloped, recipient, recipient_key);
    CMS_ContentInfo *signed_data = d2i_CMS_bio(signed_bio, NULL);
    cr_assert_not_null(signed_data);
    char type[64];
    OBJ_obj2txt(type, sizeof type, CMS_get0_eContentType(signed_data), 1);
    cr_expect_str_eq(type, KEY_PACKAGE);
    X509_STORE *store = X509_STORE_new();
    cr_assert(X509_STORE_add_cert(store, ca_cert));
    /* The CA certificate has no digitalSignature: purpose any, the chain still counts. */
    cr_assert(X509_STORE_set_purpose(store, X509_PURPOSE_ANY));
    BIO *package = BIO_new(BIO_s_mem());
    cr_expect_eq(CMS_verify(signed_data, NULL, store, NULL, package, CMS_BINARY), 1,
                 "the SignedData does not verify");
    STACK_OF(X509) *signers = CMS_get0_signers(signed_data);
    cr_expect(signers != NULL && sk_X509_num(signers) == 1 &&
              X509_cmp(sk_X509_value(signers, 0), ca_cert) == 0);
    sk_X509_free(signers);
    char *data = NULL;
    long content_len = BIO_get_mem_data(package, &data);
    const unsigned char *content = (const unsigned char *)data, *q = content;
    long inner_len = 0;
    int tag = 0, class = 0;
    cr_assert_eq(ASN1_get_object(&q, &inner_len, &tag, &class, content_len), V_ASN1_CONSTRUCTED);
    cr_expect_eq(tag, V_ASN1_SEQUENCE);
    cr_expect_eq(inner_len, pkcs8_len);
    cr_expect_eq(q + inner_len, content + content_len);
    cr_expect_eq(memcmp(q, pkcs8, (size_t)pkcs8_len), 0);
    BIO_free(package);
    X509_STORE_free(store);
    CMS_ContentInfo_free(signed_data);
    BIO_free(signed_bio);
    CMS_ContentInfo_free(enveloped);
}

/* Envelopes a fresh key for recipient_key's certificate (and frees recipient_key). */
static void round_trip(EVP_PKEY *recipient_key, int want_recipient_type)
{
    cr_assert_not_null(recipient_key);
    X509 *recipient = client_certificate(recipient_key);
    EVP_PKEY *generated = EVP_EC_gen("P-384");
    int pkcs8_len = 0;
    unsigned char *pkcs8 = pkcs8_of(generated, &pkcs8_len);
    unsigned char *der = NULL;
    size_t der_len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(core_envelope_server_key(core_find_label(core, NULL), pkcs8, (size_t)pkcs8_len,
                                          recipient, &der, &der_len, &why),
                 ESTCA_OK, "%s", why.text);
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
    cr_assert_not_null(cms);
    STACK_OF(CMS_RecipientInfo) *infos = CMS_get0_RecipientInfos(cms);
    cr_expect_eq(sk_CMS_RecipientInfo_num(infos), 1);
    cr_expect_eq(CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(infos, 0)), want_recipient_type);
    CMS_ContentInfo_free(cms);
    /* The clear key appears nowhere in the message. */
    cr_expect_null(memmem(der, der_len, pkcs8 + pkcs8_len - 16, 16));
    expect_opens(der, der_len, recipient, recipient_key, pkcs8, pkcs8_len);
    /* Another key cannot open it. */
    EVP_PKEY *stranger = EVP_EC_gen("P-256");
    X509 *stranger_cert = client_certificate(stranger);
    p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
    BIO *out = BIO_new(BIO_s_mem());
    cr_expect_neq(CMS_decrypt(cms, stranger, stranger_cert, NULL, out, CMS_BINARY), 1);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    X509_free(stranger_cert);
    EVP_PKEY_free(stranger);
    OPENSSL_free(der);
    OPENSSL_clear_free(pkcs8, (size_t)pkcs8_len);
    EVP_PKEY_free(generated);
    X509_free(recipient);
    EVP_PKEY_free(recipient_key);
}

Test(envelope, ec_recipient_by_key_agreement)
{
    round_trip(EVP_EC_gen("P-256"), CMS_RECIPINFO_AGREE);
}

Test(envelope, rsa_recipient_by_key_transport)
{
    round_trip(EVP_RSA_gen(2048), CMS_RECIPINFO_TRANS);
}

Test(envelope_rsa_ca, signed_by_an_rsa_ca_on_the_token)
{
    round_trip(EVP_EC_gen("P-256"), CMS_RECIPINFO_AGREE);
}

Test(envelope, bad_arguments)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = client_certificate(key);
    static const unsigned char pkcs8[] = {0x30, 0x00};
    unsigned char *der = (unsigned char *)1;
    size_t der_len = 1;
    estca_reason why = {{0}};
    const struct core_label *label = core_find_label(core, NULL);
    cr_expect_eq(core_envelope_server_key(label, pkcs8, sizeof pkcs8, NULL, &der, &der_len, &why),
                 ESTCA_E_INVALID);
    cr_expect_null(der);
    cr_expect_eq(der_len, 0);
    cr_expect_eq(core_envelope_server_key(NULL, pkcs8, sizeof pkcs8, cert, &der, &der_len, &why),
                 ESTCA_E_INVALID);
    cr_expect_eq(core_envelope_server_key(label, pkcs8, 0, cert, &der, &der_len, &why),
                 ESTCA_E_INVALID);
    X509_free(cert);
    EVP_PKEY_free(key);
}
