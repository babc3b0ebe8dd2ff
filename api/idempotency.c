#include "api/idempotency.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/base/log.h"

#define IDEM_KEY_MAX 255
#define SEAL_NONCE   12
#define SEAL_TAG     16
#define SEAL_PREFIX  "v1:"

static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > IDEM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

static void request_hash(struct http_ctx *c, char out[65])
{
    size_t blen = c->req->binary_body_length;
    size_t plen = strlen(c->req->url_path), tlen = strlen(c->tenant_id);
    char *buf = malloc(plen + tlen + blen + 16);
    if (buf == NULL) {
        out[0] = '\0';
        return;
    }
    size_t pos = 0;
    memcpy(buf + pos, "POST ", 5);
    pos += 5;
    memcpy(buf + pos, c->req->url_path, plen);
    pos += plen;
    buf[pos++] = '\n';
    memcpy(buf + pos, c->tenant_id, tlen);
    pos += tlen;
    buf[pos++] = '\n';
    if (blen)
        memcpy(buf + pos, c->req->binary_body, blen);
    pos += blen;
    crypto_sha256_hex(buf, pos, out);
    free(buf);
}

/* The record's name: the Idempotency-Key itself may be guessable, so it is stored only as an
 * HMAC under the server secret (domain-separated from API key hashes). */
static int record_key(struct http_ctx *c, const char *key, char out[65])
{
    char msg[IDEM_KEY_MAX + 16];
    int n = snprintf(msg, sizeof(msg), "idempotency\n%s", key);
    return crypto_hmac_hex(c->cfg->key_hash_secret, sizeof(c->cfg->key_hash_secret), msg, (size_t)n,
                           out);
}

/* The answer's key: HKDF-SHA256 with the Idempotency-Key as input key material, the server
 * secret as salt and the caller's id as context. Without the Idempotency-Key (which is never
 * stored) a database dump cannot open the answer; with the server secret alone neither. */
static int seal_key(struct http_ctx *c, const char *key, unsigned char out[32])
{
    int rc = -1;
    size_t len = 32;
    EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    char info[80];
    int ilen = snprintf(info, sizeof(info), "cobrowse idempotency v1 %s", c->who.id);
    if (k == NULL || EVP_PKEY_derive_init(k) <= 0 ||
        EVP_PKEY_CTX_set_hkdf_md(k, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_salt(k, c->cfg->key_hash_secret,
                                    (int)sizeof(c->cfg->key_hash_secret)) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_key(k, (const unsigned char *)key, (int)strlen(key)) <= 0 ||
        EVP_PKEY_CTX_add1_hkdf_info(k, (const unsigned char *)info, ilen) <= 0 ||
        EVP_PKEY_derive(k, out, &len) <= 0 || len != 32)
        goto done;
    rc = 0;
done:
    EVP_PKEY_CTX_free(k);
    return rc;
}

/* AES-256-GCM over body with aad bound in. Returns "v1:<hex>" (caller frees) or NULL. */
static char *seal(const unsigned char key[32], const char *aad, const unsigned char *body,
                  size_t len)
{
    size_t raw_len = SEAL_NONCE + SEAL_TAG + len;
    unsigned char *raw = malloc(raw_len);
    char *out = malloc(sizeof(SEAL_PREFIX) + 2 * raw_len);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0,
        ok = raw && out && x && RAND_bytes(raw, SEAL_NONCE) == 1 &&
             EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
             EVP_EncryptUpdate(x, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_EncryptUpdate(x, raw + SEAL_NONCE + SEAL_TAG, &n, body, (int)len) == 1 &&
             EVP_EncryptFinal_ex(x, raw + SEAL_NONCE + SEAL_TAG + n, &n) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, raw + SEAL_NONCE) == 1;
    if (ok) {
        memcpy(out, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1);
        crypto_hex_encode(raw, raw_len, out + sizeof(SEAL_PREFIX) - 1);
    } else {
        free(out);
        out = NULL;
    }
    EVP_CIPHER_CTX_free(x);
    free(raw);
    return out;
}

/* Opens what seal() made. Returns the body (NUL-terminated, caller frees) or NULL if it does not
 * open (another key, altered, not sealed). */
static char *unseal(const unsigned char key[32], const char *aad, const char *sealed)
{
    size_t plen = sizeof(SEAL_PREFIX) - 1;
    if (sealed == NULL || strncmp(sealed, SEAL_PREFIX, plen) != 0)
        return NULL;
    size_t hex_len = strlen(sealed + plen);
    size_t raw_len = hex_len / 2;
    if (hex_len % 2 != 0 || raw_len < SEAL_NONCE + SEAL_TAG)
        return NULL;
    unsigned char *raw = malloc(raw_len);
    size_t len = raw_len - SEAL_NONCE - SEAL_TAG;
    char *out = malloc(len + 1);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0,
        ok = raw && out && x && crypto_hex_decode(sealed + plen, raw, raw_len) == (int)raw_len &&
             EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, raw) == 1 &&
             EVP_DecryptUpdate(x, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_DecryptUpdate(x, (unsigned char *)out, &n, raw + SEAL_NONCE + SEAL_TAG,
                               (int)len) == 1 &&
             EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, raw + SEAL_NONCE) == 1 &&
             EVP_DecryptFinal_ex(x, (unsigned char *)out + n, &n) == 1;
    if (ok) {
        out[len] = '\0';
    } else {
        free(out);
        out = NULL;
    }
    EVP_CIPHER_CTX_free(x);
    free(raw);
    return out;
}

int idem_begin(struct http_ctx *c, int *claimed)
{
    static struct db_stmt q_claim = {
        "idem_claim",
        "INSERT INTO idempotency_keys (owner, key_hash, request_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (owner, key_hash) DO NOTHING RETURNING 1",
        0};
    static struct db_stmt q_get = {"idem_get",
                                   "SELECT request_hash, status, content_type, sealed_body "
                                   "FROM idempotency_keys WHERE owner = $1 AND key_hash = $2",
                                   0};
    *claimed = 0;
    const char *key = http_header(c, "Idempotency-Key");
    if (key == NULL || strcmp(c->req->http_verb, "POST") != 0)
        return 0;
    if (!key_ok(key)) {
        http_problem(c, 400, "invalid_parameter", "Idempotency-Key",
                     "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is "
                     "a good choice).");
        return 1;
    }
    char hash[65], name[65];
    request_hash(c, hash);
    if (hash[0] == '\0' || record_key(c, key, name) != 0) {
        http_problem(c, 500, "internal_error", NULL, "The Idempotency-Key could not be hashed.");
        return 1;
    }
    const char *params[] = {c->who.id, name, hash};
    PGresult *r = http_db(c, &q_claim, 3, params);
    if (r == NULL)
        return 1;
    int inserted = PQntuples(r) == 1;
    PQclear(r);
    if (inserted) {
        *claimed = 1;
        return 0;
    }
    r = http_db(c, &q_get, 2, params);
    if (r == NULL)
        return 1;
    if (PQntuples(r) != 1) {
        /* Deleted between our two statements (a failed first attempt): ask for a retry. */
        PQclear(r);
        http_problem(c, 409, "idempotency_key_in_use", "Idempotency-Key",
                     "A request with this Idempotency-Key just failed; retry it.");
        return 1;
    }
    if (strcmp(PQgetvalue(r, 0, 0), hash) != 0) {
        PQclear(r);
        http_problem(c, 422, "idempotency_key_reused", "Idempotency-Key",
                     "This Idempotency-Key was used with another request; use a new key for a "
                     "new request.");
        return 1;
    }
    if (PQgetisnull(r, 0, 1)) {
        PQclear(r);
        http_problem(c, 409, "idempotency_key_in_use", "Idempotency-Key",
                     "A request with this Idempotency-Key is still being processed; retry "
                     "shortly.");
        return 1;
    }
    int status = atoi(PQgetvalue(r, 0, 1));
    unsigned char sk[32];
    char *body = seal_key(c, key, sk) == 0 ? unseal(sk, name, PQgetvalue(r, 0, 3)) : NULL;
    if (body == NULL) { /* same request hash, so the same key: only a fault lands here */
        PQclear(r);
        log_json(LOG_ERROR, "stored idempotent answer does not open",
                 json_pack("{s:s}", "request_id", c->request_id));
        http_problem(c, 500, "internal_error", NULL, "The stored answer could not be read.");
        return 1;
    }
    ulfius_set_string_body_response(c->resp, (unsigned)status, body);
    free(body);
    http_set_header(c, "Content-Type", PQgetvalue(r, 0, 2));
    http_set_header(c, "Idempotent-Replayed", "true");
    c->status = status;
    c->answered = 1;
    PQclear(r);
    return 1;
}

void idem_finish(struct http_ctx *c)
{
    static struct db_stmt q_store = {"idem_store",
                                     "UPDATE idempotency_keys SET status = $3, content_type = $4, "
                                     "sealed_body = $5 WHERE owner = $1 AND key_hash = $2",
                                     0};
    static struct db_stmt q_forget = {
        "idem_forget", "DELETE FROM idempotency_keys WHERE owner = $1 AND key_hash = $2", 0};
    const char *key = http_header(c, "Idempotency-Key");
    char name[65];
    unsigned char sk[32];
    if (c->db == NULL || key == NULL || record_key(c, key, name) != 0)
        return;
    int keep = c->status < 500 && c->status != 429 && c->status != 409;
    char status[8];
    snprintf(status, sizeof(status), "%d", c->status);
    const char *type = u_map_get_case(c->resp->map_header, "Content-Type");
    char *body = NULL;
    if (keep) {
        body = seal_key(c, key, sk) == 0
                   ? seal(sk, name, c->resp->binary_body, c->resp->binary_body_length)
                   : NULL;
        keep = body != NULL; /* unsealable: forget it, so a retry runs again */
    }
    const char *params[] = {c->who.id, name, status, type ? type : "application/json", body};
    PGresult *r = db_exec(c->db, keep ? &q_store : &q_forget, keep ? 5 : 2, params);
    PQclear(r);
    free(body);
}
