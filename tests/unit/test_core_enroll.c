/* The CA core on a private SoftHSM2 token: CA keys generated on the token, a root and an
 * issuing certificate signed through it, a configuration file, core_open, and enrollments
 * that must chain, carry the request's key and names, and be in the ledger. */
#include "certbuild.h"
#include "config.h"
#include "core.h"
#include "der_roundtrip.h"
#include "credentials.h"
#include "keygen.h"
#include "ledger.h"
#include "softhsm_fixture.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_URI FIXTURE_TOKEN_URI ";object=root"
#define ISSUING_URI FIXTURE_TOKEN_URI ";object=issuing"

static struct softhsm_fixture f;
static struct estca_config *config;
static struct ca_core *core;
static X509 *root_cert, *issuing_cert;

/* ---- the CA hierarchy on the token ---- */

static void path_in(char *out, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", f.dir, name);
    cr_assert(n > 0 && n < PATH_MAX);
}

static EVP_PKEY *token_key(const char *uri, const char *algorithm)
{
    estca_reason why = {{0}};
    cr_assert_eq(hsm_keygen_ca(f.token, uri, algorithm, &why), ESTCA_OK, "%s", why.text);
    EVP_PKEY *key = NULL;
    cr_assert_eq(hsm_key_find(f.token, uri, &key, &why), ESTCA_OK, "%s", why.text);
    return key;
}

static X509 *sign_ca(enum certbuild_profile profile, const char *cn, EVP_PKEY *key, X509 *issuer,
                     EVP_PKEY *issuer_key)
{
    X509_NAME *subject = X509_NAME_new();
    cr_assert(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                         -1, -1, 0));
    unsigned char serial[16];
    cr_assert_eq(hsm_random(f.token, serial, sizeof serial, NULL), ESTCA_OK);
    time_t now = time(NULL);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = profile,
        .subject = subject,
        .subject_public_key = public_key,
        .issuer = issuer,
        .issuer_key = issuer_key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = now - 3600,
        .not_after = now + 3650L * 86400,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(certbuild_sign(&params, &cert, &why), ESTCA_OK, "%s", why.text);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    return der_roundtrip(cert);
}

static void write_pem(const char *name, X509 *first, X509 *second)
{
    char path[PATH_MAX];
    path_in(path, name);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    cr_assert(PEM_write_X509(file, first));
    if (second != NULL)
        cr_assert(PEM_write_X509(file, second));
    fclose(file);
}

static void write_text(const char *name, const char *text)
{
    char path[PATH_MAX];
    path_in(path, name);
    FILE *file = fopen(path, "w");
    cr_assert_not_null(file);
    fputs(text, file);
    fclose(file);
}

static void write_users(void)
{
    char path[PATH_MAX], hash[128];
    path_in(path, "users");
    estca_reason why = {{0}};
    cr_assert_eq(credentials_hash("alice's password", hash, sizeof hash, &why), ESTCA_OK);
    cr_assert_eq(credentials_file_set(path, "alice", hash, &why), ESTCA_OK, "%s", why.text);
}

static const char config_text[] = "[token]\nuri = " FIXTURE_TOKEN_URI "\npin_file = user.pin\n"
                                  "[server]\ntls_certificate = tls.pem\ndefault_label = default\n"
                                  "tls_key = " FIXTURE_TOKEN_URI ";object=tls\n"
                                  "[ledger]\npath = ledger.sqlite\n"
                                  "[auth]\nusers_file = users\n"
                                  "[ca:issuing]\nkey = " ISSUING_URI "\n"
                                  "certificate = issuing.pem\nchain = chain.pem\n"
                                  "crl_url = http://crl.example/issuing.crl\n"
                                  "ca_issuers_url = http://crl.example/issuing.cer\n"
                                  "[label:default]\nca = issuing\nvalidity_days = 30\n"
                                  "csr_ca_request = ignore\n"
                                  "[label:strict]\nca = issuing\n"
                                  "key_usage = digitalSignature, nonRepudiation\n"
                                  "extended_key_usage = emailProtection\n"
                                  "[label:restricted]\nca = issuing\ncsr_ca_request = ignore\n"
                                  "allowed_dns = *.dev.example, gw.example\n"
                                  "subject_override = /O=Example Devices/OU=Fleet\n";

/* Root and issuing CA with the given key types; the chain file starts with the issuing CA's
 * certificate itself, as operators usually have it. Leaves config loaded, core closed. */
static void make_hierarchy(const char *root_type, const char *issuing_type)
{
    EVP_PKEY *root_key = token_key(ROOT_URI, root_type);
    EVP_PKEY *issuing_key = token_key(ISSUING_URI, issuing_type);
    root_cert = sign_ca(CERTBUILD_ROOT_CA, "Test Root", root_key, NULL, root_key);
    issuing_cert = sign_ca(CERTBUILD_ISSUING_CA, "Test Issuing", issuing_key, root_cert, root_key);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(issuing_key);
    write_pem("root.pem", root_cert, NULL);
    write_pem("issuing.pem", issuing_cert, NULL);
    write_pem("chain.pem", issuing_cert, root_cert);
    write_users();
    write_text("estca.conf", config_text);
    char path[PATH_MAX];
    path_in(path, "estca.conf");
    estca_reason why = {{0}};
    cr_assert_eq(config_load(path, &config, &why), ESTCA_OK, "%s", why.text);
}

static void open_core(void)
{
    estca_reason why = {{0}};
    cr_assert_eq(core_open(config, f.token, &core, &why), ESTCA_OK, "%s", why.text);
}

static void setup(void)
{
    softhsm_fixture_setup(&f);
    make_hierarchy("ec:P-384", "ec:P-256");
    open_core();
}

static void setup_rsa(void)
{
    softhsm_fixture_setup(&f);
    make_hierarchy("rsa:2048", "rsa:2048");
    open_core();
}

static void setup_no_core(void)
{
    softhsm_fixture_setup(&f);
    make_hierarchy("ec:P-256", "ec:P-256");
}

static void teardown(void)
{
    core_free(core);
    config_free(config);
    X509_free(root_cert);
    X509_free(issuing_cert);
    core = NULL;
    config = NULL;
    softhsm_fixture_teardown(&f);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(core_rsa, .init = setup_rsa, .fini = teardown, .timeout = 120);
TestSuite(core_open, .init = setup_no_core, .fini = teardown, .timeout = 120);

/* ---- requests ---- */

static X509_EXTENSION *san_extension(const char *dns)
{
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    cr_assert(ASN1_STRING_set(ia5, dns, -1));
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(names, gn);
    X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
    GENERAL_NAMES_free(names);
    cr_assert_not_null(ext);
    return ext;
}

/* A CSR for key, signed by signer (key for a valid one). cn NULL: empty subject. dns non-NULL:
 * a subjectAltName request, with a basicConstraints CA:TRUE request the CA must ignore. */
static X509_REQ *make_csr(EVP_PKEY *key, EVP_PKEY *signer, const char *cn, const char *dns)
{
    X509_REQ *req = X509_REQ_new();
    cr_assert(X509_REQ_set_version(req, X509_REQ_VERSION_1) && X509_REQ_set_pubkey(req, key));
    if (cn != NULL)
        cr_assert(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                             (const unsigned char *)cn, -1, -1, 0));
    if (dns != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
        bc->ca = 0xff;
        sk_X509_EXTENSION_push(exts, san_extension(dns));
        sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_basic_constraints, 1, bc));
        cr_assert(X509_REQ_add_extensions(req, exts));
        BASIC_CONSTRAINTS_free(bc);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    /* EdDSA hashes internally and takes no digest. */
    const EVP_MD *md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    cr_assert(X509_REQ_sign(req, signer, md));
    return req;
}

static int enroll_on(const char *label_name, X509_REQ *csr, X509 **cert, estca_reason *why)
{
    const struct core_label *label = core_find_label(core, label_name);
    cr_assert_not_null(label);
    int rc = core_enroll(core, label, csr, "user:alice", cert, why);
    if (rc == ESTCA_OK)
        *cert = der_roundtrip(*cert); /* as the client receives it */
    return rc;
}

static int enroll(X509_REQ *csr, X509 **cert, estca_reason *why)
{
    return enroll_on(NULL, csr, cert, why);
}

static long ledger_count(void)
{
    struct ledger *ledger = NULL;
    long n = -1;
    estca_reason why = {{0}};
    cr_assert_eq(ledger_open(config->ledger_path, &ledger, &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(ledger_count_issued(ledger, &n, &why), ESTCA_OK, "%s", why.text);
    ledger_close(ledger);
    return n;
}

static void expect_chains(X509 *cert)
{
    STACK_OF(X509) *cas = core_label_ca_certificates(core_find_label(core, NULL));
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    cr_assert(X509_STORE_add_cert(store, root_cert));
    cr_assert(X509_STORE_CTX_init(ctx, store, cert, cas));
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    cr_expect_eq(X509_verify_cert(ctx), 1, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* ---- tests ---- */

Test(core, labels_and_ca_certificates)
{
    const struct core_label *label = core_find_label(core, NULL);
    cr_assert_not_null(label);
    cr_expect_eq(core_find_label(core, "default"), label);
    cr_expect_null(core_find_label(core, "nosuch"));
    cr_expect_str_eq(core_label_name(label), "default");
    STACK_OF(X509) *cas = core_label_ca_certificates(label);
    cr_assert_eq(sk_X509_num(cas), 2, "issuing CA then root, the leading copy skipped");
    cr_expect_eq(X509_cmp(sk_X509_value(cas, 0), issuing_cert), 0);
    cr_expect_eq(X509_cmp(sk_X509_value(cas, 1), root_cert), 0);
}

Test(core, passwords)
{
    cr_expect_eq(core_check_password(core, "alice", "alice's password"), ESTCA_OK);
    cr_expect_eq(core_check_password(core, "alice", "wrong"), ESTCA_E_AUTH);
    cr_expect_eq(core_check_password(core, "bob", "alice's password"), ESTCA_E_AUTH);
}

Test(core, enroll_ec)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, key, "device-1", "device-1.example");
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(enroll(csr, &cert, &why), ESTCA_OK, "%s", why.text);
    expect_chains(cert);
    cr_expect_eq(EVP_PKEY_eq(X509_get0_pubkey(cert), key), 1);
    cr_expect_eq(X509_NAME_cmp(X509_get_subject_name(cert), X509_REQ_get_subject_name(csr)), 0);
    cr_expect_eq(X509_check_host(cert, "device-1.example", 0, 0, NULL), 1);
    cr_expect_eq(X509_check_ca(cert), 0, "the CSR's CA:TRUE request must be ignored");
    cr_expect_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
    /* Issued by the P-256 issuing CA: SHA-256; 30 days from the label. */
    cr_expect_eq(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    int days = 0, seconds = 0;
    cr_assert(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert)));
    cr_expect_eq(days, 30);
    cr_expect_eq(seconds, 60);
    cr_expect_eq(ledger_count(), 1);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core, enroll_san_only)
{
    EVP_PKEY *key = EVP_EC_gen("P-384");
    X509_REQ *csr = make_csr(key, key, NULL, "only-a-san.example");
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(enroll(csr, &cert, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
    cr_expect_eq(X509_check_host(cert, "only-a-san.example", 0, 0, NULL), 1);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core, bad_signature_is_invalid)
{
    EVP_PKEY *key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, other, "device", NULL);
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(enroll(csr, &cert, &why), ESTCA_E_INVALID);
    cr_expect_null(cert);
    cr_expect_not_null(strstr(why.text, "CSR signature does not verify"), "%s", why.text);
    cr_expect_eq(ledger_count(), 0);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void expect_policy_refusal(EVP_PKEY *key, const char *cn, const char *fragment)
{
    X509_REQ *csr = make_csr(key, key, cn, NULL);
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(enroll(csr, &cert, &why), ESTCA_E_POLICY, "%s", why.text);
    cr_expect_null(cert);
    cr_expect_not_null(strstr(why.text, fragment), "%s", why.text);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core, rsa_1024_is_refused)
{
    expect_policy_refusal(EVP_RSA_gen(1024), "weak", "1024");
    cr_expect_eq(ledger_count(), 0);
}

Test(core, other_curves_and_types_are_refused)
{
    expect_policy_refusal(EVP_EC_gen("P-521"), "p521", "secp521r1");
    expect_policy_refusal(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), "ed", "ED25519");
}

Test(core, nameless_request_is_refused)
{
    expect_policy_refusal(EVP_EC_gen("P-256"), NULL, "neither a subject nor");
}

/* Another process holds the ledger's write lock past the busy timeout: the certificate was
 * signed but cannot be recorded, so it must not be handed out. */
Test(core, unrecorded_certificate_is_not_returned)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(config->ledger_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, key, "device", NULL);
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(enroll(csr, &cert, &why), ESTCA_E_UNAVAILABLE, "%s", why.text);
    cr_expect_null(cert);
    cr_expect_not_null(strstr(why.text, "locked"), "%s", why.text);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    cr_expect_eq(ledger_count(), 0);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

#define THREADS 4
#define PER_THREAD 10

static void *enroll_many(void *arg)
{
    X509_REQ *csr = arg;
    long failures = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        X509 *cert = NULL;
        if (enroll(csr, &cert, NULL) != ESTCA_OK)
            failures++;
        X509_free(cert);
    }
    return (void *)failures;
}

Test(core, concurrent_enrollments)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, key, "busy", "busy.example");
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, enroll_many, csr), 0);
    for (int t = 0; t < THREADS; t++) {
        void *failures = NULL;
        pthread_join(threads[t], &failures);
        cr_expect_eq((long)failures, 0);
    }
    cr_expect_eq(ledger_count(), THREADS * PER_THREAD);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core_rsa, enroll_rsa)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509_REQ *csr = make_csr(key, key, "rsa-device", "rsa-device.example");
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(enroll(csr, &cert, &why), ESTCA_OK, "%s", why.text);
    expect_chains(cert);
    cr_expect_eq(X509_get_signature_nid(cert), NID_sha256WithRSAEncryption);
    cr_expect_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

/* ---- core_open refusals ---- */

static void expect_open_refused(const char *fragment)
{
    estca_reason why = {{0}};
    cr_expect_eq(core_open(config, f.token, &core, &why), ESTCA_E_CONFIG, "%s", why.text);
    cr_expect_null(core);
    cr_expect_not_null(strstr(why.text, fragment), "%s", why.text);
}

Test(core_open, key_must_match_certificate)
{
    free(config->cas[0].key_uri);
    config->cas[0].key_uri = strdup(ROOT_URI);
    expect_open_refused("does not match");
}

Test(core_open, chain_must_verify)
{
    /* A chain ending at another root. */
    EVP_PKEY *stranger = EVP_EC_gen("P-256");
    X509 *other_root = sign_ca(CERTBUILD_ROOT_CA, "Stranger", stranger, NULL, stranger);
    write_pem("chain.pem", other_root, NULL);
    expect_open_refused("does not verify");
    X509_free(other_root);
    EVP_PKEY_free(stranger);
}

Test(core_open, issuing_ca_needs_a_chain)
{
    free(config->cas[0].chain_file);
    config->cas[0].chain_file = NULL;
    expect_open_refused("not self-signed");
}

Test(core_open, root_alone_is_a_ca)
{
    char path[PATH_MAX];
    path_in(path, "root.pem");
    free(config->cas[0].key_uri);
    free(config->cas[0].certificate_file);
    free(config->cas[0].chain_file);
    config->cas[0].key_uri = strdup(ROOT_URI);
    config->cas[0].certificate_file = strdup(path);
    config->cas[0].chain_file = NULL;
    open_core();
    cr_expect_eq(sk_X509_num(core_label_ca_certificates(core_find_label(core, NULL))), 1);
}

/* ---- the label's csr_key_type, as /csrattrs advertises it, is also enforced ---- */

static int enroll_key(EVP_PKEY *key, estca_reason *why)
{
    X509_REQ *csr = make_csr(key, key, "device", NULL);
    X509 *cert = NULL;
    int rc = enroll(csr, &cert, why);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    return rc;
}

Test(core_open, csr_key_type_ec_is_enforced)
{
    config->labels[0].csr_key_type = CONFIG_CSR_KEY_EC_P384;
    config->labels[0].csr_hash = CONFIG_CSR_HASH_SHA384;
    open_core();
    struct core_csr_attrs attrs;
    core_label_csr_attrs(core_find_label(core, NULL), &attrs);
    cr_expect_eq(attrs.key_algorithm, CORE_CSR_KEY_EC);
    cr_expect_eq(attrs.ec_curve_nid, NID_secp384r1);
    cr_expect_eq(attrs.hash_nid, NID_sha384);
    cr_expect_not(attrs.challenge_password);
    cr_expect(core_csr_attrs_any(&attrs));
    estca_reason why = {{0}};
    cr_expect_eq(enroll_key(EVP_EC_gen("P-384"), &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(enroll_key(EVP_EC_gen("P-256"), &why), ESTCA_E_POLICY);
    cr_expect_not_null(strstr(why.text, "requires an EC P-384 key"), "%s", why.text);
    cr_expect_eq(enroll_key(EVP_RSA_gen(2048), &why), ESTCA_E_POLICY);
    cr_expect_eq(ledger_count(), 1);
}

Test(core_open, csr_key_type_rsa_is_enforced)
{
    config->labels[0].csr_key_type = CONFIG_CSR_KEY_RSA_3072;
    config->labels[0].csr_require_challenge_password = 1;
    open_core();
    struct core_csr_attrs attrs;
    core_label_csr_attrs(core_find_label(core, NULL), &attrs);
    cr_expect_eq(attrs.key_algorithm, CORE_CSR_KEY_RSA);
    cr_expect_eq(attrs.rsa_bits, 3072);
    cr_expect_eq(attrs.hash_nid, NID_undef);
    cr_expect(attrs.challenge_password);
    estca_reason why = {{0}};
    cr_expect_eq(enroll_key(EVP_RSA_gen(3072), &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(enroll_key(EVP_RSA_gen(2048), &why), ESTCA_E_POLICY);
    cr_expect_not_null(strstr(why.text, "requires an RSA 3072-bit key"), "%s", why.text);
    cr_expect_eq(enroll_key(EVP_EC_gen("P-256"), &why), ESTCA_E_POLICY);
    cr_expect_eq(ledger_count(), 1);
}

Test(core_open, no_csr_attributes_by_default)
{
    open_core();
    struct core_csr_attrs attrs;
    core_label_csr_attrs(core_find_label(core, NULL), &attrs);
    cr_expect_eq(attrs.key_algorithm, CORE_CSR_KEY_ANY);
    cr_expect_not(core_csr_attrs_any(&attrs));
    estca_reason why = {{0}};
    cr_expect_eq(enroll_key(EVP_RSA_gen(2048), &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(enroll_key(EVP_EC_gen("P-384"), &why), ESTCA_OK, "%s", why.text);
}

/* ---- serverkeygen ---- */

/* core_serverkeygen on the default label for a CSR of csr_key signed by signer: the status;
 * on success the key and certificate are checked to belong together and the key returned. */
static int serverkeygen(EVP_PKEY *csr_key, EVP_PKEY *signer, EVP_PKEY **key_out, estca_reason *why)
{
    X509_REQ *csr = make_csr(csr_key, signer, "skg-device", "skg-device.example");
    X509 *cert = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = core_serverkeygen(core, core_find_label(core, NULL), csr, "user:alice", &cert, &der,
                               &len, why);
    X509_REQ_free(csr);
    *key_out = NULL;
    if (rc != ESTCA_OK) {
        cr_expect_null(cert);
        cr_expect_null(der);
        return rc;
    }
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    cr_assert_not_null(p8);
    cr_expect(p == der + len);
    EVP_PKEY *key = EVP_PKCS82PKEY(p8);
    cr_assert_not_null(key);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_clear_free(der, len);
    cert = der_roundtrip(cert);
    expect_chains(cert);
    cr_expect_eq(X509_check_private_key(cert, key), 1, "the certificate is for the new key");
    cr_expect_neq(EVP_PKEY_eq(X509_get0_pubkey(cert), csr_key), 1, "not the CSR's key");
    cr_expect_eq(X509_check_host(cert, "skg-device.example", 0, 0, NULL), 1);
    X509_free(cert);
    *key_out = key;
    return rc;
}

Test(core_open, serverkeygen_needs_the_label_setting)
{
    open_core();
    EVP_PKEY *csr_key = EVP_EC_gen("P-256"), *key = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(serverkeygen(csr_key, csr_key, &key, &why), ESTCA_E_FORBIDDEN);
    cr_expect_not_null(strstr(why.text, "does not allow server-side key generation"), "%s",
                       why.text);
    cr_expect_eq(ledger_count(), 0);
    EVP_PKEY_free(csr_key);
}

/* With approval = manual the first request waits for an operator, and no key is made yet
 * (test_approval.sh drives the approval and the delivery). */
Test(core_open, serverkeygen_waits_for_manual_approval)
{
    config->labels[0].serverkeygen = 1;
    config->labels[0].manual_approval = 1;
    open_core();
    EVP_PKEY *csr_key = EVP_EC_gen("P-256"), *key = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(serverkeygen(csr_key, csr_key, &key, &why), ESTCA_E_PENDING);
    cr_expect_not_null(strstr(why.text, "waiting for an operator's approval"), "%s", why.text);
    cr_expect_null(key);
    cr_expect_eq(ledger_count(), 0);
    EVP_PKEY_free(csr_key);
}

Test(core_open, serverkeygen_follows_the_csr_key)
{
    config->labels[0].serverkeygen = 1;
    open_core();
    EVP_PKEY *csr_key = EVP_EC_gen("P-384"), *other = EVP_EC_gen("P-256"), *key = NULL;
    estca_reason why = {{0}};
    /* The CSR's signature is ignored (RFC 7030 §4.4.1): signed by another key. */
    cr_assert_eq(serverkeygen(csr_key, other, &key, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    cr_expect_eq(EVP_PKEY_get_bits(key), 384);
    EVP_PKEY_free(key);
    EVP_PKEY_free(csr_key);
    /* Not an allowed type (P-521): P-256. */
    csr_key = EVP_EC_gen("P-521");
    cr_assert_eq(serverkeygen(csr_key, csr_key, &key, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(EVP_PKEY_get_bits(key), 256);
    EVP_PKEY_free(key);
    EVP_PKEY_free(csr_key);
    EVP_PKEY_free(other);
    cr_expect_eq(ledger_count(), 2);
}

Test(core_open, serverkeygen_follows_the_label_key_type)
{
    config->labels[0].serverkeygen = 1;
    config->labels[0].csr_key_type = CONFIG_CSR_KEY_RSA_2048;
    open_core();
    EVP_PKEY *csr_key = EVP_EC_gen("P-256"), *key = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(serverkeygen(csr_key, csr_key, &key, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_RSA);
    cr_expect_eq(EVP_PKEY_get_bits(key), 2048);
    cr_expect_eq(ledger_count(), 1);
    EVP_PKEY_free(key);
    EVP_PKEY_free(csr_key);
}

/* The strict label's profile: refuses what the default label ignores, and puts its own usages,
 * the CA's CRL distribution point and caIssuers in what it issues. */
Test(core, a_profile_refuses_a_ca_request)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, key, "wants-ca", "wants-ca.example"); /* asks for CA:TRUE */
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(enroll_on("strict", csr, &cert, &why), ESTCA_E_POLICY);
    cr_expect(strstr(why.text, "CA:TRUE") != NULL, "%s", why.text);
    cr_expect_null(cert);
    cr_expect_eq(ledger_count(), 0);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core, a_profile_sets_usages_and_publication_points)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = make_csr(key, key, "mailer", NULL);
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(enroll_on("strict", csr, &cert, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
    cr_expect_eq(X509_get_extended_key_usage(cert), XKU_SMIME);
    cr_expect_eq(X509_check_ca(cert), 0);
    STACK_OF(DIST_POINT) *points = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    cr_assert_eq(sk_DIST_POINT_num(points), 1);
    GENERAL_NAME *uri =
        sk_GENERAL_NAME_value(sk_DIST_POINT_value(points, 0)->distpoint->name.fullname, 0);
    cr_expect_str_eq((const char *)ASN1_STRING_get0_data(uri->d.uniformResourceIdentifier),
                     "http://crl.example/issuing.crl");
    CRL_DIST_POINTS_free(points);
    AUTHORITY_INFO_ACCESS *access = X509_get_ext_d2i(cert, NID_info_access, NULL, NULL);
    cr_assert_eq(sk_ACCESS_DESCRIPTION_num(access), 1);
    ACCESS_DESCRIPTION *issuers = sk_ACCESS_DESCRIPTION_value(access, 0);
    cr_expect_eq(OBJ_obj2nid(issuers->method), NID_ad_ca_issuers);
    AUTHORITY_INFO_ACCESS_free(access);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

Test(core, an_unknown_critical_extension_is_refused)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = X509_REQ_new();
    cr_assert(X509_REQ_set_version(csr, X509_REQ_VERSION_1) && X509_REQ_set_pubkey(csr, key));
    cr_assert(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr), "CN", MBSTRING_UTF8,
                                         (const unsigned char *)"odd", -1, -1, 0));
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    cr_assert(ASN1_OCTET_STRING_set(value, (const unsigned char *)"\x05\x00", 2));
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, X509_EXTENSION_create_by_OBJ(NULL, oid, 1, value));
    cr_assert(X509_REQ_add_extensions(csr, exts));
    cr_assert(X509_REQ_sign(csr, key, EVP_sha256()));
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(enroll(csr, &cert, &why), ESTCA_E_POLICY);
    cr_expect(strstr(why.text, "1.3.6.1.4.1.99999.1") != NULL, "%s", why.text);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_OCTET_STRING_free(value);
    ASN1_OBJECT_free(oid);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

/* restricted: DNS names must match its patterns; its O and OU replace the CSR's, the rest of
 * the subject is kept. */
Test(core, a_profile_restricts_names_and_overrides_the_subject)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = NULL;
    estca_reason why = {{0}};
    X509_REQ *csr = make_csr(key, key, "node-7", "node-7.dev.example");
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr), "O", MBSTRING_UTF8,
                               (const unsigned char *)"Claimed Corp", -1, -1, 0);
    cr_assert(X509_REQ_sign(csr, key, EVP_sha256()));
    cr_assert_eq(enroll_on("restricted", csr, &cert, &why), ESTCA_OK, "%s", why.text);
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    cr_expect_str_eq(subject, "/CN=node-7/O=Example Devices/OU=Fleet");
    X509_free(cert);
    X509_REQ_free(csr);

    const char *refused[] = {"node-7.prod.example", "dev.example", "gw.example.evil"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        csr = make_csr(key, key, "node", refused[i]);
        cert = NULL;
        cr_expect_eq(enroll_on("restricted", csr, &cert, &why), ESTCA_E_POLICY, "%s", refused[i]);
        cr_expect(strstr(why.text, "not allowed") != NULL, "%s", why.text);
        X509_REQ_free(csr);
    }
    csr = make_csr(key, key, "gw", "GW.example"); /* DNS is case-insensitive */
    cr_expect_eq(enroll_on("restricted", csr, &cert, &why), ESTCA_OK, "%s", why.text);
    X509_free(cert);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}
