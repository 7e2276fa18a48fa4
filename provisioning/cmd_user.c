/* estca user add / passwd / del: HTTP Basic users with a yescrypt-hashed password. The password
 * comes from standard input or a prompt, never from argv. */
#include "cli.h"
#include "credentials.h"
#include "otp.h"

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

/* --users-file FILE NAME, common to the user commands; *user_out points into argv. */
static int parse_user_options(const struct cli_command *command, int argc, char **argv,
                              const char **users_file, const char **user)
{
    static const struct option long_options[] = {
        {"users-file", required_argument, NULL, 'u'},
        {0, 0, 0, 0},
    };
    int opt;
    *users_file = NULL;
    while ((opt = getopt_long(argc, argv, "u:", long_options, NULL)) != -1) {
        if (opt == 'u')
            *users_file = optarg;
        else
            return cli_usage_error(command, "unknown option");
    }
    if (*users_file == NULL || optind != argc - 1)
        return cli_usage_error(command, "give --users-file FILE and one user name");
    *user = argv[optind];
    return 0;
}

static int store_new_password(const char *users_file, const char *user, estca_reason *why)
{
    char password[256];
    char hash[256];
    int rc = read_password(password, sizeof password, why);
    if (rc == ESTCA_OK)
        rc = credentials_hash(password, hash, sizeof hash, why);
    OPENSSL_cleanse(password, sizeof password);
    if (rc == ESTCA_OK)
        rc = credentials_file_set(users_file, user, hash, why);
    return rc;
}

static int run_user_add(int argc, char **argv)
{
    const char *users_file, *user;
    int usage = parse_user_options(&cmd_user_add, argc, argv, &users_file, &user);
    if (usage != 0)
        return usage;
    estca_reason why;
    /* On labels with otp = yes, "otp-N" is the user of one-time code N: such a password user
     * could never log in there. */
    if (strncmp(user, OTP_USER_PREFIX, strlen(OTP_USER_PREFIX)) == 0)
        return cli_usage_error(&cmd_user_add, "user names starting with " OTP_USER_PREFIX
                                              " are the one-time codes' (estca otp issue)");
    if (store_new_password(users_file, user, &why) != ESTCA_OK)
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

static int run_user_passwd(int argc, char **argv)
{
    const char *users_file, *user;
    int usage = parse_user_options(&cmd_user_passwd, argc, argv, &users_file, &user);
    if (usage != 0)
        return usage;
    estca_reason why;
    int rc = credentials_file_has(users_file, user, &why);
    if (rc == ESTCA_OK)
        rc = store_new_password(users_file, user, &why);
    if (rc != ESTCA_OK)
        return cli_fail(&cmd_user_passwd, &why);
    printf("user=%s password changed in %s\n", user, users_file);
    return 0;
}

const struct cli_command cmd_user_passwd = {
    .name = "user passwd",
    .summary = "change an existing user's password (from stdin or a prompt)",
    .usage = "  estca user passwd --users-file FILE NAME\n",
    .run = run_user_passwd,
};

static int run_user_del(int argc, char **argv)
{
    const char *users_file, *user;
    int usage = parse_user_options(&cmd_user_del, argc, argv, &users_file, &user);
    if (usage != 0)
        return usage;
    estca_reason why;
    if (credentials_file_remove(users_file, user, &why) != ESTCA_OK)
        return cli_fail(&cmd_user_del, &why);
    printf("user=%s removed from %s\n", user, users_file);
    return 0;
}

const struct cli_command cmd_user_del = {
    .name = "user del",
    .summary = "remove an HTTP Basic user",
    .usage = "  estca user del --users-file FILE NAME\n",
    .run = run_user_del,
};
