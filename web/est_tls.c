/* The listener's TLS context, built by us and handed to CivetWeb whole through its
 * external_ssl_ctx callback (CivetWeb then neither configures nor frees it), and the way back
 * from a CivetWeb connection to its SSL*, which CivetWeb's API never exposes but TLS client
 * certificates and channel binding (RFC 7030 §3.5) need.
 *
 * Capturing the SSL*: CivetWeb's worker thread creates the SSL, stores the connection as
 * its app data (SSL_set_app_data), runs SSL_accept, and on success calls our
 * init_connection callback on the same thread. Our info callback, which OpenSSL calls
 * during SSL_accept, keeps the SSL* in a thread-local; init_connection takes it, checks that
 * its app data is this connection, and attaches it as the connection's user data. The
 * connection_close callback, which CivetWeb also calls after a failed handshake, clears the
 * thread-local, so it never outlives the SSL it points to. */
#include "est_internal.h"

#include <openssl/err.h>

static _Thread_local SSL *handshake_ssl;

static void on_tls_info(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (where & SSL_CB_HANDSHAKE_START)
        handshake_ssl = (SSL *)ssl; /* OpenSSL passes const; SSL_get_* want it mutable */
}

int est_tls_on_init_connection(const struct mg_connection *conn, void **conn_data)
{
    SSL *ssl = handshake_ssl;
    handshake_ssl = NULL;
    *conn_data = (ssl != NULL && SSL_get_app_data(ssl) == (const void *)conn) ? ssl : NULL;
    return 0;
}

void est_tls_on_connection_close(const struct mg_connection *conn)
{
    (void)conn;
    handshake_ssl = NULL;
}

SSL *est_tls_connection_ssl(const struct mg_connection *conn)
{
    return mg_get_user_connection_data(conn);
}

/* Client certificates are asked for but judged by the core, per label and per operation (a
 * device renewing its certificate, later an IDevID or an RA), not by one TLS-wide trust store:
 * the handshake accepts whatever the client presents, and a certificate nobody vouched for
 * authenticates nothing (core_reenroll verifies it against the label's CA). */
static int accept_for_later_verification(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

/* RFC 7030 §6: no NULL, anonymous, EXPORT or DES suites; we also drop the other weak or
 * unused families, and static RSA key exchange (no forward secrecy for /serverkeygen keys).
 * TLS 1.3 suites are all AEAD and stay at OpenSSL's default. */
#define EST_TLS12_CIPHERS                                                                          \
    "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA:!kRSA"

static int configure(SSL_CTX *ctx, estca_reason *why)
{
    /* RFC 7030 §3.3 asks for TLS 1.1 or later; 1.2 is our floor. Renegotiation is off
     * (§3.5 allows it only with RFC 5746, and RFC 9266 forbids tls-exporter with it): a
     * client that tries gets no_renegotiation, and est_channel_binding.c trusts no binding
     * on a connection where it is on. */
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set the TLS floor");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(ctx, EST_TLS12_CIPHERS))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set the cipher list");
    /* Session resumption (RFC 7030 §3.3 SHOULD): the server-side cache for TLS 1.2 session
     * IDs, tickets for both versions (on by default). The context id is needed once client
     * certificates are verified, or resumption is refused. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's two: an EST client resumes one session
     * at a time, and each ticket costs the server a session encoding, an encryption and a key
     * derivation on every full handshake. */
    if (!SSL_CTX_set_num_tickets(ctx, 1))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set the number of tickets");
    static const unsigned char sid_ctx[] = "estca-est";
    if (!SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "cannot set the session id context");
    SSL_CTX_set_info_callback(ctx, on_tls_info);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
                       accept_for_later_verification);
    return ESTCA_OK;
}

static int use_credentials(SSL_CTX *ctx, X509 *certificate, STACK_OF(X509) *chain, EVP_PKEY *key,
                           estca_reason *why)
{
    if (!SSL_CTX_use_certificate(ctx, certificate))
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "TLS certificate refused");
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        if (X509_cmp(cert, certificate) == 0)
            continue; /* a chain file that repeats the leaf */
        if (!SSL_CTX_add1_chain_cert(ctx, cert))
            return estca_fail_openssl(why, ESTCA_E_CONFIG, "TLS chain certificate refused");
    }
    /* The key may be a libp11 token key: OpenSSL only ever asks it to sign. */
    if (!SSL_CTX_use_PrivateKey(ctx, key))
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "TLS key refused");
    if (!SSL_CTX_check_private_key(ctx))
        return estca_fail_openssl(why, ESTCA_E_CONFIG,
                                  "TLS key does not match the TLS certificate");
    return ESTCA_OK;
}

int est_tls_context_new(X509 *certificate, STACK_OF(X509) *chain, EVP_PKEY *key, SSL_CTX **out,
                        estca_reason *why)
{
    *out = NULL;
    if (certificate == NULL || key == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "no TLS certificate or key");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "SSL_CTX_new failed");
    int rc = configure(ctx, why);
    if (rc == ESTCA_OK)
        rc = use_credentials(ctx, certificate, chain, key, why);
    if (rc != ESTCA_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return ESTCA_OK;
}
