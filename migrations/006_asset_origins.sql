-- 006: the tenant setting asset_origins (docs/proxy.md): origins the stylesheet proxy may fetch
-- from besides allowed_origins (a CDN of stylesheets, fonts and images the page's origin is not).
-- Tenants written before have none: the tenant JSON shows [] for them.
CREATE OR REPLACE FUNCTION tenant_json(t tenants) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', t.id, 'object', 'tenant', 'parent_id', t.parent_id, 'name', t.name,
        'status', t.status, 'branding', t.settings->'branding',
        'allowed_origins', t.settings->'allowed_origins',
        'asset_origins', COALESCE(t.settings->'asset_origins', '[]'::jsonb),
        'masking', t.settings->'masking',
        'permissions', t.settings->'permissions', 'limits', t.settings->'limits',
        'created_at', t.created_at, 'updated_at', t.updated_at)
$$;
