/* estca cert revoke / crl create: revocation recorded in the ledger, and the CRL a CA signs on
 * the token from it. */
#include "cli.h"
#include "config.h"
#include "crl.h"

#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int run_cert_revoke(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"ledger", required_argument, NULL, 'L'},
        {"ca", required_argument, NULL, 'a'},
        {"reason", required_argument, NULL, 'r'},
        {0, 0, 0, 0},
    };
    const char *config_file = NULL, *ledger_path = NULL, *ca = NULL, *reason_name = "unspecified";
    int opt;
    while ((opt = getopt_long(argc, argv, "c:r:", long_options, NULL)) != -1) {
        if (opt == 'c')
            config_file = optarg;
        else if (opt == 'L')
            ledger_path = optarg;
        else if (opt == 'a')
            ca = optarg;
        else if (opt == 'r')
            reason_name = optarg;
        else
            return cli_usage_error(&cmd_cert_revoke, "unknown option");
    }
    if ((config_file == NULL && ledger_path == NULL) || optind != argc - 1)
        return cli_usage_error(&cmd_cert_revoke, "give --config FILE or --ledger PATH, and SERIAL");
    int reason = crl_reason_from_name(reason_name);
    if (reason < 0)
        return cli_usage_error(&cmd_cert_revoke, "unknown --reason (see estca cert revoke --help)");
    char serial[128];
    if (cli_normalise_serial(argv[optind], serial, sizeof serial) != ESTCA_OK)
        return cli_usage_error(&cmd_cert_revoke, "SERIAL must be hexadecimal");
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(config_file, ledger_path, &ledger, &why);
    if (rc == ESTCA_OK)
        rc = ledger_revoke(ledger, ca, serial, reason, &why);
    ledger_close(ledger);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_cert_revoke, &why);
    cli_audit(config_file, "revoke",
              json_pack("{s:s, s:s, s:s, s:i}", "serial", serial, "reason", reason_name, "ca",
                        ca != NULL ? ca : "-", "operator_uid", (int)getuid()));
    printf("serial=%s revoked reason=%s\n", serial, reason_name);
    return 0;
}

const struct cli_command cmd_cert_revoke = {
    .name = "cert revoke",
    .summary = "revoke a certificate: the next CRL lists it and it can no longer re-enroll",
    .usage =
        "  estca cert revoke (--config FILE | --ledger PATH) [--ca NAME] [--reason R] SERIAL\n"
        "  -r, --reason R   unspecified (default), keyCompromise, cACompromise,\n"
        "                   affiliationChanged, superseded, cessationOfOperation,\n"
        "                   certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise\n",
    .run = run_cert_revoke,
};

struct crl_options {
    struct cli_token_options token;
    const char *ca;
    const char *out;
    int days;
};

static int create_crl(const struct crl_options *options, estca_reason *why)
{
    struct estca_config *config = NULL;
    struct hsm_token *token = NULL;
    struct ledger *ledger = NULL;
    STACK_OF(X509) *certs = NULL;
    EVP_PKEY *key = NULL;
    X509_CRL *crl = NULL;
    int rc = config_load(options->token.config_file, &config, why);
    const struct config_ca *ca = rc == ESTCA_OK ? config_find_ca(config, options->ca) : NULL;
    if (rc == ESTCA_OK && ca == NULL)
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no [ca:%s] in %s", options->ca, config->path);
    if (rc == ESTCA_OK)
        rc = pem_read_certificates(ca->certificate_file, &certs, why);
    if (rc == ESTCA_OK)
        rc = cli_token_open(&options->token, &token, why);
    if (rc == ESTCA_OK)
        rc = hsm_key_find(token, ca->key_uri, &key, why);
    if (rc == ESTCA_OK)
        rc = ledger_open(config->ledger_path, &ledger, why);
    if (rc == ESTCA_OK)
        rc = crl_build(ledger, ca->name, sk_X509_value(certs, 0), key, options->days * 24, &crl,
                       why);
    FILE *file = rc == ESTCA_OK ? fopen(options->out, "w") : NULL;
    if (rc == ESTCA_OK && (file == NULL || !PEM_write_X509_CRL(file, crl)))
        rc = estca_fail_openssl(why, ESTCA_E_IO, "cannot write %s", options->out);
    if (file != NULL && fclose(file) != 0 && rc == ESTCA_OK)
        rc = estca_fail(why, ESTCA_E_IO, "cannot write %s", options->out);
    X509_CRL_free(crl);
    ledger_close(ledger);
    EVP_PKEY_free(key); /* before the token closes: libp11 keys point into it */
    hsm_token_close(token);
    sk_X509_pop_free(certs, X509_free);
    config_free(config);
    return rc;
}

static int run_crl_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"ca", required_argument, NULL, 'a'},
        {"out", required_argument, NULL, 'o'},
        {"days", required_argument, NULL, 'd'},
        CLI_TOKEN_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    struct crl_options options = {.days = 7};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:o:d:", long_options, NULL)) != -1) {
        if (cli_token_option(&options.token, opt, optarg))
            continue;
        if (opt == 'a')
            options.ca = optarg;
        else if (opt == 'o')
            options.out = optarg;
        else if (opt == 'd' && cli_parse_days(optarg, &options.days) == ESTCA_OK)
            continue;
        else
            return cli_usage_error(&cmd_crl_create, "unknown option or bad --days");
    }
    if (options.token.config_file == NULL || options.ca == NULL || options.out == NULL)
        return cli_usage_error(&cmd_crl_create, "--config, --ca and --out are needed");
    estca_reason why;
    if (create_crl(&options, &why) != ESTCA_OK)
        return cli_fail(&cmd_crl_create, &why);
    printf("CRL of CA %s written to %s\n", options.ca, options.out);
    return 0;
}

const struct cli_command cmd_crl_create = {
    .name = "crl create",
    .summary = "sign a CRL of a CA's revoked certificates with its key on the token",
    .usage = "  estca crl create --config FILE --ca NAME --out FILE [--days N]\n"
             "      --ca NAME    the [ca:NAME] of the configuration\n"
             "  -d, --days N     until nextUpdate (default 7)\n" CLI_TOKEN_USAGE,
    .run = run_crl_create,
};
