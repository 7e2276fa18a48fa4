/* One-time enrollment codes in the ledger (otp.h, ledger_otp.c) on a real SQLite file: a code
 * is drawn, kept only as its hash, burnt by exactly one certificate (also when threads on
 * separate connections race), never by an expired or revoked one, given back when recording
 * the certificate fails, and found burnt after a reopen. */
#include "certbuild.h"
#include "scratch_dir.h"
#include "ledger.h"
#include "otp.h"
#include "profile.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 32];
static EVP_PKEY *key; /* one key for every test certificate: only serials differ */

static void setup(void)
{
    scratch_dir_make(dir, sizeof dir, "otp");
    snprintf(db_path, sizeof db_path, "%s/ledger.sqlite", dir);
    key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
}

static void teardown(void)
{
    EVP_PKEY_free(key);
    scratch_dir_remove(dir);
}

TestSuite(otp, .init = setup, .fini = teardown);

/* A certificate for /CN=dev1 with serial n. */
static X509 *certificate(unsigned long n)
{
    unsigned char serial[8];
    for (int i = 7; i >= 0; i--, n >>= 8)
        serial[i] = (unsigned char)(n & 0xff);
    X509_NAME *subject = NULL;
    cr_assert_eq(profile_parse_name("/CN=dev1", &subject, NULL), ESTCA_OK);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = CERTBUILD_ROOT_CA,
        .subject = subject,
        .subject_public_key = public_key,
        .issuer_key = key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = 1700000000,
        .not_after = 1700000000 + 86400,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(certbuild_sign(&params, &cert, &why), ESTCA_OK, "%s", why.text);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    return cert;
}

static struct ledger *open_ledger(void)
{
    struct ledger *ledger = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(ledger_open(db_path, &ledger, &why), ESTCA_OK, "%s", why.text);
    return ledger;
}

/* Issues a code for /CN=dev1 on label "default" (with sans, if any); *code gets it. */
static long issue(struct ledger *ledger, long ttl, const char *sans, char code[OTP_CODE_LEN + 1])
{
    X509_NAME *subject = NULL;
    GENERAL_NAMES *names = NULL;
    cr_assert_eq(profile_parse_name("/CN=dev1/O=Example", &subject, NULL), ESTCA_OK);
    if (sans != NULL) {
        names = GENERAL_NAMES_new();
        GENERAL_NAME *name = GENERAL_NAME_new();
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        cr_assert(ASN1_STRING_set(dns, sans, -1));
        GENERAL_NAME_set0_value(name, GEN_DNS, dns);
        sk_GENERAL_NAME_push(names, name);
    }
    struct otp_issue_request request = {
        .label = "default",
        .subject = subject,
        .sans = names,
        .sans_text = sans,
        .ttl_seconds = ttl,
    };
    long id = 0;
    estca_reason why = {{0}};
    cr_assert_eq(otp_issue(ledger, &request, &id, code, &why), ESTCA_OK, "%s", why.text);
    cr_assert_gt(id, 0);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(names);
    return id;
}

/* Records cert as issued for code id. */
static int record_for(struct ledger *ledger, long id, X509 *cert, estca_reason *why)
{
    struct ledger_issued entry = {
        .ca_name = "issuing",
        .label = "default",
        .requester = "otp:1",
        .certificate = cert,
        .otp_code = id,
    };
    return ledger_record_issued(ledger, &entry, why);
}

static long count(struct ledger *ledger)
{
    long n = -1;
    cr_assert_eq(ledger_count_issued(ledger, &n, NULL), ESTCA_OK);
    return n;
}

/* What the ledger says of a code, copied out of the visit. */
struct seen {
    long id;
    char status[16];
    char label[32];
    char subject[64];
    char sans[64];
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    long certificate;
};

static int copy(const struct ledger_otp *code, void *arg)
{
    struct seen *seen = arg;
    seen->id = code->id;
    snprintf(seen->status, sizeof seen->status, "%s", otp_status(code));
    snprintf(seen->label, sizeof seen->label, "%s", code->label);
    snprintf(seen->subject, sizeof seen->subject, "%s", code->subject);
    snprintf(seen->sans, sizeof seen->sans, "%s", code->sans != NULL ? code->sans : "");
    cr_assert_not_null(code->code_sha256);
    memcpy(seen->hash, code->code_sha256, sizeof seen->hash);
    seen->certificate = code->certificate;
    return ESTCA_OK;
}

static struct seen find(struct ledger *ledger, long id)
{
    struct seen seen = {0};
    estca_reason why = {{0}};
    cr_assert_eq(ledger_otp_find(ledger, id, NULL, copy, &seen, &why), ESTCA_OK, "%s", why.text);
    return seen;
}

static bool file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    return memmem(data, n, text, strlen(text)) != NULL;
}

Test(otp, issue_keeps_only_the_hash)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 3600, "dev1.example", code);
    cr_expect_eq(strlen(code), OTP_CODE_LEN);
    cr_expect_eq(strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), OTP_CODE_LEN);
    struct seen seen = find(ledger, id);
    cr_expect_str_eq(seen.status, "unused");
    cr_expect_str_eq(seen.label, "default");
    cr_expect_str_eq(seen.subject, "O=Example,CN=dev1");
    cr_expect_str_eq(seen.sans, "dev1.example");
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    cr_assert(EVP_Digest(code, OTP_CODE_LEN, hash, NULL, EVP_sha256(), NULL));
    cr_expect_eq(memcmp(seen.hash, hash, sizeof hash), 0);
    struct seen by_hash = {0};
    cr_expect_eq(ledger_otp_find(ledger, 0, hash, copy, &by_hash, NULL), ESTCA_OK);
    cr_expect_eq(by_hash.id, id);
    hash[0] ^= 1;
    cr_expect_eq(ledger_otp_find(ledger, 0, hash, copy, &by_hash, NULL), ESTCA_E_NOT_FOUND);
    cr_expect_eq(ledger_otp_find(ledger, id + 1, NULL, copy, &by_hash, NULL), ESTCA_E_NOT_FOUND);
    ledger_close(ledger);
    cr_expect(!file_contains(db_path, code), "the code is in the ledger file");
    char other[OTP_CODE_LEN + 1];
    ledger = open_ledger();
    issue(ledger, 3600, NULL, other);
    cr_expect_str_neq(code, other);
    ledger_close(ledger);
}

Test(otp, burnt_once_with_its_certificate)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 3600, NULL, code);
    X509 *first = certificate(1), *second = certificate(2);
    estca_reason why = {{0}};
    cr_assert_eq(record_for(ledger, id, first, &why), ESTCA_OK, "%s", why.text);
    struct seen seen = find(ledger, id);
    cr_expect_str_eq(seen.status, "used");
    cr_expect_gt(seen.certificate, 0);
    cr_expect_eq(record_for(ledger, id, second, &why), ESTCA_E_AUTH);
    cr_expect(strstr(why.text, "meanwhile") != NULL, "%s", why.text);
    cr_expect_eq(count(ledger), 1, "the second certificate must not be recorded");
    cr_expect_eq(find(ledger, id).certificate, seen.certificate);
    ledger_close(ledger);
    /* Burnt for good: the next process finds it so. */
    ledger = open_ledger();
    cr_expect_str_eq(find(ledger, id).status, "used");
    cr_expect_eq(record_for(ledger, id, second, NULL), ESTCA_E_AUTH);
    ledger_close(ledger);
    X509_free(first);
    X509_free(second);
}

/* Recording that fails (here: the serial is taken) leaves the code usable. */
Test(otp, given_back_when_recording_fails)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 3600, NULL, code);
    X509 *cert = certificate(7);
    struct ledger_issued plain = {.ca_name = "issuing", .certificate = cert};
    cr_assert_eq(ledger_record_issued(ledger, &plain, NULL), ESTCA_OK);
    estca_reason why = {{0}};
    cr_expect_eq(record_for(ledger, id, cert, &why), ESTCA_E_LEDGER);
    cr_expect_str_eq(find(ledger, id).status, "unused");
    X509 *other = certificate(8);
    cr_expect_eq(record_for(ledger, id, other, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(count(ledger), 2);
    ledger_close(ledger);
    X509_free(cert);
    X509_free(other);
}

Test(otp, expired_code_burns_nothing)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 1, NULL, code);
    sleep(2);
    cr_expect_str_eq(find(ledger, id).status, "expired");
    X509 *cert = certificate(3);
    cr_expect_eq(record_for(ledger, id, cert, NULL), ESTCA_E_AUTH);
    cr_expect_eq(count(ledger), 0);
    ledger_close(ledger);
    X509_free(cert);
}

Test(otp, revoked_code_burns_nothing)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 3600, NULL, code);
    estca_reason why = {{0}};
    cr_expect_eq(ledger_otp_revoke(ledger, id, &why), ESTCA_OK, "%s", why.text);
    cr_expect_str_eq(find(ledger, id).status, "revoked");
    cr_expect_eq(ledger_otp_revoke(ledger, id, NULL), ESTCA_E_INVALID);
    cr_expect_eq(ledger_otp_revoke(ledger, id + 1, NULL), ESTCA_E_NOT_FOUND);
    X509 *cert = certificate(4);
    cr_expect_eq(record_for(ledger, id, cert, NULL), ESTCA_E_AUTH);
    cr_expect_eq(count(ledger), 0);
    /* A used code cannot be revoked either. */
    long used = issue(ledger, 3600, NULL, code);
    cr_assert_eq(record_for(ledger, used, cert, NULL), ESTCA_OK);
    cr_expect_eq(ledger_otp_revoke(ledger, used, NULL), ESTCA_E_INVALID);
    cr_expect_str_eq(find(ledger, used).status, "used");
    ledger_close(ledger);
    X509_free(cert);
}

#define RACERS 8

struct racer {
    long code;
    X509 *cert;
    int rc;
};

/* Each racer on its own connection, as estcad and a second estcad (or the CLI) would be. */
static void *race(void *arg)
{
    struct racer *racer = arg;
    struct ledger *ledger = NULL;
    racer->rc = ledger_open(db_path, &ledger, NULL);
    if (racer->rc == ESTCA_OK)
        racer->rc = record_for(ledger, racer->code, racer->cert, NULL);
    ledger_close(ledger);
    return NULL;
}

Test(otp, racing_uses_one_winner)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    long id = issue(ledger, 3600, NULL, code);
    struct racer racers[RACERS];
    pthread_t threads[RACERS];
    for (int i = 0; i < RACERS; i++)
        racers[i] = (struct racer){.code = id, .cert = certificate((unsigned long)(100 + i))};
    for (int i = 0; i < RACERS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    int won = 0, lost = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        won += racers[i].rc == ESTCA_OK;
        lost += racers[i].rc == ESTCA_E_AUTH;
        X509_free(racers[i].cert);
    }
    cr_expect_eq(won, 1);
    cr_expect_eq(lost, RACERS - 1);
    cr_expect_eq(count(ledger), 1);
    cr_expect_str_eq(find(ledger, id).status, "used");
    ledger_close(ledger);
}

static int count_visit(const struct ledger_otp *code, void *arg)
{
    (void)code;
    (*(int *)arg)++;
    return ESTCA_OK;
}

Test(otp, list_and_bad_arguments)
{
    struct ledger *ledger = open_ledger();
    char code[OTP_CODE_LEN + 1];
    issue(ledger, 3600, NULL, code);
    issue(ledger, 3600, NULL, code);
    int n = 0;
    cr_expect_eq(ledger_otp_each(ledger, count_visit, &n, NULL), ESTCA_OK);
    cr_expect_eq(n, 2);
    X509_NAME *subject = NULL;
    cr_assert_eq(profile_parse_name("/CN=x", &subject, NULL), ESTCA_OK);
    struct otp_issue_request no_ttl = {.label = "default", .subject = subject};
    long id = 0;
    cr_expect_eq(otp_issue(ledger, &no_ttl, &id, code, NULL), ESTCA_E_INVALID);
    cr_expect_eq(ledger_otp_find(ledger, 0, NULL, count_visit, &n, NULL), ESTCA_E_INVALID);
    X509_NAME_free(subject);
    ledger_close(ledger);
}
