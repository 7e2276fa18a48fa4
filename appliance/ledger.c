/* The issuance ledger on SQLite. One connection, serialised by a mutex: a row is prepared
 * (DER, names, digests) outside the lock, and only bind + step + reset happen under it.
 * Certificates recorded at the same time share one transaction (group commit, below), committed
 * with synchronous=FULL before any of their calls returns. */
#include "ledger_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 5000 /* another process (the estca CLI) may hold the write lock */

/* migrations[i] takes the schema from version i to i + 1 (PRAGMA user_version). Append new
 * steps; never edit a step that has shipped. */
static const char *const migrations[] = {
    "CREATE TABLE certificates ("
    "  id INTEGER PRIMARY KEY,"
    "  ca TEXT NOT NULL,"
    "  label TEXT,"
    "  serial TEXT NOT NULL,"  /* hex, upper case, as BN_bn2hex and openssl x509 -serial */
    "  subject TEXT NOT NULL," /* RFC 2253 */
    "  sans TEXT,"
    "  not_before TEXT NOT NULL," /* ISO 8601 UTC */
    "  not_after TEXT NOT NULL,"
    "  requester TEXT,"
    "  csr_sha256 TEXT,"
    "  der BLOB NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'valid',"
    "  replaces INTEGER NULL REFERENCES certificates(id),"
    "  issued_at TEXT NOT NULL,"
    "  UNIQUE (ca, serial)"
    ");",
    /* 1 -> 2: requests waiting for an operator (labels with approval = manual). */
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY,"
    "  label TEXT NOT NULL,"
    "  csr_sha256 TEXT NOT NULL,"
    "  csr_der BLOB NOT NULL,"
    "  subject TEXT,"
    "  requester TEXT,"
    "  status TEXT NOT NULL DEFAULT 'pending'," /* pending approved rejected issuing issued */
    "  received_at TEXT NOT NULL,"
    "  decided_at TEXT,"
    "  certificate INTEGER REFERENCES certificates(id),"
    "  UNIQUE (label, csr_sha256)"
    ");",
    /* 2 -> 3: revocation (RFC 5280 §5.3.1 reason codes) and CRL numbers per CA. */
    "ALTER TABLE certificates ADD COLUMN revoked_at TEXT;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER;"
    "CREATE TABLE crl_numbers (ca TEXT PRIMARY KEY, last INTEGER NOT NULL);",
    /* 3 -> 4: the CRL publisher counts each CA's revoked certificates every few seconds; without
     * this index that is a scan of the whole ledger under the ledger's lock. */
    "CREATE INDEX certificates_revoked ON certificates (ca) WHERE status = 'revoked';",
    /* 4 -> 5: one-time enrollment codes (ledger_otp.c, otp.h): only the code's SHA-256 is
     * kept, and used_at is set in the transaction that records the certificate it was used
     * for. */
    "CREATE TABLE otp_codes ("
    "  id INTEGER PRIMARY KEY,"
    "  label TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"     /* RFC 2253, for people */
    "  subject_der BLOB NOT NULL," /* compared with the CSR's subject (X509_NAME_cmp) */
    "  sans TEXT,"                 /* as the operator gave them */
    "  sans_der BLOB,"             /* GeneralNames allowed; NULL: none */
    "  code_sha256 BLOB NOT NULL UNIQUE,"
    "  created_at TEXT NOT NULL," /* ISO 8601 UTC: compares as text */
    "  expires_at TEXT NOT NULL,"
    "  used_at TEXT,"
    "  revoked_at TEXT,"
    "  certificate INTEGER REFERENCES certificates(id)"
    ");",
    /* 5 -> 6: max_certificates of an authorization policy (authz.c) counts the valid
     * certificates of one requester at every enrollment; without this index, a scan. */
    ("CREATE INDEX certificates_requester ON certificates (requester, not_after)"
     " WHERE status = 'valid';"),
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

static const char insert_sql[] =
    "INSERT INTO certificates (ca, label, serial, subject, sans, not_before, not_after,"
    " requester, csr_sha256, der, issued_at, replaces)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char lookup_sql[] =
    "SELECT id, status, der FROM certificates WHERE ca = ? AND serial = ?";
static const char count_sql[] = "SELECT COUNT(*) FROM certificates";

int ledger_sqlite_fail(struct ledger *ledger, estca_reason *why, const char *what)
{
    return estca_fail(why, ESTCA_E_LEDGER, "ledger %s: %s: %s", ledger->path, what,
                      sqlite3_errmsg(ledger->db));
}

/* ---- opening and the schema ---- */

/* SQLite would create the file 0644; the ledger names requesters, so create it 0600 first.
 * The -wal and -shm files inherit the database file's mode. */
static int create_private(const char *path, estca_reason *why)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return ESTCA_OK;
    }
    if (errno == EEXIST)
        return ESTCA_OK;
    return estca_fail(why, ESTCA_E_LEDGER, "cannot create ledger %s: %s", path, strerror(errno));
}

static int exec(struct ledger *ledger, const char *sql, estca_reason *why)
{
    if (sqlite3_exec(ledger->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, sql);
    return ESTCA_OK;
}

static int query_int(struct ledger *ledger, const char *sql, int *out, estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger->db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, sql);
    int rc = sqlite3_step(stmt) == SQLITE_ROW ? ESTCA_OK : ledger_sqlite_fail(ledger, why, sql);
    if (rc == ESTCA_OK)
        *out = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc;
}

static int enable_wal(struct ledger *ledger, estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(ledger->db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, "PRAGMA journal_mode");
    int rc = sqlite3_step(stmt) == SQLITE_ROW
                 ? ESTCA_OK
                 : ledger_sqlite_fail(ledger, why, "PRAGMA journal_mode");
    const char *mode = rc == ESTCA_OK ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
    if (rc == ESTCA_OK && (mode == NULL || strcmp(mode, "wal") != 0))
        rc = estca_fail(why, ESTCA_E_LEDGER, "ledger %s: cannot use WAL (journal mode %s)",
                        ledger->path, mode != NULL ? mode : "?");
    sqlite3_finalize(stmt);
    return rc;
}

static int migrate_step(struct ledger *ledger, int from, estca_reason *why)
{
    char set_version[64];
    snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", from + 1);
    int rc = exec(ledger, "BEGIN IMMEDIATE", why);
    if (rc != ESTCA_OK)
        return rc;
    rc = exec(ledger, migrations[from], why);
    if (rc == ESTCA_OK)
        rc = exec(ledger, set_version, why);
    if (rc == ESTCA_OK)
        rc = exec(ledger, "COMMIT", why);
    if (rc != ESTCA_OK)
        sqlite3_exec(ledger->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Each step runs in its own transaction with the version bump, so a crash leaves the schema
 * at a known version. Another process migrating at the same time serialises on BEGIN
 * IMMEDIATE; the version is read again after that. */
static int migrate(struct ledger *ledger, estca_reason *why)
{
    for (;;) {
        int version = 0;
        int rc = query_int(ledger, "PRAGMA user_version", &version, why);
        if (rc != ESTCA_OK)
            return rc;
        if (version == SCHEMA_VERSION)
            return ESTCA_OK;
        if (version < 0 || version > SCHEMA_VERSION)
            return estca_fail(why, ESTCA_E_LEDGER,
                              "ledger %s has schema version %d; this estca knows up to %d",
                              ledger->path, version, SCHEMA_VERSION);
        rc = migrate_step(ledger, version, why);
        if (rc != ESTCA_OK)
            return rc;
    }
}

static int configure(struct ledger *ledger, estca_reason *why)
{
    if (sqlite3_busy_timeout(ledger->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, "busy_timeout");
    int rc = enable_wal(ledger, why);
    if (rc == ESTCA_OK)
        rc = exec(ledger, "PRAGMA synchronous=FULL", why);
    if (rc == ESTCA_OK)
        rc = exec(ledger, "PRAGMA foreign_keys=ON", why);
    if (rc == ESTCA_OK)
        rc = migrate(ledger, why);
    if (rc != ESTCA_OK)
        return rc;
    if (sqlite3_prepare_v3(ledger->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &ledger->insert,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ledger->db, lookup_sql, -1, SQLITE_PREPARE_PERSISTENT, &ledger->lookup,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ledger->db, count_sql, -1, SQLITE_PREPARE_PERSISTENT, &ledger->count,
                           NULL) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, "prepare");
    return ESTCA_OK;
}

int ledger_open(const char *path, struct ledger **out, estca_reason *why)
{
    *out = NULL;
    if (path == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_open: no path");
    int rc = create_private(path, why);
    if (rc != ESTCA_OK)
        return rc;
    struct ledger *ledger = calloc(1, sizeof *ledger);
    if (ledger == NULL || (ledger->path = strdup(path)) == NULL) {
        free(ledger);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&ledger->lock, NULL);
    pthread_mutex_init(&ledger->queue_lock, NULL);
    pthread_cond_init(&ledger->committed, NULL);
    ledger->queue_tail = &ledger->queue;
    /* NOMUTEX: SQLite's own connection mutex would only repeat ours. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &ledger->db, flags, NULL) != SQLITE_OK)
        rc = ledger->db != NULL ? ledger_sqlite_fail(ledger, why, "open")
                                : estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    else
        rc = configure(ledger, why);
    if (rc != ESTCA_OK) {
        ledger_close(ledger);
        return rc;
    }
    *out = ledger;
    return ESTCA_OK;
}

void ledger_close(struct ledger *ledger)
{
    if (ledger == NULL)
        return;
    sqlite3_finalize(ledger->insert);
    sqlite3_finalize(ledger->count);
    sqlite3_finalize(ledger->lookup);
    sqlite3_close(ledger->db);
    pthread_mutex_destroy(&ledger->lock);
    pthread_mutex_destroy(&ledger->queue_lock);
    pthread_cond_destroy(&ledger->committed);
    free(ledger->path);
    free(ledger);
}

/* ---- one row ---- */

struct row {
    char *serial;
    char *subject;
    char *sans; /* NULL: no subjectAltName */
    char not_before[LEDGER_ISO8601_LEN];
    char not_after[LEDGER_ISO8601_LEN];
    char issued_at[LEDGER_ISO8601_LEN];
    char csr_sha256[LEDGER_SHA256_HEX_LEN]; /* unused without a CSR */
    unsigned char *der;
    int der_len;
};

static void row_free(struct row *row)
{
    OPENSSL_free(row->serial);
    free(row->subject);
    free(row->sans);
    OPENSSL_free(row->der);
}

/* The BIO's contents as a new C string. */
static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    return len >= 0 ? strndup(data != NULL ? data : "", (size_t)len) : NULL;
}

char *ledger_subject_rfc2253(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    /* RFC 2253, but UTF-8 kept as is rather than escaped byte by byte. */
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    char *text = NULL;
    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, flags) >= 0)
        text = bio_to_string(bio);
    BIO_free(bio);
    return text;
}

/* "DNS:a.example, IP Address:192.0.2.1", as openssl x509 -text prints them. */
static int format_sans(const X509 *cert, char **out)
{
    *out = NULL;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL)
        return ESTCA_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio != NULL;
    for (int i = 0; ok && i < sk_GENERAL_NAME_num(names); i++) {
        if (i > 0)
            ok = BIO_puts(bio, ", ") > 0;
        ok = ok && GENERAL_NAME_print(bio, sk_GENERAL_NAME_value(names, i)) > 0;
    }
    if (ok)
        ok = (*out = bio_to_string(bio)) != NULL;
    BIO_free(bio);
    GENERAL_NAMES_free(names);
    return ok ? ESTCA_OK : ESTCA_E_NOMEM;
}

void ledger_now_iso8601(char out[LEDGER_ISO8601_LEN])
{
    time_t now = time(NULL);
    struct tm tm;
    ledger_format_tm(gmtime_r(&now, &tm), out);
}

int ledger_prepare(struct ledger *ledger, const char *sql, sqlite3_stmt **stmt, estca_reason *why)
{
    if (sqlite3_prepare_v2(ledger->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return ledger_sqlite_fail(ledger, why, sql);
    return ESTCA_OK;
}

void ledger_format_tm(const struct tm *tm, char out[LEDGER_ISO8601_LEN])
{
    strftime(out, LEDGER_ISO8601_LEN, "%Y-%m-%dT%H:%M:%SZ", tm);
}

static int format_asn1_time(const ASN1_TIME *time, char out[LEDGER_ISO8601_LEN])
{
    struct tm tm;
    if (time == NULL || !ASN1_TIME_to_tm(time, &tm))
        return ESTCA_E_CRYPTO;
    ledger_format_tm(&tm, out);
    return ESTCA_OK;
}

int ledger_sha256_hex(const unsigned char *data, size_t len, char out[LEDGER_SHA256_HEX_LEN])
{
    unsigned char digest[32];
    if (!EVP_Digest(data, len, digest, NULL, EVP_sha256(), NULL))
        return ESTCA_E_CRYPTO;
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    return ESTCA_OK;
}

static int hash_csr(const struct ledger_issued *entry, struct row *row)
{
    if (entry->csr_der == NULL)
        return ESTCA_OK;
    return ledger_sha256_hex(entry->csr_der, entry->csr_der_len, row->csr_sha256);
}

static char *serial_hex(const X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    return hex;
}

static int row_prepare(const struct ledger_issued *entry, struct row *row, estca_reason *why)
{
    X509 *cert = entry->certificate;
    ledger_now_iso8601(row->issued_at);
    row->serial = serial_hex(cert);
    row->subject = ledger_subject_rfc2253(X509_get_subject_name(cert));
    row->der_len = i2d_X509(cert, &row->der);
    if (row->serial == NULL || row->subject == NULL || row->der_len <= 0)
        return estca_fail_openssl(why, ESTCA_E_LEDGER, "ledger: cannot encode the certificate");
    if (format_sans(cert, &row->sans) != ESTCA_OK ||
        format_asn1_time(X509_get0_notBefore(cert), row->not_before) != ESTCA_OK ||
        format_asn1_time(X509_get0_notAfter(cert), row->not_after) != ESTCA_OK ||
        hash_csr(entry, row) != ESTCA_OK)
        return estca_fail_openssl(why, ESTCA_E_LEDGER, "ledger: cannot describe the certificate");
    return ESTCA_OK;
}

/* ---- statements (called with the lock held) ---- */

int ledger_bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL)
        return sqlite3_bind_null(stmt, index);
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
}

static int bind_row(sqlite3_stmt *stmt, const struct ledger_issued *entry, const struct row *row)
{
    int rc = SQLITE_OK;
    int index = 1;
    const char *texts[] = {
        entry->ca_name, entry->label,     row->serial,
        row->subject,   row->sans,        row->not_before,
        row->not_after, entry->requester, entry->csr_der != NULL ? row->csr_sha256 : NULL};
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof texts / sizeof *texts; i++)
        rc = ledger_bind_text(stmt, index++, texts[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(stmt, index++, row->der, row->der_len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = ledger_bind_text(stmt, index++, row->issued_at);
    if (rc == SQLITE_OK)
        rc = entry->replaces > 0 ? sqlite3_bind_int64(stmt, index, entry->replaces)
                                 : sqlite3_bind_null(stmt, index);
    return rc;
}

static int insert_locked(struct ledger *ledger, const struct ledger_issued *entry,
                         const struct row *row, estca_reason *why)
{
    int rc = ESTCA_OK;
    if (bind_row(ledger->insert, entry, row) != SQLITE_OK)
        rc = ledger_sqlite_fail(ledger, why, "bind");
    else if (sqlite3_step(ledger->insert) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(ledger->db) == SQLITE_CONSTRAINT_UNIQUE)
            rc = estca_fail(why, ESTCA_E_LEDGER,
                            "ledger %s: serial %s is already recorded "
                            "for CA %s",
                            ledger->path, row->serial, entry->ca_name);
        else
            rc = ledger_sqlite_fail(ledger, why, "insert");
    }
    /* The bindings point into row, which the caller frees next. */
    sqlite3_reset(ledger->insert);
    sqlite3_clear_bindings(ledger->insert);
    return rc;
}

/* ---- recording: group commit ----
 * With synchronous=FULL every COMMIT waits for an fsync, and a committer holds the lock
 * meanwhile: one transaction per certificate would cap issuance at the disk's fsync rate. So
 * certificates arriving while a commit runs queue up; the first caller to find no commit
 * running becomes the committer and records the whole queue in one transaction, each
 * certificate under a savepoint of its own. Every caller still returns only after its own
 * certificate is durable (or has failed). */

struct pending_record {
    const struct ledger_issued *entry;
    const struct row *row;
    estca_reason *why;
    int rc;
    bool done;
    struct pending_record *next;
};

/* requester's certificates that are valid at now; the lock is held. */
static int count_valid_locked(struct ledger *ledger, const char *requester, const char *now,
                              long *out, estca_reason *why)
{
    sqlite3_stmt *stmt = NULL;
    int rc = ledger_prepare(ledger,
                            "SELECT COUNT(*) FROM certificates WHERE requester = ?1"
                            " AND status = 'valid' AND not_after > ?2",
                            &stmt, why);
    if (rc == ESTCA_OK && (ledger_bind_text(stmt, 1, requester) != SQLITE_OK ||
                           ledger_bind_text(stmt, 2, now) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "bind");
    if (rc == ESTCA_OK && sqlite3_step(stmt) != SQLITE_ROW)
        rc = ledger_sqlite_fail(ledger, why, "count valid certificates");
    if (rc == ESTCA_OK)
        *out = (long)sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return rc;
}

/* Whether entry's requester may hold one more valid certificate; the lock is held, inside the
 * transaction that would record it, so certificates recorded just before count. */
static int check_max_valid_locked(struct ledger *ledger, const struct ledger_issued *entry,
                                  const char *now, estca_reason *why)
{
    if (entry->max_valid <= 0 || entry->requester == NULL)
        return ESTCA_OK;
    long count = 0;
    int rc = count_valid_locked(ledger, entry->requester, now, &count, why);
    if (rc == ESTCA_OK && count >= entry->max_valid)
        rc = estca_fail(why, ESTCA_E_FORBIDDEN,
                        "%.200s may hold %ld valid certificates and has %ld (counted when "
                        "recording)",
                        entry->requester, entry->max_valid, count);
    return rc;
}

/* One certificate's rows in the batch's transaction: a duplicate serial, a one-time code no
 * longer usable or a requester at its limit undoes this certificate only. The certificate and
 * the burning of its code are one unit, committed before anyone sees the certificate. */
static int record_in_batch_locked(struct ledger *ledger, struct pending_record *p)
{
    int rc = exec(ledger, "SAVEPOINT record", p->why);
    if (rc != ESTCA_OK)
        return rc;
    rc = check_max_valid_locked(ledger, p->entry, p->row->issued_at, p->why);
    if (rc == ESTCA_OK)
        rc = insert_locked(ledger, p->entry, p->row, p->why);
    if (rc == ESTCA_OK && p->entry->otp_code != 0)
        rc = ledger_otp_burn_locked(ledger, p->entry->otp_code,
                                    (long)sqlite3_last_insert_rowid(ledger->db), p->row->issued_at,
                                    p->why);
    if (rc != ESTCA_OK)
        sqlite3_exec(ledger->db, "ROLLBACK TO record", NULL, NULL, NULL);
    sqlite3_exec(ledger->db, "RELEASE record", NULL, NULL, NULL);
    return rc;
}

/* Every certificate of batch but cause fails with reason. */
static void fail_batch(struct pending_record *batch, const struct pending_record *cause,
                       const estca_reason *reason)
{
    for (struct pending_record *p = batch; p != NULL; p = p->next)
        if (p != cause) {
            p->rc = ESTCA_E_LEDGER;
            if (p->why != NULL)
                *p->why = *reason;
        }
}

/* Records batch in one transaction; the lock is held. */
static void commit_batch_locked(struct ledger *ledger, struct pending_record *batch)
{
    estca_reason reason;
    if (exec(ledger, "BEGIN IMMEDIATE", &reason) != ESTCA_OK) {
        fail_batch(batch, NULL, &reason);
        return;
    }
    for (struct pending_record *p = batch; p != NULL; p = p->next) {
        p->rc = record_in_batch_locked(ledger, p);
        /* On some errors (a full disk, an I/O error) SQLite rolls the whole transaction back
         * by itself: then nothing of the batch is recorded. */
        if (p->rc != ESTCA_OK && sqlite3_get_autocommit(ledger->db)) {
            estca_fail(&reason, ESTCA_E_LEDGER, "%s (the whole batch was rolled back)",
                       p->why != NULL ? p->why->text : "ledger: a certificate failed");
            fail_batch(batch, p, &reason);
            return;
        }
    }
    if (exec(ledger, "COMMIT", &reason) != ESTCA_OK) {
        sqlite3_exec(ledger->db, "ROLLBACK", NULL, NULL, NULL);
        fail_batch(batch, NULL, &reason);
    }
}

/* Waits until mine is committed, committing the queue itself whenever no one else is. */
static void commit_queued(struct ledger *ledger, struct pending_record *mine)
{
    pthread_mutex_lock(&ledger->queue_lock);
    *ledger->queue_tail = mine;
    ledger->queue_tail = &mine->next;
    while (!mine->done) {
        if (ledger->committing) {
            pthread_cond_wait(&ledger->committed, &ledger->queue_lock);
            continue;
        }
        struct pending_record *batch = ledger->queue;
        ledger->queue = NULL;
        ledger->queue_tail = &ledger->queue;
        ledger->committing = true;
        pthread_mutex_unlock(&ledger->queue_lock);

        pthread_mutex_lock(&ledger->lock);
        commit_batch_locked(ledger, batch);
        pthread_mutex_unlock(&ledger->lock);

        pthread_mutex_lock(&ledger->queue_lock);
        for (struct pending_record *p = batch; p != NULL; p = p->next)
            p->done = true;
        ledger->committing = false;
        pthread_cond_broadcast(&ledger->committed);
    }
    pthread_mutex_unlock(&ledger->queue_lock);
}

int ledger_record_issued(struct ledger *ledger, const struct ledger_issued *entry,
                         estca_reason *why)
{
    if (ledger == NULL || entry == NULL || entry->ca_name == NULL || entry->certificate == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_record_issued: bad arguments");
    struct row row = {0};
    int rc = row_prepare(entry, &row, why);
    if (rc == ESTCA_OK) {
        struct pending_record mine = {.entry = entry, .row = &row, .why = why};
        commit_queued(ledger, &mine);
        rc = mine.rc;
    }
    row_free(&row);
    return rc;
}

int ledger_count_issued(struct ledger *ledger, long *out, estca_reason *why)
{
    if (ledger == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_count_issued: bad arguments");
    pthread_mutex_lock(&ledger->lock);
    int rc = ESTCA_OK;
    if (sqlite3_step(ledger->count) == SQLITE_ROW)
        *out = (long)sqlite3_column_int64(ledger->count, 0);
    else
        rc = ledger_sqlite_fail(ledger, why, "count");
    sqlite3_reset(ledger->count);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

int ledger_count_valid_for(struct ledger *ledger, const char *requester, long *out,
                           estca_reason *why)
{
    if (ledger == NULL || requester == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_count_valid_for: bad arguments");
    char now[LEDGER_ISO8601_LEN];
    ledger_now_iso8601(now);
    pthread_mutex_lock(&ledger->lock);
    int rc = count_valid_locked(ledger, requester, now, out, why);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

/* ---- reading ---- */

int ledger_lookup(struct ledger *ledger, const char *ca_name, X509 *certificate,
                  struct ledger_state *out, estca_reason *why)
{
    if (ledger == NULL || ca_name == NULL || certificate == NULL || out == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_lookup: bad arguments");
    char *serial = serial_hex(certificate);
    unsigned char *der = NULL;
    int der_len = i2d_X509(certificate, &der);
    if (serial == NULL || der_len <= 0) {
        OPENSSL_free(serial);
        OPENSSL_free(der);
        return estca_fail_openssl(why, ESTCA_E_INVALID, "ledger_lookup: cannot encode");
    }
    pthread_mutex_lock(&ledger->lock);
    int rc = ESTCA_OK;
    if (ledger_bind_text(ledger->lookup, 1, ca_name) != SQLITE_OK ||
        ledger_bind_text(ledger->lookup, 2, serial) != SQLITE_OK) {
        rc = ledger_sqlite_fail(ledger, why, "lookup");
    } else {
        int step = sqlite3_step(ledger->lookup);
        const void *stored = step == SQLITE_ROW ? sqlite3_column_blob(ledger->lookup, 2) : NULL;
        bool same = stored != NULL && sqlite3_column_bytes(ledger->lookup, 2) == der_len &&
                    memcmp(stored, der, (size_t)der_len) == 0;
        if (step == SQLITE_ROW && same) {
            out->id = (long)sqlite3_column_int64(ledger->lookup, 0);
            const char *status = (const char *)sqlite3_column_text(ledger->lookup, 1);
            out->revoked = status == NULL || strcmp(status, "valid") != 0;
        } else if (step == SQLITE_ROW || step == SQLITE_DONE) {
            rc =
                estca_fail(why, ESTCA_E_NOT_FOUND, "CA %s never issued serial %s", ca_name, serial);
        } else {
            rc = ledger_sqlite_fail(ledger, why, "lookup");
        }
    }
    sqlite3_reset(ledger->lookup);
    sqlite3_clear_bindings(ledger->lookup);
    pthread_mutex_unlock(&ledger->lock);
    OPENSSL_free(serial);
    OPENSSL_free(der);
    return rc;
}

static const char select_sql[] =
    "SELECT id, ca, label, serial, subject, sans, not_before, not_after, requester, csr_sha256,"
    " status, issued_at, der FROM certificates WHERE ?1 IS NULL OR serial = upper(?1) ORDER BY id";

static const char *column_text(sqlite3_stmt *stmt, int column)
{
    return (const char *)sqlite3_column_text(stmt, column);
}

static struct ledger_certificate certificate_from_row(sqlite3_stmt *stmt)
{
    struct ledger_certificate c = {
        .id = (long)sqlite3_column_int64(stmt, 0),
        .ca = column_text(stmt, 1),
        .label = column_text(stmt, 2),
        .serial = column_text(stmt, 3),
        .subject = column_text(stmt, 4),
        .sans = column_text(stmt, 5),
        .not_before = column_text(stmt, 6),
        .not_after = column_text(stmt, 7),
        .requester = column_text(stmt, 8),
        .csr_sha256 = column_text(stmt, 9),
        .status = column_text(stmt, 10),
        .issued_at = column_text(stmt, 11),
        .der = sqlite3_column_blob(stmt, 12),
    };
    c.der_len = (size_t)sqlite3_column_bytes(stmt, 12);
    return c;
}

int ledger_each_issued(struct ledger *ledger, const char *serial,
                       int (*visit)(const struct ledger_certificate *certificate, void *arg),
                       void *arg, estca_reason *why)
{
    if (ledger == NULL || visit == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "ledger_each_issued: bad arguments");
    pthread_mutex_lock(&ledger->lock);
    sqlite3_stmt *stmt = NULL;
    int rc = ESTCA_OK;
    if (sqlite3_prepare_v2(ledger->db, select_sql, -1, &stmt, NULL) != SQLITE_OK ||
        (serial != NULL && sqlite3_bind_text(stmt, 1, serial, -1, SQLITE_TRANSIENT) != SQLITE_OK))
        rc = ledger_sqlite_fail(ledger, why, "select");
    int step = SQLITE_DONE;
    while (rc == ESTCA_OK && (step = sqlite3_step(stmt)) == SQLITE_ROW) {
        struct ledger_certificate certificate = certificate_from_row(stmt);
        rc = visit(&certificate, arg);
    }
    if (rc == ESTCA_OK && step != SQLITE_DONE)
        rc = ledger_sqlite_fail(ledger, why, "select");
    sqlite3_finalize(stmt);
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}
