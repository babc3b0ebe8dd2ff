-- 005: nothing secret at rest in the idempotency records. A stored answer may hold a key's
-- secret or a visitor token, so api/idempotency.c keeps the record under an HMAC of the
-- Idempotency-Key (server secret) and the answer sealed with AES-256-GCM under a key derived from
-- the Idempotency-Key itself: a dump holds neither the answer nor a way to open it, and only a
-- client presenting the same Idempotency-Key gets the answer again.
-- Records written before (plain keys and answers) are dropped: a retry of one of those requests
-- within its 24 hours runs again instead of replaying.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys RENAME COLUMN key TO key_hash;
ALTER TABLE idempotency_keys RENAME COLUMN body TO sealed_body;
COMMENT ON COLUMN idempotency_keys.key_hash IS 'HMAC-SHA256(server secret, Idempotency-Key), hex';
COMMENT ON COLUMN idempotency_keys.sealed_body IS
    'v1:hex(nonce 12 | tag 16 | AES-256-GCM ciphertext), key = HKDF-SHA256(Idempotency-Key)';
