/* A fresh SoftHSM2 token in a temporary directory, for one test process: writes a
 * softhsm2.conf whose tokendir is private to the test, points SOFTHSM2_CONF at it (before
 * the module is loaded), writes the user and SO PIN files (mode 0600), initialises a token
 * labelled "estca-test" through PKCS#11, and opens it logged in.
 * Criterion runs each test in its own process, so one fixture per test is the rule. */
#ifndef ESTCA_TEST_SOFTHSM_FIXTURE_H
#define ESTCA_TEST_SOFTHSM_FIXTURE_H

#include "token.h"

#include <limits.h>

#define FIXTURE_TOKEN_LABEL "estca-test"
#define FIXTURE_TOKEN_URI "pkcs11:token=estca-test"

struct softhsm_fixture {
    char dir[PATH_MAX]; /* the temporary directory: conf, tokens/, PIN files */
    char pin_file[PATH_MAX];
    char so_pin_file[PATH_MAX];
    struct hsm_token *token; /* open and logged in */
};

/* Criterion-asserts on failure. */
void softhsm_fixture_setup(struct softhsm_fixture *f);
/* Closes the token and removes the directory. */
void softhsm_fixture_teardown(struct softhsm_fixture *f);

#endif
