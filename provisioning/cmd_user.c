/* estca user add: an HTTP Basic user with a yescrypt-hashed password. The password comes from
 * standard input or a prompt, never from argv. */
#include "cli.h"
#include "credentials.h"

#include <openssl/crypto.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Reads one line without echo when stdin is a terminal. */
static int read_line(const char *prompt, char *buf, size_t cap)
{
    struct termios saved, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fprintf(stderr, "\n");
    }
    if (line == NULL)
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

static int read_password(char *password, size_t cap, estca_reason *why)
{
    if (read_line("password: ", password, cap) != 0)
        return estca_fail(why, ESTCA_E_INVALID, "no password on standard input");
    if (isatty(STDIN_FILENO)) {
        char again[256];
        int same = read_line("again: ", again, sizeof again) == 0 && strcmp(again, password) == 0;
        OPENSSL_cleanse(again, sizeof again);
        if (!same)
            return estca_fail(why, ESTCA_E_INVALID, "the passwords differ");
    }
    if (strlen(password) < 8)
        return estca_fail(why, ESTCA_E_INVALID, "a password needs at least 8 characters");
    return ESTCA_OK;
}

static int run_user_add(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"users-file", required_argument, NULL, 'u'},
        {0, 0, 0, 0},
    };
    const char *users_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "u:", long_options, NULL)) != -1) {
        if (opt == 'u')
            users_file = optarg;
        else
            return cli_usage_error(&cmd_user_add, "unknown option");
    }
    if (users_file == NULL || optind != argc - 1)
        return cli_usage_error(&cmd_user_add, "give --users-file FILE and one user name");
    const char *user = argv[optind];
    char password[256];
    char hash[256];
    estca_reason why;
    int rc = read_password(password, sizeof password, &why);
    if (rc == ESTCA_OK)
        rc = credentials_hash(password, hash, sizeof hash, &why);
    OPENSSL_cleanse(password, sizeof password);
    if (rc == ESTCA_OK)
        rc = credentials_file_set(users_file, user, hash, &why);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_user_add, &why);
    printf("user=%s stored in %s\n", user, users_file);
    return 0;
}

const struct cli_command cmd_user_add = {
    .name = "user add",
    .summary = "add or replace an HTTP Basic user (password from stdin or a prompt)",
    .usage = "  estca user add --users-file FILE NAME\n"
             "  -u, --users-file FILE   the credentials file (created mode 0600)\n",
    .run = run_user_add,
};
