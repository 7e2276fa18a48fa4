/* estca-pop-client: a test client for proof-of-possession linking (RFC 7030 §3.5, RFC 9266).
 * It makes one TLS connection to an EST server, computes that connection's channel binding
 * the way the server must (tls-exporter on TLS 1.3; tls-unique, the first Finished message,
 * on TLS 1.2), builds a fresh EC P-256 CSR carrying base64 of it in challengePassword or
 * estIdentityLinking (RFC 7894), and POSTs it on the same connection. No packaged client can
 * put a connection's binding into a CSR sent on that connection, hence this tool; it links
 * only to OpenSSL and writes its small HTTP/1.1 request by hand.
 *
 * Prints the HTTP status code on standard output; the body goes to --body-out (default:
 * standard error), notes about the connection to standard error. Exit status 0 once a
 * response was read, 1 on any failure before that. */
#include <getopt.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OID_CHALLENGE_PASSWORD "1.2.840.113549.1.9.7"
#define OID_IDENTITY_LINKING "1.2.840.113549.1.9.16.2.58"
#define EXPORTER_LABEL "EXPORTER-Channel-Binding"
#define EXPORTER_LEN 32
#define RESPONSE_MAX (1024 * 1024)

/* Where the binding goes, and what is put there. */
enum attribute_choice { ATTR_CHALLENGE_PASSWORD, ATTR_IDENTITY_LINKING, ATTR_BOTH, ATTR_NONE };
enum value_choice { VALUE_BINDING, VALUE_OTHER_CONNECTION, VALUE_GARBAGE, VALUE_NOT_A_STRING };

struct options {
    char *host;
    char *port;
    const char *cacert;
    const char *path;
    const char *credentials_file; /* "user:password" on its first line; NULL: no HTTP Basic */
    const char *client_cert;      /* TLS client certificate (PEM chain) and key */
    const char *client_key;
    const char *subject;
    const char *key_out;
    const char *body_out;
    int tls_version;
    bool no_ems;
    bool resume;
    enum attribute_choice attribute;
    enum value_choice value;
};

/* Reports what failed, with OpenSSL's reasons; false, for "return ok || fail(...)". */
static bool fail(const char *what)
{
    fprintf(stderr, "estca-pop-client: %s\n", what);
    ERR_print_errors_fp(stderr);
    return false;
}

/* ---- TLS ---- */

static SSL_CTX *client_context(const struct options *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        fail("SSL_CTX_new");
        return NULL;
    }
    bool ok = SSL_CTX_set_min_proto_version(ctx, o->tls_version) &&
              SSL_CTX_set_max_proto_version(ctx, o->tls_version) &&
              SSL_CTX_load_verify_locations(ctx, o->cacert, NULL);
    if (ok && o->client_cert != NULL)
        ok = SSL_CTX_use_certificate_chain_file(ctx, o->client_cert) &&
             SSL_CTX_use_PrivateKey_file(ctx, o->client_key, SSL_FILETYPE_PEM);
    if (!ok) {
        SSL_CTX_free(ctx);
        {
            fail("cannot set up the TLS context");
            return NULL;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (o->no_ems ? SSL_OP_NO_EXTENDED_MASTER_SECRET : 0));
    return ctx;
}

static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    if (getaddrinfo(host, port, &hints, &found) != 0) {
        fail("cannot resolve the server");
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = found; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0)
        fail("cannot connect");
    return fd;
}

/* A verified TLS connection to the server; resuming session if not NULL. */
static SSL *tls_connect(SSL_CTX *ctx, const struct options *o, SSL_SESSION *session)
{
    int fd = tcp_connect(o->host, o->port);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM *param = ssl != NULL ? SSL_get0_param(ssl) : NULL;
    bool ok = ssl != NULL && SSL_set_fd(ssl, fd);
    /* The listener's certificate names 127.0.0.1 as an IP address, localhost as a DNS name. */
    if (ok && X509_VERIFY_PARAM_set1_ip_asc(param, o->host) != 1)
        ok = SSL_set1_host(ssl, o->host) && SSL_set_tlsext_host_name(ssl, o->host);
    if (ok && session != NULL)
        ok = SSL_set_session(ssl, session);
    if (!ok || SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        close(fd);
        {
            fail("TLS handshake failed");
            return NULL;
        }
    }
    return ssl;
}

static void tls_close(SSL *ssl)
{
    if (ssl == NULL)
        return;
    int fd = SSL_get_fd(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

/* The connection's channel binding as the server must compute it: RFC 9266 on TLS 1.3 (an
 * empty context); RFC 5929 §3.1 on TLS 1.2: the first Finished message of the handshake, ours
 * in a full handshake, the server's in a resumed one. */
static size_t channel_binding(SSL *ssl, unsigned char *out, size_t cap)
{
    static const unsigned char empty_context[1];
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        if (cap < EXPORTER_LEN ||
            SSL_export_keying_material(ssl, out, EXPORTER_LEN, EXPORTER_LABEL,
                                       strlen(EXPORTER_LABEL), empty_context, 0, 1) != 1) {
            fail("tls-exporter failed");
            return 0;
        }
        return EXPORTER_LEN;
    }
    size_t n = SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, out, cap)
                                       : SSL_get_finished(ssl, out, cap);
    if (n == 0 || n > cap) {
        fail("no Finished message");
        return 0;
    }
    return n;
}

/* base64 of the binding of ssl, in out (cap >= 4 * 64 / 3 + 4). */
static bool binding_base64(SSL *ssl, char *out)
{
    unsigned char binding[EVP_MAX_MD_SIZE];
    size_t n = channel_binding(ssl, binding, sizeof binding);
    if (n == 0)
        return false;
    EVP_EncodeBlock((unsigned char *)out, binding, (int)n);
    OPENSSL_cleanse(binding, sizeof binding);
    return true;
}

/* ---- the CSR ---- */

/* "/CN=a/O=b" into name. */
static bool parse_subject(const char *subject, X509_NAME *name)
{
    char *copy = strdup(subject);
    bool ok = copy != NULL;
    char *save = NULL;
    for (char *part = ok ? strtok_r(copy, "/", &save) : NULL; ok && part != NULL;
         part = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(part, '=');
        ok = eq != NULL;
        if (ok) {
            *eq = '\0';
            ok = X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
                                            (const unsigned char *)eq + 1, -1, -1, 0);
        }
    }
    free(copy);
    return ok || fail("bad --subject");
}

static bool add_text_attribute(X509_REQ *csr, const char *oid, int type, const char *text)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    bool ok = obj != NULL && X509_REQ_add1_attr_by_OBJ(csr, obj, type, (const unsigned char *)text,
                                                       (int)strlen(text));
    ASN1_OBJECT_free(obj);
    return ok || fail("cannot add the attribute");
}

/* challengePassword as an INTEGER: not the DirectoryString its syntax asks for. */
static bool add_integer_password(X509_REQ *csr)
{
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    X509_ATTRIBUTE *attribute = NULL;
    bool ok = number != NULL && ASN1_INTEGER_set(number, 42) &&
              (attribute = X509_ATTRIBUTE_create(NID_pkcs9_challengePassword, V_ASN1_INTEGER,
                                                 number)) != NULL;
    if (!ok)
        ASN1_INTEGER_free(number);
    ok = ok && X509_REQ_add1_attr(csr, attribute);
    X509_ATTRIBUTE_free(attribute);
    return ok || fail("cannot add the INTEGER attribute");
}

/* The linking attributes: PrintableString for challengePassword (as RFC 7030 clients send it),
 * UTF8String for estIdentityLinking. */
static bool add_linking(X509_REQ *csr, const struct options *o, const char *text)
{
    if (o->value == VALUE_NOT_A_STRING)
        return add_integer_password(csr);
    bool ok = true;
    if (o->attribute == ATTR_CHALLENGE_PASSWORD || o->attribute == ATTR_BOTH)
        ok = add_text_attribute(csr, OID_CHALLENGE_PASSWORD, V_ASN1_PRINTABLESTRING, text);
    if (ok && (o->attribute == ATTR_IDENTITY_LINKING || o->attribute == ATTR_BOTH))
        ok = add_text_attribute(csr, OID_IDENTITY_LINKING, V_ASN1_UTF8STRING, text);
    return ok;
}

static bool write_key(EVP_PKEY *key, const char *path)
{
    FILE *file = fopen(path, "w");
    bool ok = file != NULL && PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL);
    if (file != NULL && fclose(file) != 0)
        ok = false;
    return ok || fail("cannot write --key-out");
}

/* A signed P-256 CSR carrying text (NULL: no linking attribute), as base64 DER in a new
 * buffer (caller frees). */
static char *make_csr(const struct options *o, const char *text)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509_REQ *csr = X509_REQ_new();
    bool ok = key != NULL && csr != NULL && X509_REQ_set_version(csr, X509_REQ_VERSION_1) &&
              X509_REQ_set_pubkey(csr, key) &&
              parse_subject(o->subject, X509_REQ_get_subject_name(csr));
    if (ok && text != NULL)
        ok = add_linking(csr, o, text);
    ok = ok && X509_REQ_sign(csr, key, EVP_sha256()) > 0;
    if (ok && o->key_out != NULL)
        ok = write_key(key, o->key_out);
    unsigned char *der = NULL;
    int der_len = ok ? i2d_X509_REQ(csr, &der) : -1;
    char *b64 = der_len > 0 ? malloc((size_t)der_len / 3 * 4 + 8) : NULL;
    if (b64 != NULL)
        EVP_EncodeBlock((unsigned char *)b64, der, der_len);
    else
        fail("cannot make the CSR");
    OPENSSL_free(der);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
    return b64;
}

/* ---- HTTP ---- */

static bool write_all(SSL *ssl, const char *data, size_t len)
{
    size_t written = 0;
    return (SSL_write_ex(ssl, data, len, &written) == 1 && written == len) || fail("write failed");
}

/* "Authorization: Basic ...\r\n" from the credentials file, or "" without one. */
static bool authorization_header(const char *file, char *out, size_t cap)
{
    out[0] = '\0';
    if (file == NULL)
        return true;
    char line[512];
    FILE *f = fopen(file, "r");
    bool ok = f != NULL && fgets(line, sizeof line, f) != NULL;
    if (f != NULL)
        fclose(f);
    if (!ok)
        return fail("cannot read --credentials");
    line[strcspn(line, "\r\n")] = '\0';
    char b64[700];
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)line, (int)strlen(line));
    OPENSSL_cleanse(line, sizeof line);
    int n = snprintf(out, cap, "Authorization: Basic %s\r\n", b64);
    OPENSSL_cleanse(b64, sizeof b64);
    return (n > 0 && (size_t)n < cap) || fail("credentials too long");
}

static bool send_request(SSL *ssl, const struct options *o, const char *method, const char *path,
                         const char *body)
{
    char auth[1024], head[2048];
    if (!authorization_header(o->credentials_file, auth, sizeof auth))
        return false;
    size_t body_len = body != NULL ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: estca-pop-client\r\n"
                     "%s%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, o->host, o->port, auth,
                     body != NULL ? "Content-Type: application/pkcs10\r\n" : "", body_len);
    OPENSSL_cleanse(auth, sizeof auth);
    bool ok = n > 0 && (size_t)n < sizeof head && write_all(ssl, head, (size_t)n) &&
              (body_len == 0 || write_all(ssl, body, body_len));
    OPENSSL_cleanse(head, sizeof head);
    return ok;
}

/* The whole response (the server closes after it: Connection: close), NUL-terminated. */
static char *read_response(SSL *ssl, size_t *len)
{
    char *buf = malloc(RESPONSE_MAX + 1);
    size_t used = 0, got = 0;
    while (buf != NULL && used < RESPONSE_MAX &&
           SSL_read_ex(ssl, buf + used, RESPONSE_MAX - used, &got) == 1)
        used += got;
    if (buf == NULL || used == 0) {
        free(buf);
        {
            fail("no response");
            return NULL;
        }
    }
    buf[used] = '\0';
    *len = used;
    return buf;
}

/* Prints the status, writes the body; false if the response is not HTTP. */
static bool report(const char *response, size_t len, const char *body_out)
{
    int status = 0;
    const char *end_of_head = strstr(response, "\r\n\r\n");
    if (sscanf(response, "HTTP/1.%*d %d", &status) != 1 || end_of_head == NULL)
        return fail("not an HTTP response");
    printf("%d\n", status);
    const char *body = end_of_head + 4;
    size_t body_len = len - (size_t)(body - response);
    FILE *out = body_out != NULL ? fopen(body_out, "w") : stderr;
    if (out == NULL)
        return fail("cannot write --body-out");
    fwrite(body, 1, body_len, out);
    if (out != stderr)
        fclose(out);
    return true;
}

/* ---- the run ---- */

static void describe(SSL *ssl)
{
    fprintf(stderr, "estca-pop-client: %s extended-master-secret=%s resumed=%s binding=%s\n",
            SSL_get_version(ssl), SSL_get_extms_support(ssl) == 1 ? "yes" : "no",
            SSL_session_reused(ssl) ? "yes" : "no",
            SSL_version(ssl) >= TLS1_3_VERSION ? "tls-exporter" : "tls-unique");
}

/* A first connection whose GET /cacerts is read to its end, so that TLS 1.3 tickets have
 * arrived; returns its session (for --resume) and, if wanted, its binding. */
static SSL_SESSION *first_connection(SSL_CTX *ctx, const struct options *o, char *binding_b64)
{
    SSL *ssl = tls_connect(ctx, o, NULL);
    if (ssl == NULL)
        return NULL;
    size_t len = 0;
    char *response = NULL;
    bool ok = (binding_b64 == NULL || binding_base64(ssl, binding_b64)) &&
              send_request(ssl, o, "GET", "/.well-known/est/cacerts", NULL) &&
              (response = read_response(ssl, &len)) != NULL;
    free(response);
    SSL_SESSION *session = ok ? SSL_get1_session(ssl) : NULL;
    tls_close(ssl);
    return session;
}

static bool linking_text(SSL *ssl, const struct options *o, const char *other, char *out)
{
    switch (o->value) {
    case VALUE_BINDING:
        return binding_base64(ssl, out);
    case VALUE_OTHER_CONNECTION:
        strcpy(out, other);
        return true;
    case VALUE_GARBAGE:
        strcpy(out, "this is not a channel binding");
        return true;
    case VALUE_NOT_A_STRING:
        out[0] = '\0';
        return true;
    }
    return false;
}

static int run(const struct options *o)
{
    SSL_CTX *ctx = client_context(o);
    if (ctx == NULL)
        return 1;
    char other[128] = "";
    SSL_SESSION *session = NULL;
    bool ok = true;
    if (o->resume || o->value == VALUE_OTHER_CONNECTION) {
        session = first_connection(ctx, o, o->value == VALUE_OTHER_CONNECTION ? other : NULL);
        ok = session != NULL;
    }
    SSL *ssl = ok ? tls_connect(ctx, o, o->resume ? session : NULL) : NULL;
    ok = ssl != NULL;
    if (ok)
        describe(ssl);
    if (ok && o->resume && !SSL_session_reused(ssl))
        ok = fail("the session was not resumed");
    char text[128] = "";
    char *csr = NULL, *response = NULL;
    size_t len = 0;
    if (ok && o->attribute != ATTR_NONE)
        ok = linking_text(ssl, o, other, text);
    if (ok)
        ok = (csr = make_csr(o, o->attribute != ATTR_NONE ? text : NULL)) != NULL;
    ok = ok && send_request(ssl, o, "POST", o->path, csr) &&
         (response = read_response(ssl, &len)) != NULL && report(response, len, o->body_out);
    free(response);
    free(csr);
    tls_close(ssl);
    SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
    return ok ? 0 : 1;
}

/* ---- options ---- */

static void usage(FILE *out)
{
    fputs("usage: estca-pop-client --connect HOST:PORT --cacert FILE --path PATH [options]\n"
          "  --credentials FILE   HTTP Basic user:password from FILE\n"
          "  --cert FILE --key FILE   TLS client certificate and key\n"
          "  --tls 1.2|1.3        the TLS version (default 1.3)\n"
          "  --no-ems             TLS 1.2 without extended master secret\n"
          "  --resume             resume the session of a first connection\n"
          "  --attribute challenge-password|identity-linking|both|none\n"
          "  --value binding|other-connection|garbage|not-a-string\n"
          "  --subject /CN=../O=..  (default /CN=pop-client/O=Test)\n"
          "  --key-out FILE       write the CSR's private key (PEM)\n"
          "  --body-out FILE      write the response body (default: standard error)\n",
          out);
}

static int word_index(const char *word, const char *const *words)
{
    for (int i = 0; words[i] != NULL; i++) {
        if (strcmp(word, words[i]) == 0)
            return i;
    }
    return -1;
}

static bool set_connect(struct options *o, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL)
        return false;
    o->host = strndup(arg, (size_t)(colon - arg));
    o->port = strdup(colon + 1);
    return o->host != NULL && o->port != NULL;
}

/* The option's text field in o, for the options that only name something. */
static const char **text_option(struct options *o, int c)
{
    switch (c) {
    case 'a':
        return &o->cacert;
    case 'p':
        return &o->path;
    case 'u':
        return &o->credentials_file;
    case 'c':
        return &o->client_cert;
    case 'k':
        return &o->client_key;
    case 's':
        return &o->subject;
    case 'K':
        return &o->key_out;
    case 'b':
        return &o->body_out;
    }
    return NULL;
}

static bool parse_option(struct options *o, int c, const char *arg)
{
    static const char *const attributes[] = {"challenge-password", "identity-linking", "both",
                                             "none", NULL};
    static const char *const values[] = {"binding", "other-connection", "garbage", "not-a-string",
                                         NULL};
    const char **text = text_option(o, c);
    if (text != NULL) {
        *text = arg;
        return true;
    }
    int i = -1;
    switch (c) {
    case 'C':
        return set_connect(o, arg);
    case 't':
        o->tls_version = strcmp(arg, "1.2") == 0   ? TLS1_2_VERSION
                         : strcmp(arg, "1.3") == 0 ? TLS1_3_VERSION
                                                   : 0;
        return o->tls_version != 0;
    case 'E':
        o->no_ems = true;
        return true;
    case 'r':
        o->resume = true;
        return true;
    case 'A':
        if ((i = word_index(arg, attributes)) >= 0)
            o->attribute = (enum attribute_choice)i;
        return i >= 0;
    case 'V':
        if ((i = word_index(arg, values)) >= 0)
            o->value = (enum value_choice)i;
        return i >= 0;
    }
    return false;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"connect", required_argument, NULL, 'C'},
        {"cacert", required_argument, NULL, 'a'},
        {"path", required_argument, NULL, 'p'},
        {"credentials", required_argument, NULL, 'u'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"subject", required_argument, NULL, 's'},
        {"key-out", required_argument, NULL, 'K'},
        {"body-out", required_argument, NULL, 'b'},
        {"tls", required_argument, NULL, 't'},
        {"no-ems", no_argument, NULL, 'E'},
        {"resume", no_argument, NULL, 'r'},
        {"attribute", required_argument, NULL, 'A'},
        {"value", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options o = {.subject = "/CN=pop-client/O=Test", .tls_version = TLS1_3_VERSION};
    int c;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 0;
        }
        if (!parse_option(&o, c, optarg)) {
            usage(stderr);
            return 2;
        }
    }
    bool complete = o.host != NULL && o.cacert != NULL && o.path != NULL && optind == argc &&
                    (o.client_cert == NULL) == (o.client_key == NULL);
    if (!complete) {
        usage(stderr);
        return 2;
    }
    int rc = run(&o);
    free(o.host);
    free(o.port);
    return rc;
}
