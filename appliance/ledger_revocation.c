/* Revocation in the ledger: the status, time and reason of a revoked certificate, the revoked
 * certificates a CRL lists, and each CA's CRL numbers. Operator actions, not the request path:
 * statements are prepared per call. */
#include "ledger_internal.h"

#include <string.h>

/* How many certificates carry serial (of ca_name, or of any CA), and whether one is revoked. */
static int count_serial(struct ledger *ledger, const char *ca_name, const char *serial, int *count,
                        bool *revoked, estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc =
        ledger_prepare(ledger,
                       "SELECT COUNT(*), COALESCE(MAX(status = 'revoked'), 0) FROM certificates"
                       " WHERE serial = upper(?1) AND (?2 IS NULL OR ca = ?2)",
                       &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, serial) != SQLITE_OK ||
                           ledger_bind_text(stmt, 2, ca_name) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_ROW)
        rc = ledger_sqlite_fail(ledger, why, "count serial");
    if (rc == ESTCA_OK) {
        *count = sqlite3_column_int(stmt, 0);
        *revoked = sqlite3_column_int(stmt, 1) != 0;
    }
    sqlite3_finalize(stmt);
    return rc;
}

int ledger_revoke(struct ledger *ledger, const char *ca_name, const char *serial, int reason,
                  estca_reason *why)
{
    if (ledger == NULL || serial == NULL || reason < 0 || reason > 10 || reason == 7)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_revoke: bad arguments");
    char now[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(now);
    pthread_mutex_lock(&ledger->lock);
    int count = 0;
    bool revoked = false;
    int rc = count_serial(ledger, ca_name, serial, &count, &revoked, why);
    if (rc == ESTCA_OK && count == 0)
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no certificate with serial %s", serial);
    else if (rc == ESTCA_OK && count > 1)
        rc = estca_fail(why, ESTCA_E_INVALID, "serial %s was issued by %d CAs: name the CA", serial,
                        count);
    else if (rc == ESTCA_OK && revoked)
        rc = estca_fail(why, ESTCA_E_INVALID, "serial %s is already revoked", serial);
    sqlite3_stmt *stmt = NULL;
    if (rc == ESTCA_OK)
        rc = ledger_prepare(ledger,
                            "UPDATE certificates SET status = 'revoked', revoked_at = ?3,"
                            " revocation_reason = ?4"
                            " WHERE serial = upper(?1) AND (?2 IS NULL OR ca = ?2)",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, serial) != SQLITE_OK ||
                           ledger_bind_text(stmt, 2, ca_name) != SQLITE_OK ||
                           ledger_bind_text(stmt, 3, now) != SQLITE_OK ||
                           sqlite3_bind_int(stmt, 4, reason) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "revoke");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_each_revoked(struct ledger *ledger, const char *ca_name,
                        int (*visit)(const struct ledger_revoked *revoked, void *arg), void *arg,
                        estca_reason *why)
{
    char now[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(now);
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    /* ISO 8601 UTC strings of one format compare as times do. */
    int rc = ledger_prepare(ledger,
                            "SELECT serial, revoked_at, revocation_reason FROM certificates"
                            " WHERE ca = ?1 AND status = 'revoked' AND not_after > ?2 ORDER BY id",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, ca_name) != SQLITE_OK ||
                           ledger_bind_text(stmt, 2, now) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    int step = SQLITE_DONE;
    while (rc == ESTCA_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct ledger_revoked revoked = {
            .serial = (const char *)sqlite3_column_text(stmt, 0),
            .revoked_at = (const char *)sqlite3_column_text(stmt, 1),
            .reason = sqlite3_column_int(stmt, 2),
        };
        rc = visit(&revoked, arg);
    }
    if (rc == ESTCA_OK && step != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "select revoked");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_next_crl_number(struct ledger *ledger, const char *ca_name, long *out, estca_reason *why)
{
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            "INSERT INTO crl_numbers (ca, last) VALUES (?1, 1)"
                            " ON CONFLICT (ca) DO UPDATE SET last = last + 1 RETURNING last",
                            &stmt, why);
    if (rc == ESTCA_OK && ledger_bind_text(stmt, 1, ca_name) != SQLITE_OK)
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_ROW)
        rc = ledger_sqlite_fail(ledger, why, "next CRL number");
    if (rc == ESTCA_OK)
        *out = (long)sqlite3_column_int64(stmt, 0);
    /* With RETURNING the statement commits when it is finalized: only then is the number ours. */
    if (sqlite3_finalize(stmt) != SQLITE_OK && rc == ESTCA_OK)
        rc = ledger_sqlite_fail(ledger, why, "next CRL number");
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_count_revoked(struct ledger *ledger, const char *ca_name, long *out, estca_reason *why)
{
    if (ledger == NULL || ca_name == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_count_revoked: bad arguments");
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(
        ledger, "SELECT COUNT(*) FROM certificates WHERE ca = ?1 AND status = 'revoked'", &stmt,
        why);
    if (rc == ESTCA_OK && ledger_bind_text(stmt, 1, ca_name) != SQLITE_OK)
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_ROW)
        rc = ledger_sqlite_fail(ledger, why, "count revoked");
    if (rc == ESTCA_OK)
        *out = (long)sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}
