-- 009: webhook_targets (007) finds endpoints through their tenant's index. Its OR over the
-- parent's id kept the planner from the index: every trigger that writes an event (session
-- created, participants, control, tenant and key changes) scanned every endpoint of every tenant,
-- also for tenants without any. Now: the tenant's own endpoints, then its parent's that include
-- sub-tenants, each an index lookup.
CREATE OR REPLACE FUNCTION webhook_targets(t text, ty text) RETURNS SETOF webhook_endpoints
LANGUAGE sql STABLE AS $$
    SELECT e.* FROM webhook_endpoints e
    WHERE e.tenant_id = t AND e.deleted_at IS NULL
      AND (cardinality(e.event_types) = 0 OR ty = ANY (e.event_types))
    UNION ALL
    SELECT e.* FROM tenants c JOIN webhook_endpoints e ON e.tenant_id = c.parent_id
    WHERE c.id = t AND e.deleted_at IS NULL AND e.include_subtenants
      AND (cardinality(e.event_types) = 0 OR ty = ANY (e.event_types))
$$;

-- The parent's side: the endpoints that include sub-tenants, few of them.
CREATE INDEX webhook_endpoints_subtenants ON webhook_endpoints (tenant_id)
    WHERE include_subtenants AND deleted_at IS NULL;

-- webhook_emit's deliveries: from webhook_targets (its index lookups) or the one endpoint named,
-- rather than a CASE over every endpoint of every tenant.
CREATE OR REPLACE FUNCTION webhook_emit(t text, s text, ty text, payload jsonb, only_endpoint text DEFAULT NULL)
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
    IF only_endpoint IS NULL THEN
        INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id)
        SELECT ids_new('whd'), ev, e.id, e.tenant_id FROM webhook_targets(t, ty) e WHERE e.enabled;
    ELSE
        INSERT INTO webhook_deliveries (id, event_id, endpoint_id, tenant_id)
        SELECT ids_new('whd'), ev, e.id, e.tenant_id FROM webhook_endpoints e
        WHERE e.id = only_endpoint AND e.enabled AND e.deleted_at IS NULL;
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('cobrowse_webhook', '');
    END IF;
    RETURN ev;
END $$;
