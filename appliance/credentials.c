/* HTTP Basic users: "user:hash" lines hashed with yescrypt (libxcrypt). Checking does one
 * yescrypt computation whether or not the user exists, and compares in constant time. */
#include "credentials.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_PREFIX "$y$" /* yescrypt, libxcrypt's default and strongest */

/* A yescrypt check costs about 20 ms of CPU: at that price HTTP Basic alone would hold the
 * appliance to ~100 enrollments/s on two cores. So a successful check is remembered for
 * VERIFIED_TTL_SECONDS as HMAC-SHA256(key drawn at load, password): the same password again
 * costs one HMAC. A wrong password never matches the remembered MAC and pays full price, so
 * guessing is as slow as before; the password itself is never kept. */
#define VERIFIED_TTL_SECONDS 300

struct credential {
    char *user;
    char *hash;
    unsigned char verified_mac[32];
    time_t verified_until; /* 0: nothing remembered */
};

struct credentials {
    struct credential *entries;
    size_t n;
    char *dummy_hash; /* checked against for unknown users, so they cost the same */
    unsigned char mac_key[32];
    pthread_mutex_t verified_lock; /* guards verified_mac/verified_until of every entry */
    sem_t hashing_slots;           /* bounds the yescrypt computations running at once */
    bool sync_ready;               /* verified_lock and hashing_slots exist */
};

/* Each yescrypt computation at libxcrypt's default cost takes 16 MiB and ~20 ms of a core:
 * with one per worker thread, a flood of wrong passwords would take 32 workers x 16 MiB.
 * Two at a time keep both cores busy and memory bounded; the rest wait their turn. */
#define HASHING_SLOTS 2

/* The empty name is a name: RFC 7030 §3.2.3 lets a client send a password alone. */
static bool is_valid_user(const char *user)
{
    return user != NULL && strpbrk(user, ":\r\n") == NULL;
}

/* Anything crypt understands starts with '$'; a plain-text password does not (usually), and
 * must not be mistaken for a hash. */
static bool is_valid_hash(const char *hash)
{
    return hash != NULL && hash[0] == '$' && strpbrk(hash, ":\r\n") == NULL;
}

int credentials_hash(const char *password, char *out, size_t cap, estca_reason *why)
{
    if (password == NULL || out == NULL || cap < 128)
        return estca_fail(why, ESTCA_E_INVALID, "credentials_hash: bad arguments");
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    /* count 0: libxcrypt's default cost; NULL random bytes: it draws them from the OS. */
    if (crypt_gensalt_rn(HASH_PREFIX, 0, NULL, 0, salt, sizeof salt) == NULL)
        return estca_fail(why, ESTCA_E_CRYPTO, "crypt_gensalt: %s", strerror(errno));
    struct crypt_data *data = OPENSSL_zalloc(sizeof *data);
    if (data == NULL)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int rc = ESTCA_OK;
    const char *hash = crypt_rn(password, salt, data, sizeof *data);
    if (hash == NULL)
        rc = estca_fail(why, ESTCA_E_CRYPTO, "crypt: %s", strerror(errno));
    else if (strlen(hash) >= cap)
        rc = estca_fail(why, ESTCA_E_INVALID, "credentials_hash: output buffer too small");
    else
        strcpy(out, hash);
    OPENSSL_clear_free(data, sizeof *data); /* it held a copy of the password */
    return rc;
}

/* ---- loading ---- */

static const struct credential *find(const struct credentials *credentials, const char *user)
{
    for (size_t i = 0; i < credentials->n; i++) {
        if (strcmp(credentials->entries[i].user, user) == 0)
            return &credentials->entries[i];
    }
    return NULL;
}

static int open_private(const char *path, FILE **out, estca_reason *why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return estca_fail(why, ESTCA_E_CONFIG, "cannot open users file %s: %s", path,
                          strerror(errno));
    struct stat st;
    int rc = ESTCA_OK;
    /* Checked on the open descriptor: a chmod between check and read cannot slip by. */
    if (fstat(fd, &st) != 0)
        rc = estca_fail(why, ESTCA_E_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = estca_fail(why, ESTCA_E_CONFIG, "users file %s is not a regular file", path);
    else if (st.st_mode & 077)
        rc = estca_fail(why, ESTCA_E_CONFIG,
                        "users file %s is accessible by group or others (mode %03o): chmod "
                        "600 it",
                        path, (unsigned)(st.st_mode & 0777));
    if (rc == ESTCA_OK && (*out = fdopen(fd, "r")) == NULL)
        rc = estca_fail(why, ESTCA_E_IO, "cannot read %s: %s", path, strerror(errno));
    if (rc != ESTCA_OK)
        close(fd);
    return rc;
}

static int add_entry(struct credentials *credentials, const char *user, const char *hash)
{
    struct credential *entries =
        realloc(credentials->entries, (credentials->n + 1) * sizeof *entries);
    if (entries == NULL)
        return ESTCA_E_NOMEM;
    credentials->entries = entries;
    struct credential *entry = &entries[credentials->n];
    *entry = (struct credential){0}; /* nothing verified yet */
    entry->user = strdup(user);
    entry->hash = strdup(hash);
    if (entry->user == NULL || entry->hash == NULL) {
        free(entry->user);
        free(entry->hash);
        return ESTCA_E_NOMEM;
    }
    credentials->n++;
    return ESTCA_OK;
}

/* One line, newline already stripped: blank, "# comment" or "user:hash". */
static int parse_line(struct credentials *credentials, char *line, const char *path, long number,
                      estca_reason *why)
{
    if (line[0] == '\0' || line[0] == '#')
        return ESTCA_OK;
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "%s:%ld: expected user:hash", path, number);
    *colon = '\0';
    const char *user = line, *hash = colon + 1;
    if (!is_valid_user(user))
        return estca_fail(why, ESTCA_E_CONFIG, "%s:%ld: bad user name", path, number);
    if (!is_valid_hash(hash))
        return estca_fail(why, ESTCA_E_CONFIG,
                          "%s:%ld: user %s: not a password hash (use estca user add)", path, number,
                          user);
    if (find(credentials, user) != NULL)
        return estca_fail(why, ESTCA_E_CONFIG, "%s:%ld: user %s appears twice", path, number, user);
    if (add_entry(credentials, user, hash) != ESTCA_OK)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    return ESTCA_OK;
}

static int read_entries(struct credentials *credentials, FILE *file, const char *path,
                        estca_reason *why)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long number = 0;
    int rc = ESTCA_OK;
    while (rc == ESTCA_OK && (len = getline(&line, &cap, file)) >= 0) {
        number++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        rc = parse_line(credentials, line, path, number, why);
    }
    if (rc == ESTCA_OK && ferror(file))
        rc = estca_fail(why, ESTCA_E_IO, "cannot read %s", path);
    free(line);
    return rc;
}

/* The hash unknown users are checked against: same algorithm and cost as `estca user add`
 * produces, of a random password nobody knows. */
static int make_dummy_hash(struct credentials *credentials, estca_reason *why)
{
    unsigned char random[16];
    char password[2 * sizeof random + 1];
    if (RAND_bytes(random, sizeof random) != 1)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "RAND_bytes");
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(password + 2 * i, 3, "%02x", random[i]);
    char hash[CRYPT_OUTPUT_SIZE];
    int rc = credentials_hash(password, hash, sizeof hash, why);
    OPENSSL_cleanse(password, sizeof password);
    if (rc == ESTCA_OK && (credentials->dummy_hash = strdup(hash)) == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    return rc;
}

int credentials_load(const char *path, struct credentials **out, estca_reason *why)
{
    *out = NULL;
    if (path == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "credentials_load: no path");
    FILE *file = NULL;
    int rc = open_private(path, &file, why);
    if (rc != ESTCA_OK)
        return rc;
    struct credentials *credentials = calloc(1, sizeof *credentials);
    if (credentials == NULL)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    if (rc == ESTCA_OK)
        rc = read_entries(credentials, file, path, why);
    fclose(file);
    if (rc == ESTCA_OK)
        rc = make_dummy_hash(credentials, why);
    if (rc == ESTCA_OK && RAND_priv_bytes(credentials->mac_key, sizeof credentials->mac_key) != 1)
        rc = estca_fail_openssl(why, ESTCA_E_CRYPTO, "RAND_priv_bytes");
    if (rc == ESTCA_OK && pthread_mutex_init(&credentials->verified_lock, NULL) != 0)
        rc = estca_fail(why, ESTCA_E_NOMEM, "pthread_mutex_init failed");
    if (rc == ESTCA_OK && sem_init(&credentials->hashing_slots, 0, HASHING_SLOTS) != 0) {
        pthread_mutex_destroy(&credentials->verified_lock);
        rc = estca_fail(why, ESTCA_E_NOMEM, "sem_init: %s", strerror(errno));
    }
    if (rc == ESTCA_OK)
        credentials->sync_ready = true;
    if (rc != ESTCA_OK) {
        credentials_free(credentials);
        return rc;
    }
    *out = credentials;
    return ESTCA_OK;
}

void credentials_free(struct credentials *credentials)
{
    if (credentials == NULL)
        return;
    for (size_t i = 0; i < credentials->n; i++) {
        free(credentials->entries[i].user);
        free(credentials->entries[i].hash);
    }
    free(credentials->entries);
    free(credentials->dummy_hash);
    if (credentials->sync_ready) {
        pthread_mutex_destroy(&credentials->verified_lock);
        sem_destroy(&credentials->hashing_slots);
    }
    OPENSSL_cleanse(credentials->mac_key, sizeof credentials->mac_key);
    free(credentials);
}

/* ---- checking ---- */

static bool password_mac(const struct credentials *credentials, const char *password,
                         unsigned char mac[32])
{
    unsigned int len = 32;
    return HMAC(EVP_sha256(), credentials->mac_key, sizeof credentials->mac_key,
                (const unsigned char *)password, strlen(password), mac, &len) != NULL &&
           len == 32;
}

/* Whether this password was verified for entry within the last VERIFIED_TTL_SECONDS. */
static bool recently_verified(const struct credentials *credentials, const struct credential *entry,
                              const unsigned char mac[32])
{
    struct credentials *mutable = (struct credentials *)credentials;
    pthread_mutex_lock(&mutable->verified_lock);
    bool hit =
        entry->verified_until > time(NULL) && CRYPTO_memcmp(entry->verified_mac, mac, 32) == 0;
    pthread_mutex_unlock(&mutable->verified_lock);
    return hit;
}

static void remember_verified(const struct credentials *credentials, const struct credential *entry,
                              const unsigned char mac[32])
{
    struct credentials *mutable = (struct credentials *)credentials;
    struct credential *slot = (struct credential *)entry;
    pthread_mutex_lock(&mutable->verified_lock);
    memcpy(slot->verified_mac, mac, 32);
    slot->verified_until = time(NULL) + VERIFIED_TTL_SECONDS;
    pthread_mutex_unlock(&mutable->verified_lock);
}

int credentials_check(const struct credentials *credentials, const char *user, const char *password)
{
    if (credentials == NULL || user == NULL || password == NULL)
        return ESTCA_E_AUTH;
    const struct credential *entry = find(credentials, user);
    unsigned char mac[32];
    bool have_mac = entry != NULL && password_mac(credentials, password, mac);
    if (have_mac && recently_verified(credentials, entry, mac)) {
        OPENSSL_cleanse(mac, sizeof mac);
        return ESTCA_OK;
    }
    const char *hash = entry != NULL ? entry->hash : credentials->dummy_hash;
    struct crypt_data *data = OPENSSL_zalloc(sizeof *data);
    if (data == NULL)
        return ESTCA_E_AUTH;
    struct credentials *mutable = (struct credentials *)credentials;
    while (sem_wait(&mutable->hashing_slots) != 0 && errno == EINTR)
        ;
    const char *computed = crypt_rn(password, hash, data, sizeof *data);
    sem_post(&mutable->hashing_slots);
    size_t len = strlen(hash);
    bool match =
        computed != NULL && strlen(computed) == len && CRYPTO_memcmp(computed, hash, len) == 0;
    OPENSSL_clear_free(data, sizeof *data); /* it held a copy of the password */
    if (entry == NULL || !match) {
        OPENSSL_cleanse(mac, sizeof mac);
        return ESTCA_E_AUTH;
    }
    if (have_mac)
        remember_verified(credentials, entry, mac);
    OPENSSL_cleanse(mac, sizeof mac);
    return ESTCA_OK;
}

/* ---- updating the file ---- */

/* Copies src (may be NULL: no file yet) to dst, with user's line replaced by new_line, or
 * new_line appended if user had none. Comments and other users stay as they were. */
static int copy_with_user(FILE *src, FILE *dst, const char *user, const char *new_line, bool *found)
{
    size_t user_len = strlen(user);
    bool written = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    *found = false;
    while (src != NULL && (len = getline(&line, &cap, src)) >= 0) {
        bool is_user = strncmp(line, user, user_len) == 0 && line[user_len] == ':';
        *found = *found || is_user;
        if (is_user && (written || new_line == NULL))
            continue; /* removed, or a duplicate line, which loading would refuse */
        fputs(is_user ? new_line : line, dst);
        if (!is_user && len > 0 && line[len - 1] != '\n')
            fputc('\n', dst);
        written = written || is_user;
    }
    free(line);
    if (!written && new_line != NULL)
        fputs(new_line, dst);
    return (src != NULL && ferror(src)) || ferror(dst) ? ESTCA_E_IO : ESTCA_OK;
}

/* Makes the data durable: file contents, then the rename in the directory. */
static int sync_directory_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return ESTCA_E_NOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return ESTCA_E_IO;
    int rc = fsync(fd) == 0 ? ESTCA_OK : ESTCA_E_IO;
    close(fd);
    return rc;
}

/* Keeps the file's owner, so that root editing estcad's file leaves it readable by estcad. */
static void keep_owner(FILE *src, int fd)
{
    struct stat st;
    if (src == NULL || fstat(fileno(src), &st) != 0)
        return;
    if (fchown(fd, st.st_uid, st.st_gid) != 0)
        return; /* not root: the file stays ours, which is all we can do */
}

/* Writes the new contents to tmp_fd, which it closes. */
static int write_temporary(const char *path, const char *tmp_path, int tmp_fd, const char *user,
                           const char *new_line, bool *found, estca_reason *why)
{
    FILE *src = fopen(path, "re");
    if (src == NULL && errno != ENOENT)
        return estca_fail(why, ESTCA_E_IO, "cannot read %s: %s", path, strerror(errno));
    keep_owner(src, tmp_fd);
    /* 0600 whatever the umask, and even if the old file was looser. */
    FILE *dst = fchmod(tmp_fd, 0600) == 0 ? fdopen(tmp_fd, "w") : NULL;
    if (dst == NULL) {
        close(tmp_fd);
        if (src != NULL)
            fclose(src);
        return estca_fail(why, ESTCA_E_IO, "cannot write %s: %s", tmp_path, strerror(errno));
    }
    int rc = copy_with_user(src, dst, user, new_line, found);
    if (src != NULL)
        fclose(src);
    if (fflush(dst) != 0 || fsync(fileno(dst)) != 0)
        rc = ESTCA_E_IO;
    if (fclose(dst) != 0) /* closes tmp_fd */
        rc = ESTCA_E_IO;
    if (rc != ESTCA_OK)
        return estca_fail(why, rc, "cannot write %s: %s", tmp_path, strerror(errno));
    return ESTCA_OK;
}

/* Replaces user's line with new_line (NULL: removes it) through a temporary file renamed over
 * path, so a crash leaves the old file or the new one, never half of one. */
static int rewrite_file(const char *path, const char *user, const char *new_line, bool *found,
                        estca_reason *why)
{
    char *tmp_path = NULL;
    if (asprintf(&tmp_path, "%s.XXXXXX", path) < 0)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    int fd = mkostemp(tmp_path, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        int rc = estca_fail(why, ESTCA_E_IO, "cannot create %s: %s", tmp_path, strerror(errno));
        free(tmp_path);
        return rc;
    }
    int rc = write_temporary(path, tmp_path, fd, user, new_line, found, why);
    if (rc == ESTCA_OK && rename(tmp_path, path) != 0)
        rc = estca_fail(why, ESTCA_E_IO, "cannot replace %s: %s", path, strerror(errno));
    if (rc != ESTCA_OK)
        unlink(tmp_path);
    if (rc == ESTCA_OK && sync_directory_of(path) != ESTCA_OK)
        rc = estca_fail(why, ESTCA_E_IO, "cannot sync the directory of %s", path);
    free(tmp_path);
    return rc;
}

int credentials_file_set(const char *path, const char *user, const char *hash, estca_reason *why)
{
    if (path == NULL || !is_valid_user(user))
        return estca_fail(why, ESTCA_E_INVALID,
                          "a user name must be non-empty, without ':' or line breaks");
    if (!is_valid_hash(hash))
        return estca_fail(why, ESTCA_E_INVALID, "not a password hash");
    char *new_line = NULL;
    if (asprintf(&new_line, "%s:%s\n", user, hash) < 0)
        return estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    bool found;
    int rc = rewrite_file(path, user, new_line, &found, why);
    free(new_line);
    return rc;
}

int credentials_file_remove(const char *path, const char *user, estca_reason *why)
{
    if (path == NULL || !is_valid_user(user))
        return estca_fail(why, ESTCA_E_INVALID,
                          "a user name must be non-empty, without ':' or line breaks");
    bool found = false;
    int rc = rewrite_file(path, user, NULL, &found, why);
    if (rc == ESTCA_OK && !found)
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no user %s in %s", user, path);
    return rc;
}

int credentials_file_has(const char *path, const char *user, estca_reason *why)
{
    struct credentials *credentials = NULL;
    int rc = credentials_load(path, &credentials, why);
    if (rc == ESTCA_OK && find(credentials, user) == NULL)
        rc = estca_fail(why, ESTCA_E_NOT_FOUND, "no user %s in %s", user, path);
    credentials_free(credentials);
    return rc;
}
