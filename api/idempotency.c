#include "api/idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"

#define IDEM_KEY_MAX 255

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

int idem_begin(struct http_ctx *c, int *claimed)
{
    static struct db_stmt q_claim = {
        "idem_claim",
        "INSERT INTO idempotency_keys (owner, key, request_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (owner, key) DO NOTHING RETURNING 1",
        0};
    static struct db_stmt q_get = {"idem_get",
                                   "SELECT request_hash, status, content_type, body "
                                   "FROM idempotency_keys WHERE owner = $1 AND key = $2",
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
    char hash[65];
    request_hash(c, hash);
    const char *params[] = {c->who.id, key, hash};
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
    ulfius_set_string_body_response(c->resp, (unsigned)status, PQgetvalue(r, 0, 3));
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
                                     "body = $5 WHERE owner = $1 AND key = $2",
                                     0};
    static struct db_stmt q_forget = {
        "idem_forget", "DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2", 0};
    const char *key = http_header(c, "Idempotency-Key");
    if (c->db == NULL || key == NULL)
        return;
    int keep = c->status < 500 && c->status != 429 && c->status != 409;
    char status[8];
    snprintf(status, sizeof(status), "%d", c->status);
    const char *type = u_map_get_case(c->resp->map_header, "Content-Type");
    char *body = NULL;
    if (keep) {
        body = malloc(c->resp->binary_body_length + 1);
        if (body == NULL)
            keep = 0;
        else {
            memcpy(body, c->resp->binary_body, c->resp->binary_body_length);
            body[c->resp->binary_body_length] = '\0';
        }
    }
    const char *params[] = {c->who.id, key, status, type ? type : "application/json", body};
    PGresult *r = db_exec(c->db, keep ? &q_store : &q_forget, keep ? 5 : 2, params);
    PQclear(r);
    free(body);
}
