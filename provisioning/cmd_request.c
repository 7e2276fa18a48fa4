/* estca request list / approve / reject: the operator's side of manual approval (labels with
 * approval = manual). estcad needs no restart: the client's next re-post finds the decision. */
#include "cli.h"

#include <unistd.h>

#include <jansson.h>
#include <stdlib.h>

static int print_request(const struct ledger_request *r, void *arg)
{
    const int *json = arg;
    if (!*json) {
        printf("%-6ld %-9s %-20s %-10s %-24s %s\n", r->id, r->status, r->received_at, r->label,
               r->requester ? r->requester : "-", r->subject ? r->subject : "-");
        return ESTCA_OK;
    }
    json_t *o = json_pack("{s:I, s:s, s:s?, s:s?, s:s, s:s, s:s?, s:s}", "id", (json_int_t)r->id,
                          "label", r->label, "subject", r->subject, "requester", r->requester,
                          "status", r->status, "received_at", r->received_at, "decided_at",
                          r->decided_at, "csr_sha256", r->csr_sha256);
    return cli_print_json_line(o);
}

static int run_request_list(int argc, char **argv)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(&cmd_request_list, argc, argv, &options, 0, false);
    if (usage != 0)
        return usage;
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK && !options.json)
        printf("%-6s %-9s %-20s %-10s %-24s %s\n", "id", "status", "received_at", "label",
               "requester", "subject");
    if (rc == ESTCA_OK)
        rc = ledger_each_request(ledger, print_request, &options.json, &why);
    ledger_close(ledger);
    return rc == ESTCA_OK ? 0 : cli_fail(&cmd_request_list, &why);
}

static int decide(const struct cli_command *command, int argc, char **argv, bool approve)
{
    struct cli_ledger_options options = {0};
    int usage = cli_parse_ledger_options(command, argc, argv, &options, 1, false);
    if (usage != 0)
        return usage;
    char *end = NULL;
    long id = strtol(argv[optind], &end, 10);
    if (end == argv[optind] || *end != '\0' || id <= 0)
        return cli_usage_error(command, "ID must be a positive number");
    estca_reason why;
    struct ledger *ledger = NULL;
    int rc = cli_open_ledger(options.config_file, options.ledger_path, &ledger, &why);
    if (rc == ESTCA_OK)
        rc = ledger_request_decide(ledger, id, approve, &why);
    ledger_close(ledger);
    if (rc != ESTCA_OK)
        return cli_fail(command, &why);
    cli_audit(options.config_file, approve ? "request-approved" : "request-rejected",
              json_pack("{s:I, s:i}", "request", (json_int_t)id, "operator_uid", (int)getuid()));
    printf("request=%ld %s\n", id, approve ? "approved" : "rejected");
    return 0;
}

static int run_request_approve(int argc, char **argv)
{
    return decide(&cmd_request_approve, argc, argv, true);
}

static int run_request_reject(int argc, char **argv)
{
    return decide(&cmd_request_reject, argc, argv, false);
}

const struct cli_command cmd_request_list = {
    .name = "request list",
    .summary = "list enrollment requests waiting for (or past) an operator's decision",
    .usage = "  -c, --config FILE   the ledger of FILE's [ledger] section\n"
             "      --ledger PATH   or this ledger database\n"
             "      --json          one JSON object per line\n",
    .run = run_request_list,
};

const struct cli_command cmd_request_approve = {
    .name = "request approve",
    .summary = "approve a pending request: the client's next re-post gets its certificate",
    .usage = "  estca request approve (--config FILE | --ledger PATH) ID\n",
    .run = run_request_approve,
};

const struct cli_command cmd_request_reject = {
    .name = "request reject",
    .summary = "reject a pending request: the client's next re-post gets 403",
    .usage = "  estca request reject (--config FILE | --ledger PATH) ID\n",
    .run = run_request_reject,
};
