/* PIN and password files: the only way a secret reaches the token layer. */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_file(int fd, const char *path, estca_reason *why)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return estca_fail(why, ESTCA_E_IO, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return estca_fail(why, ESTCA_E_CONFIG, "secret file %s is not a regular file", path);
    /* Checked on the open descriptor, so a chmod between check and read cannot slip by. */
    if (st.st_mode & 077)
        return estca_fail(why, ESTCA_E_CONFIG,
                          "secret file %s is accessible by group or others (mode %03o): "
                          "chmod 600 it",
                          path, (unsigned)(st.st_mode & 0777));
    return ESTCA_OK;
}

/* Reads the whole file into buf (cap - 1 bytes at most, NUL-terminated). */
static int read_all(int fd, const char *path, char *buf, size_t cap, size_t *len, estca_reason *why)
{
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, cap - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return estca_fail(why, ESTCA_E_IO, "cannot read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        used += (size_t)n;
        if (used == cap - 1) {
            char extra;
            if (read(fd, &extra, 1) > 0)
                return estca_fail(why, ESTCA_E_TOO_LARGE, "secret file %s is too long (max %zu)",
                                  path, cap - 2);
            break;
        }
    }
    buf[used] = '\0';
    *len = used;
    return ESTCA_OK;
}

static int read_secret_fd(int fd, const char *path, char *buf, size_t cap, estca_reason *why)
{
    int rc = check_file(fd, path, why);
    if (rc != ESTCA_OK)
        return rc;
    size_t len = 0;
    rc = read_all(fd, path, buf, cap, &len, why);
    if (rc != ESTCA_OK)
        return rc;
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    /* The secret is handed on as a C string: an embedded NUL would silently cut it. */
    if (len == 0 || strlen(buf) != len)
        return estca_fail(why, ESTCA_E_CONFIG, "secret file %s is empty or contains NUL", path);
    return ESTCA_OK;
}

int hsm_read_secret_file(const char *path, char *buf, size_t cap, estca_reason *why)
{
    if (path == NULL || buf == NULL || cap < 2)
        return estca_fail(why, ESTCA_E_INVALID, "hsm_read_secret_file: bad arguments");
    /* O_NONBLOCK: opening a FIFO must not hang start-up; check_file then refuses it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return estca_fail(why, ESTCA_E_IO, "cannot open secret file %s: %s", path, strerror(errno));
    int rc = read_secret_fd(fd, path, buf, cap, why);
    close(fd);
    if (rc != ESTCA_OK)
        OPENSSL_cleanse(buf, cap);
    return rc;
}
