/* estca tls certificate: the HTTPS listener's certificate, signed by a CA whose key is on the
 * token, for a key on the token or in a PEM file (which keeps the listener, and /cacerts,
 * up while the token is not). */
#include "cli.h"

#include <openssl/x509v3.h>
#include <string.h>

/* The listener sends its certificate and every intermediate, not the self-signed root. */
static int write_tls_chain(const char *path, X509 *leaf, STACK_OF(X509) *issuers, estca_reason *why)
{
    X509 *chain[16] = {leaf};
    size_t n = 1;
    for (int i = 0; i < sk_X509_num(issuers) && n < 16; i++) {
        X509 *cert = sk_X509_value(issuers, i);
        if (X509_check_issued(cert, cert) != X509_V_OK)
            chain[n++] = cert;
    }
    return cli_write_certificates(path, chain, n, why);
}

static int sign_tls(const struct cli_signing_options *options, struct hsm_token *token,
                    STACK_OF(X509) *issuers, estca_reason *why)
{
    X509_NAME *subject = NULL;
    GENERAL_NAMES *san = NULL;
    EVP_PKEY *key = NULL, *issuer_key = NULL;
    X509 *cert = NULL;
    X509 *issuer = sk_X509_value(issuers, 0);
    int rc = profile_parse_name(options->subject, &subject, why);
    if (rc == ESTCA_OK)
        rc = cli_parse_san(options->san, &san, why);
    if (rc == ESTCA_OK)
        rc = pem_load_private_key(token, options->key_uri, &key, why);
    if (rc == ESTCA_OK)
        rc = hsm_key_find(token, options->issuer_key_uri, &issuer_key, why);
    if (rc == ESTCA_OK && X509_check_private_key(issuer, issuer_key) != 1)
        rc = estca_fail_openssl(why, ESTCA_E_INVALID,
                                "--issuer-key does not match the first certificate of "
                                "--issuer-cert");
    if (rc == ESTCA_OK)
        rc = cli_sign_certificate(token, CERTBUILD_TLS_SERVER, subject, san, key, issuer,
                                  issuer_key, options->days, &cert, why);
    if (rc == ESTCA_OK)
        rc = write_tls_chain(options->out, cert, issuers, why);
    X509_free(cert);
    EVP_PKEY_free(issuer_key);
    EVP_PKEY_free(key);
    GENERAL_NAMES_free(san);
    X509_NAME_free(subject);
    return rc;
}

static int run_tls_certificate(int argc, char **argv)
{
    struct cli_signing_options options = {.days = 825};
    int usage = cli_parse_signing_options(&cmd_tls_certificate, argc, argv, &options);
    if (usage != 0)
        return usage;
    if (!options.san || !options.issuer_key_uri || !options.issuer_cert)
        return cli_usage_error(&cmd_tls_certificate,
                               "--san, --issuer-key and --issuer-cert are needed");
    estca_reason why;
    struct hsm_token *token = NULL;
    STACK_OF(X509) *issuers = NULL;
    int rc = pem_read_certificates(options.issuer_cert, &issuers, &why);
    if (rc == ESTCA_OK)
        rc = cli_token_open(&options.token, &token, &why);
    if (rc == ESTCA_OK)
        rc = sign_tls(&options, token, issuers, &why);
    sk_X509_pop_free(issuers, X509_free);
    hsm_token_close(token);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_tls_certificate, &why);
    printf("TLS certificate chain written to %s\n", options.out);
    return 0;
}

const struct cli_command cmd_tls_certificate = {
    .name = "tls certificate",
    .summary = "issue the HTTPS listener's certificate for a key on the token or in a file",
    .usage = "  -k, --key URI|FILE      the listener's key: on the token, or a PEM file (0600)\n"
             "  -s, --subject DN        e.g. /CN=localhost\n"
             "  -a, --san LIST          e.g. IP:127.0.0.1,IP:::1,DNS:localhost\n"
             "  -d, --days N            validity (default 825)\n"
             "      --issuer-key URI    the signing CA's key on the token\n"
             "      --issuer-cert FILE  the signing CA's certificate, then its chain, PEM\n"
             "  -o, --out FILE          certificate + intermediates, PEM\n" CLI_TOKEN_USAGE,
    .run = run_tls_certificate,
};
