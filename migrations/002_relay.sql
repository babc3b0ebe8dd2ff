-- 002: what the relay needs: a log of session events, a notification when a session ends (the
-- relay closes its sockets on it), and one definition of a tenant's effective limits.

CREATE TABLE session_events (
    id          text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions (id),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    type        text NOT NULL,   -- control_requested | control_granted | control_denied | control_revoked
    agent_id    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_events_session ON session_events (session_id, created_at);

-- Delivered at commit to every relay node LISTENing (core/relay_worker.c): "<id> <reason>".
CREATE FUNCTION sessions_notify_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cobrowse_session_ended', NEW.id || ' ' || COALESCE(NEW.end_reason, 'ended'));
    RETURN NEW;
END $$;
CREATE TRIGGER sessions_notify_ended AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN (OLD.status <> 'ended' AND NEW.status = 'ended')
    EXECUTE FUNCTION sessions_notify_ended();

-- A sub-tenant's limits are capped by its parent's: each limit is the smaller of the two.
CREATE FUNCTION tenant_effective_limits(tid text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_object_agg(k, LEAST((t.settings->'limits'->>k)::bigint,
                                     COALESCE((p.settings->'limits'->>k)::bigint, 9223372036854775807)))
    FROM tenants t LEFT JOIN tenants p ON p.id = t.parent_id,
         jsonb_object_keys(t.settings->'limits') AS k
    WHERE t.id = tid
$$;
