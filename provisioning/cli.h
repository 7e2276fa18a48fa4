/* What every estca command shares: the command table entry, the token options
 * (--config, or --module/--token/--pin-file), and small parsers for names and files. */
#ifndef ESTCA_CLI_H
#define ESTCA_CLI_H

#include "certbuild.h"
#include "ledger.h"
#include "pem_file.h"
#include "profile.h"
#include "status.h"
#include "token.h"

#include <getopt.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>

struct cli_command {
    const char *name;    /* "ca root" */
    const char *summary; /* one line for `estca --help` */
    const char *usage;   /* the options, for `estca NAME --help` */
    int (*run)(int argc, char **argv);
};

/* Each command file defines one or more of these; estca.c lists them. */
extern const struct cli_command cmd_token_init, cmd_key_generate, cmd_key_show, cmd_ca_root,
    cmd_ca_issuing, cmd_tls_certificate, cmd_user_add, cmd_user_passwd, cmd_user_del, cmd_cert_list,
    cmd_cert_show, cmd_cert_export, cmd_request_list, cmd_request_approve, cmd_request_reject,
    cmd_cert_revoke, cmd_crl_create, cmd_audit_verify, cmd_otp_issue, cmd_otp_list, cmd_otp_revoke;

/* Token selection, common to commands that use keys. From --config FILE's [token] section,
 * each field overridable on the command line. */
struct cli_token_options {
    const char *config_file;
    const char *module;
    const char *token_uri;
    const char *pin_file;
};

#define CLI_TOKEN_LONG_OPTIONS                                                                     \
    {"config", required_argument, NULL, 'c'}, {"module", required_argument, NULL, 'M'},            \
        {"token", required_argument, NULL, 'T'},                                                   \
    {                                                                                              \
        "pin-file", required_argument, NULL, 'P'                                                   \
    }
#define CLI_TOKEN_USAGE                                                                            \
    "  -c, --config FILE     take the token settings from FILE's [token] section\n"                \
    "      --module PATH     PKCS#11 module (default " HSM_DEFAULT_MODULE ")\n"                    \
    "      --token URI       RFC 7512 token URI, e.g. pkcs11:token=estca\n"                        \
    "      --pin-file FILE   user PIN file, mode 0600 (default "                                   \
    "$CREDENTIALS_DIRECTORY/token-pin)\n"

/* Handles the token option letters c M T P; returns 1 if opt was one of them. */
int cli_token_option(struct cli_token_options *options, int opt, const char *arg);

/* Opens and logs in to the token the options name. */
int cli_token_open(const struct cli_token_options *options, struct hsm_token **out,
                   estca_reason *why);

/* "DNS:localhost,IP:127.0.0.1,IP:::1,URI:..." into new GENERAL_NAMES. */
int cli_parse_san(const char *text, GENERAL_NAMES **out, estca_reason *why);

/* Writes certificates as PEM to path (mode 0644), atomically. */
int cli_write_certificates(const char *path, X509 *const *certs, size_t n, estca_reason *why);

/* Signs a certificate for subject_key with issuer_key (issuer NULL: self-signed), a 16-byte
 * serial from the token's RNG, valid from now for days. Caller frees *out. */
int cli_sign_certificate(struct hsm_token *token, enum certbuild_profile profile,
                         const X509_NAME *subject, const GENERAL_NAMES *san, EVP_PKEY *subject_key,
                         X509 *issuer, EVP_PKEY *issuer_key, int days, X509 **out,
                         estca_reason *why);

/* Options of the commands that sign a certificate with token keys (ca root, ca issuing, tls
 * certificate): --key --subject --days --out, and --san, --chain-out, --root-key/--issuer-key,
 * --root-cert/--issuer-cert where the command takes them (each pair names the same thing), plus
 * the token options. Checks --key, --subject and --out. Returns 0 or a usage error's exit
 * code. */
struct cli_signing_options {
    struct cli_token_options token;
    const char *key_uri;
    const char *subject;
    const char *san;
    const char *out;
    const char *chain_out;
    const char *issuer_key_uri;
    const char *issuer_cert;
    int days; /* preset the command's default */
};
int cli_parse_signing_options(const struct cli_command *command, int argc, char **argv,
                              struct cli_signing_options *options);

/* Options of the commands that read or change the ledger: --config FILE or --ledger PATH,
 * --json, and --out FILE where allow_out. Checks that exactly `operands` arguments follow;
 * they start at argv[optind]. Returns 0, or the exit code of a usage error. */
struct cli_ledger_options {
    const char *config_file;
    const char *ledger_path;
    const char *out;
    int json;
};
int cli_parse_ledger_options(const struct cli_command *command, int argc, char **argv,
                             struct cli_ledger_options *options, int operands, bool allow_out);

/* The ledger at ledger_path, or else the one config_file's [ledger] section names. */
int cli_open_ledger(const char *config_file, const char *ledger_path, struct ledger **out,
                    estca_reason *why);

/* Prints object as one compact JSON line (the --json listings) and frees it; object may be
 * NULL (out of memory): ESTCA_E_IO. */
int cli_print_json_line(json_t *object);

/* A serial as people paste it ("8e:c7:e1", "0x8EC7E1", "8EC7E1") as upper-case hex. */
int cli_normalise_serial(const char *text, char *out, size_t cap);

/* Parses a positive day count. */
int cli_parse_days(const char *text, int *out);

/* Prints "estca NAME: reason" to stderr and returns 1, for `return cli_fail(...)` in run. */
int cli_fail(const struct cli_command *command, const estca_reason *why);
int cli_usage_error(const struct cli_command *command, const char *message);

/* Appends event with fields (consumed) to the audit log of config_file's [audit] path, as the
 * operator (uid) who ran estca; nothing when config_file is NULL or names no audit log. */
void cli_audit(const char *config_file, const char *event, json_t *fields);

#endif
