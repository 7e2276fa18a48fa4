/* estca cert list / show / export: what the ledger says the CA issued. Reads the ledger named
 * by --config's [ledger] path or --ledger; safe while estcad runs (SQLite WAL). */
#include "cli.h"
#include "config.h"
#include "ledger.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <string.h>

static json_t *certificate_json(const struct ledger_certificate *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(c->id));
    const char *names[] = {"ca",         "label",      "serial",    "subject",
                           "sans",       "not_before", "not_after", "requester",
                           "csr_sha256", "status",     "issued_at"};
    const char *values[] = {c->ca,         c->label,      c->serial,    c->subject,
                            c->sans,       c->not_before, c->not_after, c->requester,
                            c->csr_sha256, c->status,     c->issued_at};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_set_new(o, names[i], values[i] ? json_string(values[i]) : json_null());
    return o;
}

static int print_json(const struct ledger_certificate *c, void *arg)
{
    (void)arg;
    json_t *o = certificate_json(c);
    return cli_print_json_line(o);
}

static int print_line(const struct ledger_certificate *c, void *arg)
{
    (void)arg;
    printf("%-40s %-7s %-20s %-10s %s\n", c->serial, c->status, c->not_after,
           c->label ? c->label : "-", c->subject);
    return ESTCA_OK;
}

static int run_cert_list(int argc, char **argv)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(&cmd_cert_list, argc, argv, &options, 0, false);
    if (usage != 0)
        return usage;
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK && !options.json)
        printf("%-40s %-7s %-20s %-10s %s\n", "serial", "status", "not_after", "label", "subject");
    if (rc == ESTCA_OK)
        rc = ledger_each_issued(ledger, NULL, options.json ? print_json : print_line, NULL, &why);
    ledger_close(ledger);
    return rc == ESTCA_OK ? 0 : cli_fail(&cmd_cert_list, &why);
}

const struct cli_command cmd_cert_list = {
    .name = "cert list",
    .summary = "list every issued certificate in the ledger",
    .usage = "  -c, --config FILE   the ledger of FILE's [ledger] section\n"
             "      --ledger PATH   or this ledger database\n"
             "      --json          one JSON object per line\n",
    .run = run_cert_list,
};

struct found {
    int count;
    int json;
    FILE *pem_out; /* export: where the PEM goes */
};

static int show_one(const struct ledger_certificate *c, void *arg)
{
    struct found *found = arg;
    found->count++;
    if (found->pem_out != NULL) {
        const unsigned char *p = c->der;
        X509 *cert = d2i_X509(NULL, &p, (long)c->der_len);
        int ok = cert != NULL && PEM_write_X509(found->pem_out, cert);
        X509_free(cert);
        return ok ? ESTCA_OK : ESTCA_E_IO;
    }
    if (found->json)
        return print_json(c, NULL);
    printf("serial: %s\nca: %s\nlabel: %s\nstatus: %s\nsubject: %s\nsubjectAltName: %s\n"
           "not_before: %s\nnot_after: %s\nrequester: %s\ncsr_sha256: %s\nissued_at: %s\n",
           c->serial, c->ca, c->label ? c->label : "-", c->status, c->subject,
           c->sans ? c->sans : "-", c->not_before, c->not_after, c->requester ? c->requester : "-",
           c->csr_sha256 ? c->csr_sha256 : "-", c->issued_at);
    return ESTCA_OK;
}

static int show_or_export(const struct cli_command *command, int argc, char **argv, int export)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(command, argc, argv, &options, 1, export);
    if (usage != 0)
        return usage;
    char serial[128];
    /* "all" cannot be a serial (not hexadecimal): export every certificate, for audits and
     * publication. */
    bool every = export && strcmp(argv[optind], "all") == 0;
    if (!every && cli_normalise_serial(argv[optind], serial, sizeof serial) != ESTCA_OK)
        return cli_usage_error(command, "SERIAL must be hexadecimal");
    estca_reason why;
    struct ledger *ledger = NULL;
    struct found found = {.json = options.json};
    FILE *out = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK && export) {
        out = options.out ? fopen(options.out, "w") : stdout;
        if (out == NULL)
            rc = estca_fail(&why, ESTCA_E_IO, "cannot write %s", options.out);
        found.pem_out = out;
    }
    if (rc == ESTCA_OK)
        rc = ledger_each_issued(ledger, every ? NULL : serial, show_one, &found, &why);
    if (out != NULL && out != stdout && fclose(out) != 0 && rc == ESTCA_OK)
        rc = estca_fail(&why, ESTCA_E_IO, "cannot write %s", options.out);
    ledger_close(ledger);
    if (rc == ESTCA_OK && found.count == 0 && !every)
        rc = estca_fail(&why, ESTCA_E_NOT_FOUND, "no certificate with serial %s", serial);
    return rc == ESTCA_OK ? 0 : cli_fail(command, &why);
}

static int run_cert_show(int argc, char **argv)
{
    return show_or_export(&cmd_cert_show, argc, argv, 0);
}

static int run_cert_export(int argc, char **argv)
{
    return show_or_export(&cmd_cert_export, argc, argv, 1);
}

const struct cli_command cmd_cert_show = {
    .name = "cert show",
    .summary = "show what the ledger holds for one serial",
    .usage = "  estca cert show [--json] (--config FILE | --ledger PATH) SERIAL\n",
    .run = run_cert_show,
};

const struct cli_command cmd_cert_export = {
    .name = "cert export",
    .summary = "write the certificate with a serial (or every one) as PEM",
    .usage = "  estca cert export (--config FILE | --ledger PATH) [--out FILE] (SERIAL | all)\n",
    .run = run_cert_export,
};
