/* The audit log on a real file: the chain and checkpoints verify, and every kind of tampering
 * (a deleted, altered, reordered or cut line, a rewritten tail, another key) is detected. Two
 * writers on one file and several threads keep one chain. The checkpoint key is a software key
 * here; estcad's is on the token (tests/integration/test_audit.sh). */
#include "audit.h"
#include "scratch_dir.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char path[PATH_MAX + 32];
static EVP_PKEY *key;

static void setup(void)
{
    scratch_dir_make(dir, sizeof dir, "audit");
    snprintf(path, sizeof path, "%s/audit.log", dir);
    key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
}

static void teardown(void)
{
    EVP_PKEY_free(key);
    scratch_dir_remove(dir);
}

TestSuite(audit, .init = setup, .fini = teardown);

static void write_events(int n, unsigned every)
{
    struct audit_log *log = NULL;
    estca_reason why;
    cr_assert_eq(audit_open(path, key, "ca:test", every, &log, &why), ESTCA_OK, "%s", why.text);
    for (int i = 0; i < n; i++) {
        json_t *fields = json_pack("{s:i, s:s}", "n", i, "subject", "CN=device");
        cr_assert_eq(audit_append(log, "enroll", fields, &why), ESTCA_OK, "%s", why.text);
        json_decref(fields);
    }
    audit_close(log);
}

static int verify(struct audit_verification *result, estca_reason *why)
{
    return audit_verify(path, key, result, why);
}

/* The file's lines, to tamper with. */
static int read_lines(char lines[][1024], int cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    int n = 0;
    while (n < cap && fgets(lines[n], 1024, f) != NULL)
        n++;
    fclose(f);
    return n;
}

static void write_lines(char lines[][1024], int n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < n; i++)
        fputs(lines[i], f);
    fclose(f);
}

static void expect_broken(const char *what)
{
    struct audit_verification result;
    estca_reason why = {{0}};
    cr_expect_eq(verify(&result, &why), ESTCA_E_INVALID, "%s went unnoticed", what);
    cr_log_info("%s: %s", what, why.text);
}

Test(audit, chain_and_checkpoints_verify)
{
    write_events(10, 4);
    struct audit_verification result;
    estca_reason why;
    cr_assert_eq(verify(&result, &why), ESTCA_OK, "%s", why.text);
    /* 10 events, a checkpoint after every 4th, and one at close for the last 2. */
    cr_expect_eq(result.lines, 13);
    cr_expect_eq(result.checkpoints, 3);
    cr_expect_eq(result.unsigned_tail, 0);
}

Test(audit, lines_carry_event_fields_and_prev)
{
    write_events(1, 0);
    char lines[4][1024];
    cr_assert_eq(read_lines(lines, 4), 2);
    cr_expect(strstr(lines[0], "\"seq\":1,") != NULL, "%s", lines[0]);
    cr_expect(strstr(lines[0], "\"event\":\"enroll\"") != NULL, "%s", lines[0]);
    cr_expect(strstr(lines[0], "\"subject\":\"CN=device\"") != NULL, "%s", lines[0]);
    cr_expect(strstr(lines[0], "\"prev\":\"0000000000000000") != NULL, "%s", lines[0]);
    cr_expect(strstr(lines[1], "\"event\":\"checkpoint\"") != NULL, "%s", lines[1]);
}

Test(audit, a_deleted_line_is_detected)
{
    write_events(6, 0);
    char lines[16][1024];
    int n = read_lines(lines, 16);
    memmove(lines[2], lines[3], (size_t)(n - 3) * sizeof lines[0]);
    write_lines(lines, n - 1);
    expect_broken("a deleted line");
}

Test(audit, an_altered_line_is_detected)
{
    write_events(6, 0);
    char lines[16][1024];
    int n = read_lines(lines, 16);
    char *subject = strstr(lines[3], "CN=device");
    cr_assert_not_null(subject);
    subject[3] = 'X';
    write_lines(lines, n);
    expect_broken("an altered line");
}

Test(audit, reordered_lines_are_detected)
{
    write_events(6, 0);
    char lines[16][1024];
    int n = read_lines(lines, 16);
    char swap[1024];
    memcpy(swap, lines[1], sizeof swap);
    memcpy(lines[1], lines[2], sizeof swap);
    memcpy(lines[2], swap, sizeof swap);
    write_lines(lines, n);
    expect_broken("two swapped lines");
}

Test(audit, an_altered_last_event_breaks_the_final_checkpoint)
{
    write_events(3, 0);
    char lines[8][1024];
    int n = read_lines(lines, 8);
    char *subject = strstr(lines[n - 2], "CN=device");
    cr_assert_not_null(subject);
    subject[3] = 'Y';
    write_lines(lines, n);
    expect_broken("an altered last event");
}

/* Someone who rewrites the chain from some line on (recomputing every prev) cannot forge the
 * checkpoint: here the whole log is rewritten with another key's checkpoints. */
Test(audit, checkpoints_of_another_key_are_detected)
{
    EVP_PKEY *ours = key;
    key = EVP_EC_gen("P-256");
    write_events(3, 0);
    EVP_PKEY_free(key);
    key = ours;
    expect_broken("a checkpoint signed by another key");
}

Test(audit, a_cut_line_is_detected_and_later_appends_continue)
{
    write_events(2, 0);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs("{\"seq\":4,\"ti", f); /* a write cut short by a crash */
    fclose(f);
    write_events(1, 0);
    char lines[8][1024];
    int n = read_lines(lines, 8);
    cr_expect_eq(n, 6, "the cut line was terminated, not overwritten");
    expect_broken("a cut line");
}

Test(audit, two_writers_keep_one_chain)
{
    struct audit_log *a = NULL, *b = NULL;
    estca_reason why;
    cr_assert_eq(audit_open(path, key, "ca:test", 0, &a, &why), ESTCA_OK);
    cr_assert_eq(audit_open(path, NULL, NULL, 0, &b, &why), ESTCA_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(audit_append(a, "enroll", NULL, &why), ESTCA_OK, "%s", why.text);
        cr_assert_eq(audit_append(b, "revoke", NULL, &why), ESTCA_OK, "%s", why.text);
    }
    audit_close(b);
    audit_close(a);
    struct audit_verification result;
    cr_assert_eq(verify(&result, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(result.lines, 11);
}

static void *append_many(void *arg)
{
    struct audit_log *log = arg;
    estca_reason why;
    for (int i = 0; i < 100; i++) {
        if (audit_append(log, "enroll", NULL, &why) != ESTCA_OK)
            return (void *)1;
    }
    return NULL;
}

Test(audit, threads_keep_one_chain)
{
    struct audit_log *log = NULL;
    estca_reason why;
    cr_assert_eq(audit_open(path, key, "ca:test", 50, &log, &why), ESTCA_OK);
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, append_many, log);
    for (int i = 0; i < 4; i++) {
        void *failed = NULL;
        pthread_join(threads[i], &failed);
        cr_expect_null(failed);
    }
    audit_close(log);
    struct audit_verification result;
    cr_assert_eq(verify(&result, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(result.lines, 400 + 8);
    cr_expect_eq(result.checkpoints, 8);
}
