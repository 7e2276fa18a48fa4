/* libFuzzer harness for the whole EST request handler, end to end in one process.
 *
 * LLVMFuzzerInitialize brings up what estcad brings up (appliance/estcad.c start()): the
 * configuration, the SoftHSM2 token, the CA core, the TLS key and chain, the token supervisor,
 * the CRL publisher and est_server_start on 127.0.0.1 with port 0. So every input runs the code
 * estcad runs: CivetWeb, routing, authentication, body decoding, CSR checks, issuance on the
 * token, the ledger. The appliance comes from tests/fuzz/run.sh (packaging/provision.sh plus a
 * few labels), named by ESTCA_FUZZ_APPLIANCE=DIR; without it the harness stops at once.
 *
 * An input is one request:
 *   byte 0    bits 0-2 method (table below), bits 3-4 Authorization (0 none, 1 the demo user's
 *             real credentials, 2 "Basic " + base64 of field 3, 3 field 3 as the header value),
 *             bit 5 over a connection with a TLS client certificate (one the CA issued at
 *             start-up, subject CN=estca-fuzz-client,O=estca-fuzz), bit 6 "Expect:
 *             100-continue", bit 7 no Content-Length header when the body is empty
 *   then, separated by '\n': the path, the Content-Type (empty: none), field 3, one extra
 *   header line "Name: value" (dropped unless Name is an RFC 9110 token and not a header the
 *   harness sets itself), and the body (the rest, newlines included).
 * It is sent as one well-formed HTTP/1.1 request (origin-form path, control characters
 * replaced, exact Content-Length, Connection: keep-alive) over TLS on a connection the harness
 * keeps open; reconnects happen only when the server closed it. The path's bytes from 0x80 on
 * go percent-encoded (CivetWeb decodes them, so estcad's router still gets them), unless the
 * path field starts with 0xff (dropped): then raw, which CivetWeb answers with 400 and a
 * closed connection, and a new TLS connection for the next input would halve the rate. There are
 * four such connections, from 127.0.0.1 to 127.0.0.4, so that the login throttle that fuzzed
 * passwords set off (per source address) never shuts out the real credentials; and no input ever
 * sends a wrong password for the demo user (that would throttle the user itself): such inputs are
 * skipped.
 *
 * Invariants, abort() on violation: the framing checks of est_handler_client.h (a status line
 * within 8 s, the declared body and nothing more); the request leaves the handler; the status is
 * one the server gives (EST_ALLOWED below); no 5xx but 503, and 501 only for /fullcmc; a 200 to a
 * POST only with the real credentials or a client certificate, and its body a certs-only PKCS#7
 * with one certificate signed by the issuing CA (or, for serverkeygen, a multipart/mixed whose
 * certificate part is that); a 200 /cacerts holds certificates; 202, 429, 503 carry Retry-After,
 * 401 WWW-Authenticate, 405 Allow; the bytes the server sends match the framing it declares (no
 * stray bytes after a response).
 *
 * The server's one log line per request would flood the output: the harness adds
 * -close_fd_mask=2 to libFuzzer's flags unless ESTCA_FUZZ_SERVER_LOG=1; its own messages go
 * to a copy of stderr taken before. ESTCA_FUZZ_TRACE=1 prints each request's status line. */
#include "base64.h"
#include "config.h"
#include "core.h"
#include "est_handler_client.h"
#include "est_internal.h"
#include "est_server.h"
#include "http_basic.h"
#include "pem_file.h"
#include "token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

#define IDLE_DEADLINE_MS 8000 /* for the server to finish a request after answering it */

static const char *const methods[8] = {"GET",    "POST",    "HEAD",  "PUT",
                                       "DELETE", "OPTIONS", "PATCH", "TRACE"};

/* Headers the harness writes itself: an extra header naming one would break the framing
 * (Content-Length, Transfer-Encoding), the connection's reuse (Connection, Upgrade) or
 * duplicate ours. Expect is set by a flag bit; alone in the extra header it may say anything. */
static const char *const reserved_headers[] = {
    "content-length", "transfer-encoding", "connection", "upgrade", "host", "te",
    "authorization",  "content-type",      NULL};

/* The statuses the EST front (web/est_*.c) and CivetWeb's request parsing can give. */
static const int EST_ALLOWED[] = {200, 202, 204, 400, 401, 403, 404, 405,
                                  411, 413, 415, 417, 429, 501, 503};

struct harness {
    struct estca_config *config;
    struct hsm_token *token;
    struct ca_core *core;
    STACK_OF(X509) *tls_chain;
    EVP_PKEY *tls_key;
    struct est_server *server;
    int port;
    char *demo_user;
    char *demo_password;
    char *demo_authorization; /* "Basic ..." */
    bool trace;               /* ESTCA_FUZZ_TRACE=1: print each request's status line */
    EVP_PKEY *issuing_key;    /* the issuing CA's public key */
    /* [fuzzed credentials][client certificate] */
    struct est_client_connection conns[2][2];
};

static struct harness H;

__attribute__((noreturn)) static void setup_failed(const char *what, const char *reason)
{
    fuzz_say("fuzz_est_handler: set-up failed: %s: %s", what, reason);
    exit(1);
}

/* ---- bringing up the appliance, as estcad's start() does ---- */

static char *read_text(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        setup_failed(path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    fclose(f);
    if (len <= 0)
        setup_failed(path, "empty");
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static void log_crl_event(void *arg, const char *ca_name, bool signed_ok, const char *detail)
{
    (void)arg;
    if (!signed_ok)
        fuzz_say("fuzz_est_handler: CRL for %s not signed: %s", ca_name, detail);
}

static void ignore_token_event(void *arg, enum hsm_token_event event, const char *detail)
{
    (void)arg;
    fuzz_say("fuzz_est_handler: token event %d: %s", (int)event, detail);
}

static void start_appliance(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(path, sizeof path, "%s/estca.conf", dir);
    estca_reason why = {{0}};
    if (config_load(path, &H.config, &why) != ESTCA_OK)
        setup_failed("config_load", why.text);
    const struct estca_config *config = H.config;
    if (hsm_token_open(config->module_path, config->token_uri, config->pin_file, &H.token, &why) !=
            ESTCA_OK ||
        hsm_token_limit_sessions(H.token, (unsigned)config->token_sessions, &why) != ESTCA_OK)
        setup_failed("token", why.text);
    if (core_open(config, H.token, &H.core, &why) != ESTCA_OK)
        setup_failed("core_open", why.text);
    if (pem_read_certificates(config->tls_certificate_file, &H.tls_chain, &why) != ESTCA_OK ||
        pem_load_private_key(H.token, config->tls_key, &H.tls_key, &why) != ESTCA_OK)
        setup_failed("TLS credentials", why.text);
    if (core_start_crl_publisher(H.core, log_crl_event, NULL, &why) != ESTCA_OK)
        setup_failed("CRL publisher", why.text);
    if (hsm_token_supervise(H.token, 2000, 500, ignore_token_event, NULL, &why) != ESTCA_OK)
        setup_failed("token supervisor", why.text);
    X509 *leaf = sk_X509_shift(H.tls_chain);
    struct est_server_options options;
    est_server_options_from_config(config, &options);
    options.tls_certificate = leaf;
    options.tls_chain = H.tls_chain;
    options.tls_key = H.tls_key;
    int rc = est_server_start(&options, H.core, &H.server, &why);
    sk_X509_unshift(H.tls_chain, leaf);
    if (rc != ESTCA_OK)
        setup_failed("est_server_start", why.text);
    H.port = est_server_port(H.server);

    char *credentials = read_text(dir, "demo.credentials");
    char *colon = strchr(credentials, ':');
    if (colon == NULL)
        setup_failed("demo.credentials", "no ':'");
    *colon = '\0';
    H.demo_user = strdup(credentials);
    H.demo_password = strdup(colon + 1);
    *colon = ':';
    char *b64 = NULL;
    size_t b64_len = 0;
    if (base64_encode((unsigned char *)credentials, strlen(credentials), &b64, &b64_len, &why) !=
        ESTCA_OK)
        setup_failed("base64", why.text);
    OPENSSL_cleanse(credentials, strlen(credentials));
    free(credentials);
    H.demo_authorization = malloc(b64_len + sizeof "Basic ");
    if (H.demo_authorization == NULL || H.demo_user == NULL || H.demo_password == NULL)
        setup_failed("memory", "out of memory");
    snprintf(H.demo_authorization, b64_len + sizeof "Basic ", "Basic %s", b64);
    OPENSSL_free(b64);

    snprintf(path, sizeof path, "%s/issuing-ca.pem", dir);
    FILE *f = fopen(path, "re");
    X509 *issuing = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    if (issuing == NULL || (H.issuing_key = X509_get_pubkey(issuing)) == NULL)
        setup_failed(path, "cannot read the issuing CA certificate");
    X509_free(issuing);
}

/* The request has left the server's hands (est_dispatch returned): then a leak check or the
 * next input sees a quiet server. */
static void wait_server_idle(void)
{
    long deadline = fuzz_now_ms() + IDLE_DEADLINE_MS;
    while (atomic_load(&H.server->active_requests) > 0) {
        if (fuzz_now_ms() > deadline)
            fuzz_violation("a request still in the handler %d ms after its response",
                           IDLE_DEADLINE_MS);
        sched_yield(); /* the worker has a few instructions left: a sleep would cost more */
    }
}

/* ---- checking answers ---- */

/* The certificates of a base64 certs-only PKCS#7 (caller frees), or NULL. */
static STACK_OF(X509) *certs_only(const unsigned char *text, size_t len)
{
    unsigned char *der = NULL;
    size_t der_len = 0;
    if (base64_decode((const char *)text, len, &der, &der_len, NULL) != ESTCA_OK)
        return NULL;
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)der_len);
    STACK_OF(X509) *certs = NULL;
    if (p7 != NULL && p == der + der_len && PKCS7_type_is_signed(p7) && p7->d.sign != NULL &&
        p7->d.sign->cert != NULL)
        certs = X509_chain_up_ref(p7->d.sign->cert);
    PKCS7_free(p7);
    OPENSSL_free(der);
    return certs;
}

static void check_issued(const unsigned char *text, size_t len, const char *what)
{
    STACK_OF(X509) *certs = certs_only(text, len);
    if (certs == NULL || sk_X509_num(certs) != 1)
        fuzz_violation("%s: 200 whose body is not a certs-only PKCS#7 of one certificate", what);
    if (X509_verify(sk_X509_value(certs, 0), H.issuing_key) != 1)
        fuzz_violation("%s: the issued certificate is not signed by the issuing CA", what);
    sk_X509_pop_free(certs, X509_free);
}

/* serverkeygen: multipart/mixed, a key part, then the certificate part. */
static void check_multipart(const struct est_client_response *r, const char *type)
{
    const char *b = strstr(type, "boundary=");
    if (b == NULL)
        fuzz_violation("serverkeygen 200 without a boundary");
    char boundary[80];
    snprintf(boundary, sizeof boundary, "--%.*s", (int)strcspn(b + 9, "\r\n; "), b + 9);
    const char *text = (const char *)r->body;
    const char *key = strstr(text, boundary);
    const char *cert = key != NULL ? strstr(key + 1, boundary) : NULL;
    if (key == NULL || cert == NULL || strstr(cert + 1, boundary) == NULL)
        fuzz_violation("serverkeygen 200 without its two parts");
    if (strstr(key, "application/pkcs8") == NULL && strstr(key, "server-generated-key") == NULL)
        fuzz_violation("serverkeygen 200: the first part is no key");
    const char *payload = strstr(cert, "\r\n\r\n");
    const char *stop = payload != NULL ? strstr(payload, "\r\n--") : NULL;
    if (payload == NULL || stop == NULL)
        fuzz_violation("serverkeygen 200: no certificate part");
    check_issued((const unsigned char *)payload + 4, (size_t)(stop - payload - 4), "serverkeygen");
}

static bool status_allowed(int status)
{
    for (size_t i = 0; i < sizeof EST_ALLOWED / sizeof EST_ALLOWED[0]; i++)
        if (EST_ALLOWED[i] == status)
            return true;
    return false;
}

static void check_response(const struct est_client_response *r, const char *method,
                           const char *path, bool real_credentials, bool client_certificate)
{
    int s = r->status;
    if (!status_allowed(s))
        fuzz_violation("status %d is none the server gives (%s %.200s)", s, method, path);
    if (s == 501 && strstr(path, "fullcmc") == NULL)
        fuzz_violation("501 for %s %.200s", method, path);
    if ((s == 202 || s == 429 || s == 503) && est_client_header(r->head, "Retry-After") == NULL)
        fuzz_violation("%d without Retry-After", s);
    if (s == 401 && est_client_header(r->head, "WWW-Authenticate") == NULL)
        fuzz_violation("401 without WWW-Authenticate");
    if (s == 405 && est_client_header(r->head, "Allow") == NULL)
        fuzz_violation("405 without Allow");
    if (s != 200 || strcmp(method, "HEAD") == 0)
        return;
    const char *type = est_client_header(r->head, "Content-Type");
    if (type == NULL)
        fuzz_violation("200 without Content-Type (%s %.200s)", method, path);
    if (strcmp(method, "POST") != 0) {
        if (strncmp(type, "application/pkcs7-mime", 22) == 0) {
            STACK_OF(X509) *certs = certs_only(r->body, r->body_len);
            if (certs == NULL || sk_X509_num(certs) < 1)
                fuzz_violation("/cacerts 200 without certificates");
            sk_X509_pop_free(certs, X509_free);
        }
        return;
    }
    if (!real_credentials && !client_certificate)
        fuzz_violation("200 to an unauthenticated POST %.200s", path);
    if (strncmp(type, "multipart/mixed", 15) == 0)
        check_multipart(r, type);
    else if (strncmp(type, "application/pkcs7-mime", 22) == 0)
        check_issued(r->body, r->body_len, "enrollment");
    else
        fuzz_violation("200 to POST %.200s with Content-Type %.60s", path, type);
}

/* ---- building the request ---- */

struct fields {
    const char *part[5]; /* path, content type, authorization, extra header, body */
    size_t len[5];
};

static void split(const uint8_t *data, size_t size, struct fields *f)
{
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        f->part[i] = (const char *)data + at;
        size_t n = 0;
        if (i < 4) {
            const uint8_t *nl = at < size ? memchr(data + at, '\n', size - at) : NULL;
            n = nl != NULL ? (size_t)(nl - (data + at)) : size - at;
        } else {
            n = size - at;
        }
        f->len[i] = n;
        at += n + (at + n < size ? 1 : 0);
    }
}

enum line_kind {
    LINE_HEADER,
    LINE_PATH,     /* bytes from 0x80 on percent-encoded */
    LINE_PATH_RAW, /* bytes from 0x80 on as they are */
};

/* A header value or path on one line: control characters become '?' (and, in a path, so do
 * blanks, which would end the request target). */
static char *one_line(const char *s, size_t len, enum line_kind kind)
{
    bool path = kind != LINE_HEADER;
    char *out = malloc(3 * len + 2);
    if (out == NULL)
        fuzz_violation("out of memory");
    size_t n = 0;
    if (path && (len == 0 || s[0] != '/'))
        out[n++] = '/';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (kind == LINE_PATH && c >= 0x80) {
            n += (size_t)snprintf(out + n, 4, "%%%02X", c);
            continue;
        }
        bool bad = (c < 0x20 && c != '\t') || c == 0x7f || (path && (c == ' ' || c == '\t'));
        out[n++] = bad ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

/* A header line "Name: value" whose name is an RFC 9110 token: a blank before the colon or at
 * the start (obs-fold) could make the server read another header than the harness checked. */
static bool extra_header_usable(const char *line, bool expect_set)
{
    size_t name_len = strspn(line, "!#$%&'*+-.^_`|~0123456789"
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (name_len == 0 || line[name_len] != ':')
        return false;
    for (size_t i = 0; reserved_headers[i] != NULL; i++)
        if (strlen(reserved_headers[i]) == name_len &&
            strncasecmp(line, reserved_headers[i], name_len) == 0)
            return false;
    return !(expect_set && name_len == 6 && strncasecmp(line, "expect", 6) == 0);
}

/* The Authorization value for mode 2 or 3, or NULL when the input would send the demo user a
 * wrong password. *real tells whether it carries the real credentials. */
static char *fuzzed_authorization(int mode, const char *field, size_t len, bool *real)
{
    char *value = NULL;
    if (mode == 2) {
        char *b64 = NULL;
        size_t b64_len = 0;
        if (len == 0 ||
            base64_encode((const unsigned char *)field, len, &b64, &b64_len, NULL) != ESTCA_OK)
            return one_line("Basic ", 6, LINE_HEADER);
        char *joined = malloc(b64_len + sizeof "Basic ");
        if (joined == NULL)
            fuzz_violation("out of memory");
        snprintf(joined, b64_len + sizeof "Basic ", "Basic %s", b64);
        OPENSSL_free(b64);
        value = joined;
    } else {
        value = one_line(field, len, LINE_HEADER);
    }
    struct http_basic_credentials c;
    *real = false;
    if (http_basic_parse(value, &c, NULL) == ESTCA_OK) {
        /* CRYPTO_memcmp, not strcmp: libFuzzer learns the operands of strcmp calls, and the
         * password must never end up in its dictionary, corpus or crash files. */
        size_t len_pw = strlen(c.password);
        bool demo = strcmp(c.user, H.demo_user) == 0;
        *real = demo && len_pw == strlen(H.demo_password) &&
                CRYPTO_memcmp(c.password, H.demo_password, len_pw) == 0;
        http_basic_credentials_clear(&c);
        if (demo && !*real) {
            free(value);
            return NULL;
        }
    }
    return value;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    const char *method = methods[flags & 7];
    int auth = (flags >> 3) & 3;
    bool cert = (flags >> 5) & 1;
    bool expect = (flags >> 6) & 1;
    bool no_length = (flags >> 7) & 1;
    struct fields f;
    split(data + 1, size - 1, &f);

    bool real = auth == 1;
    char *authorization = NULL;
    if (auth >= 2 &&
        (authorization = fuzzed_authorization(auth, f.part[2], f.len[2], &real)) == NULL)
        return 0;
    bool raw_path = f.len[0] > 0 && (unsigned char)f.part[0][0] == 0xff;
    char *path = raw_path ? one_line(f.part[0] + 1, f.len[0] - 1, LINE_PATH_RAW)
                          : one_line(f.part[0], f.len[0], LINE_PATH);
    char *type = one_line(f.part[1], f.len[1], LINE_HEADER);
    char *extra = one_line(f.part[3], f.len[3], LINE_HEADER);
    const char *auth_value = auth == 1 ? H.demo_authorization : authorization;
    size_t body_len = f.len[4];

    size_t cap = strlen(path) + strlen(type) + strlen(extra) +
                 (auth_value != NULL ? strlen(auth_value) : 0) + body_len + 512;
    char *request = malloc(cap);
    if (request == NULL)
        fuzz_violation("out of memory");
    int n =
        snprintf(request, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", method, path, H.port);
    if (auth_value != NULL)
        n += snprintf(request + n, cap - (size_t)n, "Authorization: %s\r\n", auth_value);
    if (type[0] != '\0')
        n += snprintf(request + n, cap - (size_t)n, "Content-Type: %s\r\n", type);
    if (expect)
        n += snprintf(request + n, cap - (size_t)n, "Expect: 100-continue\r\n");
    if (extra_header_usable(extra, expect))
        n += snprintf(request + n, cap - (size_t)n, "%s\r\n", extra);
    if (body_len > 0 || !no_length)
        n += snprintf(request + n, cap - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(request + n, cap - (size_t)n, "Connection: keep-alive\r\n\r\n");
    memcpy(request + n, f.part[4], body_len);

    struct est_client_connection *c = &H.conns[auth >= 2][cert];
    struct est_client_response r;
    est_client_exchange(c, request, (size_t)n + body_len, strcmp(method, "HEAD") == 0, &r);
    wait_server_idle();
    if (H.trace)
        fuzz_say("%s %.200s -> %.*s", method, path, (int)strcspn(r.head, "\r\n"), r.head);
    check_response(&r, method, path, real, cert);
    est_client_response_free(&r);
    free(request);
    free(path);
    free(type);
    free(extra);
    free(authorization);
    ERR_clear_error();
    return 0;
}

/* The flags byte is one byte among hundreds, yet it picks the method, the credentials and the
 * connection: one mutation in eight flips one of its bits (the same request without
 * credentials, over another connection...), the others are libFuzzer's own. */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    if (size > 0 && seed % 8 == 0) {
        data[0] ^= (uint8_t)(1u << (seed / 8 % 8));
        return size;
    }
    return LLVMFuzzerMutate(data, size, max_size);
}

/* ---- start-up ---- */

/* The client certificate of the connections with bit 5: enrolled once through the server. */
static void enroll_client_certificate(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    if (key == NULL || req == NULL || name == NULL ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"estca-fuzz-client", -1, -1, 0) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"estca-fuzz",
                                    -1, -1, 0) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        setup_failed("client CSR", "OpenSSL failed");
    X509_NAME_free(name);
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(req, &der);
    X509_REQ_free(req);
    char *b64 = NULL;
    size_t b64_len = 0;
    if (der_len <= 0 || base64_encode(der, (size_t)der_len, &b64, &b64_len, NULL) != ESTCA_OK)
        setup_failed("client CSR", "cannot encode");
    OPENSSL_free(der);
    char request[8192];
    int n = snprintf(request, sizeof request,
                     "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: %s\r\nContent-Type: application/pkcs10\r\n"
                     "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n%s",
                     H.demo_authorization, b64_len, b64);
    OPENSSL_free(b64);
    struct est_client_response r;
    est_client_exchange(&H.conns[0][0], request, (size_t)n, false, &r);
    STACK_OF(X509) *certs = r.status == 200 ? certs_only(r.body, r.body_len) : NULL;
    if (certs == NULL || sk_X509_num(certs) != 1)
        setup_failed("enrolling the client certificate", r.head != NULL ? r.head : "no answer");
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1)
        setup_failed("client certificate", "refused by OpenSSL");
    sk_X509_pop_free(certs, X509_free);
    EVP_PKEY_free(key);
    est_client_response_free(&r);
}

/* libFuzzer flags this harness needs, unless given: -close_fd_mask=2 (the server's request log
 * to /dev/null; ESTCA_FUZZ_SERVER_LOG=1 keeps it) and -detect_leaks=0 (libFuzzer's leak check
 * after each input that allocated more than it freed: the server's threads always look so,
 * and the check stops the world, 10 times fewer executions). LeakSanitizer still checks at
 * exit, after stop_appliance has freed the server: a leak then fails the run. */
static void add_default_flags(int *argc, char ***argv)
{
    const char *log = getenv("ESTCA_FUZZ_SERVER_LOG");
    const char *defaults[] = {log != NULL && strcmp(log, "1") == 0 ? NULL : "-close_fd_mask=",
                              "-detect_leaks="};
    const char *values[] = {"2", "0"};
    char **grown = calloc((size_t)*argc + 3, sizeof *grown);
    if (grown == NULL)
        return;
    int n = 0;
    grown[n++] = (*argv)[0];
    for (size_t d = 0; d < 2; d++) {
        bool given = defaults[d] == NULL;
        for (int i = 1; !given && i < *argc; i++)
            given = strncmp((*argv)[i], defaults[d], strlen(defaults[d])) == 0;
        if (given)
            continue;
        char *flag = malloc(strlen(defaults[d]) + 2);
        if (flag == NULL)
            continue;
        sprintf(flag, "%s%s", defaults[d], values[d]);
        grown[n++] = flag;
    }
    for (int i = 1; i < *argc; i++)
        grown[n++] = (*argv)[i];
    *argv = grown; /* lives as long as the process */
    *argc = n;
}

/* At exit, as estcad's stop(): the server, the core, the token, the configuration. */
static void stop_appliance(void)
{
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            est_client_disconnect(&H.conns[a][b]);
            SSL_SESSION_free(H.conns[a][b].session);
        }
    fuzz_say("fuzz_est_handler: %lu TLS connections made", est_client_connects);
    if (!est_server_drain(H.server, 30000))
        fuzz_say("fuzz_est_handler: requests still running at exit");
    est_server_stop(H.server);
    EVP_PKEY_free(H.tls_key);
    sk_X509_pop_free(H.tls_chain, X509_free);
    core_free(H.core);
    hsm_token_close(H.token);
    config_free(H.config);
    SSL_CTX_free(H.conns[0][0].ctx);
    SSL_CTX_free(H.conns[0][1].ctx);
    EVP_PKEY_free(H.issuing_key);
    OPENSSL_clear_free(H.demo_password, strlen(H.demo_password));
    OPENSSL_clear_free(H.demo_authorization, strlen(H.demo_authorization));
    free(H.demo_user);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("ESTCA_FUZZ_APPLIANCE");
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr,
                "fuzz_est_handler: ESTCA_FUZZ_APPLIANCE is not set. It names a directory with "
                "an appliance provisioned for this harness: tests/fuzz/run.sh SECONDS makes one "
                "and runs the harness; tests/fuzz/run.sh --appliance DIR only makes one.\n");
        exit(1);
    }
    fuzz_out = dup(STDERR_FILENO);
    if (fuzz_out < 0)
        fuzz_out = STDERR_FILENO;
    signal(SIGPIPE, SIG_IGN);
    start_appliance(dir);
    const char *trace = getenv("ESTCA_FUZZ_TRACE");
    H.trace = trace != NULL && strcmp(trace, "1") == 0;
    const char *sources[2][2] = {{"127.0.0.2", "127.0.0.3"}, {"127.0.0.1", "127.0.0.4"}};
    char ca_file[4096];
    snprintf(ca_file, sizeof ca_file, "%s/tls-ca.pem", dir);
    SSL_CTX *plain = est_client_context(ca_file);
    SSL_CTX *with_cert = est_client_context(ca_file);
    if (plain == NULL || with_cert == NULL)
        setup_failed("client TLS context", ca_file);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            H.conns[a][b] = (struct est_client_connection){
                .source = sources[a][b], .port = H.port, .ctx = b ? with_cert : plain, .fd = -1};
    enroll_client_certificate(with_cert);
    wait_server_idle();
    atexit(stop_appliance);
    fuzz_say("fuzz_est_handler: estca EST server on 127.0.0.1:%d from %s", H.port, dir);
    add_default_flags(argc, argv);
    return 0;
}
