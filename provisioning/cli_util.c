#include "audit.h"
#include "cli.h"
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_token_option(struct cli_token_options *options, int opt, const char *arg)
{
    switch (opt) {
    case 'c':
        options->config_file = arg;
        return 1;
    case 'M':
        options->module = arg;
        return 1;
    case 'T':
        options->token_uri = arg;
        return 1;
    case 'P':
        options->pin_file = arg;
        return 1;
    default:
        return 0;
    }
}

int cli_token_open(const struct cli_token_options *options, struct hsm_token **out,
                   estca_reason *why)
{
    struct estca_config *config = NULL;
    if (options->config_file != NULL) {
        int rc = config_load(options->config_file, &config, why);
        if (rc != ESTCA_OK)
            return rc;
    }
    const char *module = options->module ? options->module : config ? config->module_path : NULL;
    const char *uri = options->token_uri ? options->token_uri : config ? config->token_uri : NULL;
    const char *pin = options->pin_file ? options->pin_file : config ? config->pin_file : NULL;
    int rc;
    if (uri == NULL)
        rc = estca_fail(why, ESTCA_E_CONFIG, "no token named: give --token URI or --config FILE");
    else
        rc = hsm_token_open(module, uri, pin, out, why);
    config_free(config);
    return rc;
}

static int make_general_name(const char *item, GENERAL_NAME **out, estca_reason *why)
{
    if (strncmp(item, "IP:", 3) == 0) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(item + 3);
        if (ip == NULL)
            return estca_fail(why, ESTCA_E_INVALID, "'%s' is not an IP address", item + 3);
        GENERAL_NAME *gn = GENERAL_NAME_new();
        if (gn == NULL) {
            ASN1_OCTET_STRING_free(ip);
            return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        *out = gn;
        return ESTCA_OK;
    }
    int type;
    const char *value;
    if (strncmp(item, "DNS:", 4) == 0) {
        type = GEN_DNS;
        value = item + 4;
    } else if (strncmp(item, "URI:", 4) == 0) {
        type = GEN_URI;
        value = item + 4;
    } else if (strncmp(item, "email:", 6) == 0) {
        type = GEN_EMAIL;
        value = item + 6;
    } else {
        return estca_fail(why, ESTCA_E_INVALID, "'%s': expected DNS:, IP:, URI: or email:", item);
    }
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (ia5 == NULL || gn == NULL || !ASN1_STRING_set(ia5, value, -1)) {
        ASN1_IA5STRING_free(ia5);
        GENERAL_NAME_free(gn);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    GENERAL_NAME_set0_value(gn, type, ia5);
    *out = gn;
    return ESTCA_OK;
}

int cli_parse_san(const char *text, GENERAL_NAMES **out, estca_reason *why)
{
    char *copy = strdup(text);
    GENERAL_NAMES *names = GENERAL_NAMES_new();
    if (copy == NULL || names == NULL) {
        free(copy);
        GENERAL_NAMES_free(names);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    int rc = ESTCA_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && rc == ESTCA_OK;
         item = strtok_r(NULL, ",", &save)) {
        GENERAL_NAME *gn = NULL;
        rc = make_general_name(item, &gn, why);
        if (rc == ESTCA_OK && !sk_GENERAL_NAME_push(names, gn)) {
            GENERAL_NAME_free(gn);
            rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
        }
    }
    free(copy);
    if (rc != ESTCA_OK) {
        GENERAL_NAMES_free(names);
        return rc;
    }
    *out = names;
    return ESTCA_OK;
}

int cli_write_certificates(const char *path, X509 *const *certs, size_t n, estca_reason *why)
{
    BIO *pem = BIO_new(BIO_s_mem());
    int ok = pem != NULL;
    for (size_t i = 0; i < n && ok; i++)
        ok = PEM_write_bio_X509(pem, certs[i]);
    char *data = NULL;
    long len = ok ? BIO_get_mem_data(pem, &data) : 0;
    int rc = ok && len > 0 ? file_write_atomically(path, data, (size_t)len, why)
                           : estca_fail_openssl(why, ESTCA_E_NOMEM, "cannot encode %s", path);
    BIO_free(pem);
    return rc;
}

int cli_fail(const struct cli_command *command, const estca_reason *why)
{
    fprintf(stderr, "estca %s: %s\n", command->name, why->text);
    return 1;
}

int cli_usage_error(const struct cli_command *command, const char *message)
{
    fprintf(stderr, "estca %s: %s (see estca %s --help)\n", command->name, message, command->name);
    return 2;
}

int cli_sign_certificate(struct hsm_token *token, enum certbuild_profile profile,
                         const X509_NAME *subject, const GENERAL_NAMES *san, EVP_PKEY *subject_key,
                         X509 *issuer, EVP_PKEY *issuer_key, int days, X509 **out,
                         estca_reason *why)
{
    unsigned char serial[16];
    int rc = hsm_random(token, serial, sizeof serial, why);
    if (rc != ESTCA_OK)
        return rc;
    time_t now = time(NULL);
    X509_PUBKEY *public_key = NULL;
    if (!X509_PUBKEY_set(&public_key, subject_key))
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "encoding the public key");
    struct certbuild_params params = {
        .profile = profile,
        .subject = subject,
        .subject_public_key = public_key,
        .san = san,
        .issuer = issuer,
        .issuer_key = issuer_key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = now - 60,
        .not_after = now + (time_t)days * 86400,
    };
    rc = certbuild_sign(&params, out, why);
    X509_PUBKEY_free(public_key);
    return rc;
}

int cli_parse_days(const char *text, int *out)
{
    char *end = NULL;
    errno = 0;
    long days = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || days <= 0 || days > 36500)
        return ESTCA_E_INVALID;
    *out = (int)days;
    return ESTCA_OK;
}

int cli_open_ledger(const char *config_file, const char *ledger_path, struct ledger **out,
                    estca_reason *why)
{
    if (ledger_path != NULL)
        return ledger_open(ledger_path, out, why);
    struct estca_config *config = NULL;
    int rc = config_load(config_file, &config, why);
    if (rc == ESTCA_OK)
        rc = ledger_open(config->ledger_path, out, why);
    config_free(config);
    return rc;
}

int cli_parse_ledger_options(const struct cli_command *command, int argc, char **argv,
                             struct cli_ledger_options *options, int operands, bool allow_out)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"ledger", required_argument, NULL, 'L'},
        {"json", no_argument, NULL, 'j'},
        {"out", required_argument, NULL, 'o'},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:o:", long_options, NULL)) != -1) {
        if (opt == 'c')
            options->config_file = optarg;
        else if (opt == 'L')
            options->ledger_path = optarg;
        else if (opt == 'j')
            options->json = 1;
        else if (opt == 'o' && allow_out)
            options->out = optarg;
        else
            return cli_usage_error(command, "unknown option");
    }
    if (options->config_file == NULL && options->ledger_path == NULL)
        return cli_usage_error(command, "give --config FILE or --ledger PATH");
    if (argc - optind != operands)
        return cli_usage_error(command, operands == 0 ? "no arguments expected"
                                                      : "wrong number of arguments");
    return 0;
}

/* Serials as people paste them: "8e:c7:e1", "0x8EC7E1", "8EC7E1". */
int cli_normalise_serial(const char *text, char *out, size_t cap)
{
    size_t n = 0;
    if (strncasecmp(text, "0x", 2) == 0)
        text += 2;
    for (; *text != '\0'; text++) {
        if (*text == ':')
            continue;
        if (!isxdigit((unsigned char)*text) || n + 1 >= cap)
            return ESTCA_E_INVALID;
        out[n++] = (char)toupper((unsigned char)*text);
    }
    out[n] = '\0';
    return n > 0 ? ESTCA_OK : ESTCA_E_INVALID;
}

int cli_parse_signing_options(const struct cli_command *command, int argc, char **argv,
                              struct cli_signing_options *options)
{
    static const struct option long_options[] = {
        {"key", required_argument, NULL, 'k'},
        {"subject", required_argument, NULL, 's'},
        {"san", required_argument, NULL, 'a'},
        {"days", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"chain-out", required_argument, NULL, 'C'},
        {"root-key", required_argument, NULL, 'K'},
        {"issuer-key", required_argument, NULL, 'K'},
        {"root-cert", required_argument, NULL, 'I'},
        {"issuer-cert", required_argument, NULL, 'I'},
        CLI_TOKEN_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "k:s:a:d:o:c:", long_options, NULL)) != -1) {
        if (cli_token_option(&options->token, opt, optarg))
            continue;
        const char **field = opt == 'k'   ? &options->key_uri
                             : opt == 's' ? &options->subject
                             : opt == 'a' ? &options->san
                             : opt == 'o' ? &options->out
                             : opt == 'C' ? &options->chain_out
                             : opt == 'K' ? &options->issuer_key_uri
                             : opt == 'I' ? &options->issuer_cert
                                          : NULL;
        if (field != NULL)
            *field = optarg;
        else if (opt != 'd')
            return cli_usage_error(command, "unknown option");
        else if (cli_parse_days(optarg, &options->days) != ESTCA_OK)
            return cli_usage_error(command, "--days takes a whole number from 1 to 36500");
    }
    if (options->key_uri == NULL || options->subject == NULL || options->out == NULL)
        return cli_usage_error(command, "--key, --subject and --out are needed");
    if (optind != argc)
        return cli_usage_error(command, "no arguments expected");
    return 0;
}

void cli_audit(const char *config_file, const char *event, json_t *fields)
{
    struct estca_config *config = NULL;
    struct audit_log *log = NULL;
    estca_reason why;
    if (config_file != NULL && config_load(config_file, &config, &why) == ESTCA_OK &&
        config->audit_path != NULL) {
        /* No key here: estcad's next checkpoint signs over these lines too. */
        if (audit_open(config->audit_path, NULL, "estca", 0, &log, &why) != ESTCA_OK ||
            audit_append(log, event, fields, &why) != ESTCA_OK)
            fprintf(stderr, "estca: warning: not recorded in the audit log: %s\n", why.text);
        audit_close(log);
    }
    config_free(config);
    json_decref(fields);
}

int cli_print_json_line(json_t *object)
{
    int ok = object != NULL && json_dumpf(object, stdout, JSON_COMPACT | JSON_SORT_KEYS) == 0;
    json_decref(object);
    putchar('\n');
    return ok ? ESTCA_OK : ESTCA_E_IO;
}
