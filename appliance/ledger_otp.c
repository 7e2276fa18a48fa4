/* One-time enrollment codes in the ledger's otp_codes table (otp.h makes and checks them).
 * The table holds the code's SHA-256, never the code. A code is burnt by one conditional
 * UPDATE (still unused, not revoked, not expired) inside the transaction that records the
 * certificate it is used for (ledger.c), so of two requests racing with one code exactly one
 * gets a certificate, and a restart finds the code burnt. Each call runs under the ledger's
 * lock; codes are rare next to issuance, so statements are prepared per call. */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ledger's times are ISO 8601 UTC text, which SQLite's strftime writes too, so that
 * they compare as text. */
#define LEDGER_NOW "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
#define OTP_COLUMNS                                                                                \
    "id, label, subject, subject_der, sans, sans_der, code_sha256, created_at, expires_at,"        \
    " used_at, revoked_at, certificate,"                                                           \
    " used_at IS NULL AND revoked_at IS NULL AND expires_at > " LEDGER_NOW

static const char *column_text(sqlite3_stmt *stmt, int column)
{
    return (const char *)sqlite3_column_text(stmt, column);
}

static struct ledger_otp code_from_row(sqlite3_stmt *stmt)
{
    struct ledger_otp code = {
        .id = (long)sqlite3_column_int64(stmt, 0),
        .label = column_text(stmt, 1),
        .subject = column_text(stmt, 2),
        .subject_der = sqlite3_column_blob(stmt, 3),
        .sans = column_text(stmt, 4),
        .sans_der = sqlite3_column_blob(stmt, 5),
        .code_sha256 = sqlite3_column_blob(stmt, 6),
        .created_at = column_text(stmt, 7),
        .expires_at = column_text(stmt, 8),
        .used_at = column_text(stmt, 9),
        .revoked_at = column_text(stmt, 10),
        .certificate = (long)sqlite3_column_int64(stmt, 11),
        .usable = sqlite3_column_int(stmt, 12) != 0,
    };
    code.subject_der_len = (size_t)sqlite3_column_bytes(stmt, 3);
    code.sans_der_len = (size_t)sqlite3_column_bytes(stmt, 5);
    /* A row that is not what this file wrote (a hash of another length) is no code. */
    if (code.code_sha256 != NULL && sqlite3_column_bytes(stmt, 6) != LEDGER_OTP_HASH_LEN)
        code.code_sha256 = NULL;
    return code;
}

int ledger_otp_insert(struct ledger *ledger, const struct ledger_otp *code, long ttl_seconds,
                      long *id, estca_reason *why)
{
    if (ledger == NULL || code == NULL || id == NULL || code->label == NULL ||
        code->subject_der == NULL || code->code_sha256 == NULL || ttl_seconds <= 0)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_otp_insert: bad arguments");
    /* The subject's text is the ledger's own, as for certificates. */
    const unsigned char *p = code->subject_der;
    X509_NAME *name = d2i_X509_NAME(NULL, &p, (long)code->subject_der_len);
    char *subject = name != NULL ? ledger_subject_rfc2253(name) : NULL;
    X509_NAME_free(name);
    if (subject == NULL)
        return estca_fail_openssl(why, ESTCA_E_INVALID, "ledger_otp_insert: bad subject");
    time_t now = time(NULL);
    time_t expires = now + (time_t)ttl_seconds;
    struct tm tm;
    char created_at[LEDGER_ISO8601_LEN], expires_at[LEDGER_ISO8601_LEN];
    ledger_format_tm(gmtime_r(&now, &tm), created_at);
    ledger_format_tm(gmtime_r(&expires, &tm), expires_at);
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            "INSERT INTO otp_codes (label, subject, subject_der, sans, sans_der,"
                            " code_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            &stmt, why);
    if (rc == ESTCA_OK &&
        (ledger_bind_text(stmt, 1, code->label) != SQLITE_OK ||
         ledger_bind_text(stmt, 2, subject) != SQLITE_OK ||
         sqlite3_bind_blob(stmt, 3, code->subject_der, (int)code->subject_der_len, SQLITE_STATIC) !=
             SQLITE_OK ||
         ledger_bind_text(stmt, 4, code->sans) != SQLITE_OK ||
         (code->sans_der != NULL
              ? sqlite3_bind_blob(stmt, 5, code->sans_der, (int)code->sans_der_len, SQLITE_STATIC)
              : sqlite3_bind_null(stmt, 5)) != SQLITE_OK ||
         sqlite3_bind_blob(stmt, 6, code->code_sha256, LEDGER_OTP_HASH_LEN, SQLITE_STATIC) !=
             SQLITE_OK ||
         ledger_bind_text(stmt, 7, created_at) != SQLITE_OK ||
         ledger_bind_text(stmt, 8, expires_at) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "insert one-time code");
    if (rc == ESTCA_OK)
        *id = (long)sqlite3_last_insert_rowid(ledger->db);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    free(subject);
    return rc;
}

int ledger_otp_find(struct ledger *ledger, long id, const unsigned char *code_sha256,
                    int (*visit)(const struct ledger_otp *code, void *arg), void *arg,
                    estca_reason *why)
{
    if (ledger == NULL || visit == NULL || (id <= 0 && code_sha256 == NULL))
        return estca_fail(why, ESTCA_E_INVALID, "ledger_otp_find: bad arguments");
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            id > 0 ? "SELECT " OTP_COLUMNS " FROM otp_codes WHERE id = ?"
                                   : "SELECT " OTP_COLUMNS " FROM otp_codes WHERE code_sha256 = ?",
                            &stmt, why);
    if (rc == ESTCA_OK && (id > 0 ? sqlite3_bind_int64(stmt, 1, id)
                                  : sqlite3_bind_blob(stmt, 1, code_sha256, LEDGER_OTP_HASH_LEN,
                                                      SQLITE_STATIC)) != SQLITE_OK)
        rc = ledger_sqlite_fail(ledger, why, "bind");
    int step = rc == ESTCA_OK ? sqlite3_step(stmt) : SQLITE_ERROR;
    if (rc == ESTCA_OK && step == SQLITE_ROW) {
        struct ledger_otp code = code_from_row(stmt);
        rc = visit(&code, arg);
    } else if (rc == ESTCA_OK && step == SQLITE_DONE) {
        rc = id > 0 ? estca_fail(why, ESTCA_E_NOT_FOUND, "no one-time code %ld", id)
                    : estca_fail(why, ESTCA_E_NOT_FOUND, "no such one-time code");
    } else if (rc == ESTCA_OK) {
        rc = ledger_sqlite_fail(ledger, why, "select one-time code");
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_otp_each(struct ledger *ledger, int (*visit)(const struct ledger_otp *code, void *arg),
                    void *arg, estca_reason *why)
{
    if (ledger == NULL || visit == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_otp_each: bad arguments");
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc =
        ledger_prepare(ledger, "SELECT " OTP_COLUMNS " FROM otp_codes ORDER BY id", &stmt, why);
    int step = SQLITE_DONE;
    while (rc == ESTCA_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct ledger_otp code = code_from_row(stmt);
        rc = visit(&code, arg);
    }
    if (rc == ESTCA_OK && step != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "select one-time codes");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

/* Runs stmt to its end and gives sqlite3_changes; the lock is held. */
static int update(struct ledger *ledger, sqlite3_stmt *stmt, int *changes, estca_reason *why)
{
    if (sqlite3_step(stmt) != SQLITE_DONE)
        return ledger_sqlite_fail(ledger, why, "update one-time code");
    *changes = sqlite3_changes(ledger->db);
    return ESTCA_OK;
}

static int found(const struct ledger_otp *code, void *arg)
{
    (void)code, (void)arg;
    return ESTCA_OK;
}

int ledger_otp_revoke(struct ledger *ledger, long id, estca_reason *why)
{
    if (ledger == NULL || id <= 0)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_otp_revoke: bad arguments");
    char now[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(now);
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    int rc = ledger_prepare(ledger,
                            "UPDATE otp_codes SET revoked_at = ?1"
                            " WHERE id = ?2 AND used_at IS NULL AND revoked_at IS NULL",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, now) != SQLITE_OK ||
                           sqlite3_bind_int64(stmt, 2, id) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK)
        rc = update(ledger, stmt, &changes, why);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    if (rc != ESTCA_OK || changes == 1)
        return rc;
    /* Why nothing changed: no such code, or it was used or revoked already. */
    bool exists = ledger_otp_find(ledger, id, NULL, found, NULL, NULL) != ESTCA_E_NOT_FOUND;
    return exists ? estca_fail(why, ESTCA_E_INVALID, "one-time code %ld is used or revoked already",
                               id)
                  : estca_fail(why, ESTCA_E_NOT_FOUND, "no one-time code %ld", id);
}

int ledger_otp_burn_locked(struct ledger *ledger, long code, long certificate, const char *now,
                           estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    int changes = 0;
    int rc = ledger_prepare(ledger,
                            "UPDATE otp_codes SET used_at = ?1, certificate = ?2"
                            " WHERE id = ?3 AND used_at IS NULL AND revoked_at IS NULL"
                            " AND expires_at > ?1",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, now) != SQLITE_OK ||
                           sqlite3_bind_int64(stmt, 2, certificate) != SQLITE_OK ||
                           sqlite3_bind_int64(stmt, 3, code) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK)
        rc = update(ledger, stmt, &changes, why);
    sqlite3_finalize(stmt);
    if (rc == ESTCA_OK && changes != 1)
        rc = estca_fail(why, ESTCA_E_AUTH,
                        "one-time code %ld was used, revoked or expired meanwhile", code);
    return rc;
}
