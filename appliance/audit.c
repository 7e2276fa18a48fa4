/* The hash-chained audit log (see audit.h). A line is the compact JSON of one event; its
 * "prev" is the hex SHA-256 of the bytes of the line before it (without the newline), all
 * zeros for the first. A checkpoint line signs "estca-audit-checkpoint seq=<seq> prev=<prev>". */
#include "audit.h"
#include "audit_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Longer lines are never written; reading back the tail looks at most this far. */
#define MAX_LINE 16384

struct audit_log {
    int fd;
    pthread_mutex_t lock;
    EVP_PKEY *key; /* borrowed */
    char *signer;
    unsigned every;
    unsigned since_checkpoint;
    /* The chain's head as of our last append; valid while the file still ends at end. */
    bool head_known;
    off_t end;
    unsigned long seq;
    char prev[AUDIT_HASH_HEX];
};

void audit_line_hash(const char *line, size_t len, char out[AUDIT_HASH_HEX])
{
    unsigned char digest[32];
    unsigned int n = 0;
    EVP_Digest(line, len, digest, &n, EVP_sha256(), NULL);
    for (size_t i = 0; i < sizeof digest; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

void audit_genesis_hash(char out[AUDIT_HASH_HEX])
{
    memset(out, '0', AUDIT_HASH_HEX - 1);
    out[AUDIT_HASH_HEX - 1] = '\0';
}

void audit_checkpoint_message(unsigned long seq, const char *prev, char *out, size_t cap)
{
    snprintf(out, cap, "estca-audit-checkpoint seq=%lu prev=%s", seq, prev);
}

static unsigned long line_seq(const char *line, size_t len)
{
    json_t *object = json_loadb(line, len, 0, NULL);
    json_int_t seq = json_integer_value(json_object_get(object, "seq"));
    json_decref(object);
    return seq > 0 ? (unsigned long)seq : 0;
}

/* Under the flock: reads the file's last line to continue the chain from it. A last line
 * without its newline (a write cut short) is terminated first, and chained as it is: the
 * verifier will report it. */
static int load_head(struct audit_log *log, estca_reason *why)
{
    struct stat st;
    if (fstat(log->fd, &st) != 0)
        return estca_fail(why, ESTCA_E_IO, "audit log: %s", strerror(errno));
    if (log->head_known && st.st_size == log->end)
        return ESTCA_OK;
    log->seq = 0;
    audit_genesis_hash(log->prev);
    if (st.st_size == 0) {
        log->end = 0;
        log->head_known = true;
        return ESTCA_OK;
    }
    size_t want = st.st_size < MAX_LINE + 1 ? (size_t)st.st_size : MAX_LINE + 1;
    char *buf = malloc(want);
    if (buf == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    ssize_t got = pread(log->fd, buf, want, st.st_size - (off_t)want);
    if (got != (ssize_t)want) {
        free(buf);
        return estca_fail(why, ESTCA_E_IO, "audit log: cannot read its end");
    }
    bool terminated = buf[want - 1] == '\n';
    size_t stop = terminated ? want - 1 : want;
    if (!terminated && write(log->fd, "\n", 1) != 1) {
        free(buf);
        return estca_fail(why, ESTCA_E_IO, "audit log: %s", strerror(errno));
    }
    size_t start = stop;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    audit_line_hash(buf + start, stop - start, log->prev);
    log->seq = line_seq(buf + start, stop - start);
    free(buf);
    log->end = st.st_size + (terminated ? 0 : 1);
    log->head_known = true;
    return ESTCA_OK;
}

static void now_iso8601(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The line for event with fields, continuing the chain; caller frees. */
static char *compose(struct audit_log *log, const char *event, json_t *fields)
{
    char when[32];
    now_iso8601(when);
    json_t *line = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)(log->seq + 1), "time", when,
                             "event", event);
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        if (line != NULL && json_object_get(line, key) == NULL)
            json_object_set(line, key, value);
    }
    if (line != NULL)
        json_object_set_new(line, "prev", json_string(log->prev));
    char *text = line != NULL
                     ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII)
                     : NULL;
    json_decref(line);
    return text;
}

static int write_line(struct audit_log *log, char *text, estca_reason *why)
{
    size_t len = strlen(text);
    if (len > MAX_LINE)
        return estca_fail(why, ESTCA_E_TOO_LARGE, "audit line of %zu bytes", len);
    text[len] = '\n'; /* json_dumps' NUL; the buffer is ours */
    ssize_t n = write(log->fd, text, len + 1);
    text[len] = '\0';
    if (n != (ssize_t)(len + 1)) {
        log->head_known = false; /* whatever part reached the file, re-read it next time */
        return estca_fail(why, ESTCA_E_IO, "audit log: %s",
                          n < 0 ? strerror(errno) : "short write");
    }
    audit_line_hash(text, len, log->prev);
    log->seq++;
    log->end += (off_t)(len + 1);
    return ESTCA_OK;
}

static int append_locked(struct audit_log *log, const char *event, json_t *fields,
                         estca_reason *why)
{
    if (flock(log->fd, LOCK_EX) != 0)
        return estca_fail(why, ESTCA_E_IO, "audit log lock: %s", strerror(errno));
    int rc = load_head(log, why);
    char *text = rc == ESTCA_OK ? compose(log, event, fields) : NULL;
    if (rc == ESTCA_OK && text == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "cannot format the audit line");
    if (rc == ESTCA_OK)
        rc = write_line(log, text, why);
    free(text);
    flock(log->fd, LOCK_UN);
    return rc;
}

/* Under the flock: the chain head is current, so the signature covers the real last line. */
static int checkpoint_locked(struct audit_log *log, estca_reason *why)
{
    if (flock(log->fd, LOCK_EX) != 0)
        return estca_fail(why, ESTCA_E_IO, "audit log lock: %s", strerror(errno));
    int rc = load_head(log, why);
    char message[128];
    audit_checkpoint_message(log->seq + 1, log->prev, message, sizeof message);
    unsigned char signature[1024];
    size_t sig_len = sizeof signature;
    EVP_MD_CTX *ctx = rc == ESTCA_OK ? EVP_MD_CTX_new() : NULL;
    if (rc == ESTCA_OK &&
        (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, log->key) != 1 ||
         EVP_DigestSign(ctx, signature, &sig_len, (unsigned char *)message, strlen(message)) != 1))
        rc = estca_fail_openssl(why, ESTCA_E_UNAVAILABLE, "signing the audit checkpoint");
    EVP_MD_CTX_free(ctx);
    if (rc == ESTCA_OK) {
        char encoded[4 * sizeof signature / 3 + 4];
        EVP_EncodeBlock((unsigned char *)encoded, signature, (int)sig_len);
        json_t *fields = json_pack("{s:s, s:s}", "signer", log->signer, "signature", encoded);
        char *text = fields != NULL ? compose(log, "checkpoint", fields) : NULL;
        json_decref(fields);
        rc = text != NULL ? write_line(log, text, why)
                          : estca_fail(why, ESTCA_E_NOMEM, "cannot format the checkpoint");
        free(text);
    }
    if (rc == ESTCA_OK && fsync(log->fd) != 0)
        rc = estca_fail(why, ESTCA_E_IO, "audit log fsync: %s", strerror(errno));
    flock(log->fd, LOCK_UN);
    if (rc == ESTCA_OK)
        log->since_checkpoint = 0;
    return rc;
}

int audit_checkpoint(struct audit_log *log, estca_reason *why)
{
    if (log == NULL || log->key == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "audit log: no key to sign checkpoints");
    pthread_mutex_lock(&log->lock);
    int rc = checkpoint_locked(log, why);
    pthread_mutex_unlock(&log->lock);
    return rc;
}

int audit_append(struct audit_log *log, const char *event, json_t *fields, estca_reason *why)
{
    if (log == NULL || event == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "audit_append: bad arguments");
    pthread_mutex_lock(&log->lock);
    int rc = append_locked(log, event, fields, why);
    if (rc == ESTCA_OK && log->key != NULL && ++log->since_checkpoint >= log->every &&
        log->every > 0) {
        /* The event is recorded; a checkpoint that cannot be signed now (token down) is
         * retried with the next append. */
        estca_reason ignored;
        checkpoint_locked(log, &ignored);
    }
    pthread_mutex_unlock(&log->lock);
    return rc;
}

int audit_open(const char *path, EVP_PKEY *signing_key, const char *signer,
               unsigned checkpoint_every, struct audit_log **out, estca_reason *why)
{
    *out = NULL;
    struct audit_log *log = calloc(1, sizeof *log);
    if (log == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (log->fd < 0) {
        int rc = estca_fail(why, ESTCA_E_CONFIG, "audit log %s: %s", path, strerror(errno));
        free(log);
        return rc;
    }
    log->key = signing_key;
    log->every = checkpoint_every;
    log->signer = strdup(signer != NULL ? signer : "-");
    if (log->signer == NULL || pthread_mutex_init(&log->lock, NULL) != 0) {
        close(log->fd);
        free(log->signer);
        free(log);
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    }
    *out = log;
    return ESTCA_OK;
}

void audit_close(struct audit_log *log)
{
    if (log == NULL)
        return;
    if (log->key != NULL && log->since_checkpoint > 0) {
        estca_reason ignored;
        checkpoint_locked(log, &ignored);
    }
    close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log->signer);
    free(log);
}
