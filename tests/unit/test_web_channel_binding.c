/* Proof-of-possession linking (est_channel_binding.h): the binding the server computes for
 * real TLS connections made in memory with the listener's own context (est_tls_context_new),
 * compared with what the client side computes, on TLS 1.3, TLS 1.2 with a full and a resumed
 * handshake, and where none can be trusted; then the decision on CSRs carrying
 * challengePassword or estIdentityLinking in each form, under each policy. */
#include "est_channel_binding.h"
#include "est_internal.h"

#include <criterion/criterion.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

/* ---- in-memory TLS ---- */

static SSL_CTX *server_ctx;
static EVP_PKEY *server_key;
static X509 *server_cert;

static void make_server(void)
{
    server_key = EVP_EC_gen("P-256");
    cr_assert_not_null(server_key);
    server_cert = X509_new();
    cr_assert_not_null(server_cert);
    X509_NAME *name = X509_get_subject_name(server_cert);
    cr_assert(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"localhost", -1, -1, 0));
    cr_assert(X509_set_issuer_name(server_cert, name));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(server_cert), 1));
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notBefore(server_cert), -60));
    cr_assert_not_null(X509_gmtime_adj(X509_getm_notAfter(server_cert), 3600));
    cr_assert(X509_set_pubkey(server_cert, server_key));
    cr_assert(X509_sign(server_cert, server_key, EVP_sha256()));
    estca_reason why = {{0}};
    cr_assert_eq(est_tls_context_new(server_cert, NULL, server_key, &server_ctx, &why), ESTCA_OK,
                 "%s", why.text);
}

static void free_server(void)
{
    SSL_CTX_free(server_ctx);
    X509_free(server_cert);
    EVP_PKEY_free(server_key);
}

TestSuite(channel_binding, .init = make_server, .fini = free_server);

/* A client context for exactly one TLS version (no certificate check: the test is about the
 * binding, not about trust). */
static SSL_CTX *client_ctx(int version, uint64_t options)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(ctx);
    cr_assert(SSL_CTX_set_min_proto_version(ctx, version));
    cr_assert(SSL_CTX_set_max_proto_version(ctx, version));
    SSL_CTX_set_options(ctx, options);
    return ctx;
}

struct tls_pair {
    SSL *client;
    SSL *server;
};

/* Drives both ends until neither wants to do more; true if both finished without error. */
static bool pump(SSL *client, SSL *server, int (*step)(SSL *))
{
    for (int round = 0; round < 64; round++) {
        int c = step(client), s = step(server);
        if (c == 1 && s == 1)
            return true;
        int ce = c == 1 ? SSL_ERROR_NONE : SSL_get_error(client, c);
        int se = s == 1 ? SSL_ERROR_NONE : SSL_get_error(server, s);
        bool c_ok = ce == SSL_ERROR_NONE || ce == SSL_ERROR_WANT_READ;
        bool s_ok = se == SSL_ERROR_NONE || se == SSL_ERROR_WANT_READ;
        if (!c_ok || !s_ok)
            return false;
    }
    return false;
}

static struct tls_pair connect_pair(SSL_CTX *client, SSL_SESSION *resume)
{
    struct tls_pair pair = {SSL_new(client), SSL_new(server_ctx)};
    cr_assert_not_null(pair.client);
    cr_assert_not_null(pair.server);
    BIO *client_bio = NULL, *server_bio = NULL;
    cr_assert(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0));
    SSL_set_bio(pair.client, client_bio, client_bio);
    SSL_set_bio(pair.server, server_bio, server_bio);
    SSL_set_connect_state(pair.client);
    SSL_set_accept_state(pair.server);
    if (resume != NULL)
        cr_assert(SSL_set_session(pair.client, resume));
    cr_assert(pump(pair.client, pair.server, SSL_do_handshake), "handshake failed");
    return pair;
}

static void free_pair(struct tls_pair *pair)
{
    SSL_free(pair->client);
    SSL_free(pair->server);
}

static struct est_channel_binding binding_of(SSL *ssl)
{
    struct est_channel_binding binding;
    estca_reason why = {{0}};
    cr_assert_eq(est_channel_binding_of(ssl, &binding, &why), ESTCA_OK, "%s", why.text);
    return binding;
}

static void expect_binding(const struct est_channel_binding *got, const char *type,
                           const unsigned char *want, size_t want_len)
{
    cr_assert_not_null(got->type, "no binding: %s", got->unavailable);
    cr_expect_str_eq(got->type, type);
    cr_assert_eq(got->len, want_len);
    cr_expect_eq(memcmp(got->data, want, want_len), 0, "the binding differs from the client's");
}

Test(channel_binding, tls13_is_the_exporter_with_an_empty_context)
{
    SSL_CTX *client = client_ctx(TLS1_3_VERSION, 0);
    struct tls_pair pair = connect_pair(client, NULL);
    unsigned char want[EST_TLS_EXPORTER_LEN];
    cr_assert_eq(SSL_export_keying_material(pair.client, want, sizeof want,
                                            "EXPORTER-Channel-Binding", 24, NULL, 0, 1),
                 1);
    struct est_channel_binding got = binding_of(pair.server);
    expect_binding(&got, "tls-exporter", want, sizeof want);
    struct tls_pair other = connect_pair(client, NULL);
    struct est_channel_binding other_got = binding_of(other.server);
    cr_expect_neq(memcmp(got.data, other_got.data, got.len), 0, "two connections, one binding");
    est_channel_binding_clear(&got);
    cr_expect_eq(got.len, 0);
    free_pair(&other);
    free_pair(&pair);
    SSL_CTX_free(client);
}

Test(channel_binding, tls12_full_handshake_is_the_clients_finished)
{
    SSL_CTX *client = client_ctx(TLS1_2_VERSION, 0);
    struct tls_pair pair = connect_pair(client, NULL);
    cr_assert_eq(SSL_get_extms_support(pair.server), 1);
    cr_assert_not(SSL_session_reused(pair.server));
    unsigned char client_finished[EVP_MAX_MD_SIZE], server_finished[EVP_MAX_MD_SIZE];
    size_t n = SSL_get_finished(pair.client, client_finished, sizeof client_finished);
    size_t m = SSL_get_finished(pair.server, server_finished, sizeof server_finished);
    cr_assert_eq(n, 12);
    struct est_channel_binding got = binding_of(pair.server);
    expect_binding(&got, "tls-unique", client_finished, n);
    cr_expect_neq(memcmp(got.data, server_finished, m), 0, "took the server's Finished");
    free_pair(&pair);
    SSL_CTX_free(client);
}

Test(channel_binding, tls12_resumed_handshake_is_the_servers_finished)
{
    SSL_CTX *client = client_ctx(TLS1_2_VERSION, 0);
    struct tls_pair first = connect_pair(client, NULL);
    SSL_SESSION *session = SSL_get1_session(first.client);
    cr_assert_not_null(session);
    struct tls_pair again = connect_pair(client, session);
    cr_assert(SSL_session_reused(again.server), "the session was not resumed");
    unsigned char server_finished[EVP_MAX_MD_SIZE];
    size_t n = SSL_get_peer_finished(again.client, server_finished, sizeof server_finished);
    cr_assert_eq(n, 12);
    struct est_channel_binding got = binding_of(again.server);
    expect_binding(&got, "tls-unique", server_finished, n);
    SSL_SESSION_free(session);
    free_pair(&again);
    free_pair(&first);
    SSL_CTX_free(client);
}

Test(channel_binding, tls12_without_extended_master_secret_has_none)
{
    SSL_CTX *client = client_ctx(TLS1_2_VERSION, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    struct tls_pair pair = connect_pair(client, NULL);
    cr_assert_eq(SSL_get_extms_support(pair.server), 0);
    struct est_channel_binding got = binding_of(pair.server);
    cr_expect_null(got.type);
    cr_expect_eq(got.len, 0);
    cr_assert_not_null(got.unavailable);
    cr_expect_not_null(strstr(got.unavailable, "extended master secret"), "%s", got.unavailable);
    free_pair(&pair);
    SSL_CTX_free(client);
}

Test(channel_binding, none_while_renegotiation_is_allowed)
{
    SSL_CTX *client = client_ctx(TLS1_3_VERSION, 0);
    struct tls_pair pair = connect_pair(client, NULL);
    SSL_clear_options(pair.server, SSL_OP_NO_RENEGOTIATION);
    struct est_channel_binding got = binding_of(pair.server);
    cr_expect_null(got.type);
    cr_expect_not_null(strstr(got.unavailable, "renegotiation"), "%s", got.unavailable);
    free_pair(&pair);
    SSL_CTX_free(client);
}

Test(channel_binding, none_without_tls)
{
    struct est_channel_binding got = binding_of(NULL);
    cr_expect_null(got.type);
    cr_expect_not_null(got.unavailable);
}

static int read_byte(SSL *ssl)
{
    char byte;
    return SSL_read(ssl, &byte, 1);
}

/* RFC 7030 §3.5 / RFC 9266 §3: the listener refuses a client's renegotiation (the client
 * gets no_renegotiation and gives up), so no second handshake ever changes the binding a CSR
 * was made for; a connection that failed so has no binding at all. */
Test(channel_binding, the_listener_refuses_renegotiation)
{
    SSL_CTX *client = client_ctx(TLS1_2_VERSION, 0);
    struct tls_pair pair = connect_pair(client, NULL);
    struct est_channel_binding before = binding_of(pair.server);
    cr_assert_not_null(before.type);
    cr_assert(SSL_renegotiate(pair.client));
    cr_expect_not(pump(pair.client, pair.server, read_byte), "renegotiation went through");
    unsigned long error;
    bool refused = false;
    while ((error = ERR_get_error()) != 0)
        refused = refused || ERR_GET_REASON(error) == SSL_R_NO_RENEGOTIATION;
    cr_expect(refused, "the client was not told no_renegotiation");
    cr_expect_not(SSL_is_init_finished(pair.client));
    struct est_channel_binding after = binding_of(pair.server);
    cr_expect_null(after.type);
    free_pair(&pair);
    SSL_CTX_free(client);
}

/* ---- the decision on CSRs ---- */

/* tls-unique of 12 bytes: base64 "AAECAwQFBgcICQoL". */
static const struct est_channel_binding unique12 = {
    .type = "tls-unique",
    .data = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
    .len = 12,
};
#define UNIQUE12_B64 "AAECAwQFBgcICQoL"

/* A 32-byte tls-exporter of 0xAB: base64 ends in one '=' of padding. */
static struct est_channel_binding exporter32(void)
{
    struct est_channel_binding b = {.type = "tls-exporter", .len = 32};
    memset(b.data, 0xAB, 32);
    return b;
}
#define EXPORTER32_B64 "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="

static const struct est_channel_binding none = {
    .unavailable = "this TLS 1.2 connection did not negotiate extended master secret",
};

static X509_REQ *csr_new(void)
{
    X509_REQ *csr = X509_REQ_new();
    cr_assert_not_null(csr);
    return csr;
}

static void add_string(X509_REQ *csr, const char *oid, int type, const void *bytes, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    cr_assert_not_null(obj);
    cr_assert(X509_REQ_add1_attr_by_OBJ(csr, obj, type, bytes, len));
    ASN1_OBJECT_free(obj);
}

#define CHALLENGE_PASSWORD "1.2.840.113549.1.9.7"

static void add_password(X509_REQ *csr, const char *text)
{
    add_string(csr, CHALLENGE_PASSWORD, V_ASN1_PRINTABLESTRING, text, (int)strlen(text));
}

static void add_linking(X509_REQ *csr, const char *text)
{
    add_string(csr, EST_OID_IDENTITY_LINKING, V_ASN1_UTF8STRING, text, (int)strlen(text));
}

static int check(enum core_pop_linking policy, X509_REQ *csr,
                 const struct est_channel_binding *binding, estca_reason *why)
{
    memset(why, 0, sizeof *why);
    return est_pop_linking_check(policy, csr, binding, why);
}

static void expect_refused(enum core_pop_linking policy, X509_REQ *csr,
                           const struct est_channel_binding *binding, const char *fragment)
{
    estca_reason why;
    cr_expect_eq(check(policy, csr, binding, &why), ESTCA_E_POLICY, "accepted (%s)", fragment);
    cr_expect_not_null(strstr(why.text, fragment), "'%s' not in: %s", fragment, why.text);
}

static void expect_accepted(enum core_pop_linking policy, X509_REQ *csr,
                            const struct est_channel_binding *binding)
{
    estca_reason why;
    cr_expect_eq(check(policy, csr, binding, &why), ESTCA_OK, "%s", why.text);
}

Test(pop_linking, no_attribute)
{
    X509_REQ *csr = csr_new();
    expect_accepted(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12);
    expect_accepted(CORE_POP_LINKING_OFF, csr, &unique12);
    expect_accepted(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &none);
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12,
                   "proof-of-possession linking is required");
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "tls-unique");
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &none, "extended master secret");
    X509_REQ_free(csr);
}

Test(pop_linking, challenge_password_matches)
{
    X509_REQ *csr = csr_new();
    add_password(csr, UNIQUE12_B64);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &unique12);
    expect_accepted(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12);
    X509_REQ_free(csr);
    struct est_channel_binding exporter = exporter32();
    csr = csr_new();
    add_password(csr, EXPORTER32_B64);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &exporter);
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "challengePassword is not base64");
    X509_REQ_free(csr);
}

Test(pop_linking, every_directory_string_is_read_as_text)
{
    X509_REQ *csr = csr_new();
    add_string(csr, CHALLENGE_PASSWORD, V_ASN1_UTF8STRING, UNIQUE12_B64, 16);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &unique12);
    X509_REQ_free(csr);
    unsigned char bmp[32];
    for (int i = 0; i < 16; i++) {
        bmp[2 * i] = 0;
        bmp[2 * i + 1] = (unsigned char)UNIQUE12_B64[i];
    }
    csr = csr_new();
    add_string(csr, CHALLENGE_PASSWORD, V_ASN1_BMPSTRING, bmp, sizeof bmp);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &unique12);
    X509_REQ_free(csr);
}

Test(pop_linking, a_wrong_value_is_refused_under_every_checking_policy)
{
    const char *wrong[] = {
        "AAECAwQFBgcICQoM",      /* last byte differs */
        "AAECAwQFBgcICQo",       /* one character short */
        "AAECAwQFBgcICQoLAA==",  /* longer */
        "aaecawqfbgcicqol",      /* case matters */
        "this is not a binding", /* garbage */
        "",                      /* empty */
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        X509_REQ *csr = csr_new();
        add_password(csr, wrong[i]);
        expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12,
                       "proof-of-possession linking failed");
        expect_refused(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12,
                       "challengePassword is not base64 of this TLS connection's tls-unique");
        expect_accepted(CORE_POP_LINKING_OFF, csr, &unique12);
        X509_REQ_free(csr);
    }
}

Test(pop_linking, base64_must_be_padded)
{
    struct est_channel_binding exporter = exporter32();
    X509_REQ *csr = csr_new();
    add_password(csr, "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s");
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &exporter, "linking failed");
    X509_REQ_free(csr);
}

Test(pop_linking, present_but_no_binding_to_check_against)
{
    X509_REQ *csr = csr_new();
    add_password(csr, UNIQUE12_B64);
    expect_refused(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &none, "extended master secret");
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &none, "linking failed");
    X509_REQ_free(csr);
}

Test(pop_linking, identity_linking_alone_or_with_challenge_password)
{
    X509_REQ *csr = csr_new();
    add_linking(csr, UNIQUE12_B64);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &unique12);
    add_password(csr, UNIQUE12_B64);
    expect_accepted(CORE_POP_LINKING_REQUIRED, csr, &unique12);
    X509_REQ_free(csr);
    csr = csr_new();
    add_linking(csr, "AAECAwQFBgcICQoM");
    expect_refused(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12,
                   "estIdentityLinking is not base64");
    X509_REQ_free(csr);
    /* Both present: both are checked, a good one does not excuse a bad one. */
    csr = csr_new();
    add_password(csr, UNIQUE12_B64);
    add_linking(csr, "AAECAwQFBgcICQoM");
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "estIdentityLinking");
    X509_REQ_free(csr);
    csr = csr_new();
    add_password(csr, "AAECAwQFBgcICQoM");
    add_linking(csr, UNIQUE12_B64);
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "challengePassword");
    X509_REQ_free(csr);
}

/* OpenSSL will not add an attribute twice, but a CSR off the wire may carry one twice: the
 * second is added as unstructuredAddress (1.2.840.113549.1.9.8, an OID as long), which the
 * DER is then patched to name challengePassword (...9.7). */
static X509_REQ *csr_with_two_passwords(const char *text)
{
    X509_REQ *csr = csr_new();
    EVP_PKEY *key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
    cr_assert(X509_REQ_set_pubkey(csr, key));
    add_password(csr, text);
    add_string(csr, "1.2.840.113549.1.9.8", V_ASN1_PRINTABLESTRING, text, (int)strlen(text));
    cr_assert(X509_REQ_sign(csr, key, EVP_sha256()));
    EVP_PKEY_free(key);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(csr, &der);
    cr_assert_gt(len, 0);
    X509_REQ_free(csr);
    static const unsigned char address[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                            0xf7, 0x0d, 0x01, 0x09, 0x08};
    unsigned char *at = memmem(der, (size_t)len, address, sizeof address);
    cr_assert_not_null(at);
    at[sizeof address - 1] = 0x07;
    const unsigned char *p = der;
    csr = d2i_X509_REQ(NULL, &p, len);
    OPENSSL_free(der);
    cr_assert_not_null(csr);
    cr_assert_eq(X509_REQ_get_attr_count(csr), 2);
    return csr;
}

Test(pop_linking, malformed_attributes)
{
    X509_REQ *csr = csr_new();
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    cr_assert(ASN1_INTEGER_set(number, 42));
    X509_ATTRIBUTE *attribute =
        X509_ATTRIBUTE_create(NID_pkcs9_challengePassword, V_ASN1_INTEGER, number);
    cr_assert_not_null(attribute);
    cr_assert(X509_REQ_add1_attr(csr, attribute));
    X509_ATTRIBUTE_free(attribute);
    expect_refused(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12, "not a DirectoryString");
    X509_REQ_free(csr);

    csr = csr_new();
    add_string(csr, CHALLENGE_PASSWORD, V_ASN1_IA5STRING, UNIQUE12_B64, 16);
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "not a DirectoryString");
    X509_REQ_free(csr);

    csr = csr_with_two_passwords(UNIQUE12_B64);
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "more than once");
    X509_REQ_free(csr);

    csr = csr_new();
    add_password(csr, UNIQUE12_B64);
    X509_ATTRIBUTE *two = X509_REQ_get_attr(csr, 0);
    cr_assert(X509_ATTRIBUTE_set1_data(two, V_ASN1_PRINTABLESTRING, UNIQUE12_B64, 16));
    expect_refused(CORE_POP_LINKING_REQUIRED, csr, &unique12, "exactly one value");
    X509_REQ_free(csr);

    char long_text[300];
    memset(long_text, 'A', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    csr = csr_new();
    add_password(csr, long_text);
    expect_refused(CORE_POP_LINKING_VERIFY_IF_PRESENT, csr, &unique12, "longer than 255");
    X509_REQ_free(csr);
}

/* The two halves together: a CSR made with the client's own binding passes on the server's
 * end of that connection and fails on another connection's. */
Test(channel_binding, verify_on_real_connections)
{
    SSL_CTX *client = client_ctx(TLS1_3_VERSION, 0);
    struct tls_pair pair = connect_pair(client, NULL);
    struct tls_pair other = connect_pair(client, NULL);
    unsigned char exported[EST_TLS_EXPORTER_LEN];
    cr_assert_eq(SSL_export_keying_material(pair.client, exported, sizeof exported,
                                            "EXPORTER-Channel-Binding", 24, NULL, 0, 0),
                 1);
    char b64[64];
    cr_assert_eq(EVP_EncodeBlock((unsigned char *)b64, exported, sizeof exported), 44);
    X509_REQ *csr = csr_new();
    add_password(csr, b64);
    estca_reason why = {{0}};
    cr_expect_eq(est_pop_linking_verify(CORE_POP_LINKING_REQUIRED, csr, pair.server, &why),
                 ESTCA_OK, "%s", why.text);
    cr_expect_eq(est_pop_linking_verify(CORE_POP_LINKING_REQUIRED, csr, other.server, &why),
                 ESTCA_E_POLICY);
    cr_expect_eq(est_pop_linking_verify(CORE_POP_LINKING_OFF, csr, other.server, &why), ESTCA_OK);
    X509_REQ_free(csr);
    free_pair(&other);
    free_pair(&pair);
    SSL_CTX_free(client);
}

/* /csrattrs of a label that requires linking: both OIDs, challengePassword first. */
Test(pop_linking, csrattrs_lists_both_oids)
{
    struct core_csr_attrs want = {.key_algorithm = CORE_CSR_KEY_ANY,
                                  .hash_nid = NID_undef,
                                  .challenge_password = true,
                                  .identity_linking = true,
                                  .pop_linking = CORE_POP_LINKING_REQUIRED};
    cr_expect(core_csr_attrs_any(&want));
    unsigned char *der = NULL;
    size_t len = 0;
    estca_reason why = {{0}};
    cr_assert_eq(est_csrattrs_der(&want, &der, &len, &why), ESTCA_OK, "%s", why.text);
    static const unsigned char expected[] = {0x30, 0x18, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                                             0x0d, 0x01, 0x09, 0x07, 0x06, 0x0b, 0x2a, 0x86, 0x48,
                                             0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x3a};
    cr_expect_eq(len, sizeof expected);
    cr_expect_eq(memcmp(der, expected, len < sizeof expected ? len : sizeof expected), 0);
    OPENSSL_free(der);
}
