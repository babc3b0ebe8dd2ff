-- 004: the effective-limit rule without limit names. A sub-tenant's limits are capped by its
-- parent's: each key the tenant has is the smaller of the two values. The list of limits lives
-- in one place, api/limits.h; this function takes whatever keys are stored. Called when the
-- per-node tenant cache (api/auth.c) misses, so the subquery's cost (a few keys) is paid rarely.
CREATE OR REPLACE FUNCTION limits_min(own jsonb, parent jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN parent IS NULL THEN own ELSE (
        SELECT COALESCE(jsonb_object_agg(k, CASE WHEN parent ? k
                   THEN LEAST((own->>k)::bigint, (parent->>k)::bigint)
                   ELSE (own->>k)::bigint END), '{}'::jsonb)
        FROM jsonb_object_keys(own) AS k) END
$$;
