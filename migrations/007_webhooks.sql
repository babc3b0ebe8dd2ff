-- 007: webhooks (docs/webhooks.md). Endpoints per tenant, the outbox of events, one delivery per
-- event and endpoint, and every attempt. An event is written in the same transaction as the change
-- it reports: by the triggers below (sessions, participants, session_events, tenants, api_keys)
-- and by sessions_end, the single place where a session ends. The dispatcher (core/webhook/)
-- claims due deliveries with FOR UPDATE SKIP LOCKED and a lease, so several nodes never deliver
-- the same attempt twice, and a node killed mid-delivery leaves a lease that expires: delivered
-- at least once.

-- Ids like core/base/ids.c's: prefix, '_', 10 Crockford base32 characters of the time in
-- milliseconds, 16 of a v4 UUID's first 80 bits (74 of them random; time-sortable).
CREATE FUNCTION ids_new(prefix text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet constant text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    rnd bytea := substring(uuid_send(gen_random_uuid()) FROM 1 FOR 10);
    hi bigint := 0;
    lo bigint := 0;
    t text := '';
    a text := '';
    b text := '';
BEGIN
    FOR i IN 1..10 LOOP
        t := substr(alphabet, (ms & 31)::int + 1, 1) || t;
        ms := ms >> 5;
    END LOOP;
    FOR i IN 0..4 LOOP
        hi := (hi << 8) | get_byte(rnd, i);
        lo := (lo << 8) | get_byte(rnd, i + 5);
    END LOOP;
    FOR i IN 1..8 LOOP
        a := substr(alphabet, (hi & 31)::int + 1, 1) || a;
        hi := hi >> 5;
        b := substr(alphabet, (lo & 31)::int + 1, 1) || b;
        lo := lo >> 5;
    END LOOP;
    RETURN prefix || '_' || t || a || b;
END $$;

CREATE TABLE webhook_endpoints (
    id                  text PRIMARY KEY,                      -- whe_...
    tenant_id           text NOT NULL REFERENCES tenants (id),
    url                 text NOT NULL,
    description         text,
    event_types         text[] NOT NULL DEFAULT '{}',          -- empty: every type
    include_subtenants  boolean NOT NULL DEFAULT false,        -- also the sub-tenants' events
    enabled             boolean NOT NULL DEFAULT true,
    disabled_reason     text CHECK (disabled_reason IN ('manual', 'gone', 'failing')),
    -- The signing secret, sealed with the server's data key (AES-256-GCM: nonce, ciphertext,
    -- tag; core/base/crypto.h crypto_seal). Shown once, at creation and at rotation.
    secret_sealed       bytea NOT NULL,
    -- During a rotation's overlap the previous secret signs too, until previous_until.
    previous_sealed     bytea,
    previous_until      timestamptz,
    failing_since       timestamptz,                           -- first failure of the current run
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id) WHERE deleted_at IS NULL;

-- The outbox: one row per event, whatever the number of endpoints.
CREATE TABLE webhook_events (
    id          text PRIMARY KEY,            -- msg_...: the webhook-id header, the same on retries
    tenant_id   text NOT NULL,               -- the tenant the event is about
    session_id  text,                        -- session events only
    seq         bigint,                      -- per session: 1, 2, 3... in commit order per session
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_events_tenant ON webhook_events (tenant_id, created_at);
CREATE INDEX webhook_events_age ON webhook_events (created_at);

ALTER TABLE sessions ADD COLUMN event_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE webhook_deliveries (
    id              text PRIMARY KEY,        -- whd_...
    event_id        text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id),
    tenant_id       text NOT NULL,           -- the endpoint's tenant (whose API lists it)
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,             -- a node's lease while it delivers
    last_status     integer,                 -- HTTP status of the last attempt (NULL: none)
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id               text PRIMARY KEY,       -- wha_...
    delivery_id      text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    status_code      integer,                -- NULL when no response came
    error            text,                   -- why it failed (timeout, refused address...)
    response_excerpt text,                   -- the first bytes of the response body
    duration_ms      integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- The endpoints an event of tenant t and type ty goes to: t's own, and its parent's that
-- include sub-tenants; enabled or not (enabled ones get a delivery, all of them make the event
-- worth keeping for a later replay).
CREATE FUNCTION webhook_targets(t text, ty text) RETURNS SETOF webhook_endpoints
LANGUAGE sql STABLE AS $$
    SELECT e.* FROM webhook_endpoints e
    WHERE e.deleted_at IS NULL
      AND (e.tenant_id = t OR (e.include_subtenants AND e.tenant_id =
           (SELECT parent_id FROM tenants WHERE id = t)))
      AND (cardinality(e.event_types) = 0 OR ty = ANY (e.event_types))
$$;

-- Writes event ty of tenant t (and session s, NULL for tenant events) with data, and a delivery
-- for each enabled endpoint that wants it; only_endpoint limits it to one endpoint (test
-- events, an endpoint's own notices). Nothing is written when no endpoint would ever want it.
-- The session's sequence number is taken from its row (locked until commit), so per session
-- the numbers follow commit order. NOTIFY wakes the dispatchers at commit.
CREATE FUNCTION webhook_emit(t text, s text, ty text, payload jsonb, only_endpoint text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ev text;
    n bigint;
BEGIN
    IF only_endpoint IS NULL THEN
        PERFORM 1 FROM webhook_targets(t, ty) LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    IF s IS NOT NULL THEN
        UPDATE sessions SET event_seq = event_seq + 1 WHERE id = s RETURNING event_seq INTO n;
    END IF;
    ev := ids_new('msg');
    INSERT INTO webhook_events (id, tenant_id, session_id, seq, type, data)
    VALUES (ev, t, s, n, ty, payload);
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id)
    SELECT ids_new('whd'), ev, e.id, e.tenant_id
    FROM webhook_endpoints e
    WHERE e.enabled AND e.deleted_at IS NULL AND
          CASE WHEN only_endpoint IS NULL THEN e.id IN (SELECT id FROM webhook_targets(t, ty))
               ELSE e.id = only_endpoint END;
    IF FOUND THEN
        PERFORM pg_notify('cobrowse_webhook', '');
    END IF;
    RETURN ev;
END $$;

-- ---- Where events come from ----

-- session.created. AFTER INSERT: the row exists for the sequence number.
CREATE FUNCTION webhook_session_created() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(NEW.tenant_id, NEW.id, 'session.created', jsonb_build_object(
        'session_id', NEW.id, 'join_code', NEW.join_code,
        'visitor_external_id', NEW.visitor_external_id, 'expires_at', NEW.expires_at));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_session_created AFTER INSERT ON sessions
    FOR EACH ROW EXECUTE FUNCTION webhook_session_created();

-- session.visitor_connected, session.agent_joined, and their ends.
CREATE FUNCTION webhook_participant() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ty text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ty := CASE NEW.role WHEN 'visitor' THEN 'session.visitor_connected' ELSE 'session.agent_joined' END;
    ELSE
        ty := CASE NEW.role WHEN 'visitor' THEN 'session.visitor_disconnected' ELSE 'session.agent_left' END;
    END IF;
    PERFORM webhook_emit(NEW.tenant_id, NEW.session_id, ty, jsonb_strip_nulls(jsonb_build_object(
        'session_id', NEW.session_id, 'participant_id', NEW.id,
        'agent', CASE WHEN NEW.role = 'agent' THEN jsonb_build_object('id', NEW.external_id, 'name', NEW.name) END)));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_participant_joined AFTER INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION webhook_participant();
CREATE TRIGGER webhook_participant_left AFTER UPDATE OF left_at ON participants
    FOR EACH ROW WHEN (OLD.left_at IS NULL AND NEW.left_at IS NOT NULL)
    EXECUTE FUNCTION webhook_participant();

-- session.control_requested, _granted, _denied, _revoked (the relay's session_events).
CREATE FUNCTION webhook_session_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(NEW.tenant_id, NEW.session_id, 'session.' || NEW.type, jsonb_build_object(
        'session_id', NEW.session_id, 'agent_id', NEW.agent_id));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_session_event AFTER INSERT ON session_events
    FOR EACH ROW EXECUTE FUNCTION webhook_session_event();

-- tenant.suspended, tenant.reactivated.
CREATE FUNCTION webhook_tenant_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('suspended', 'active') THEN
        PERFORM webhook_emit(NEW.id, NULL,
            CASE NEW.status WHEN 'suspended' THEN 'tenant.suspended' ELSE 'tenant.reactivated' END,
            jsonb_build_object('tenant_id', NEW.id, 'parent_id', NEW.parent_id, 'status', NEW.status));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_tenant_status AFTER UPDATE OF status ON tenants
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION webhook_tenant_status();

-- api_key.created, api_key.revoked (the key's public fields; never the key).
CREATE FUNCTION webhook_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(NEW.tenant_id, NULL,
        CASE TG_OP WHEN 'INSERT' THEN 'api_key.created' ELSE 'api_key.revoked' END,
        jsonb_build_object('api_key', api_key_json(NEW)));
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_api_key_created AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION webhook_api_key();
CREATE TRIGGER webhook_api_key_revoked AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION webhook_api_key();

-- session.ended: sessions_end (003) stays the single place where a session ends; the
-- participants' departures (above) come first, so session.ended is the session's last event.
CREATE OR REPLACE FUNCTION sessions_end(ids text[], reason text) RETURNS SETOF sessions
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s sessions;
BEGIN
    FOR s IN UPDATE sessions SET status = 'ended', ended_at = now(),
                                 end_reason = COALESCE(reason, 'ended')
             WHERE id = ANY (ids) AND status <> 'ended' RETURNING * LOOP
        UPDATE participants SET left_at = now() WHERE session_id = s.id AND left_at IS NULL;
        PERFORM pg_notify('cobrowse_session_ended', s.id || ' ' || s.end_reason);
        PERFORM webhook_emit(s.tenant_id, s.id, 'session.ended', jsonb_build_object(
            'session_id', s.id, 'reason', s.end_reason, 'started_at', s.started_at,
            'ended_at', s.ended_at));
        RETURN NEXT s;
    END LOOP;
END $$;
