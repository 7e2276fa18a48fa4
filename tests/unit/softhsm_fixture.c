/* A private SoftHSM2 token per test process; see softhsm_fixture.h. */
#include "softhsm_fixture.h"
#include "scratch_dir.h"

#include "keygen.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE_USER_PIN "1234-test"
#define FIXTURE_SO_PIN "so-5678-test"

static void join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    cr_assert(n > 0 && n < PATH_MAX, "path too long: %s/%s", dir, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    cr_assert(n == (ssize_t)len, "cannot write %s", path);
    cr_assert(fchmod(fd, mode) == 0); /* the umask must not loosen or tighten it */
    close(fd);
}

static void write_conf(struct softhsm_fixture *f)
{
    char tokens[PATH_MAX], conf_path[PATH_MAX];
    join(tokens, f->dir, "tokens");
    cr_assert(mkdir(tokens, 0700) == 0, "mkdir %s: %s", tokens, strerror(errno));
    char conf[PATH_MAX + 128];
    snprintf(conf, sizeof conf,
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens);
    join(conf_path, f->dir, "softhsm2.conf");
    write_file(conf_path, conf, 0600);
    /* Read by SoftHSM2 at C_Initialize, so it must be set before the module loads. */
    cr_assert(setenv("SOFTHSM2_CONF", conf_path, 1) == 0);
}

void softhsm_fixture_setup(struct softhsm_fixture *f)
{
    memset(f, 0, sizeof *f);
    scratch_dir_make(f->dir, sizeof f->dir, "softhsm");
    write_conf(f);
    join(f->pin_file, f->dir, "user.pin");
    join(f->so_pin_file, f->dir, "so.pin");
    write_file(f->pin_file, FIXTURE_USER_PIN "\n", 0600);
    write_file(f->so_pin_file, FIXTURE_SO_PIN "\n", 0600);

    estca_reason why = {{0}};
    int rc =
        hsm_token_init(HSM_DEFAULT_MODULE, FIXTURE_TOKEN_LABEL, f->so_pin_file, f->pin_file, &why);
    cr_assert(rc == ESTCA_OK, "hsm_token_init: %s", why.text);
    rc = hsm_token_open(HSM_DEFAULT_MODULE, FIXTURE_TOKEN_URI, f->pin_file, &f->token, &why);
    cr_assert(rc == ESTCA_OK, "hsm_token_open: %s", why.text);
}

void softhsm_fixture_teardown(struct softhsm_fixture *f)
{
    hsm_token_close(f->token);
    f->token = NULL;
    scratch_dir_remove(f->dir);
    f->dir[0] = '\0';
}
