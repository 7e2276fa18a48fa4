/* estca ca root / ca issuing: CA certificates whose keys stay on the token. */
#include "cli.h"

static int run_ca_root(int argc, char **argv)
{
    struct cli_signing_options options = {.days = 7300};
    int usage = cli_parse_signing_options(&cmd_ca_root, argc, argv, &options);
    if (usage != 0)
        return usage;
    estca_reason why;
    struct hsm_token *token = NULL;
    EVP_PKEY *key = NULL;
    X509_NAME *subject = NULL;
    X509 *cert = NULL;
    int rc = profile_parse_name(options.subject, &subject, &why);
    if (rc == ESTCA_OK)
        rc = cli_token_open(&options.token, &token, &why);
    if (rc == ESTCA_OK)
        rc = hsm_key_find(token, options.key_uri, &key, &why);
    if (rc == ESTCA_OK)
        rc = cli_sign_certificate(token, CERTBUILD_ROOT_CA, subject, NULL, key, NULL, key,
                                  options.days, &cert, &why);
    if (rc == ESTCA_OK)
        rc = cli_write_certificates(options.out, &cert, 1, &why);
    X509_free(cert);
    X509_NAME_free(subject);
    EVP_PKEY_free(key);
    hsm_token_close(token);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_ca_root, &why);
    printf("root certificate written to %s\n", options.out);
    return 0;
}

const struct cli_command cmd_ca_root = {
    .name = "ca root",
    .summary = "self-sign a root CA certificate with a key on the token",
    .usage = "  -k, --key URI         the root key on the token\n"
             "  -s, --subject DN      e.g. \"/CN=Example Root CA/O=Example\"\n"
             "  -d, --days N          validity (default 7300)\n"
             "  -o, --out FILE        the certificate, PEM\n" CLI_TOKEN_USAGE,
    .run = run_ca_root,
};

static int sign_issuing(const struct cli_signing_options *options, struct hsm_token *token,
                        const X509_NAME *subject, X509 *root, estca_reason *why)
{
    EVP_PKEY *key = NULL, *root_key = NULL;
    X509 *cert = NULL;
    int rc = hsm_key_find(token, options->key_uri, &key, why);
    if (rc == ESTCA_OK)
        rc = hsm_key_find(token, options->issuer_key_uri, &root_key, why);
    if (rc == ESTCA_OK && X509_check_private_key(root, root_key) != 1)
        rc = estca_fail_openssl(why, ESTCA_E_INVALID, "--root-key does not match --root-cert");
    if (rc == ESTCA_OK)
        rc = cli_sign_certificate(token, CERTBUILD_ISSUING_CA, subject, NULL, key, root, root_key,
                                  options->days, &cert, why);
    if (rc == ESTCA_OK)
        rc = cli_write_certificates(options->out, &cert, 1, why);
    if (rc == ESTCA_OK && options->chain_out != NULL) {
        X509 *chain[2] = {cert, root};
        rc = cli_write_certificates(options->chain_out, chain, 2, why);
    }
    X509_free(cert);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(key);
    return rc;
}

static int run_ca_issuing(int argc, char **argv)
{
    struct cli_signing_options options = {.days = 3650};
    int usage = cli_parse_signing_options(&cmd_ca_issuing, argc, argv, &options);
    if (usage != 0)
        return usage;
    if (options.issuer_key_uri == NULL || options.issuer_cert == NULL)
        return cli_usage_error(&cmd_ca_issuing, "--root-key and --root-cert are needed");
    estca_reason why;
    struct hsm_token *token = NULL;
    X509_NAME *subject = NULL;
    STACK_OF(X509) *roots = NULL;
    int rc = profile_parse_name(options.subject, &subject, &why);
    if (rc == ESTCA_OK)
        rc = pem_read_certificates(options.issuer_cert, &roots, &why);
    if (rc == ESTCA_OK)
        rc = cli_token_open(&options.token, &token, &why);
    if (rc == ESTCA_OK)
        rc = sign_issuing(&options, token, subject, sk_X509_value(roots, 0), &why);
    sk_X509_pop_free(roots, X509_free);
    X509_NAME_free(subject);
    hsm_token_close(token);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_ca_issuing, &why);
    printf("issuing CA certificate written to %s\n", options.out);
    return 0;
}

const struct cli_command cmd_ca_issuing = {
    .name = "ca issuing",
    .summary = "create an issuing CA certificate signed by a root whose key is on the token",
    .usage = "  -k, --key URI         the issuing CA key on the token\n"
             "  -s, --subject DN      e.g. \"/CN=Example Issuing CA/O=Example\"\n"
             "  -d, --days N          validity (default 3650, clipped to the root's)\n"
             "      --root-key URI    the root key on the token\n"
             "      --root-cert FILE  the root certificate, PEM\n"
             "  -o, --out FILE        the issuing CA certificate, PEM\n"
             "      --chain-out FILE  also write issuing + root, PEM (the [ca:NAME] "
             "chain)\n" CLI_TOKEN_USAGE,
    .run = run_ca_issuing,
};
