-- 008: what the webhook REST API (api/webhooks.c, api/webhook_deliveries.c) needs of the schema
-- of 007: the JSON shapes of endpoints and deliveries (one place per shape, like tenant_json;
-- never a secret in them) and the replay of a range of events to one endpoint.

-- An endpoint as the API shows it. The sealed secrets stay out: the secret is shown once, by
-- the C code, in the answers to create and rotate. previous_secret_expires_at says until when
-- the previous secret still signs (null outside a rotation's overlap).
CREATE FUNCTION webhook_endpoint_json(e webhook_endpoints) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', e.id, 'object', 'webhook_endpoint', 'tenant_id', e.tenant_id, 'url', e.url,
        'description', e.description, 'event_types', to_json(e.event_types),
        'include_subtenants', e.include_subtenants, 'enabled', e.enabled,
        'disabled_reason', e.disabled_reason,
        'previous_secret_expires_at',
            CASE WHEN e.previous_sealed IS NOT NULL AND e.previous_until > now()
                 THEN e.previous_until END,
        'created_at', e.created_at, 'updated_at', e.updated_at)
$$;

-- A delivery as lists show it: its event's id and type, and where it stands.
-- next_attempt_at is null once the delivery is no longer pending.
CREATE FUNCTION webhook_delivery_json(d webhook_deliveries) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', d.id, 'object', 'webhook_delivery', 'tenant_id', d.tenant_id,
        'endpoint_id', d.endpoint_id, 'event_id', d.event_id,
        'event_type', (SELECT ev.type FROM webhook_events ev WHERE ev.id = d.event_id),
        'status', d.status, 'attempt_count', d.attempts,
        'next_attempt_at', CASE WHEN d.status = 'pending' THEN d.next_attempt_at END,
        'last_status', d.last_status, 'last_error', d.last_error,
        'created_at', d.created_at, 'updated_at', d.updated_at)
$$;

-- One delivery in full: the list shape, the event's envelope (docs/webhooks.md: what the body of
-- each attempt carries) and every attempt, oldest first.
CREATE FUNCTION webhook_delivery_detail_json(d webhook_deliveries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT (webhook_delivery_json(d)::jsonb || jsonb_build_object(
        'event', (SELECT jsonb_build_object(
                      'id', ev.id, 'type', ev.type,
                      'timestamp', to_char(ev.created_at AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                      'tenant_id', ev.tenant_id, 'session_id', ev.session_id, 'seq', ev.seq,
                      'data', ev.data)
                  FROM webhook_events ev WHERE ev.id = d.event_id),
        'attempts', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                      'attempted_at', a.attempted_at, 'status_code', a.status_code,
                      'error', a.error, 'response_excerpt', a.response_excerpt,
                      'duration_ms', a.duration_ms) ORDER BY a.attempted_at, a.id)
                  FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]'::jsonb)))::json
$$;

-- A new delivery to endpoint ep of every event created in [since, until) that it would receive
-- now: its tenant's, its sub-tenants' when it includes them, of the types it lists (every type
-- when none); webhook.test events only when they were sent to ep itself (another endpoint's test
-- is not this one's event). Nothing is written and -1 returned when the range holds more than
-- max events: a partial replay would leave the caller guessing where it stopped. Returns the
-- number of deliveries made; NOTIFY wakes the dispatchers at commit.
CREATE FUNCTION webhook_replay(ep text, since timestamptz, until timestamptz, max integer)
RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    e webhook_endpoints;
    ids text[];
BEGIN
    SELECT * INTO e FROM webhook_endpoints WHERE id = ep;
    SELECT array_agg(ev.id ORDER BY ev.created_at, ev.id) INTO ids FROM (
        SELECT ev.id, ev.created_at FROM webhook_events ev
        WHERE ev.created_at >= since AND ev.created_at < until
          AND (ev.tenant_id = e.tenant_id OR (e.include_subtenants AND ev.tenant_id IN
               (SELECT t.id FROM tenants t WHERE t.parent_id = e.tenant_id)))
          AND (cardinality(e.event_types) = 0 OR ev.type = ANY (e.event_types))
          AND (ev.type <> 'webhook.test' OR EXISTS (SELECT 1 FROM webhook_deliveries d
                                                    WHERE d.event_id = ev.id AND d.endpoint_id = ep))
        LIMIT max + 1) ev;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    IF cardinality(ids) > max THEN
        RETURN -1;
    END IF;
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id)
    SELECT ids_new('whd'), x, ep, e.tenant_id FROM unnest(ids) AS x;
    PERFORM pg_notify('cobrowse_webhook', '');
    RETURN cardinality(ids);
END $$;
