/* Requests waiting for an operator, in the ledger's requests table. The CSR's SHA-256 is the
 * request's identity within a label (RFC 7030 §4.2.3: the server keeps what it needs to
 * recognise the identical re-POST), so pending requests survive restarts. A serverkeygen
 * request is filed under "LABEL/serverkeygen" in the label column: the schema's UNIQUE (label,
 * csr_sha256) then keeps it apart from an enrollment of the same CSR, and the operator's
 * listing shows what is being approved. Each call is one statement or one transaction under
 * the ledger's lock; these are rare next to issuance, so statements are prepared per call. */
#include "ledger_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_words[] = {
    [LEDGER_REQUEST_PENDING] = "pending",   [LEDGER_REQUEST_APPROVED] = "approved",
    [LEDGER_REQUEST_REJECTED] = "rejected", [LEDGER_REQUEST_ISSUING] = "issuing",
    [LEDGER_REQUEST_ISSUED] = "issued",
};

static int status_from_word(const char *word, enum ledger_request_status *out)
{
    for (size_t i = 0; i < sizeof status_words / sizeof *status_words; i++) {
        if (word != NULL && strcmp(word, status_words[i]) == 0) {
            *out = (enum ledger_request_status)i;
            return ESTCA_OK;
        }
    }
    return ESTCA_E_LEDGER;
}

/* Runs one prepared statement with the lock held; *changes gets sqlite3_changes. */
static int step_once(struct ledger *ledger, sqlite3_stmt *stmt, int *changes, estca_reason *why)
{
    int step = sqlite3_step(stmt);
    if (step != SQLITE_DONE && step != SQLITE_ROW)
        return ledger_sqlite_fail(ledger, why, "requests");
    if (changes != NULL)
        *changes = sqlite3_changes(ledger->db);
    return ESTCA_OK;
}

/* Whether two requesters (either may be NULL) are the same. */
static bool same_text(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static int select_state(struct ledger *ledger, const char *label, const char *hash,
                        const char *requester, struct ledger_request_state *out, bool *found,
                        estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            "SELECT id, status, certificate, requester FROM requests"
                            " WHERE label = ? AND csr_sha256 = ?",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, label) != SQLITE_OK ||
                           ledger_bind_text(stmt, 2, hash) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    int step = rc == ESTCA_OK ? sqlite3_step(stmt) : SQLITE_ERROR;
    *found = step == SQLITE_ROW;
    if (rc == ESTCA_OK && step == SQLITE_ROW) {
        out->id = (long)sqlite3_column_int64(stmt, 0);
        out->certificate = (long)sqlite3_column_int64(stmt, 2);
        out->same_requester = same_text((const char *)sqlite3_column_text(stmt, 3), requester);
        if (status_from_word((const char *)sqlite3_column_text(stmt, 1), &out->status) != ESTCA_OK)
            rc = estca_fail(why, ESTCA_E_LEDGER, "request %ld has an unknown status", out->id);
    } else if (rc == ESTCA_OK && step != SQLITE_DONE) {
        rc = ledger_sqlite_fail(ledger, why, "select request");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int insert_pending(struct ledger *ledger, const char *label, const char *hash,
                          const unsigned char *csr_der, size_t csr_der_len, const char *subject,
                          const char *requester, estca_reason *why)
{
    char received_at[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(received_at);
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            "INSERT INTO requests (label, csr_sha256, csr_der, subject, requester,"
                            " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                            &stmt, why);
    if (rc == ESTCA_OK &&
        (ledger_bind_text(stmt, 1, label) != SQLITE_OK ||
         ledger_bind_text(stmt, 2, hash) != SQLITE_OK ||
         sqlite3_bind_blob(stmt, 3, csr_der, (int)csr_der_len, SQLITE_STATIC) != SQLITE_OK ||
         ledger_bind_text(stmt, 4, subject) != SQLITE_OK ||
         ledger_bind_text(stmt, 5, requester) != SQLITE_OK ||
         ledger_bind_text(stmt, 6, received_at) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK)
        rc = step_once(ledger, stmt, NULL, why);
    sqlite3_finalize(stmt);
    return rc;
}

/* The label column of a filing (see the top of this file); caller frees. */
static char *filed_label(const struct ledger_request_filing *filing)
{
    const char *suffix = filing->kind == LEDGER_REQUEST_SERVERKEYGEN ? "/serverkeygen" : "";
    size_t len = strlen(filing->label) + strlen(suffix) + 1;
    char *label = malloc(len);
    if (label != NULL)
        snprintf(label, len, "%s%s", filing->label, suffix);
    return label;
}

/* Finds the filing's request or inserts it as pending; the lock is held. */
static int find_or_insert(struct ledger *ledger, const struct ledger_request_filing *filing,
                          const char *label, const char *hash, const char *subject,
                          struct ledger_request_state *out, estca_reason *why)
{
    bool found = false;
    int rc = select_state(ledger, label, hash, filing->requester, out, &found, why);
    if (rc != ESTCA_OK || found)
        return rc;
    rc = insert_pending(ledger, label, hash, filing->csr_der, filing->csr_der_len, subject,
                        filing->requester, why);
    if (rc == ESTCA_OK)
        *out = (struct ledger_request_state){.id = (long)sqlite3_last_insert_rowid(ledger->db),
                                             .status = LEDGER_REQUEST_PENDING,
                                             .same_requester = true};
    return rc;
}

int ledger_request_submit(struct ledger *ledger, const struct ledger_request_filing *filing,
                          struct ledger_request_state *out, estca_reason *why)
{
    if (ledger == NULL || filing == NULL || filing->label == NULL || filing->csr_der == NULL ||
        out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_request_submit: bad arguments");
    char hash[LEDGER_SHA256_HEX_LEN];
    if (ledger_sha256_hex(filing->csr_der, filing->csr_der_len, hash) != ESTCA_OK)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "SHA-256 of the CSR");
    char *label = filed_label(filing);
    char *subject = filing->subject != NULL ? ledger_subject_rfc2253(filing->subject) : NULL;
    int rc = label != NULL ? ESTCA_OK : estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (rc == ESTCA_OK) {
        pthread_mutex_lock(&ledger->lock);
        rc = find_or_insert(ledger, filing, label, hash, subject, out, why);
        pthread_mutex_unlock(&ledger->lock);
    }
    free(subject);
    free(label);
    return rc;
}

int ledger_request_file(struct ledger *ledger, const char *label, const unsigned char *csr_der,
                        size_t csr_der_len, const X509_NAME *subject, const char *requester,
                        struct ledger_request_state *out, estca_reason *why)
{
    struct ledger_request_filing filing = {
        .kind = LEDGER_REQUEST_ENROLL,
        .label = label,
        .csr_der = csr_der,
        .csr_der_len = csr_der_len,
        .subject = subject,
        .requester = requester,
    };
    return ledger_request_submit(ledger, &filing, out, why);
}

/* UPDATE ... WHERE id = ? AND status = from; ESTCA_E_NOT_FOUND / ESTCA_E_INVALID when nothing
 * matched, telling which. */
static int transition(struct ledger *ledger, long id, enum ledger_request_status from,
                      enum ledger_request_status to, long certificate, estca_reason *why)
{
    char now[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(now);
    bool decision = from == LEDGER_REQUEST_PENDING;
    sqlite3_stmt *stmt = NULL;
    pthread_mutex_lock(&ledger->lock);
    int rc = ledger_prepare(ledger,
                            "UPDATE requests SET status = ?1,"
                            " decided_at = CASE WHEN ?4 THEN ?5 ELSE decided_at END,"
                            " certificate = CASE WHEN ?6 > 0 THEN ?6 ELSE certificate END"
                            " WHERE id = ?2 AND status = ?3",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, status_words[to]) != SQLITE_OK ||
                           sqlite3_bind_int64(stmt, 2, id) != SQLITE_OK ||
                           ledger_bind_text(stmt, 3, status_words[from]) != SQLITE_OK ||
                           sqlite3_bind_int(stmt, 4, decision) != SQLITE_OK ||
                           ledger_bind_text(stmt, 5, now) != SQLITE_OK ||
                           sqlite3_bind_int64(stmt, 6, certificate) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    int changes = 0;
    if (rc == ESTCA_OK)
        rc = step_once(ledger, stmt, &changes, why);
    sqlite3_finalize(stmt);
    if (rc == ESTCA_OK && changes == 0) {
        sqlite3_stmt *probe = NULL;
        rc = ledger_prepare(ledger, "SELECT status FROM requests WHERE id = ?", &probe, why);
        if (rc == ESTCA_OK && sqlite3_bind_int64(probe, 1, id) == SQLITE_OK &&
            sqlite3_step(probe) == SQLITE_ROW)
            rc = estca_fail(why, ESTCA_E_INVALID, "request %ld is %s, not %s", id,
                            (const char *)sqlite3_column_text(probe, 0), status_words[from]);
        else if (rc == ESTCA_OK)
            rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no request %ld", id);
        sqlite3_finalize(probe);
    }
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_request_decide(struct ledger *ledger, long id, bool approve, estca_reason *why)
{
    return transition(ledger, id, LEDGER_REQUEST_PENDING,
                      approve ? LEDGER_REQUEST_APPROVED : LEDGER_REQUEST_REJECTED, 0, why);
}

int ledger_request_claim(struct ledger *ledger, long id, estca_reason *why)
{
    int rc = transition(ledger, id, LEDGER_REQUEST_APPROVED, LEDGER_REQUEST_ISSUING, 0, why);
    return rc == ESTCA_E_INVALID
               ? estca_fail(why, ESTCA_E_PENDING, "request %ld is being issued", id)
               : rc;
}

int ledger_request_issued(struct ledger *ledger, long id, long certificate, estca_reason *why)
{
    return transition(ledger, id, LEDGER_REQUEST_ISSUING, LEDGER_REQUEST_ISSUED, certificate, why);
}

int ledger_request_unclaim(struct ledger *ledger, long id, estca_reason *why)
{
    return transition(ledger, id, LEDGER_REQUEST_ISSUING, LEDGER_REQUEST_APPROVED, 0, why);
}

int ledger_certificate_der(struct ledger *ledger, long certificate, unsigned char **der,
                           size_t *der_len, estca_reason *why)
{
    *der = NULL;
    sqlite3_stmt *stmt = NULL;
    pthread_mutex_lock(&ledger->lock);
    int rc = ledger_prepare(ledger, "SELECT der FROM certificates WHERE id = ?", &stmt, why);
    if (rc == ESTCA_OK && sqlite3_bind_int64(stmt, 1, certificate) != SQLITE_OK)
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) == SQLITE_ROW) {
        *der_len = (size_t)sqlite3_column_bytes(stmt, 0);
        *der = OPENSSL_memdup(sqlite3_column_blob(stmt, 0), *der_len);
        if (*der == NULL)
            rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    } else if (rc == ESTCA_OK) {
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no certificate %ld in the ledger", certificate);
    }
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_each_request(struct ledger *ledger,
                        int (*visit)(const struct ledger_request *request, void *arg), void *arg,
                        estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    pthread_mutex_lock(&ledger->lock);
    int rc = ledger_prepare(ledger,
                            "SELECT id, label, subject, requester, status, received_at, decided_at,"
                            " csr_sha256 FROM requests ORDER BY id",
                            &stmt, why);
    int step = SQLITE_DONE;
    while (rc == ESTCA_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct ledger_request request = {
            .id = (long)sqlite3_column_int64(stmt, 0),
            .label = (const char *)sqlite3_column_text(stmt, 1),
            .subject = (const char *)sqlite3_column_text(stmt, 2),
            .requester = (const char *)sqlite3_column_text(stmt, 3),
            .status = (const char *)sqlite3_column_text(stmt, 4),
            .received_at = (const char *)sqlite3_column_text(stmt, 5),
            .decided_at = (const char *)sqlite3_column_text(stmt, 6),
            .csr_sha256 = (const char *)sqlite3_column_text(stmt, 7),
        };
        rc = visit(&request, arg);
    }
    if (rc == ESTCA_OK && step != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "select requests");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}
