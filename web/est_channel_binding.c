/* Proof-of-possession linking: the TLS connection's channel binding and the CSR attributes
 * that must carry it (see est_channel_binding.h). */
#include "est_channel_binding.h"

#include "base64.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdbool.h>
#include <string.h>

#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

/* ub-challengePassword (RFC 2985) and ub-aa-est-identity-linking (RFC 7894), in characters. */
#define LINKING_VALUE_MAX_CHARS 255

/* ---- the binding ---- */

/* RFC 9266 §2: an empty context, which is not the same as none on TLS 1.2 (RFC 5705), so it
 * is passed explicitly even though TLS 1.3 hashes an absent context as an empty one. */
static int tls_exporter(SSL *ssl, struct est_channel_binding *out, estca_reason *why)
{
    static const unsigned char empty_context[1];
    if (SSL_export_keying_material(ssl, out->data, EST_TLS_EXPORTER_LEN, EXPORTER_LABEL,
                                   strlen(EXPORTER_LABEL), empty_context, 0, 1) != 1)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "tls-exporter failed");
    out->type = "tls-exporter";
    out->len = EST_TLS_EXPORTER_LEN;
    return ESTCA_OK;
}

/* RFC 5929 §3.1: the first Finished message sent in the handshake: the client's in a full
 * handshake, ours (the server's) in an abbreviated one that resumed a session. */
static int tls_unique(SSL *ssl, struct est_channel_binding *out, estca_reason *why)
{
    if (SSL_get_extms_support(ssl) != 1) {
        out->unavailable = "this TLS 1.2 connection did not negotiate extended master secret "
                           "(RFC 7627), so its tls-unique cannot be trusted; use TLS 1.3 or "
                           "extended master secret";
        return ESTCA_OK;
    }
    size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, out->data, sizeof out->data)
                                       : SSL_get_peer_finished(ssl, out->data, sizeof out->data);
    if (n == 0 || n > sizeof out->data) {
        OPENSSL_cleanse(out->data, sizeof out->data);
        return estca_fail(why, ESTCA_E_CRYPTO, "tls-unique: no Finished message (%zu bytes)", n);
    }
    out->type = "tls-unique";
    out->len = n;
    return ESTCA_OK;
}

int est_channel_binding_of(SSL *ssl, struct est_channel_binding *out, estca_reason *why)
{
    memset(out, 0, sizeof *out);
    if (ssl == NULL || !SSL_is_init_finished(ssl)) {
        out->unavailable = "the request did not come over an established TLS connection";
        return ESTCA_OK;
    }
    /* A renegotiation would change tls-unique and void tls-exporter (RFC 9266 §3). */
    if ((SSL_get_options(ssl) & SSL_OP_NO_RENEGOTIATION) == 0) {
        out->unavailable = "renegotiation is allowed on this connection";
        return ESTCA_OK;
    }
    int version = SSL_version(ssl);
    if (version >= TLS1_3_VERSION)
        return tls_exporter(ssl, out, why);
    if (version == TLS1_2_VERSION)
        return tls_unique(ssl, out, why);
    out->unavailable = "the connection uses TLS older than 1.2";
    return ESTCA_OK;
}

void est_channel_binding_clear(struct est_channel_binding *binding)
{
    OPENSSL_cleanse(binding->data, sizeof binding->data);
    binding->len = 0;
}

/* ---- the CSR's attributes ---- */

/* One linking attribute as the CSR carries it. */
struct linking_attribute {
    const char *name;     /* "challengePassword", "estIdentityLinking" */
    unsigned char *value; /* UTF-8; NULL: absent. Wiped and freed by linking_attribute_clear */
    int len;
};

static void linking_attribute_clear(struct linking_attribute *attribute)
{
    if (attribute->value != NULL)
        OPENSSL_clear_free(attribute->value, (size_t)attribute->len);
    attribute->value = NULL;
    attribute->len = 0;
}

static bool is_directory_string(int type)
{
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_UTF8STRING ||
           type == V_ASN1_T61STRING || type == V_ASN1_BMPSTRING || type == V_ASN1_UNIVERSALSTRING;
}

static size_t utf8_characters(const unsigned char *s, int len)
{
    size_t n = 0;
    for (int i = 0; i < len; i++)
        n += (s[i] & 0xC0) != 0x80;
    return n;
}

static int malformed(estca_reason *why, const char *name, const char *what)
{
    return estca_fail(why, ESTCA_E_POLICY,
                      "proof-of-possession linking failed: the CSR's %s %s (RFC 7030 §3.5)", name,
                      what);
}

/* Fills out->value from csr's attribute oid (left NULL when absent). ESTCA_E_POLICY when it
 * is there but is not one DirectoryString of at most 255 characters. */
static int read_linking_attribute(X509_REQ *csr, const ASN1_OBJECT *oid,
                                  struct linking_attribute *out, estca_reason *why)
{
    int at = X509_REQ_get_attr_by_OBJ(csr, oid, -1);
    if (at < 0)
        return ESTCA_OK;
    if (X509_REQ_get_attr_by_OBJ(csr, oid, at) >= 0)
        return malformed(why, out->name, "appears more than once");
    X509_ATTRIBUTE *attribute = X509_REQ_get_attr(csr, at);
    if (attribute == NULL || X509_ATTRIBUTE_count(attribute) != 1)
        return malformed(why, out->name, "must have exactly one value");
    ASN1_TYPE *value = X509_ATTRIBUTE_get0_type(attribute, 0);
    if (value == NULL || !is_directory_string(value->type))
        return malformed(why, out->name, "is not a DirectoryString");
    out->len = ASN1_STRING_to_UTF8(&out->value, value->value.asn1_string);
    if (out->len < 0) {
        ERR_clear_error();
        out->value = NULL;
        out->len = 0;
        return malformed(why, out->name, "is not a valid string");
    }
    if (utf8_characters(out->value, out->len) > LINKING_VALUE_MAX_CHARS)
        return malformed(why, out->name, "is longer than 255 characters");
    return ESTCA_OK;
}

/* Both attributes of csr; on failure both are cleared. */
static int read_linking_attributes(X509_REQ *csr, struct linking_attribute *password,
                                   struct linking_attribute *linking, estca_reason *why)
{
    ASN1_OBJECT *linking_oid = OBJ_txt2obj(EST_OID_IDENTITY_LINKING, 1);
    if (linking_oid == NULL)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot make the estIdentityLinking OID");
    int rc = read_linking_attribute(csr, OBJ_nid2obj(NID_pkcs9_challengePassword), password, why);
    if (rc == ESTCA_OK)
        rc = read_linking_attribute(csr, linking_oid, linking, why);
    ASN1_OBJECT_free(linking_oid);
    if (rc != ESTCA_OK) {
        linking_attribute_clear(password);
        linking_attribute_clear(linking);
    }
    return rc;
}

/* ---- the decision ---- */

/* What a client that must link is told to do; there is no binding to tell it about when
 * unavailable is set. */
static int linking_required(const struct est_channel_binding *binding, estca_reason *why)
{
    if (binding->type == NULL)
        return estca_fail(why, ESTCA_E_POLICY,
                          "proof-of-possession linking is required on this label, but %s",
                          binding->unavailable);
    return estca_fail(why, ESTCA_E_POLICY,
                      "proof-of-possession linking is required on this label: put base64 of "
                      "this TLS connection's %s in the CSR's challengePassword or "
                      "estIdentityLinking (RFC 7030 §3.5, RFC 7894)",
                      binding->type);
}

/* The present attribute's value against expected (base64 of the binding), constant time. */
static int compare(const struct linking_attribute *attribute, const char *expected,
                   size_t expected_len, const struct est_channel_binding *binding,
                   estca_reason *why)
{
    if (attribute->value == NULL)
        return ESTCA_OK;
    if ((size_t)attribute->len == expected_len &&
        CRYPTO_memcmp(attribute->value, expected, expected_len) == 0)
        return ESTCA_OK;
    return estca_fail(why, ESTCA_E_POLICY,
                      "proof-of-possession linking failed: the CSR's %s is not base64 of this "
                      "TLS connection's %s (RFC 7030 §3.5)",
                      attribute->name, binding->type);
}

static int check_values(const struct linking_attribute *password,
                        const struct linking_attribute *linking,
                        const struct est_channel_binding *binding, estca_reason *why)
{
    if (binding->type == NULL)
        return estca_fail(
            why, ESTCA_E_POLICY, "proof-of-possession linking failed: the CSR carries %s, but %s",
            password->value != NULL ? password->name : linking->name, binding->unavailable);
    char *expected = NULL;
    size_t expected_len = 0;
    int rc = base64_encode(binding->data, binding->len, &expected, &expected_len, why);
    if (rc != ESTCA_OK)
        return rc;
    rc = compare(password, expected, expected_len, binding, why);
    if (rc == ESTCA_OK)
        rc = compare(linking, expected, expected_len, binding, why);
    OPENSSL_clear_free(expected, expected_len + 1);
    return rc;
}

int est_pop_linking_check(enum core_pop_linking policy, X509_REQ *csr,
                          const struct est_channel_binding *binding, estca_reason *why)
{
    if (policy == CORE_POP_LINKING_OFF)
        return ESTCA_OK;
    struct linking_attribute password = {.name = "challengePassword"};
    struct linking_attribute linking = {.name = "estIdentityLinking"};
    int rc = read_linking_attributes(csr, &password, &linking, why);
    if (rc != ESTCA_OK)
        return rc;
    if (password.value == NULL && linking.value == NULL)
        rc = policy == CORE_POP_LINKING_REQUIRED ? linking_required(binding, why) : ESTCA_OK;
    else
        rc = check_values(&password, &linking, binding, why);
    linking_attribute_clear(&password);
    linking_attribute_clear(&linking);
    return rc;
}

int est_pop_linking_verify(enum core_pop_linking policy, X509_REQ *csr, SSL *ssl, estca_reason *why)
{
    if (policy == CORE_POP_LINKING_OFF)
        return ESTCA_OK;
    struct est_channel_binding binding;
    int rc = est_channel_binding_of(ssl, &binding, why);
    if (rc == ESTCA_OK)
        rc = est_pop_linking_check(policy, csr, &binding, why);
    est_channel_binding_clear(&binding);
    return rc;
}
