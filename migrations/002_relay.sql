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

-- A sub-tenant's limits are capped by its parent's: each limit is the smaller of the two. A plain
-- expression (no FROM) so PostgreSQL inlines it: the session-creation path calls it every time.
-- The keys are the ones api/tenants.c validates; a new limit is added here too.
CREATE FUNCTION limits_min(own jsonb, parent jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN parent IS NULL THEN own ELSE jsonb_build_object(
        'concurrent_sessions', LEAST((own->>'concurrent_sessions')::bigint, (parent->>'concurrent_sessions')::bigint),
        'sessions_per_minute', LEAST((own->>'sessions_per_minute')::bigint, (parent->>'sessions_per_minute')::bigint),
        'frames_per_second', LEAST((own->>'frames_per_second')::bigint, (parent->>'frames_per_second')::bigint),
        'bytes_per_second', LEAST((own->>'bytes_per_second')::bigint, (parent->>'bytes_per_second')::bigint),
        'agents_per_session', LEAST((own->>'agents_per_session')::bigint, (parent->>'agents_per_session')::bigint),
        'api_requests_per_second', LEAST((own->>'api_requests_per_second')::bigint, (parent->>'api_requests_per_second')::bigint))
    END
$$;
