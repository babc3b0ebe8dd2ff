/* GET /v1/usage: usage for billing (docs/billing.md) of the acting tenant and, for a reseller,
 * of each of its sub-tenants: sessions, session minutes and agent minutes per UTC day or month,
 * as JSON or CSV. The figures come from the SQL function usage_report (migrations/011_usage.sql);
 * this file checks the range and picks the format.
 * Threading: the handler runs on the API's worker threads; no state of its own. */
#include <stdio.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"

/* A range is bounded so that one answer stays small: at most a year of days, three years of
 * months (rows are at most that many per tenant). */
#define USAGE_MAX_DAYS   366
#define USAGE_MAX_MONTHS 36

struct usage_date {
    int y, m, d;
};

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 1 if s is exactly YYYY-MM-DD naming a real day between 1970 and 9999. */
static int parse_date(const char *s, struct usage_date *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    out->y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    out->m = (s[5] - '0') * 10 + (s[6] - '0');
    out->d = (s[8] - '0') * 10 + (s[9] - '0');
    if (out->y < 1970 || out->m < 1 || out->m > 12 || out->d < 1)
        return 0;
    return out->d <= mdays[out->m - 1] + (out->m == 2 && is_leap(out->y));
}

/* Days since 1970-01-01 (H. Hinnant's days_from_civil). */
static long days_from_civil(struct usage_date t)
{
    int y = t.y - (t.m <= 2);
    long era = y / 400;
    long yoe = y - era * 400;
    long doy = (153L * (t.m + (t.m > 2 ? -3 : 9)) + 2) / 5 + t.d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Checks from, to and granularity; returns 0, or -1 after answering 400. */
static int check_range(struct http_ctx *c, const char *from, const char *to, const char *unit)
{
    struct usage_date f, t;
    if (strcmp(unit, "day") != 0 && strcmp(unit, "month") != 0) {
        http_problem(c, 400, "invalid_parameter", "granularity",
                     "granularity must be day or month.");
        return -1;
    }
    if (!parse_date(from, &f)) {
        http_problem(c, 400, "invalid_parameter", "from",
                     "from is required: a UTC day as YYYY-MM-DD (1970 or later).");
        return -1;
    }
    if (!parse_date(to, &t)) {
        http_problem(c, 400, "invalid_parameter", "to",
                     "to is required: a UTC day as YYYY-MM-DD (1970 or later), included.");
        return -1;
    }
    long days = days_from_civil(t) - days_from_civil(f) + 1;
    long months = (t.y * 12L + t.m) - (f.y * 12L + f.m) + 1;
    if (days < 1) {
        http_problem(c, 400, "invalid_parameter", "to", "to must be on or after from.");
        return -1;
    }
    if (strcmp(unit, "day") == 0 && days > USAGE_MAX_DAYS) {
        http_problem(c, 400, "invalid_parameter", "to",
                     "A range by day spans at most %d days (this one: %ld); use "
                     "granularity=month or a shorter range.",
                     USAGE_MAX_DAYS, days);
        return -1;
    }
    if (strcmp(unit, "month") == 0 && months > USAGE_MAX_MONTHS) {
        http_problem(c, 400, "invalid_parameter", "to",
                     "A range by month spans at most %d months (this one: %ld).", USAGE_MAX_MONTHS,
                     months);
        return -1;
    }
    return 0;
}

/* 1 for CSV, 0 for JSON, -1 after answering 400. format= wins over Accept. */
static int wants_csv(struct http_ctx *c)
{
    const char *format = http_param(c, "format");
    if (format == NULL) {
        const char *accept = http_header(c, "Accept");
        return accept != NULL && strstr(accept, "text/csv") != NULL;
    }
    if (strcmp(format, "csv") == 0 || strcmp(format, "json") == 0)
        return format[0] == 'c';
    http_problem(c, 400, "invalid_parameter", "format", "format must be json or csv.");
    return -1;
}

void usage_get(struct http_ctx *c)
{
    /* Both formats come from the same rows in one statement. Minutes are rounded half away from
     * zero to 2 decimals from exact per-row seconds, so a row is never off by more than
     * 0.005 min and day rows add up to their month row within that per day row. */
    static struct db_stmt q = {
        "usage_report",
        "WITH r AS (SELECT u.*, to_char(u.period_start AT TIME ZONE 'UTC', "
        "    CASE $4 WHEN 'day' THEN 'YYYY-MM-DD' ELSE 'YYYY-MM' END) AS period, "
        "  to_char(u.period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS ps, "
        "  to_char(u.period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS pe, "
        "  round(u.session_seconds / 60, 2) AS sm, round(u.agent_seconds / 60, 2) AS am "
        "  FROM usage_report($1, $2::date::timestamp AT TIME ZONE 'UTC', "
        "    ($3::date + 1)::timestamp AT TIME ZONE 'UTC', $4) u) "
        "SELECT CASE WHEN $5 THEN 'tenant_id,period,period_start,period_end,sessions,"
        "active_sessions,session_minutes,agent_minutes' || E'\\r\\n' || COALESCE(string_agg("
        "  concat_ws(',', csv_field(tenant_id), csv_field(period), ps, pe, sessions, "
        "  active_sessions, sm, am), E'\\r\\n' ORDER BY tenant_id, ps) || E'\\r\\n', '') "
        "ELSE json_build_object('object', 'usage', 'tenant_id', $1::text, 'granularity', $4::text, "
        "  'from', $2::text, 'to', $3::text, 'data', COALESCE(json_agg(json_build_object("
        "  'tenant_id', tenant_id, 'period', period, 'period_start', ps, 'period_end', pe, "
        "  'sessions', sessions, 'active_sessions', active_sessions, 'session_minutes', sm, "
        "  'agent_minutes', am) ORDER BY tenant_id, ps), '[]'))::text END FROM r",
        0};
    static const char *const allowed[] = {"from", "to", "granularity", "format", NULL};
    if (http_check_query(c, allowed) != 0)
        return;
    const char *from = http_param(c, "from"), *to = http_param(c, "to");
    const char *unit = http_param(c, "granularity");
    if (unit == NULL)
        unit = "day";
    int csv = wants_csv(c);
    if (csv < 0 || check_range(c, from, to, unit) != 0)
        return;
    const char *params[] = {c->tenant_id, from, to, unit, csv ? "t" : "f"};
    PGresult *r = http_db(c, &q, 5, params);
    if (r == NULL)
        return;
    if (!csv) {
        http_reply_text(c, 200, PQgetvalue(r, 0, 0));
    } else {
        char disposition[96];
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"usage-%s-%s.csv\"", from,
                 to);
        ulfius_set_string_body_response(c->resp, 200, PQgetvalue(r, 0, 0));
        http_set_header(c, "Content-Type", "text/csv; charset=utf-8; header=present");
        http_set_header(c, "Content-Disposition", disposition);
        c->status = 200;
        c->answered = 1;
    }
    PQclear(r);
}
