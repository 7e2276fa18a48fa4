/* estca audit verify: checks an audit log's hash chain and its checkpoints' signatures. */
#include "audit.h"
#include "cli.h"

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

static int run_audit_verify(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"log", required_argument, NULL, 'l'},
        {"cert", required_argument, NULL, 'C'},
        {0, 0, 0, 0},
    };
    const char *log_file = NULL, *cert_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "l:", long_options, NULL)) != -1) {
        if (opt == 'l')
            log_file = optarg;
        else if (opt == 'C')
            cert_file = optarg;
        else
            return cli_usage_error(&cmd_audit_verify, "unknown option");
    }
    if (log_file == NULL || cert_file == NULL || optind != argc)
        return cli_usage_error(&cmd_audit_verify, "give --log FILE and --cert FILE");
    estca_reason why;
    EVP_PKEY *key = NULL;
    struct audit_verification result;
    int rc = public_key_of(cert_file, &key, &why);
    if (rc == ESTCA_OK)
        rc = audit_verify(log_file, key, &result, &why);
    EVP_PKEY_free(key);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_audit_verify, &why);
    printf("%s: %lu lines chained, %lu signed checkpoints", log_file, result.lines,
           result.checkpoints);
    if (result.unsigned_tail > 0)
        printf(", the last %lu lines not yet under a checkpoint", result.unsigned_tail);
    printf(": OK\n");
    return 0;
}

const struct cli_command cmd_audit_verify = {
    .name = "audit verify",
    .summary = "check the audit log's hash chain and signed checkpoints",
    .usage = "  -l, --log FILE      the audit log ([audit] path)\n"
             "      --cert FILE     the certificate of the CA that signs its checkpoints\n",
    .run = run_audit_verify,
};
