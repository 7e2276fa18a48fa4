#include "scratch_dir.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scratch_dir_make(char *dir, size_t cap, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n =
        snprintf(dir, cap, "%s/estca-%s-XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp", name);
    cr_assert(n > 0 && (size_t)n < cap);
    cr_assert(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

void scratch_dir_remove(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
