/* Password files: hashing and checking, refusal of loose file modes, and atomic updates that
 * keep the file private. */
#include "credentials.h"
#include "scratch_dir.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char users[PATH_MAX + 16];

static void setup(void)
{
    scratch_dir_make(dir, sizeof dir, "credentials");
    snprintf(users, sizeof users, "%s/users", dir);
}

static void teardown(void)
{
    scratch_dir_remove(dir);
}

TestSuite(credentials, .init = setup, .fini = teardown);

static void set_user(const char *user, const char *password)
{
    char hash[128];
    estca_reason why = {{0}};
    cr_assert_eq(credentials_hash(password, hash, sizeof hash, &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(credentials_file_set(users, user, hash, &why), ESTCA_OK, "%s", why.text);
}

static struct credentials *load(void)
{
    struct credentials *credentials = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(credentials_load(users, &credentials, &why), ESTCA_OK, "%s", why.text);
    return credentials;
}

static void write_users(const char *text, mode_t mode)
{
    int fd = open(users, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static mode_t file_mode(void)
{
    struct stat st;
    cr_assert_eq(stat(users, &st), 0);
    return st.st_mode & 07777;
}

Test(credentials, hash_is_yescrypt)
{
    char hash[128];
    cr_assert_eq(credentials_hash("secret", hash, sizeof hash, NULL), ESTCA_OK);
    cr_expect_eq(strncmp(hash, "$y$", 3), 0, "%s", hash);
    char other[128];
    cr_assert_eq(credentials_hash("secret", other, sizeof other, NULL), ESTCA_OK);
    cr_expect_str_neq(hash, other, "salts must differ");
    cr_expect_eq(credentials_hash("secret", hash, 64, NULL), ESTCA_E_INVALID);
}

Test(credentials, check_right_and_wrong_password)
{
    set_user("alice", "correct horse");
    set_user("bob", "battery staple");
    struct credentials *credentials = load();
    cr_expect_eq(credentials_check(credentials, "alice", "correct horse"), ESTCA_OK);
    cr_expect_eq(credentials_check(credentials, "bob", "battery staple"), ESTCA_OK);
    cr_expect_eq(credentials_check(credentials, "alice", "battery staple"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "alice", ""), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "alice", "correct horsE"), ESTCA_E_AUTH);
    credentials_free(credentials);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A verified password is remembered (one HMAC instead of a yescrypt), but only that password:
 * a wrong one, or another user's, is still refused after a success. */
Test(credentials, remembered_success_is_fast_and_only_for_that_password)
{
    set_user("alice", "correct horse");
    set_user("bob", "battery staple");
    struct credentials *credentials = load();
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    cr_assert_eq(credentials_check(credentials, "alice", "correct horse"), ESTCA_OK);
    double first = seconds_since(&start);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(credentials_check(credentials, "alice", "correct horse"), ESTCA_OK);
    double fifty = seconds_since(&start);
    cr_expect_lt(fifty, first * 5, "50 remembered checks took %.4fs, one full check %.4fs", fifty,
                 first);
    cr_expect_eq(credentials_check(credentials, "alice", "correct horsE"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "alice", ""), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "bob", "correct horse"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "alice", "correct horse"), ESTCA_OK);
    credentials_free(credentials);
}

static double seconds_for(const struct credentials *credentials, const char *user)
{
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 3; i++)
        credentials_check(credentials, user, "wrong");
    clock_gettime(CLOCK_MONOTONIC, &end);
    return (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
}

Test(credentials, unknown_user_refused_after_the_same_work)
{
    set_user("alice", "pw");
    struct credentials *credentials = load();
    cr_expect_eq(credentials_check(credentials, "mallory", "pw"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "", "pw"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(NULL, "alice", "pw"), ESTCA_E_AUTH);
    /* A yescrypt computation for both: an unknown user must not answer measurably faster. */
    double known = seconds_for(credentials, "alice");
    double unknown = seconds_for(credentials, "mallory");
    cr_expect_gt(unknown, known / 3, "unknown %.4fs vs known %.4fs", unknown, known);
    credentials_free(credentials);
}

Test(credentials, comments_and_blank_lines)
{
    char hash[128];
    cr_assert_eq(credentials_hash("pw", hash, sizeof hash, NULL), ESTCA_OK);
    char text[512];
    snprintf(text, sizeof text, "# users\n\ncarol:%s\n", hash);
    write_users(text, 0600);
    struct credentials *credentials = load();
    cr_expect_eq(credentials_check(credentials, "carol", "pw"), ESTCA_OK);
    credentials_free(credentials);
}

Test(credentials, loose_mode_refused)
{
    set_user("alice", "pw");
    cr_assert_eq(chmod(users, 0640), 0);
    struct credentials *credentials = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(credentials_load(users, &credentials, &why), ESTCA_E_CONFIG);
    cr_expect_null(credentials);
    cr_expect_not_null(strstr(why.text, "640"), "%s", why.text);
}

Test(credentials, malformed_files_refused)
{
    const char *bad[] = {"alice\n", "alice:plaintext\n", ":plaintext\n",
                         "alice:$y$a\nalice:$y$b\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_users(bad[i], 0600);
        struct credentials *credentials = NULL;
        estca_reason why = {{0}};
        cr_expect_eq(credentials_load(users, &credentials, &why), ESTCA_E_CONFIG, "%s", bad[i]);
        cr_expect_not_null(strstr(why.text, "users:"), "line number missing: %s", why.text);
        cr_expect_null(credentials);
    }
}

Test(credentials, missing_file_refused)
{
    struct credentials *credentials = NULL;
    cr_expect_neq(credentials_load(users, &credentials, NULL), ESTCA_OK);
    cr_expect_null(credentials);
}

Test(credentials, file_set_adds_and_replaces_keeping_0600)
{
    write_users("# managed by estca user add\n", 0644); /* looser than allowed: tightened */
    set_user("alice", "old");
    cr_expect_eq(file_mode(), 0600);
    set_user("bob", "bob's");
    set_user("alice", "new");
    cr_expect_eq(file_mode(), 0600);

    struct credentials *credentials = load();
    cr_expect_eq(credentials_check(credentials, "alice", "new"), ESTCA_OK);
    cr_expect_eq(credentials_check(credentials, "alice", "old"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "bob", "bob's"), ESTCA_OK);
    credentials_free(credentials);

    /* The comment stays, alice keeps her place, and no temporary file is left behind. */
    FILE *file = fopen(users, "r");
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, file));
    cr_expect_str_eq(line, "# managed by estca user add\n");
    cr_assert_not_null(fgets(line, sizeof line, file));
    cr_expect_eq(strncmp(line, "alice:", 6), 0, "%s", line);
    cr_assert_not_null(fgets(line, sizeof line, file));
    cr_expect_eq(strncmp(line, "bob:", 4), 0, "%s", line);
    cr_expect_null(fgets(line, sizeof line, file));
    fclose(file);
    DIR *listing = opendir(dir);
    cr_assert_not_null(listing);
    int entries = 0;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL;)
        entries += entry->d_name[0] != '.';
    closedir(listing);
    cr_expect_eq(entries, 1, "only the users file");
}

Test(credentials, file_set_refuses_bad_names)
{
    char hash[128];
    cr_assert_eq(credentials_hash("pw", hash, sizeof hash, NULL), ESTCA_OK);
    cr_expect_eq(credentials_file_set(users, "a:b", hash, NULL), ESTCA_E_INVALID);
    cr_expect_eq(credentials_file_set(users, "a\nb", hash, NULL), ESTCA_E_INVALID);
    cr_expect_eq(credentials_file_set(users, "alice", "plain", NULL), ESTCA_E_INVALID);
    cr_expect_eq(access(users, F_OK), -1, "nothing written");
}

Test(credentials, file_remove_drops_only_that_user)
{
    write_users("# operators\n", 0600);
    set_user("alice", "alice's password");
    set_user("bob", "bob's password");
    estca_reason why = {{0}};
    cr_assert_eq(credentials_file_has(users, "alice", &why), ESTCA_OK, "%s", why.text);
    cr_assert_eq(credentials_file_remove(users, "alice", &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(credentials_file_has(users, "alice", NULL), ESTCA_E_NOT_FOUND);
    cr_expect_eq(credentials_file_remove(users, "alice", NULL), ESTCA_E_NOT_FOUND);
    cr_expect_eq(credentials_file_remove(users, "bad:name", NULL), ESTCA_E_INVALID);
    cr_expect_eq(file_mode(), 0600);
    struct credentials *credentials = load();
    cr_expect_eq(credentials_check(credentials, "alice", "alice's password"), ESTCA_E_AUTH);
    cr_expect_eq(credentials_check(credentials, "bob", "bob's password"), ESTCA_OK);
    credentials_free(credentials);
    char text[512] = {0};
    FILE *file = fopen(users, "r");
    cr_assert_not_null(file);
    cr_expect_gt(fread(text, 1, sizeof text - 1, file), 0u);
    fclose(file);
    cr_expect_not_null(strstr(text, "# operators\n"), "comments survive: %s", text);
}

/* RFC 7030 §3.2.3: a client may authenticate with a password and an empty user name. */
Test(credentials, the_empty_user_name_is_a_user)
{
    set_user("", "nameless password");
    struct credentials *c = load();
    cr_expect_eq(credentials_check(c, "", "nameless password"), ESTCA_OK);
    cr_expect_eq(credentials_check(c, "", "wrong"), ESTCA_E_AUTH);
    credentials_free(c);
}
