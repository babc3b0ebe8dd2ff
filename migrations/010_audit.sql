-- 010: the audit trail (docs/audit.md). One row per change made through the API (or by the
-- platform itself: a session ended by the relay's idle timeout or the expiry sweeper), per tenant
-- a gapless sequence and a hash chain: hash = sha256(prev_hash || audit_canonical(entry)).
--
-- How entries are written: by triggers on the changed tables (tenants, api_keys, sessions,
-- webhook_endpoints), and for actions that change none of their rows by an audit_append call in
-- the handler's statement itself (see the end of this file). A trigger runs inside the
-- statement that makes the change, so the entry commits or rolls back with it: no change is ever
-- missing from the trail, whatever handler, function or future route makes it. Writing the entry
-- from each handler instead would need every mutating statement (and every new one) to remember
-- it. Who acts is not known to a trigger: the API sets it per request with
-- set_config('cobrowse.actor', '{"type","id","request_id","address"}', false) before the
-- request's first statement and clears it when the connection goes back to the pool
-- (api/audit.c); with no actor set the change is the platform's own (actor type 'system').
--
-- Serialization: each append takes a transaction-scoped advisory lock on its tenant's chain, so
-- two concurrent changes of one tenant get seq n and n+1 with the second hashing the first; the
-- lock is held to commit (cost: changes of one tenant commit one at a time; other tenants are
-- not affected). A rolled back change rolls its entry back too, so seq stays gapless.

CREATE TABLE audit_events (
    id              text PRIMARY KEY,                 -- aud_...
    tenant_id       text NOT NULL,                    -- the tenant the change concerns
    seq             bigint NOT NULL,                  -- per tenant: 1, 2, 3... no gaps
    occurred_at     timestamptz NOT NULL,
    actor_type      text NOT NULL CHECK (actor_type IN ('admin_token', 'api_key', 'session_token', 'system')),
    actor_id        text,
    actor_name      text,
    action          text NOT NULL,
    target_type     text NOT NULL,
    target_id       text NOT NULL,
    request_id      text,
    client_address  text,
    changes         jsonb NOT NULL DEFAULT '{}',      -- what changed; never a secret
    prev_hash       bytea NOT NULL,                   -- 32 zero bytes for a tenant's first entry
    hash            bytea NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_events_list ON audit_events (tenant_id, id);
CREATE INDEX audit_events_target ON audit_events (tenant_id, target_id, id);

-- The text an entry's hash covers: every field but the hashes, as a JSON array (so no field's
-- content can pass for a separator), times in UTC with microseconds (independent of the
-- session's TimeZone), changes as jsonb text (its key order is PostgreSQL's own, deterministic).
CREATE FUNCTION audit_canonical(a audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(
        a.id, a.tenant_id, a.seq,
        to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        a.actor_type, a.actor_id, a.actor_name, a.action, a.target_type, a.target_id,
        a.request_id, a.client_address, a.changes)::text
$$;

CREATE FUNCTION audit_hash(prev bytea, a audit_events) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || convert_to(audit_canonical(a), 'UTF8'))
$$;

-- Appends an entry to tenant t's chain, the actor taken from the request's setting.
CREATE FUNCTION audit_append(t text, act text, ttype text, tid text, ch jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    actor jsonb := NULLIF(current_setting('cobrowse.actor', true), '')::jsonb;
    a audit_events;
    last audit_events;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('cobrowse.audit:' || t, 0));
    SELECT * INTO last FROM audit_events WHERE tenant_id = t ORDER BY seq DESC LIMIT 1;
    a.id := ids_new('aud');
    a.tenant_id := t;
    a.seq := COALESCE(last.seq, 0) + 1;
    a.occurred_at := clock_timestamp();
    a.actor_type := COALESCE(actor->>'type', 'system');
    a.actor_id := actor->>'id';
    a.actor_name := CASE a.actor_type
        WHEN 'api_key' THEN (SELECT name FROM api_keys WHERE id = a.actor_id)
        WHEN 'admin_token' THEN (SELECT name FROM admin_tokens WHERE id = a.actor_id)
        ELSE actor->>'name' END;
    a.action := act;
    a.target_type := ttype;
    a.target_id := tid;
    a.request_id := actor->>'request_id';
    a.client_address := actor->>'address';
    a.changes := COALESCE(ch, '{}');
    a.prev_hash := COALESCE(last.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    a.hash := audit_hash(a.prev_hash, a);
    INSERT INTO audit_events SELECT a.*;
END $$;

-- The fields of new that differ from old among keys (new values only).
CREATE FUNCTION audit_diff(old jsonb, new jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(jsonb_object_agg(k, new->k), '{}') FROM unnest(keys) AS k
    WHERE old->k IS DISTINCT FROM new->k
$$;

CREATE FUNCTION audit_entry_json(a audit_events) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', a.id, 'object', 'audit_event', 'tenant_id', a.tenant_id, 'seq', a.seq,
        'occurred_at', a.occurred_at,
        'actor', json_build_object('type', a.actor_type, 'id', a.actor_id, 'name', a.actor_name),
        'action', a.action, 'target', json_build_object('type', a.target_type, 'id', a.target_id),
        'request_id', a.request_id, 'client_address', a.client_address, 'changes', a.changes,
        'prev_hash', encode(a.prev_hash, 'hex'), 'hash', encode(a.hash, 'hex'))
$$;

-- Recomputes tenant t's chain: intact when every entry's seq follows the last, its prev_hash is
-- the previous entry's hash and its hash is recomputed equal. Returns the first entry where one
-- of these fails (NULL when intact) and how many entries were checked. O(n) in the entries.
CREATE FUNCTION audit_verify(t text, OUT checked bigint, OUT broken_id text, OUT broken_seq bigint,
                             OUT reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a audit_events;
    prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    n bigint := 0;
BEGIN
    checked := 0;
    FOR a IN SELECT * FROM audit_events WHERE tenant_id = t ORDER BY seq LOOP
        n := n + 1;
        reason := CASE WHEN a.seq <> n THEN 'seq_gap'
                       WHEN a.prev_hash <> prev THEN 'prev_hash_mismatch'
                       WHEN a.hash <> audit_hash(a.prev_hash, a) THEN 'hash_mismatch' END;
        IF reason IS NOT NULL THEN
            broken_id := a.id;
            broken_seq := a.seq;
            RETURN;
        END IF;
        checked := n;
        prev := a.hash;
    END LOOP;
END $$;

-- ---- Where entries come from ----

CREATE FUNCTION audit_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys constant text[] := ARRAY['branding', 'allowed_origins', 'masking', 'permissions', 'limits'];
    ch jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM audit_append(NEW.id, 'tenant.created', 'tenant', NEW.id,
            jsonb_build_object('name', NEW.name, 'parent_id', NEW.parent_id));
    ELSIF OLD.status IS DISTINCT FROM NEW.status THEN
        PERFORM audit_append(NEW.id, CASE NEW.status WHEN 'suspended' THEN 'tenant.suspended'
                                                     WHEN 'deleted' THEN 'tenant.deleted'
                                                     ELSE 'tenant.reactivated' END,
                             'tenant', NEW.id, jsonb_build_object('status', NEW.status));
    ELSE
        ch := audit_diff(OLD.settings, NEW.settings, keys);
        IF OLD.name IS DISTINCT FROM NEW.name THEN
            ch := ch || jsonb_build_object('name', NEW.name);
        END IF;
        IF ch <> '{}' THEN
            PERFORM audit_append(NEW.id, 'tenant.updated', 'tenant', NEW.id, ch);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_tenant AFTER INSERT OR UPDATE OF status, name, settings ON tenants
    FOR EACH ROW EXECUTE FUNCTION audit_tenant();

-- The key's public fields only: never key_hash (nor the key, which is never stored).
CREATE FUNCTION audit_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM audit_append(NEW.tenant_id,
        CASE TG_OP WHEN 'INSERT' THEN 'api_key.created' ELSE 'api_key.revoked' END,
        'api_key', NEW.id,
        CASE TG_OP WHEN 'INSERT' THEN jsonb_build_object('type', NEW.type, 'name', NEW.name,
                 'scopes', to_jsonb(NEW.scopes), 'prefix', NEW.prefix, 'last4', NEW.last4,
                 'expires_at', NEW.expires_at)
             ELSE '{}'::jsonb END);
    RETURN NULL;
END $$;
CREATE TRIGGER audit_api_key_created AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION audit_api_key();
CREATE TRIGGER audit_api_key_revoked AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION audit_api_key();

CREATE FUNCTION audit_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM audit_append(NEW.tenant_id, 'session.created', 'session', NEW.id,
            jsonb_build_object('visitor_external_id', NEW.visitor_external_id,
                               'permissions', NEW.permissions, 'expires_at', NEW.expires_at));
    ELSE
        PERFORM audit_append(NEW.tenant_id, 'session.ended', 'session', NEW.id,
            jsonb_build_object('reason', NEW.end_reason));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_session_created AFTER INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION audit_session();
CREATE TRIGGER audit_session_ended AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN (OLD.status <> 'ended' AND NEW.status = 'ended')
    EXECUTE FUNCTION audit_session();

-- Endpoints: the sealed secrets never appear; a rotation says only that it happened. The
-- dispatcher's own bookkeeping (failing_since) is no change; its disabling a failing endpoint is
-- (actor system).
CREATE FUNCTION audit_webhook_endpoint() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys constant text[] := ARRAY['url', 'description', 'event_types', 'include_subtenants',
                                  'enabled', 'disabled_reason'];
    o jsonb;
    n jsonb := to_jsonb(NEW) - 'secret_sealed' - 'previous_sealed';
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM audit_append(NEW.tenant_id, 'webhook_endpoint.created', 'webhook_endpoint', NEW.id,
            audit_diff('{}', n, keys));
        RETURN NULL;
    END IF;
    o := to_jsonb(OLD) - 'secret_sealed' - 'previous_sealed';
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        PERFORM audit_append(NEW.tenant_id, 'webhook_endpoint.deleted', 'webhook_endpoint', NEW.id);
    ELSIF OLD.secret_sealed IS DISTINCT FROM NEW.secret_sealed THEN
        PERFORM audit_append(NEW.tenant_id, 'webhook_endpoint.secret_rotated', 'webhook_endpoint',
            NEW.id, jsonb_build_object('previous_secret_expires_at', NEW.previous_until));
    ELSIF audit_diff(o, n, keys) <> '{}' THEN
        PERFORM audit_append(NEW.tenant_id, 'webhook_endpoint.updated', 'webhook_endpoint', NEW.id,
            audit_diff(o, n, keys));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_webhook_endpoint AFTER INSERT OR UPDATE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION audit_webhook_endpoint();

-- Actions that change no audited row (a webhook test event, a replay, a delivery's retry, an
-- agent token) call audit_append in the handler's own statement (api/webhooks.c,
-- api/webhook_deliveries.c, api/sessions.c), so they too commit with their entry.

-- webhooks_test: the event's id when one was sent (NULL: nothing sent, nothing recorded).
CREATE FUNCTION audit_webhook_test(ev text, t text, ep text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF ev IS NOT NULL THEN
        PERFORM audit_append(t, 'webhook_endpoint.tested', 'webhook_endpoint', ep,
                             jsonb_build_object('event_id', ev));
    END IF;
    RETURN ev;
END $$;

-- webhooks_replay: n deliveries made (-1: refused, nothing made, nothing recorded).
CREATE FUNCTION audit_webhook_replay(n integer, t text, ep text, since timestamptz,
                                     until timestamptz)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF n >= 0 THEN
        PERFORM audit_append(t, 'webhook_endpoint.replayed', 'webhook_endpoint', ep,
                             jsonb_build_object('since', since, 'until', until, 'count', n));
    END IF;
    RETURN n;
END $$;
