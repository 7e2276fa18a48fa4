/* estca otp issue / list / revoke: one-time enrollment codes (appliance/otp.h) for devices
 * that have no other credential. A code is printed once, on stdout, and only its hash is
 * kept; estcad needs no restart, it reads the codes from the ledger. */
#include "cli.h"
#include "config.h"
#include "otp.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TTL_SECONDS (7L * 24 * 3600)
#define MAX_TTL_SECONDS (366L * 24 * 3600)
#define MAX_SANS_TEXT 4096

struct issue_options {
    const char *config_file;
    const char *ledger_path;
    const char *label;
    const char *subject;
    char sans[MAX_SANS_TEXT]; /* every --san, joined with commas; "" when none */
    long ttl_seconds;
};

static int parse_ttl(const char *text, long *out)
{
    char *end = NULL;
    errno = 0;
    long ttl = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || ttl <= 0 || ttl > MAX_TTL_SECONDS)
        return ESTCA_E_INVALID;
    *out = ttl;
    return ESTCA_OK;
}

static int add_san(struct issue_options *options, const char *san)
{
    size_t used = strlen(options->sans);
    int n = snprintf(options->sans + used, sizeof options->sans - used, "%s%s", used > 0 ? "," : "",
                     san);
    return n >= 0 && (size_t)n < sizeof options->sans - used ? ESTCA_OK : ESTCA_E_TOO_LARGE;
}

static int parse_issue_options(int argc, char **argv, struct issue_options *options)
{
    static const struct option long_options[] = {
        {"config", required_argument, NULL, 'c'},
        {"ledger", required_argument, NULL, 'L'},
        {"label", required_argument, NULL, 'l'},
        {"subject", required_argument, NULL, 's'},
        {"san", required_argument, NULL, 'a'},
        {"ttl", required_argument, NULL, 't'},
        {0, 0, 0, 0},
    };
    options->ttl_seconds = DEFAULT_TTL_SECONDS;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:s:", long_options, NULL)) != -1) {
        if (opt == 'c')
            options->config_file = optarg;
        else if (opt == 'L')
            options->ledger_path = optarg;
        else if (opt == 'l')
            options->label = optarg;
        else if (opt == 's')
            options->subject = optarg;
        else if (opt == 'a' && add_san(options, optarg) != ESTCA_OK)
            return cli_usage_error(&cmd_otp_issue, "--san: too many names");
        else if (opt == 't' && parse_ttl(optarg, &options->ttl_seconds) != ESTCA_OK)
            return cli_usage_error(&cmd_otp_issue, "--ttl takes seconds, from 1 to 31622400");
        else if (opt != 'a' && opt != 't')
            return cli_usage_error(&cmd_otp_issue, "unknown option");
    }
    if (options->config_file == NULL && options->ledger_path == NULL)
        return cli_usage_error(&cmd_otp_issue, "give --config FILE or --ledger PATH");
    if (options->label == NULL || options->subject == NULL)
        return cli_usage_error(&cmd_otp_issue, "--label and --subject are needed");
    if (optind != argc)
        return cli_usage_error(&cmd_otp_issue, "no arguments expected");
    return 0;
}

/* With --config, the label must exist and take codes: a code nobody can use is a mistake. */
static int check_label(const char *config_file, const char *name, estca_reason *why)
{
    if (config_file == NULL)
        return ESTCA_OK;
    struct estca_config *config = NULL;
    int rc = config_load(config_file, &config, why);
    const struct config_label *label = rc == ESTCA_OK ? config_find_label(config, name) : NULL;
    if (rc == ESTCA_OK && label == NULL)
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "%s has no [label:%s]", config_file, name);
    else if (rc == ESTCA_OK && label->otp != 1)
        rc = estca_fail(why, ESTCA_E_CONFIG, "[label:%s] takes no one-time codes (set otp = yes)",
                        name);
    config_free(config);
    return rc;
}

static void audit_issued(const struct issue_options *options, long id)
{
    cli_audit(options->config_file, "otp-issued",
              json_pack("{s:I, s:s, s:s, s:s?, s:I, s:i}", "code", (json_int_t)id, "label",
                        options->label, "subject", options->subject, "sans",
                        options->sans[0] != '\0' ? options->sans : NULL, "ttl_seconds",
                        (json_int_t)options->ttl_seconds, "operator_uid", (int)getuid()));
}

static int run_otp_issue(int argc, char **argv)
{
    struct issue_options options = {0};
    int usage = parse_issue_options(argc, argv, &options);
    if (usage != 0)
        return usage;
    estca_reason why;
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    struct ledger *ledger = NULL;
    int rc = check_label(options.config_file, options.label, &why);
    if (rc == ESTCA_OK)
        rc = profile_parse_name(options.subject, &subject, &why);
    if (rc == ESTCA_OK && options.sans[0] != '\0')
        rc = cli_parse_san(options.sans, &sans, &why);
    if (rc == ESTCA_OK)
        rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    long id = 0;
    char code[OTP_CODE_LEN + 1];
    struct otp_issue_request request = {
        .label = options.label,
        .subject = subject,
        .sans = sans,
        .sans_text = options.sans[0] != '\0' ? options.sans : NULL,
        .ttl_seconds = options.ttl_seconds,
    };
    if (rc == ESTCA_OK)
        rc = otp_issue(ledger, &request, &id, code, &why);
    ledger_close(ledger);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(sans);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_otp_issue, &why);
    audit_issued(&options, id);
    /* The only place the code ever appears: stdout, for the operator to hand to the device. */
    printf("id=%ld\nuser=" OTP_USER_PREFIX "%ld\ncode=%s\n", id, id, code);
    fflush(stdout);
    OPENSSL_cleanse(code, sizeof code);
    return 0;
}

static int print_code(const struct ledger_otp *code, void *arg)
{
    const int *json = arg;
    if (!*json) {
        char certificate[24] = "-";
        if (code->certificate > 0)
            snprintf(certificate, sizeof certificate, "%ld", code->certificate);
        printf("%-6ld %-8s %-10s %-20s %-20s %-6s %s%s%s\n", code->id, otp_status(code),
               code->label, code->created_at, code->expires_at, certificate, code->subject,
               code->sans != NULL ? " " : "", code->sans != NULL ? code->sans : "");
        return ESTCA_OK;
    }
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?}", "id", (json_int_t)code->id,
                  "status", otp_status(code), "label", code->label, "subject", code->subject,
                  "sans", code->sans, "created_at", code->created_at, "expires_at",
                  code->expires_at, "used_at", code->used_at, "revoked_at", code->revoked_at);
    if (o != NULL && code->certificate > 0)
        json_object_set_new(o, "certificate", json_integer(code->certificate));
    return cli_print_json_line(o);
}

static int run_otp_list(int argc, char **argv)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(&cmd_otp_list, argc, argv, &options, 0, false);
    if (usage != 0)
        return usage;
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK && !options.json)
        printf("%-6s %-8s %-10s %-20s %-20s %-6s %s\n", "id", "status", "label", "created_at",
               "expires_at", "cert", "subject [sans]");
    if (rc == ESTCA_OK)
        rc = ledger_otp_each(ledger, print_code, &options.json, &why);
    ledger_close(ledger);
    return rc == ESTCA_OK ? 0 : cli_fail(&cmd_otp_list, &why);
}

static int run_otp_revoke(int argc, char **argv)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(&cmd_otp_revoke, argc, argv, &options, 1, false);
    if (usage != 0)
        return usage;
    char *end = NULL;
    long id = strtol(argv[optind], &end, 10);
    if (end == argv[optind] || *end != '\0' || id <= 0)
        return cli_usage_error(&cmd_otp_revoke, "ID must be a positive number");
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK)
        rc = ledger_otp_revoke(ledger, id, &why);
    ledger_close(ledger);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_otp_revoke, &why);
    cli_audit(options.config_file, "otp-revoked",
              json_pack("{s:I, s:i}", "code", (json_int_t)id, "operator_uid", (int)getuid()));
    printf("otp=%ld revoked\n", id);
    return 0;
}

const struct cli_command cmd_otp_issue = {
    .name = "otp issue",
    .summary = "issue a one-time enrollment code for one subject on one label",
    .usage = "  -c, --config FILE     the ledger of FILE's [ledger] section (the label must\n"
             "                        have otp = yes there)\n"
             "      --ledger PATH     or this ledger database\n"
             "  -l, --label NAME      the EST label the code is for\n"
             "  -s, --subject NAME    the subject the CSR must carry, \"/CN=dev1/O=Example\"\n"
             "      --san NAMES       subjectAltNames the CSR may carry (DNS:a,IP:10.0.0.1,...;\n"
             "                        repeatable); none: the CSR may carry none\n"
             "      --ttl SECONDS     how long the code is valid (default 604800, 7 days)\n"
             "Prints the code's id, its HTTP Basic user (otp-ID) and the code, once: the device\n"
             "sends the code as that user's password or in its CSR's otpChallenge (RFC 7894).\n",
    .run = run_otp_issue,
};

const struct cli_command cmd_otp_list = {
    .name = "otp list",
    .summary = "list one-time enrollment codes and their status (never the codes)",
    .usage = "  -c, --config FILE   the ledger of FILE's [ledger] section\n"
             "      --ledger PATH   or this ledger database\n"
             "      --json          one JSON object per line\n",
    .run = run_otp_list,
};

const struct cli_command cmd_otp_revoke = {
    .name = "otp revoke",
    .summary = "make an unused one-time enrollment code unusable",
    .usage = "  estca otp revoke (--config FILE | --ledger PATH) ID\n",
    .run = run_otp_revoke,
};
