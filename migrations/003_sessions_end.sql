-- 003: one way to end sessions. Every path that ends a session (the API, the token route, the
-- expiry sweeper, tenant suspension and deletion, the relay's idle timeout) calls sessions_end,
-- so that what ending means is written once: the status change, the participants' departure and
-- the notification the relay listens to (a webhook outbox row will hang off it too).
-- The live-slot counter stays a trigger (001): it must follow the status whatever changes it.

DROP TRIGGER sessions_notify_ended ON sessions;
DROP FUNCTION sessions_notify_ended();

-- Ends the sessions among ids that are not ended yet and returns them (ended now). Callers
-- choose the ids (by tenant, by expiry...) and keep their own authorization in that choice.
-- The NOTIFY ("<id> <reason>" on cobrowse_session_ended) is delivered at commit to every relay
-- node (core/relay/relay_worker.c). Cost: one UPDATE plus one per ended session.
CREATE FUNCTION sessions_end(ids text[], reason text) RETURNS SETOF sessions
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s sessions;
BEGIN
    FOR s IN UPDATE sessions SET status = 'ended', ended_at = now(),
                                 end_reason = COALESCE(reason, 'ended')
             WHERE id = ANY (ids) AND status <> 'ended' RETURNING * LOOP
        UPDATE participants SET left_at = now() WHERE session_id = s.id AND left_at IS NULL;
        PERFORM pg_notify('cobrowse_session_ended', s.id || ' ' || s.end_reason);
        RETURN NEXT s;
    END LOOP;
END $$;
