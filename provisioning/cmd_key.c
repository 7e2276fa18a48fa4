/* estca key generate / key show: CA and TLS key pairs created and inspected on the token. */
#include "cli.h"
#include "keygen.h"

static int run_key_generate(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"key", required_argument, NULL, 'k'},
        {"type", required_argument, NULL, 't'},
        CLI_TOKEN_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    struct cli_token_options token_options = {0};
    const char *key_uri = NULL, *type = "ec:P-256";
    int opt;
    while ((opt = getopt_long(argc, argv, "k:t:c:", long_options, NULL)) != -1) {
        if (cli_token_option(&token_options, opt, optarg))
            continue;
        switch (opt) {
        case 'k':
            key_uri = optarg;
            break;
        case 't':
            type = optarg;
            break;
        default:
            return cli_usage_error(&cmd_key_generate, "unknown option");
        }
    }
    if (key_uri == NULL)
        return cli_usage_error(&cmd_key_generate, "--key URI is needed");
    estca_reason why;
    struct hsm_token *token = NULL;
    int rc = cli_token_open(&token_options, &token, &why);
    if (rc == ESTCA_OK)
        rc = hsm_keygen_ca(token, key_uri, type, &why);
    hsm_token_close(token);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_key_generate, &why);
    printf("key=%s type=%s generated on the token\n", key_uri, type);
    return 0;
}

const struct cli_command cmd_key_generate = {
    .name = "key generate",
    .summary = "generate a key pair inside the token (sensitive, never extractable)",
    .usage = "  -k, --key URI         the new key, e.g. pkcs11:token=estca;object=issuing-ca\n"
             "  -t, --type TYPE       rsa:2048 rsa:3072 rsa:4096 ec:P-256 (default) "
             "ec:P-384\n" CLI_TOKEN_USAGE,
    .run = run_key_generate,
};

static const char *yes_no(bool value)
{
    return value ? "true" : "false";
}

static int run_key_show(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"key", required_argument, NULL, 'k'},
        CLI_TOKEN_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    struct cli_token_options token_options = {0};
    const char *key_uri = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "k:c:", long_options, NULL)) != -1) {
        if (cli_token_option(&token_options, opt, optarg))
            continue;
        if (opt == 'k')
            key_uri = optarg;
        else
            return cli_usage_error(&cmd_key_show, "unknown option");
    }
    if (key_uri == NULL)
        return cli_usage_error(&cmd_key_show, "--key URI is needed");
    estca_reason why;
    struct hsm_token *token = NULL;
    struct hsm_key_attributes attributes;
    int rc = cli_token_open(&token_options, &token, &why);
    if (rc == ESTCA_OK)
        rc = hsm_key_attributes(token, key_uri, &attributes, &why);
    hsm_token_close(token);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_key_show, &why);
    printf("key=%s token=%s private=%s sensitive=%s extractable=%s always_sensitive=%s "
           "never_extractable=%s\n",
           key_uri, yes_no(attributes.token), yes_no(attributes.private_obj),
           yes_no(attributes.sensitive), yes_no(attributes.extractable),
           yes_no(attributes.always_sensitive), yes_no(attributes.never_extractable));
    return 0;
}

const struct cli_command cmd_key_show = {
    .name = "key show",
    .summary = "print a private key's protection attributes as the token reports them",
    .usage = "  -k, --key URI         the key\n" CLI_TOKEN_USAGE,
    .run = run_key_show,
};
