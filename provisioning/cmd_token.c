/* estca token init: initialise an empty token slot and set its user PIN. */
#include "cli.h"
#include "keygen.h"

static int run_token_init(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"label", required_argument, NULL, 'l'},
        {"module", required_argument, NULL, 'M'},
        {"so-pin-file", required_argument, NULL, 'S'},
        {"pin-file", required_argument, NULL, 'P'},
        {0, 0, 0, 0},
    };
    const char *label = NULL, *module = NULL, *so_pin_file = NULL, *pin_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "l:", long_options, NULL)) != -1) {
        switch (opt) {
        case 'l':
            label = optarg;
            break;
        case 'M':
            module = optarg;
            break;
        case 'S':
            so_pin_file = optarg;
            break;
        case 'P':
            pin_file = optarg;
            break;
        default:
            return cli_usage_error(&cmd_token_init, "unknown option");
        }
    }
    if (label == NULL || so_pin_file == NULL || pin_file == NULL)
        return cli_usage_error(&cmd_token_init, "--label, --so-pin-file and --pin-file are needed");
    estca_reason why;
    if (hsm_token_init(module, label, so_pin_file, pin_file, &why) != ESTCA_OK)
        return cli_fail(&cmd_token_init, &why);
    printf("token=%s initialised\n", label);
    return 0;
}

const struct cli_command cmd_token_init = {
    .name = "token init",
    .summary = "initialise a free token slot with a label, SO PIN and user PIN",
    .usage = "  -l, --label LABEL       token label (the token= of its URI)\n"
             "      --module PATH       PKCS#11 module (default " HSM_DEFAULT_MODULE ")\n"
             "      --so-pin-file FILE  security officer PIN, mode 0600\n"
             "      --pin-file FILE     user PIN, mode 0600\n",
    .run = run_token_init,
};
