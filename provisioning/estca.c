/* estca: the operator's tool. One source file per command family, each registering its
 * name, summary and usage in a struct cli_command listed here. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const struct cli_command *const commands[] = {
    &cmd_token_init,   &cmd_key_generate,    &cmd_key_show,       &cmd_ca_root,
    &cmd_ca_issuing,   &cmd_tls_certificate, &cmd_user_add,       &cmd_user_passwd,
    &cmd_user_del,     &cmd_cert_list,       &cmd_cert_show,      &cmd_cert_export,
    &cmd_request_list, &cmd_request_approve, &cmd_request_reject, &cmd_cert_revoke,
    &cmd_crl_create,   &cmd_audit_verify,    &cmd_otp_issue,      &cmd_otp_list,
    &cmd_otp_revoke,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out)
{
    fprintf(out, "usage: estca COMMAND [OPTIONS]   (estca COMMAND --help for its options)\n\n"
                 "Provisioning and administration of the estca EST certificate authority.\n"
                 "Every CA key is created and used inside a PKCS#11 token.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-18s %s\n", commands[i]->name, commands[i]->summary);
}

/* Command names have one or two words ("user add"); match the longest. */
static const struct cli_command *find_command(int argc, char **argv, int *words)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *name = commands[i]->name;
        const char *space = strchr(name, ' ');
        if (space == NULL) {
            if (strcmp(name, argv[1]) == 0) {
                *words = 1;
                return commands[i];
            }
            continue;
        }
        size_t first_len = (size_t)(space - name);
        if (argc > 2 && strlen(argv[1]) == first_len && strncmp(name, argv[1], first_len) == 0 &&
            strcmp(space + 1, argv[2]) == 0) {
            *words = 2;
            return commands[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("estca %s\n", ESTCA_VERSION);
        return 0;
    }
    int words = 0;
    const struct cli_command *command = find_command(argc, argv, &words);
    if (command == NULL) {
        fprintf(stderr, "estca: unknown command '%s%s%s' (see estca --help)\n", argv[1],
                argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
        return 2;
    }
    for (int i = 1 + words; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: estca %s [OPTIONS]\n%s\n\n%s", command->name, command->summary,
                   command->usage);
            return 0;
        }
    }
    /* getopt sees the command name as argv[0]. */
    return command->run(argc - words, argv + words);
}
