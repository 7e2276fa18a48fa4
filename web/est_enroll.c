/* /simpleenroll and /simplereenroll (RFC 7030 §4.2), and /serverkeygen (§4.4). Enrollment
 * and serverkeygen authenticate with HTTP Basic, re-enrollment with the TLS client certificate
 * being renewed; all take a base64 DER PKCS#10 body of type application/pkcs10 and have the
 * core issue. Enrollment answers a certs-only PKCS#7 holding only the new certificate
 * (§4.2.3), serverkeygen a multipart/mixed of the key and that PKCS#7 (§4.4.2): the key as
 * plain PKCS#8, or, when the CSR's AsymmetricDecryptKeyIdentifier names the TLS client
 * certificate's key (§4.4.1.2), as CMS EnvelopedData of SignedData for that certificate
 * (smime-type=server-generated-key). Content-Transfer-Encoding is ignored (RFC 8951 §3).
 *
 * Order of checks: credentials before the body, so unauthenticated clients never make us
 * read or parse anything; then the media type, the size, the encoding, the DER; then the
 * CSR's proof-of-possession linking to this TLS connection (RFC 7030 §3.5), as the label's
 * pop_linking asks (est_channel_binding.h), before the core sees the CSR. The exception: on a
 * label with otp = yes a request without credentials is read (within max_body) for the
 * one-time code its CSR may carry (otp.h), checked right after the DER. */
#include "base64.h"
#include "est_channel_binding.h"
#include "est_client_cert.h"
#include "est_csr.h"
#include "est_response.h"
#include "http_basic.h"
#include "otp.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EST_USER_MAX (EST_REQUESTER_MAX - sizeof "user:")

/* Password guessing is slowed per user name and per source address (auth_throttle.h): while
 * either is backing off, attempts are refused with 429 unchecked. */
static bool throttled(struct est_request *req, const char *user_key, const char *addr_key)
{
    time_t now = time(NULL);
    int user_wait = 0, addr_wait = 0;
    bool user_ok = auth_throttle_allows(req->server->throttle, user_key, now, &user_wait);
    bool addr_ok = auth_throttle_allows(req->server->throttle, addr_key, now, &addr_wait);
    if (user_ok && addr_ok)
        return false;
    char retry_after[48];
    snprintf(retry_after, sizeof retry_after, "Retry-After: %d\r\n",
             user_wait > addr_wait ? user_wait : addr_wait);
    est_note(req, "throttled: too many failed logins for %s", user_ok ? addr_key : user_key);
    atomic_fetch_add(&req->server->logins_throttled, 1);
    est_respond_error(req, 429, retry_after, "too many failed logins; try again later");
    return true;
}

/* Labels with otp = yes (otp.h): a request without an Authorization header may carry a
 * one-time code in its CSR; its body is read (within max_body) and the code checked then
 * (check_otp_challenge). Failures count against the source address like wrong passwords. */
static bool otp_challenge_may_follow(struct est_request *req)
{
    char addr_key[80];
    snprintf(addr_key, sizeof addr_key, "addr:%s", req->info->remote_addr);
    return !throttled(req, addr_key, addr_key);
}

static bool authenticate(struct est_request *req)
{
    /* A client certificate the label accepts comes before HTTP Basic (est_client_cert.h). */
    enum est_client_cert_result by_certificate = est_client_cert_authenticate(req);
    if (by_certificate != EST_CLIENT_CERT_NONE)
        return by_certificate == EST_CLIENT_CERT_AUTHENTICATED;
    const char *authorization = mg_get_header(req->conn, "Authorization");
    if (authorization == NULL && core_label_allows_otp(req->label))
        return otp_challenge_may_follow(req);
    struct http_basic_credentials credentials;
    estca_reason why = {{0}};
    int rc = http_basic_parse(authorization, &credentials, &why);
    if (rc == ESTCA_OK && strlen(credentials.user) > EST_USER_MAX) {
        rc = estca_fail(&why, ESTCA_E_AUTH, "user name too long");
    } else if (rc == ESTCA_OK) {
        char user_key[EST_REQUESTER_MAX], addr_key[80];
        snprintf(user_key, sizeof user_key, "user:%s", credentials.user);
        snprintf(addr_key, sizeof addr_key, "addr:%s", req->info->remote_addr);
        if (throttled(req, user_key, addr_key)) {
            http_basic_credentials_clear(&credentials);
            return false;
        }
        /* User "otp-N" on a label with otp = yes: the password is one-time code N. */
        rc = core_otp_user(req->label, credentials.user)
                 ? core_otp_check_password(req->core, req->label, credentials.user,
                                           credentials.password, req->requester,
                                           sizeof req->requester, &why)
                 : core_check_password(req->core, credentials.user, credentials.password);
        if (rc == ESTCA_OK) {
            if (req->requester[0] == '\0')
                snprintf(req->requester, sizeof req->requester, "user:%s", credentials.user);
            auth_throttle_succeeded(req->server->throttle, user_key);
            auth_throttle_succeeded(req->server->throttle, addr_key);
        } else {
            if (why.text[0] == '\0') /* a code's check gives its own reason */
                estca_fail(&why, ESTCA_E_AUTH, "wrong password or unknown user (user %s)",
                           credentials.user);
            auth_throttle_failed(req->server->throttle, user_key, time(NULL));
            auth_throttle_failed(req->server->throttle, addr_key, time(NULL));
            atomic_fetch_add(&req->server->login_failures, 1);
        }
    }
    http_basic_credentials_clear(&credentials);
    if (rc == ESTCA_OK)
        return true;
    est_note(req, "%s", why.text);
    est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "authentication required");
    return false;
}

static bool check_content_type(struct est_request *req)
{
    if (est_media_type_is(mg_get_header(req->conn, "Content-Type"), "application/pkcs10"))
        return true;
    est_respond_error(req, 415, NULL, "Content-Type must be application/pkcs10");
    return false;
}

/* Base64, then DER that must end exactly where the decoded bytes end. */
static bool decode_csr(struct est_request *req, const char *body, size_t len, X509_REQ **out)
{
    estca_reason why = {{0}};
    if (est_csr_decode(body, len, out, &why) == ESTCA_OK)
        return true;
    est_respond_error(req, 400, NULL, "%s", why.text);
    return false;
}

/* Maps the core's status onto HTTP; the client sees the reason for its own mistakes only. */
static void respond_core_error(struct est_request *req, int rc, const estca_reason *why)
{
    switch (rc) {
    case ESTCA_E_INVALID:
    case ESTCA_E_POLICY:
        est_respond_error(req, 400, NULL, "%s", why->text);
        return;
    case ESTCA_E_AUTH:
        est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "%s", why->text);
        return;
    case ESTCA_E_FORBIDDEN:
        est_respond_error(req, 403, NULL, "%s", why->text);
        return;
    case ESTCA_E_PENDING: {
        /* RFC 7030 §4.2.3: 202 with Retry-After, in integer seconds (strongSwan pki ignores an
         * HTTP-date); the client re-posts the same CSR. */
        char retry_after[48];
        snprintf(retry_after, sizeof retry_after, "Retry-After: %d\r\n",
                 core_label_retry_after(req->label));
        est_respond_error(req, 202, retry_after, "%s", why->text);
        return;
    }
    case ESTCA_E_UNAVAILABLE:
        est_note(req, "unavailable: %s", why->text);
        /* Retry-After in integer seconds: strongSwan pki ignores an HTTP-date. */
        est_respond_error(req, 503, "Retry-After: 30\r\n", "the CA is temporarily unavailable");
        return;
    default:
        est_note(req, "enroll failed: %s: %s", estca_status_name(rc), why->text);
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
}

static void respond_certificate(struct est_request *req, X509 *cert)
{
    STACK_OF(X509) *one = sk_X509_new_null();
    char *body = NULL;
    size_t body_len = 0;
    estca_reason why = {{0}};
    int rc = ESTCA_E_NOMEM;
    if (one != NULL && sk_X509_push(one, cert) > 0)
        rc = est_certs_only_base64(one, &body, &body_len, &why);
    sk_X509_free(one); /* the certificate itself stays the caller's */
    if (rc != ESTCA_OK) {
        est_note(req, "certificate issued but not encoded: %s", why.text);
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
    struct est_response response = {
        .status = 200,
        .content_type = "application/pkcs7-mime; smime-type=certs-only",
        .body = body,
        .body_len = body_len,
    };
    est_respond(req, &response);
    OPENSSL_free(body);
}

/* RFC 7030 §3.5: a linking attribute that does not match, or none where the label requires
 * one, is the client's mistake (400, the reason saying so, §4.2.3). */
static bool check_pop_linking(struct est_request *req, X509_REQ *csr)
{
    struct core_csr_attrs attrs;
    core_label_csr_attrs(req->label, &attrs);
    /* RFC 7030 §3.7: an RA forwards CSRs its devices made on their own connections; the core's
     * audit record says the comparison was skipped. */
    if (est_client_cert_is_ra(req))
        attrs.pop_linking = CORE_POP_LINKING_OFF;
    estca_reason why = {{0}};
    int rc =
        est_pop_linking_verify(attrs.pop_linking, csr, est_tls_connection_ssl(req->conn), &why);
    if (rc == ESTCA_OK)
        return true;
    if (rc == ESTCA_E_POLICY) {
        est_respond_error(req, 400, NULL, "%s", why.text);
    } else {
        est_note(req, "channel binding: %s: %s", estca_status_name(rc), why.text);
        est_respond_error(req, 500, NULL, "internal error");
    }
    return false;
}

/* A request that came without credentials (otp_challenge_may_follow): the one-time code in
 * its CSR authenticates it. Unknown, wrong, used and expired codes all answer 401 alike; the
 * log says which, never the code. */
static bool check_otp_challenge(struct est_request *req, X509_REQ *csr)
{
    char addr_key[80];
    snprintf(addr_key, sizeof addr_key, "addr:%s", req->info->remote_addr);
    estca_reason why = {{0}};
    int rc =
        core_otp_check_csr(req->core, req->label, csr, req->requester, sizeof req->requester, &why);
    if (rc == ESTCA_OK) {
        auth_throttle_succeeded(req->server->throttle, addr_key);
        return true;
    }
    if (rc == ESTCA_E_AUTH) {
        auth_throttle_failed(req->server->throttle, addr_key, time(NULL));
        atomic_fetch_add(&req->server->login_failures, 1);
    }
    if (rc != ESTCA_E_AUTH && rc != ESTCA_E_NOT_FOUND) {
        respond_core_error(req, rc, &why);
        return false;
    }
    est_note(req, "%s", why.text);
    est_respond_error(req, 401, HTTP_BASIC_CHALLENGE, "authentication required");
    return false;
}

/* The request's CSR, linked to this connection as the label asks, or false when it has
 * answered (415, 413, 400...). */
static bool read_csr(struct est_request *req, X509_REQ **out)
{
    if (!check_content_type(req))
        return false;
    char *body;
    size_t body_len;
    if (!est_read_body(req, &body, &body_len))
        return false;
    bool decoded = decode_csr(req, body, body_len, out);
    if (core_label_allows_otp(req->label))
        OPENSSL_cleanse(body, body_len); /* it may hold a one-time code */
    free(body);
    bool authenticated = !decoded || req->requester[0] != '\0' || check_otp_challenge(req, *out);
    if (decoded && (!authenticated || !check_pop_linking(req, *out))) {
        X509_REQ_free(*out);
        *out = NULL;
        return false;
    }
    return decoded;
}

static void respond_issued(struct est_request *req, int rc, X509 *cert, const estca_reason *why)
{
    if (rc != ESTCA_OK) {
        respond_core_error(req, rc, why);
        return;
    }
    respond_certificate(req, cert);
    X509_free(cert);
}

void est_enroll_handle(struct est_request *req)
{
    X509_REQ *csr = NULL;
    if (!authenticate(req) || !read_csr(req, &csr))
        return;
    X509 *cert = NULL;
    estca_reason why = {{0}};
    req->core_decided = true;
    struct core_identity who;
    est_client_cert_identity(req, &who);
    int rc = core_enroll_as(req->core, req->label, csr, &who, &cert, &why);
    X509_REQ_free(csr);
    respond_issued(req, rc, cert, &why);
}

/* The certificate being renewed is the TLS client certificate (RFC 7030 §4.2.2); HTTP Basic
 * plays no part. */
void est_reenroll_handle(struct est_request *req)
{
    SSL *ssl = est_tls_connection_ssl(req->conn);
    X509 *current = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    if (current == NULL) {
        est_respond_error(req, 401, HTTP_BASIC_CHALLENGE,
                          "re-enrollment needs the certificate being renewed as the TLS client "
                          "certificate");
        return;
    }
    char subject[EST_REQUESTER_MAX - sizeof "cert:"];
    X509_NAME_oneline(X509_get_subject_name(current), subject, sizeof subject);
    snprintf(req->requester, sizeof req->requester, "cert:%s", subject);
    X509_REQ *csr = NULL;
    if (!read_csr(req, &csr))
        return;
    X509 *cert = NULL;
    estca_reason why = {{0}};
    req->core_decided = true;
    int rc = core_reenroll(req->core, req->label, csr, current, SSL_get_peer_cert_chain(ssl),
                           req->requester, &cert, &why);
    X509_REQ_free(csr);
    respond_issued(req, rc, cert, &why);
}

/* /serverkeygen (RFC 7030 §4.4) sends a private key: only over a channel that encrypts. */
static bool check_confidential(struct est_request *req)
{
    SSL *ssl = est_tls_connection_ssl(req->conn);
    const SSL_CIPHER *cipher = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;
    if (cipher != NULL && SSL_CIPHER_get_cipher_nid(cipher) != NID_undef)
        return true;
    est_respond_error(req, 403, NULL, "server-side key generation needs an encrypting TLS cipher");
    return false;
}

#define SKG_BOUNDARY_OCTETS 16

/* The key part of §4.4.2: its media type and DER. */
struct key_part {
    const char *content_type;
    const unsigned char *der;
    size_t len;
};

/* The multipart/mixed body of §4.4.2: the key part, then the certs-only part. The key
 * part's base64 is wiped before it is freed; *body (OPENSSL_malloc'd) holds the key too and
 * is the caller's to wipe and free with OPENSSL_clear_free. */
static int serverkeygen_body(const char *boundary, const struct key_part *key, X509 *cert,
                             char **body, size_t *body_len, estca_reason *why)
{
    char *key_b64 = NULL, *certs_b64 = NULL;
    size_t key_len = 0, certs_len = 0;
    STACK_OF(X509) *one = sk_X509_new_null();
    int rc = ESTCA_E_NOMEM;
    if (one != NULL && sk_X509_push(one, cert) > 0)
        rc = est_certs_only_base64(one, &certs_b64, &certs_len, why);
    sk_X509_free(one); /* the certificate itself stays the caller's */
    if (rc == ESTCA_OK)
        rc = base64_encode(key->der, key->len, &key_b64, &key_len, why);
    static const char format[] =
        "--%s\r\nContent-Type: %s\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
        "--%s\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
        "--%s--\r\n";
    int n = -1;
    if (rc == ESTCA_OK)
        n = snprintf(NULL, 0, format, boundary, key->content_type, key_b64, boundary, certs_b64,
                     boundary);
    if (rc == ESTCA_OK && n < 0)
        rc = estca_fail(why, ESTCA_E_INVALID, "cannot format the multipart body");
    char *buf = NULL;
    if (rc == ESTCA_OK && (buf = OPENSSL_malloc((size_t)n + 1)) == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (rc == ESTCA_OK) {
        snprintf(buf, (size_t)n + 1, format, boundary, key->content_type, key_b64, boundary,
                 certs_b64, boundary);
        *body = buf;
        *body_len = (size_t)n;
    }
    if (key_b64 != NULL)
        OPENSSL_clear_free(key_b64, key_len + 1);
    OPENSSL_free(certs_b64);
    return rc;
}

/* recipient NULL: the key as plain PKCS#8 (the TLS channel is its only protection);
 * otherwise encrypted to recipient's key by the core. */
static void respond_serverkeygen(struct est_request *req, X509 *cert, const unsigned char *pkcs8,
                                 size_t pkcs8_len, X509 *recipient)
{
    unsigned char random[SKG_BOUNDARY_OCTETS];
    char boundary[2 * SKG_BOUNDARY_OCTETS + 1];
    char content_type[96];
    char *body = NULL;
    size_t body_len = 0;
    unsigned char *enveloped = NULL;
    size_t enveloped_len = 0;
    struct key_part key = {"application/pkcs8", pkcs8, pkcs8_len};
    estca_reason why = {{0}};
    int rc = ESTCA_OK;
    if (recipient != NULL) {
        rc = core_envelope_server_key(req->label, pkcs8, pkcs8_len, recipient, &enveloped,
                                      &enveloped_len, &why);
        key = (struct key_part){"application/pkcs7-mime; smime-type=server-generated-key",
                                enveloped, enveloped_len};
    }
    if (rc == ESTCA_OK && RAND_bytes(random, sizeof random) != 1)
        rc = estca_fail_openssl(&why, ESTCA_E_CRYPTO, "no random boundary");
    for (size_t i = 0; rc == ESTCA_OK && i < sizeof random; i++)
        snprintf(boundary + 2 * i, 3, "%02x", random[i]);
    if (rc == ESTCA_OK)
        rc = serverkeygen_body(boundary, &key, cert, &body, &body_len, &why);
    OPENSSL_free(enveloped);
    if (rc != ESTCA_OK) {
        est_note(req, "key and certificate made but not encoded: %s", why.text);
        est_respond_error(req, 500, NULL, "internal error");
        return;
    }
    snprintf(content_type, sizeof content_type, "multipart/mixed; boundary=%s", boundary);
    struct est_response response = {
        .status = 200,
        .content_type = content_type,
        .body = body,
        .body_len = body_len,
        .secret = true,
    };
    est_respond(req, &response);
    OPENSSL_clear_free(body, body_len + 1);
}

/* HTTP Basic as for /simpleenroll; the CSR gives only the names (§4.4.1), and may ask for the
 * key to be encrypted to the TLS client certificate's key (§4.4.1.2). That is settled before
 * the core generates or issues anything: a key the server lacks is an error (400), never a
 * fallback to the plain key, and leaves no certificate behind. */
void est_serverkeygen_handle(struct est_request *req)
{
    X509_REQ *csr = NULL;
    if (!authenticate(req) || !check_confidential(req) || !read_csr(req, &csr))
        return;
    SSL *ssl = est_tls_connection_ssl(req->conn);
    X509 *recipient = NULL; /* borrowed from the TLS connection */
    X509 *cert = NULL;
    unsigned char *pkcs8 = NULL;
    size_t pkcs8_len = 0;
    estca_reason why = {{0}};
    int rc = core_server_key_recipient(
        req->label, csr, ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL, &recipient, &why);
    if (rc == ESTCA_OK)
        req->core_decided = true;
    struct core_identity who;
    est_client_cert_identity(req, &who);
    if (rc == ESTCA_OK)
        rc =
            core_serverkeygen_as(req->core, req->label, csr, &who, &cert, &pkcs8, &pkcs8_len, &why);
    X509_REQ_free(csr);
    if (rc != ESTCA_OK) {
        respond_core_error(req, rc, &why);
        return;
    }
    respond_serverkeygen(req, cert, pkcs8, pkcs8_len, recipient);
    OPENSSL_clear_free(pkcs8, pkcs8_len);
    X509_free(cert);
}
