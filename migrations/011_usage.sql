-- 011: usage for billing (GET /v1/usage, docs/billing.md): sessions, session minutes and agent
-- minutes per tenant per UTC day or month, computed from sessions and participants.

-- A usage query asks for what overlaps [from, to). Ordering by the end of the interval (live rows
-- last, as 'infinity') lets it skip everything that ended before `from`: the history of a tenant
-- is read from `from` onward only, which for the usual question (this or last month) is a small
-- tail. Rows that end after `to` are read and discarded (sessions created before `to` only).
-- Sessions created in [from, to) always qualify (ended_at >= created_at), so one scan also gives
-- the count of sessions created. INCLUDE lets the scan skip the heap once the visibility map
-- is set. Cost: one more index entry per session and per agent participant.
CREATE INDEX sessions_usage ON sessions (tenant_id, COALESCE(ended_at, 'infinity'::timestamptz))
    INCLUDE (created_at, started_at, ended_at);
CREATE INDEX participants_usage
    ON participants (tenant_id, COALESCE(left_at, 'infinity'::timestamptz))
    WHERE role = 'agent';

-- Usage of the tenant p_tenant and of its sub-tenants, one row per tenant and period (unit
-- 'day' or 'month', UTC) that had any: periods are clipped to [p_from, p_to), so that a month
-- row of a range starting on the 15th covers the 15th onward, and day rows always add up to
-- the month rows of the same range. Intervals:
--   sessions         created_at in the period;
--   active_sessions  sessions whose started_at .. (ended_at, or now for a live one) overlaps the
--                    period for a positive time;
--   session_seconds  that overlap, summed;
--   agent_seconds    each agent participant's joined_at .. left_at overlap; an agent still
--                    present counts to now, or to the session's ended_at should its left_at have
--                    been lost (sessions_end sets it).
-- Seconds are exact (microseconds); the API rounds minutes from them. now() is the start of the
-- transaction: one report is one consistent picture. Deleted sub-tenants are included: their
-- sessions were used.
CREATE FUNCTION usage_report(p_tenant text, p_from timestamptz, p_to timestamptz, p_unit text)
RETURNS TABLE (tenant_id text, period_start timestamptz, period_end timestamptz,
               sessions bigint, active_sessions bigint, session_seconds numeric,
               agent_seconds numeric)
LANGUAGE sql STABLE
-- UTC days and months for date_trunc and generate_series. No JIT: generate_series's default
-- estimate (1,000 rows) makes the plan look costly enough to compile, which took 0.8 s of a
-- 0.1 s query on 100,000 sessions.
SET TimeZone = 'UTC' SET jit = off AS $$
    -- The tenants as one array (an InitPlan): `tenant_id = ANY` is an index condition, where a
    -- join with them let the planner scan every tenant's agents and filter afterwards.
    WITH s AS (
        SELECT s.tenant_id, s.created_at, s.started_at, COALESCE(s.ended_at, now()) AS stop
        FROM sessions s
        WHERE s.tenant_id = ANY (ARRAY(SELECT t.id FROM tenants t
                                       WHERE t.id = p_tenant OR t.parent_id = p_tenant))
          AND COALESCE(s.ended_at, 'infinity'::timestamptz) > p_from AND s.created_at < p_to
    ), a AS (
        -- The session is read only for an agent still present (one lookup by primary key),
        -- never joined in bulk: a join made the planner scan every session.
        SELECT p.tenant_id, p.joined_at AS start,
               COALESCE(p.left_at, (SELECT COALESCE(s.ended_at, now()) FROM sessions s
                                    WHERE s.id = p.session_id)) AS stop
        FROM participants p
        WHERE p.tenant_id = ANY (ARRAY(SELECT t.id FROM tenants t
                                       WHERE t.id = p_tenant OR t.parent_id = p_tenant))
          AND p.role = 'agent' AND COALESCE(p.left_at, 'infinity'::timestamptz) > p_from AND p.joined_at < p_to
    ), spans AS (
        -- every interval, cut at period boundaries: one row per (interval, period) it touches.
        SELECT k.kind, k.tenant_id, per.ps,
               EXTRACT(EPOCH FROM LEAST(k.stop, per.pe) - GREATEST(k.start, per.ps)) AS secs
        FROM (SELECT 's' AS kind, tenant_id, GREATEST(started_at, p_from) AS start,
                     LEAST(stop, p_to) AS stop FROM s WHERE started_at IS NOT NULL
              UNION ALL
              SELECT 'a', tenant_id, GREATEST(start, p_from), LEAST(stop, p_to) FROM a) k
        CROSS JOIN LATERAL (
            SELECT GREATEST(g, p_from) AS ps, LEAST(g + ('1 ' || p_unit)::interval, p_to) AS pe
            FROM generate_series(date_trunc(p_unit, k.start), k.stop - interval '1 microsecond',
                                 ('1 ' || p_unit)::interval) g) per
        WHERE k.stop > k.start
    ), created AS (
        SELECT s.tenant_id, GREATEST(date_trunc(p_unit, s.created_at), p_from) AS ps,
               count(*) AS n
        FROM s WHERE s.created_at >= p_from GROUP BY 1, 2
    ), spent AS (
        SELECT sp.tenant_id, sp.ps,
               count(*) FILTER (WHERE sp.kind = 's' AND sp.secs > 0) AS active,
               COALESCE(sum(sp.secs) FILTER (WHERE sp.kind = 's'), 0) AS ss,
               COALESCE(sum(sp.secs) FILTER (WHERE sp.kind = 'a'), 0) AS ags
        FROM spans sp GROUP BY 1, 2
    )
    SELECT COALESCE(c.tenant_id, x.tenant_id),
           COALESCE(c.ps, x.ps),
           LEAST(date_trunc(p_unit, COALESCE(c.ps, x.ps)) + ('1 ' || p_unit)::interval, p_to),
           COALESCE(c.n, 0), COALESCE(x.active, 0), COALESCE(x.ss, 0), COALESCE(x.ags, 0)
    FROM created c FULL JOIN spent x ON x.tenant_id = c.tenant_id AND x.ps = c.ps
    ORDER BY 1, 2
$$;

-- One field of a CSV record (RFC 4180): quoted when it holds a comma, a quote or a line break,
-- its quotes doubled. Tenant ids never need it today; the export stays valid if a column that
-- can (a name) is added.
CREATE FUNCTION csv_field(v text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v ~ '[",\r\n]' THEN '"' || replace(v, '"', '""') || '"' ELSE v END
$$;
