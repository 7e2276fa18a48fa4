/* A private temporary directory for one test: made under $TMPDIR (or /tmp) as
 * estca-<name>-XXXXXX, removed with everything in it. Criterion-asserts on failure. */
#ifndef ESTCA_TEST_SCRATCH_DIR_H
#define ESTCA_TEST_SCRATCH_DIR_H

#include <stddef.h>

void scratch_dir_make(char *dir, size_t cap, const char *name);
/* Depth first and without following links: only the directory's own files go. */
void scratch_dir_remove(const char *dir);

#endif
