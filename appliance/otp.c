/* One-time enrollment codes (otp.h): drawing one for estca, checking one a request presents,
 * and the code's own policy before issuance. The ledger (ledger_otp.c) keeps the codes'
 * hashes and burns a code with its certificate. Never a code in a reason, the log or the
 * audit: only its ledger id. */
#include "core_internal.h"
#include "otp.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OTP_RANDOM_OCTETS 20 /* 160 bits: 32 base32 characters without padding */

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* RFC 4648 base32 of 20 octets: exactly 32 characters, no padding. */
static void base32_encode(const unsigned char in[OTP_RANDOM_OCTETS], char out[OTP_CODE_LEN + 1])
{
    unsigned buffer = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < OTP_RANDOM_OCTETS; i++) {
        buffer = (buffer << 8 | in[i]) & 0xfffu;
        bits += 8;
        while (bits >= 5) {
            out[n++] = base32_alphabet[(buffer >> (bits - 5)) & 31u];
            bits -= 5;
        }
    }
    out[n] = '\0';
    OPENSSL_cleanse(&buffer, sizeof buffer);
}

/* SHA-256 of the code in upper case, as it was issued (a person may type it in lower case). */
static int hash_code(const char *code, size_t len, unsigned char out[LEDGER_OTP_HASH_LEN],
                     estca_reason *why)
{
    if (len != OTP_CODE_LEN)
        return estca_fail(why, ESTCA_E_AUTH, "not a one-time code (%zu characters, not %d)", len,
                          OTP_CODE_LEN);
    char upper[OTP_CODE_LEN];
    for (size_t i = 0; i < len; i++)
        upper[i] = (char)toupper((unsigned char)code[i]);
    int ok = EVP_Digest(upper, len, out, NULL, EVP_sha256(), NULL);
    OPENSSL_cleanse(upper, sizeof upper);
    return ok ? ESTCA_OK : estca_fail_openssl(why, ESTCA_E_CRYPTO, "SHA-256 of a one-time code");
}

int otp_issue(struct ledger *ledger, const struct otp_issue_request *request, long *id,
              char code[OTP_CODE_LEN + 1], estca_reason *why)
{
    if (ledger == NULL || request == NULL || request->label == NULL || request->subject == NULL ||
        request->ttl_seconds <= 0 || id == NULL || code == NULL)
        return estca_fail(why, ESTCA_E_INVALID, "otp_issue: bad arguments");
    unsigned char random[OTP_RANDOM_OCTETS];
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    if (RAND_bytes(random, sizeof random) != 1)
        return estca_fail_openssl(why, ESTCA_E_CRYPTO, "no random bytes for a one-time code");
    base32_encode(random, code);
    OPENSSL_cleanse(random, sizeof random);
    int rc = hash_code(code, OTP_CODE_LEN, hash, why);
    unsigned char *subject_der = NULL, *sans_der = NULL;
    int subject_len = i2d_X509_NAME(request->subject, &subject_der);
    int sans_len = request->sans != NULL ? i2d_GENERAL_NAMES(request->sans, &sans_der) : 0;
    if (rc == ESTCA_OK && (subject_len <= 0 || sans_len < 0))
        rc = estca_fail_openssl(why, ESTCA_E_INVALID, "cannot encode the code's names");
    struct ledger_otp row = {
        .label = request->label,
        .subject_der = subject_der,
        .subject_der_len = subject_len > 0 ? (size_t)subject_len : 0,
        .sans = request->sans_text,
        .sans_der = sans_der,
        .sans_der_len = sans_len > 0 ? (size_t)sans_len : 0,
        .code_sha256 = hash,
    };
    if (rc == ESTCA_OK)
        rc = ledger_otp_insert(ledger, &row, request->ttl_seconds, id, why);
    OPENSSL_free(subject_der);
    OPENSSL_free(sans_der);
    if (rc != ESTCA_OK)
        OPENSSL_cleanse(code, OTP_CODE_LEN + 1);
    return rc;
}

const char *otp_status(const struct ledger_otp *code)
{
    if (code->used_at != NULL)
        return "used";
    if (code->revoked_at != NULL)
        return "revoked";
    return code->usable ? "unused" : "expired";
}

/* ---- a code's row, copied out of the ledger ---- */

struct otp_row {
    long id;
    char *label;
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    bool has_hash;
    unsigned char *subject_der;
    size_t subject_der_len;
    unsigned char *sans_der; /* NULL: no subjectAltName allowed */
    size_t sans_der_len;
    bool usable;
    const char *status; /* otp_status */
};

static void row_clear(struct otp_row *row)
{
    free(row->label);
    OPENSSL_free(row->subject_der);
    OPENSSL_free(row->sans_der);
    *row = (struct otp_row){0};
}

static int copy_row(const struct ledger_otp *code, void *arg)
{
    struct otp_row *row = arg;
    row->id = code->id;
    row->usable = code->usable;
    row->status = otp_status(code);
    row->has_hash = code->code_sha256 != NULL;
    if (row->has_hash)
        memcpy(row->hash, code->code_sha256, sizeof row->hash);
    row->label = strdup(code->label != NULL ? code->label : "");
    row->subject_der_len = code->subject_der_len;
    row->subject_der =
        code->subject_der != NULL ? OPENSSL_memdup(code->subject_der, code->subject_der_len) : NULL;
    row->sans_der_len = code->sans_der_len;
    if (code->sans_der != NULL)
        row->sans_der = OPENSSL_memdup(code->sans_der, code->sans_der_len);
    if (row->label == NULL || row->subject_der == NULL ||
        (code->sans_der != NULL && row->sans_der == NULL))
        return ESTCA_E_NOMEM;
    return ESTCA_OK;
}

/* The code of ledger id id, or with id 0 the one whose hash is hash. An unknown code is
 * ESTCA_E_AUTH (to the client it is just a wrong credential); a ledger that cannot be read
 * ESTCA_E_UNAVAILABLE (503: retry later). */
static int find_row(struct ca_core *core, long id, const unsigned char *hash, struct otp_row *row,
                    estca_reason *why)
{
    int rc = ledger_otp_find(core->ledger, id, hash, copy_row, row, why);
    if (rc == ESTCA_E_NOMEM)
        rc = estca_fail(why, ESTCA_E_NOMEM, "out of memory");
    else if (rc == ESTCA_E_NOT_FOUND)
        rc = ESTCA_E_AUTH;
    else if (rc == ESTCA_E_LEDGER)
        rc = ESTCA_E_UNAVAILABLE;
    if (rc != ESTCA_OK)
        row_clear(row);
    return rc;
}

/* "N" of "otp-N" or "otp:N": decimal digits only, N > 0. */
static bool parse_id(const char *text, long *out)
{
    if (!isdigit((unsigned char)text[0]))
        return false;
    char *end = NULL;
    errno = 0;
    long id = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || id <= 0)
        return false;
    *out = id;
    return true;
}

/* ---- the EST front's checks ---- */

bool core_label_allows_otp(const struct core_label *label)
{
    return label != NULL && label->otp;
}

bool core_otp_user(const struct core_label *label, const char *user)
{
    return core_label_allows_otp(label) && user != NULL &&
           strncmp(user, OTP_USER_PREFIX, strlen(OTP_USER_PREFIX)) == 0;
}

static int refuse(struct ca_core *core, const struct core_label *label, const char *who, int rc,
                  const estca_reason *why)
{
    if (rc == ESTCA_E_AUTH)
        core_audit_otp_refused(core, label, who, why->text);
    return rc;
}

int core_otp_check_password(struct ca_core *core, const struct core_label *label, const char *user,
                            const char *code, char *requester, size_t cap, estca_reason *why)
{
    estca_reason local;
    if (why == NULL)
        why = &local;
    if (requester != NULL && cap > 0)
        requester[0] = '\0';
    if (core == NULL || requester == NULL || code == NULL || !core_otp_user(label, user))
        return estca_fail(why, ESTCA_E_AUTH, "not a one-time code's user");
    long id = 0;
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    struct otp_row row = {0};
    int rc = ESTCA_OK;
    if (!parse_id(user + strlen(OTP_USER_PREFIX), &id))
        rc = estca_fail(why, ESTCA_E_AUTH, "user %.64s names no one-time code", user);
    if (rc == ESTCA_OK)
        rc = hash_code(code, strlen(code), hash, why);
    if (rc == ESTCA_OK)
        rc = find_row(core, id, NULL, &row, why);
    /* The code before its state: without the code nothing is learnt of it. */
    if (rc == ESTCA_OK && (!row.has_hash || CRYPTO_memcmp(row.hash, hash, sizeof hash) != 0))
        rc = estca_fail(why, ESTCA_E_AUTH, "wrong code for one-time code %ld", id);
    if (rc == ESTCA_OK && !row.usable)
        rc = estca_fail(why, ESTCA_E_AUTH, "one-time code %ld is %s", id, row.status);
    if (rc == ESTCA_OK)
        snprintf(requester, cap, OTP_REQUESTER_PREFIX "%ld", id);
    OPENSSL_cleanse(hash, sizeof hash);
    row_clear(&row);
    return refuse(core, label, user, rc, why);
}

/* The code in csr's otpChallenge attribute: one attribute, one value, a UTF8String or
 * PrintableString (RFC 7894 §3 makes it a DirectoryString; the codes are ASCII). */
static int csr_challenge(X509_REQ *csr, char code[OTP_CODE_LEN + 1], estca_reason *why)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(OTP_OID, 1);
    if (oid == NULL)
        return estca_fail_openssl(why, ESTCA_E_NOMEM, "the otpChallenge OID");
    int at = X509_REQ_get_attr_by_OBJ(csr, oid, -1);
    int again = at >= 0 ? X509_REQ_get_attr_by_OBJ(csr, oid, at) : -1;
    ASN1_OBJECT_free(oid);
    if (at < 0)
        return estca_fail(why, ESTCA_E_NOT_FOUND, "no credentials, and no otpChallenge in the CSR");
    if (again >= 0)
        return estca_fail(why, ESTCA_E_AUTH, "the CSR carries more than one otpChallenge");
    X509_ATTRIBUTE *attribute = X509_REQ_get_attr(csr, at);
    ASN1_TYPE *value =
        X509_ATTRIBUTE_count(attribute) == 1 ? X509_ATTRIBUTE_get0_type(attribute, 0) : NULL;
    int type = value != NULL ? ASN1_TYPE_get(value) : V_ASN1_UNDEF;
    if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING)
        return estca_fail(why, ESTCA_E_AUTH,
                          "otpChallenge is not one UTF8String or PrintableString");
    const ASN1_STRING *text = value->value.asn1_string;
    int len = ASN1_STRING_length(text);
    if (len != OTP_CODE_LEN)
        return estca_fail(why, ESTCA_E_AUTH, "otpChallenge holds no one-time code (%d octets)",
                          len);
    memcpy(code, ASN1_STRING_get0_data(text), (size_t)len);
    code[len] = '\0';
    return ESTCA_OK;
}

int core_otp_check_csr(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
                       char *requester, size_t cap, estca_reason *why)
{
    estca_reason local;
    if (why == NULL)
        why = &local;
    if (requester != NULL && cap > 0)
        requester[0] = '\0';
    if (core == NULL || csr == NULL || requester == NULL || !core_label_allows_otp(label))
        return estca_fail(why, ESTCA_E_AUTH, "no credentials");
    char code[OTP_CODE_LEN + 1];
    unsigned char hash[LEDGER_OTP_HASH_LEN];
    struct otp_row row = {0};
    int rc = csr_challenge(csr, code, why);
    if (rc == ESTCA_OK)
        rc = hash_code(code, strlen(code), hash, why);
    OPENSSL_cleanse(code, sizeof code);
    /* By the hash: the lookup's timing tells at most whether a guess's hash is some code's
     * prefix in the index, which says nothing of any code. */
    if (rc == ESTCA_OK && (rc = find_row(core, 0, hash, &row, why)) == ESTCA_E_AUTH)
        estca_fail(why, ESTCA_E_AUTH, "the CSR's otpChallenge is no one-time code");
    if (rc == ESTCA_OK && !row.usable)
        rc = estca_fail(why, ESTCA_E_AUTH, "one-time code %ld is %s", row.id, row.status);
    if (rc == ESTCA_OK)
        snprintf(requester, cap, OTP_REQUESTER_PREFIX "%ld", row.id);
    OPENSSL_cleanse(hash, sizeof hash);
    char who[48] = "otpChallenge";
    if (row.id > 0)
        snprintf(who, sizeof who, OTP_USER_PREFIX "%ld", row.id);
    row_clear(&row);
    return refuse(core, label, who, rc, why);
}

/* ---- the code's policy (issuance.c) ---- */

static int check_subject(const struct otp_row *row, X509_REQ *csr, estca_reason *why)
{
    const unsigned char *p = row->subject_der;
    X509_NAME *allowed = d2i_X509_NAME(NULL, &p, (long)row->subject_der_len);
    if (allowed == NULL)
        return estca_fail_openssl(why, ESTCA_E_LEDGER,
                                  "one-time code %ld: bad subject in the ledger", row->id);
    const X509_NAME *requested = X509_REQ_get_subject_name(csr);
    int rc = ESTCA_OK;
    if (requested == NULL || X509_NAME_cmp(requested, allowed) != 0) {
        char want[256], got[256] = "";
        X509_NAME_oneline(allowed, want, sizeof want);
        if (requested != NULL)
            X509_NAME_oneline(requested, got, sizeof got);
        rc = estca_fail(why, ESTCA_E_FORBIDDEN, "one-time code %ld is for subject %s, not %s",
                        row->id, want, got);
    }
    X509_NAME_free(allowed);
    return rc;
}

/* "DNS:host" as openssl prints a name, for a reason. */
static void name_text(GENERAL_NAME *name, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = bio != NULL && GENERAL_NAME_print(bio, name) > 0 ? BIO_get_mem_data(bio, &data) : 0;
    snprintf(out, size, "%.*s", len > 0 ? (int)len : 1, len > 0 ? data : "?");
    BIO_free(bio);
}

static int check_sans(const struct otp_row *row, const GENERAL_NAMES *requested, estca_reason *why)
{
    if (requested == NULL || sk_GENERAL_NAME_num(requested) == 0)
        return ESTCA_OK;
    GENERAL_NAMES *allowed = NULL;
    const unsigned char *p = row->sans_der;
    if (row->sans_der != NULL &&
        (allowed = d2i_GENERAL_NAMES(NULL, &p, (long)row->sans_der_len)) == NULL)
        return estca_fail_openssl(why, ESTCA_E_LEDGER,
                                  "one-time code %ld: bad subjectAltNames in the ledger", row->id);
    int rc = ESTCA_OK;
    for (int i = 0; rc == ESTCA_OK && i < sk_GENERAL_NAME_num(requested); i++) {
        GENERAL_NAME *name = sk_GENERAL_NAME_value(requested, i);
        bool found = false;
        for (int j = 0; !found && j < sk_GENERAL_NAME_num(allowed); j++)
            found = GENERAL_NAME_cmp(name, sk_GENERAL_NAME_value(allowed, j)) == 0;
        if (!found) {
            char text[160];
            name_text(name, text, sizeof text);
            rc = estca_fail(why, ESTCA_E_FORBIDDEN,
                            "one-time code %ld does not allow subjectAltName %s", row->id, text);
        }
    }
    GENERAL_NAMES_free(allowed);
    return rc;
}

int otp_admit(struct ca_core *core, const struct core_label *label, X509_REQ *csr,
              const GENERAL_NAMES *san, const char *requester, long *code, estca_reason *why)
{
    *code = 0;
    if (requester == NULL ||
        strncmp(requester, OTP_REQUESTER_PREFIX, strlen(OTP_REQUESTER_PREFIX)) != 0)
        return ESTCA_OK;
    long id = 0;
    if (!parse_id(requester + strlen(OTP_REQUESTER_PREFIX), &id))
        return estca_fail(why, ESTCA_E_AUTH, "requester %.64s names no one-time code", requester);
    if (!core_label_allows_otp(label))
        return estca_fail(why, ESTCA_E_FORBIDDEN, "label %s takes no one-time codes",
                          label != NULL ? label->name : "-");
    struct otp_row row = {0};
    int rc = find_row(core, id, NULL, &row, why);
    if (rc == ESTCA_E_AUTH)
        rc = estca_fail(why, ESTCA_E_AUTH, "no one-time code %ld", id);
    if (rc == ESTCA_OK && !row.usable)
        rc = estca_fail(why, ESTCA_E_AUTH, "one-time code %ld is %s", id, row.status);
    if (rc == ESTCA_OK && strcmp(row.label, label->name) != 0)
        rc = estca_fail(why, ESTCA_E_FORBIDDEN, "one-time code %ld is for label %s, not %s", id,
                        row.label, label->name);
    if (rc == ESTCA_OK)
        rc = check_subject(&row, csr, why);
    if (rc == ESTCA_OK)
        rc = check_sans(&row, san, why);
    if (rc == ESTCA_OK)
        *code = id;
    row_clear(&row);
    return rc;
}
