/* The ledger on a real SQLite file: recording, refusal of a repeated serial, persistence across
 * reopen, and concurrent inserts from several threads. */
#include "certbuild.h"
#include "scratch_dir.h"
#include "ledger.h"

#include <criterion/criterion.h>
#include <openssl/bn.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 32];
static EVP_PKEY *key; /* one key for every test certificate: only serials differ */

static void setup(void)
{
    scratch_dir_make(dir, sizeof dir, "ledger");
    snprintf(db_path, sizeof db_path, "%s/ledger.sqlite", dir);
    key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
}

static void teardown(void)
{
    EVP_PKEY_free(key);
    scratch_dir_remove(dir);
}

TestSuite(ledger, .init = setup, .fini = teardown);

/* A certificate with serial n (big-endian in 8 octets) and a DNS subjectAltName. */
static X509 *certificate_for(unsigned long n, time_t not_before, time_t not_after)
{
    unsigned char serial[8];
    for (int i = 7; i >= 0; i--, n >>= 8)
        serial[i] = (unsigned char)(n & 0xff);
    X509_NAME *subject = X509_NAME_new();
    cr_assert(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                         (const unsigned char *)"device, one", -1, -1, 0));
    cr_assert(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                         (const unsigned char *)"Example", -1, -1, 0));
    GENERAL_NAMES *san = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
    cr_assert(ASN1_STRING_set(dns, "device.example", -1));
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    sk_GENERAL_NAME_push(san, gn);
    X509_PUBKEY *public_key = NULL;
    cr_assert(X509_PUBKEY_set(&public_key, key));
    struct certbuild_params params = {
        .profile = CERTBUILD_ROOT_CA,
        .subject = subject,
        .subject_public_key = public_key,
        .san = san,
        .issuer_key = key,
        .serial = serial,
        .serial_len = sizeof serial,
        .not_before = not_before,
        .not_after = not_after,
    };
    X509 *cert = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(certbuild_sign(&params, &cert, &why), ESTCA_OK, "%s", why.text);
    X509_PUBKEY_free(public_key);
    X509_NAME_free(subject);
    GENERAL_NAMES_free(san);
    return cert;
}

/* A certificate with serial n, valid for a day from 2023-11-14T22:13:20Z. */
static X509 *certificate(unsigned long n)
{
    return certificate_for(n, 1700000000, 1700000000 + 86400);
}

/* A certificate with serial n that is valid now. */
static X509 *certificate_valid_now(unsigned long n)
{
    time_t now = time(NULL);
    return certificate_for(n, now - 60, now + 86400);
}

static struct ledger *open_ledger(void)
{
    struct ledger *ledger = NULL;
    estca_reason why = {{0}};
    cr_assert_eq(ledger_open(db_path, &ledger, &why), ESTCA_OK, "%s", why.text);
    return ledger;
}

static int record(struct ledger *ledger, const char *ca, X509 *cert, estca_reason *why)
{
    static const unsigned char csr[] = "not really a CSR";
    struct ledger_issued entry = {
        .ca_name = ca,
        .label = "default",
        .requester = "user:alice",
        .certificate = cert,
        .csr_der = csr,
        .csr_der_len = sizeof csr - 1,
    };
    return ledger_record_issued(ledger, &entry, why);
}

static long count(struct ledger *ledger)
{
    long n = -1;
    estca_reason why = {{0}};
    cr_assert_eq(ledger_count_issued(ledger, &n, &why), ESTCA_OK, "%s", why.text);
    return n;
}

Test(ledger, record_and_count)
{
    struct ledger *ledger = open_ledger();
    cr_expect_eq(count(ledger), 0);
    X509 *cert = certificate(0x1234);
    estca_reason why = {{0}};
    cr_assert_eq(record(ledger, "issuing", cert, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(count(ledger), 1);
    ledger_close(ledger);
    X509_free(cert);
}

Test(ledger, row_contents)
{
    struct ledger *ledger = open_ledger();
    X509 *cert = certificate(0xabcdef);
    cr_assert_eq(record(ledger, "issuing", cert, NULL), ESTCA_OK);
    ledger_close(ledger);

    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT ca, label, serial, subject, sans, not_before, "
                                    "not_after, requester, csr_sha256, der, status, replaces, "
                                    "issued_at FROM certificates",
                                    -1, &stmt, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 0), "issuing");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 1), "default");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 2), "ABCDEF");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 3), "O=Example,CN=device\\, one");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 4), "DNS:device.example");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 5), "2023-11-14T22:13:20Z");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 6), "2023-11-15T22:13:20Z");
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 7), "user:alice");
    /* sha256 of "not really a CSR" */
    unsigned char digest[32];
    char hex[65];
    EVP_Digest("not really a CSR", 16, digest, NULL, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 8), hex);
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    cr_expect_eq(sqlite3_column_bytes(stmt, 9), der_len);
    cr_expect_arr_eq(sqlite3_column_blob(stmt, 9), der, (size_t)der_len);
    OPENSSL_free(der);
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 10), "valid");
    cr_expect_eq(sqlite3_column_type(stmt, 11), SQLITE_NULL);
    cr_expect_eq(strlen((const char *)sqlite3_column_text(stmt, 12)), 20);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    X509_free(cert);
}

Test(ledger, duplicate_serial_refused_per_ca)
{
    struct ledger *ledger = open_ledger();
    X509 *cert = certificate(42);
    estca_reason why = {{0}};
    cr_assert_eq(record(ledger, "issuing", cert, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(record(ledger, "issuing", cert, &why), ESTCA_E_LEDGER);
    cr_expect_not_null(strstr(why.text, "already recorded"), "%s", why.text);
    cr_expect_eq(count(ledger), 1);
    /* The same serial from another CA is another certificate. */
    cr_expect_eq(record(ledger, "other", cert, &why), ESTCA_OK, "%s", why.text);
    cr_expect_eq(count(ledger), 2);
    ledger_close(ledger);
    X509_free(cert);
}

Test(ledger, reopen_persists)
{
    struct ledger *ledger = open_ledger();
    for (unsigned long n = 1; n <= 3; n++) {
        X509 *cert = certificate(n);
        cr_assert_eq(record(ledger, "issuing", cert, NULL), ESTCA_OK);
        X509_free(cert);
    }
    ledger_close(ledger);
    ledger = open_ledger();
    cr_expect_eq(count(ledger), 3);
    ledger_close(ledger);
}

Test(ledger, file_settings)
{
    ledger_close(open_ledger());
    struct stat st;
    cr_assert_eq(stat(db_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(stmt, 0), 6);
    sqlite3_finalize(stmt);
    /* The CRL publisher's count of revocations must not walk every certificate. */
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM certificates"
                                    " WHERE ca = 'x' AND status = 'revoked'",
                                    -1, &stmt, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
    cr_expect(strstr((const char *)sqlite3_column_text(stmt, 3), "certificates_revoked") != NULL,
              "plan: %s", sqlite3_column_text(stmt, 3));
    sqlite3_finalize(stmt);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(stmt), SQLITE_ROW);
    cr_expect_str_eq((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

Test(ledger, newer_schema_refused)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct ledger *ledger = NULL;
    estca_reason why = {{0}};
    cr_expect_eq(ledger_open(db_path, &ledger, &why), ESTCA_E_LEDGER);
    cr_expect_null(ledger);
    cr_expect_not_null(strstr(why.text, "99"), "%s", why.text);
}

#define THREADS 4
#define PER_THREAD 50

struct worker {
    struct ledger *ledger;
    X509 *certs[PER_THREAD];
    int failures;
};

static void *insert_all(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        if (record(w->ledger, "issuing", w->certs[i], NULL) != ESTCA_OK)
            w->failures++;
    }
    return NULL;
}

Test(ledger, concurrent_inserts_all_recorded)
{
    struct ledger *ledger = open_ledger();
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.ledger = ledger};
        for (int i = 0; i < PER_THREAD; i++) /* certificates made before, so threads collide */
            workers[t].certs[i] = certificate((unsigned long)(t * PER_THREAD + i + 1));
    }
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, insert_all, &workers[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++) {
        cr_expect_eq(workers[t].failures, 0);
        for (int i = 0; i < PER_THREAD; i++)
            X509_free(workers[t].certs[i]);
    }
    cr_expect_eq(count(ledger), THREADS * PER_THREAD);
    ledger_close(ledger);
}

/* Threads that race to record the same serials: the ledger commits concurrent certificates
 * together, and a duplicate in such a batch must fail alone (its savepoint), never take the
 * others of its batch with it. So every serial is recorded exactly once. */
struct racer {
    struct ledger *ledger;
    X509 *certs[PER_THREAD];
    int recorded;
    int refused_as_duplicate;
};

static void *race_all(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        estca_reason why = {{0}};
        int rc = record(r->ledger, "issuing", r->certs[i], &why);
        if (rc == ESTCA_OK)
            r->recorded++;
        else if (rc == ESTCA_E_LEDGER && strstr(why.text, "already recorded") != NULL)
            r->refused_as_duplicate++;
    }
    return NULL;
}

Test(ledger, racing_duplicates_fail_alone)
{
    enum { RACERS = 8 };
    struct ledger *ledger = open_ledger();
    struct racer racers[RACERS];
    for (int t = 0; t < RACERS; t++) {
        racers[t] = (struct racer){.ledger = ledger};
        for (int i = 0; i < PER_THREAD; i++)
            racers[t].certs[i] = certificate((unsigned long)(i + 1));
    }
    pthread_t threads[RACERS];
    for (int t = 0; t < RACERS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, race_all, &racers[t]), 0);
    for (int t = 0; t < RACERS; t++)
        pthread_join(threads[t], NULL);
    int recorded = 0, duplicates = 0;
    for (int t = 0; t < RACERS; t++) {
        recorded += racers[t].recorded;
        duplicates += racers[t].refused_as_duplicate;
        for (int i = 0; i < PER_THREAD; i++)
            X509_free(racers[t].certs[i]);
    }
    cr_expect_eq(recorded, PER_THREAD);
    cr_expect_eq(duplicates, (RACERS - 1) * PER_THREAD);
    cr_expect_eq(count(ledger), PER_THREAD);
    ledger_close(ledger);
}

/* max_valid: the requester's valid certificates are counted in the recording transaction, so
 * threads racing for the last allowed certificate leave exactly max_valid of them. */
static int record_limited(struct ledger *ledger, X509 *cert, long max_valid, estca_reason *why)
{
    struct ledger_issued entry = {
        .ca_name = "issuing",
        .label = "default",
        .requester = "user:limited",
        .certificate = cert,
        .max_valid = max_valid,
    };
    return ledger_record_issued(ledger, &entry, why);
}

struct limited_racer {
    struct ledger *ledger;
    X509 *cert;
    int rc;
};

static void *race_limited(void *arg)
{
    struct limited_racer *r = arg;
    r->rc = record_limited(r->ledger, r->cert, 2, NULL);
    return NULL;
}

Test(ledger, max_valid_counted_when_recording)
{
    enum { RACERS = 8 };
    struct ledger *ledger = open_ledger();
    struct limited_racer racers[RACERS];
    pthread_t threads[RACERS];
    for (int t = 0; t < RACERS; t++) {
        racers[t] = (struct limited_racer){.ledger = ledger,
                                           .cert = certificate_valid_now((unsigned long)(t + 1))};
    }
    for (int t = 0; t < RACERS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, race_limited, &racers[t]), 0);
    int recorded = 0, refused = 0;
    for (int t = 0; t < RACERS; t++) {
        pthread_join(threads[t], NULL);
        recorded += racers[t].rc == ESTCA_OK;
        refused += racers[t].rc == ESTCA_E_FORBIDDEN;
        X509_free(racers[t].cert);
    }
    cr_expect_eq(recorded, 2);
    cr_expect_eq(refused, RACERS - 2);
    long valid = -1;
    estca_reason why = {{0}};
    cr_assert_eq(ledger_count_valid_for(ledger, "user:limited", &valid, &why), ESTCA_OK, "%s",
                 why.text);
    cr_expect_eq(valid, 2);
    /* Without a limit the same requester may have more. */
    X509 *more = certificate_valid_now(100);
    cr_expect_eq(record_limited(ledger, more, 0, &why), ESTCA_OK, "%s", why.text);
    X509 *over = certificate_valid_now(101);
    cr_expect_eq(record_limited(ledger, over, 3, &why), ESTCA_E_FORBIDDEN);
    cr_expect(strstr(why.text, "may hold 3 valid certificates and has 3") != NULL, "%s", why.text);
    X509_free(more);
    X509_free(over);
    ledger_close(ledger);
}

/* A ledger written by the first schema (certificates only) is brought up to date on open,
 * keeping its rows, and can then hold requests, revocations and CRL numbers. */
Test(ledger, migrates_version_1)
{
    struct ledger *ledger = open_ledger();
    X509 *cert = certificate(7);
    cr_assert_eq(record(ledger, "issuing", cert, NULL), ESTCA_OK);
    ledger_close(ledger);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    /* Back to the first schema's shape: the certificates columns it had, no other table. */
    cr_assert_eq(sqlite3_exec(db,
                              "DROP TABLE requests; DROP TABLE crl_numbers; DROP TABLE otp_codes;"
                              "CREATE TABLE v1 (id INTEGER PRIMARY KEY, ca TEXT NOT NULL,"
                              " label TEXT, serial TEXT NOT NULL, subject TEXT NOT NULL,"
                              " sans TEXT, not_before TEXT NOT NULL, not_after TEXT NOT NULL,"
                              " requester TEXT, csr_sha256 TEXT, der BLOB NOT NULL,"
                              " status TEXT NOT NULL DEFAULT 'valid',"
                              " replaces INTEGER NULL REFERENCES certificates(id),"
                              " issued_at TEXT NOT NULL, UNIQUE (ca, serial));"
                              "INSERT INTO v1 SELECT id, ca, label, serial, subject, sans,"
                              " not_before, not_after, requester, csr_sha256, der, status,"
                              " replaces, issued_at FROM certificates;"
                              "DROP TABLE certificates; ALTER TABLE v1 RENAME TO certificates;"
                              "PRAGMA user_version = 1",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);

    ledger = open_ledger();
    cr_expect_eq(count(ledger), 1);
    struct ledger_state state;
    cr_expect_eq(ledger_lookup(ledger, "issuing", cert, &state, NULL), ESTCA_OK);
    cr_expect_eq(state.revoked, false);
    static const unsigned char csr[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    struct ledger_request_state request;
    cr_expect_eq(
        ledger_request_file(ledger, "default", csr, sizeof csr, NULL, "user:a", &request, NULL),
        ESTCA_OK);
    cr_expect_eq(request.status, LEDGER_REQUEST_PENDING);
    cr_expect_eq(ledger_request_decide(ledger, request.id, true, NULL), ESTCA_OK);
    cr_expect_eq(ledger_request_decide(ledger, request.id, false, NULL), ESTCA_E_INVALID);
    cr_expect_eq(ledger_request_decide(ledger, request.id + 1, true, NULL), ESTCA_E_NOT_FOUND);
    char *serial = BN_bn2hex(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL));
    cr_expect_eq(ledger_revoke(ledger, "issuing", serial, 1, NULL), ESTCA_OK);
    cr_expect_eq(ledger_lookup(ledger, "issuing", cert, &state, NULL), ESTCA_OK);
    cr_expect(state.revoked);
    long number = 0;
    cr_expect_eq(ledger_next_crl_number(ledger, "issuing", &number, NULL), ESTCA_OK);
    cr_expect_eq(number, 1);
    cr_expect_eq(ledger_next_crl_number(ledger, "issuing", &number, NULL), ESTCA_OK);
    cr_expect_eq(number, 2);
    OPENSSL_free(serial);
    X509_free(cert);
    ledger_close(ledger);
}
