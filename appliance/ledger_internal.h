/* Internal to the ledger's files (ledger.c: certificates and the schema; ledger_requests.c:
 * requests waiting for approval): the connection and the helpers they share. */
#ifndef ESTCA_LEDGER_INTERNAL_H
#define ESTCA_LEDGER_INTERNAL_H

#include "ledger.h"

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <time.h>

#define LEDGER_ISO8601_LEN sizeof "2024-01-01T00:00:00Z"
#define LEDGER_SHA256_HEX_LEN (2 * 32 + 1)

struct ledger {
    pthread_mutex_t lock; /* guards db and the statements */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *insert;
    sqlite3_stmt *count;
    sqlite3_stmt *lookup;
    /* Group commit (ledger.c): certificates waiting for the next transaction. */
    pthread_mutex_t queue_lock; /* guards the four below; never held while waiting for lock */
    pthread_cond_t committed;   /* a batch has been committed (or has failed) */
    struct pending_record *queue;
    struct pending_record **queue_tail;
    bool committing;
};

/* "ledger PATH: what: sqlite's message", as ESTCA_E_LEDGER. */
int ledger_sqlite_fail(struct ledger *ledger, estca_reason *why, const char *what);
/* Binds text without copying (it must outlive the step); NULL binds SQL NULL. */
int ledger_bind_text(sqlite3_stmt *stmt, int index, const char *text);
void ledger_format_tm(const struct tm *tm, char out[LEDGER_ISO8601_LEN]);
/* The current time in the ledger's ISO 8601 UTC form. */
void ledger_now_iso8601(char out[LEDGER_ISO8601_LEN]);
/* sqlite3_prepare_v2, failing with the statement and SQLite's message as ESTCA_E_LEDGER. */
int ledger_prepare(struct ledger *ledger, const char *sql, sqlite3_stmt **stmt, estca_reason *why);
int ledger_sha256_hex(const unsigned char *data, size_t len, char out[LEDGER_SHA256_HEX_LEN]);
/* RFC 2253 text of name; caller frees with free. */
char *ledger_subject_rfc2253(const X509_NAME *name);

/* ledger_otp.c: uses up code for certificate at now (ISO 8601), inside the transaction that
 * records certificate; the lock is held. ESTCA_E_AUTH when the code is no longer usable. */
int ledger_otp_burn_locked(struct ledger *ledger, long code, long certificate, const char *now,
                           estca_reason *why);

#endif
