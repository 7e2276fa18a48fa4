/* estca audit verify: checks an audit log's hash chain and its checkpoints' signatures. */
#include "audit.h"
#include "cli.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

static int public_key_of(const char *cert_file, EVP_PKEY **out, estca_reason *why)
{
    STACK_OF(X509) *certs = NULL;
    int rc = pem_read_certificates(cert_file, &certs, why);
    if (rc != ESTCA_OK)
        return rc;
    *out = X509_get_pubkey(sk_X509_value(certs, 0));
    sk_X509_pop_free(certs, X509_free);
    if (*out == NULL)
        return estca_fail_openssl(why, ESTCA_E_CONFIG, "no public key in %s", cert_file);
    return ESTCA_OK;
}

/* The log and the signer's certificate a configuration names: [audit] path and signer (by
 * default the default label's CA). */
static int from_config(const char *config_file, char **log_file, char **cert_file,
                       estca_reason *why)
{
    struct estca_config *config = NULL;
    int rc = config_load(config_file, &config, why);
    if (rc != ESTCA_OK)
        return rc;
    const struct config_ca *ca = config_audit_signer(config);
    if (config->audit_path == NULL)
        rc = estca_fail(why, ESTCA_E_CONFIG, "%s has no [audit] path", config_file);
    else if (ca == NULL)
        rc = estca_fail(why, ESTCA_E_CONFIG, "%s: no CA signs the audit checkpoints", config_file);
    else if ((*log_file = strdup(config->audit_path)) == NULL ||
             (*cert_file = strdup(ca->certificate_file)) == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    config_free(config);
    return rc;
}

static int run_audit_verify(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"log", required_argument, NULL, 'l'},
        {"cert", required_argument, NULL, 'C'},
        {0, 0, 0, 0},
    };
    const char *config_file = NULL;
    char *log_file = NULL, *cert_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:", long_options, NULL)) != -1) {
        if (opt == 'c')
            config_file = optarg;
        else if (opt == 'l' && log_file == NULL)
            log_file = strdup(optarg);
        else if (opt == 'C' && cert_file == NULL)
            cert_file = strdup(optarg);
        else
            return cli_usage_error(&cmd_audit_verify, "unknown or repeated option");
    }
    if ((config_file == NULL) == (log_file == NULL || cert_file == NULL) || optind != argc) {
        free(log_file);
        free(cert_file);
        return cli_usage_error(&cmd_audit_verify,
                               "give --config FILE, or --log FILE and --cert FILE");
    }
    estca_reason why;
    EVP_PKEY *key = NULL;
    struct audit_verification result;
    int rc = config_file != NULL ? from_config(config_file, &log_file, &cert_file, &why) : ESTCA_OK;
    if (rc == ESTCA_OK)
        rc = public_key_of(cert_file, &key, &why);
    if (rc == ESTCA_OK)
        rc = audit_verify(log_file, key, &result, &why);
    EVP_PKEY_free(key);
    free(cert_file);
    if (rc != ESTCA_OK) {
        free(log_file);
        return cli_fail(&cmd_audit_verify, &why);
    }
    printf("%s: %lu lines chained, %lu signed checkpoints", log_file, result.lines,
           result.checkpoints);
    if (result.unsigned_tail > 0)
        printf(", the last %lu lines not yet under a checkpoint", result.unsigned_tail);
    printf(": OK\n");
    free(log_file);
    return 0;
}

const struct cli_command cmd_audit_verify = {
    .name = "audit verify",
    .summary = "check the audit log's hash chain and signed checkpoints",
    .usage = "  -c, --config FILE   the log and signer its [audit] section names, or:\n"
             "  -l, --log FILE      the audit log\n"
             "      --cert FILE     the certificate of the CA that signs its checkpoints\n",
    .run = run_audit_verify,
};
