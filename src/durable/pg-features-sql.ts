/**
 * The PostgreSQL SQL of schedules, fleet-wide limits, progress, per-item timeouts and redrive into
 * another queue: the schema migration that adds them (version 3) and their statements.
 * @module
 */

/** Migration 3: per-item timeout and progress columns, schedules and their runs, limits. @internal */
export function pgFeaturesMigration(s: string): string {
  return `ALTER TABLE ${s}.items ADD COLUMN timeout_ms bigint, ADD COLUMN progress text;
     CREATE TABLE ${s}.schedules (
       queue text NOT NULL, name text NOT NULL, cron text, tz text NOT NULL, every_ms bigint,
       catch_up text NOT NULL CHECK (catch_up IN ('none', 'last', 'all')), payload bytea NOT NULL,
       key_id text, priority integer NOT NULL, max_attempts integer, timeout_ms bigint,
       next_run_at bigint NOT NULL, last_run_at bigint, created_at bigint NOT NULL,
       updated_at bigint NOT NULL, PRIMARY KEY (queue, name));
     CREATE TABLE ${s}.schedule_runs (
       queue text NOT NULL, name text NOT NULL, tick bigint NOT NULL, item_id text COLLATE "C" NOT NULL,
       PRIMARY KEY (queue, name, tick));
     CREATE TABLE ${s}.limits (
       queue text PRIMARY KEY, concurrency integer, rate_per_sec double precision,
       burst double precision, tokens double precision, refilled_at bigint, updated_at bigint NOT NULL);
     ${allowanceFunction(s)}`;
}

/**
 * How many items a claim of a limited queue may take now (`wanted` for a queue without limits),
 * spending rate tokens. VOLATILE plpgsql: each query in it takes a fresh snapshot, so the count of
 * active items read AFTER the per-queue advisory lock sees every claim committed before — which is
 * what makes one prepared claim statement exact under concurrency. @internal
 */
function allowanceFunction(s: string): string {
  const schema = s.replace(/^"|"$/g, '').replace(/'/g, "''");
  return `CREATE FUNCTION ${s}.claim_allowance(q text, at bigint, wanted integer) RETURNS integer
       LANGUAGE plpgsql VOLATILE AS $f$
     DECLARE
       l record;
       n integer := wanted;
       busy integer;
       b double precision;
       avail double precision;
     BEGIN
       PERFORM pg_advisory_xact_lock(hashtextextended('bulwark.limits.${schema}.' || q, 0));
       SELECT * INTO l FROM ${s}.limits WHERE queue = q;
       IF NOT FOUND THEN RETURN wanted; END IF;
       IF l.concurrency IS NOT NULL THEN
         SELECT count(*) INTO busy FROM ${s}.items WHERE queue = q AND state = 'active' AND lease_until > at;
         n := least(n, l.concurrency - busy);
       END IF;
       n := greatest(n, 0);
       IF l.rate_per_sec IS NOT NULL THEN
         b := coalesce(l.burst, greatest(1, l.rate_per_sec));
         avail := CASE WHEN l.tokens IS NULL THEN b
           ELSE least(b, l.tokens + (at - l.refilled_at) * l.rate_per_sec / 1000.0) END;
         n := least(n, floor(avail)::integer);
         UPDATE ${s}.limits SET tokens = avail - n, refilled_at = at WHERE queue = q;
       END IF;
       RETURN n;
     END $f$;`;
}

/** The features' statements (not prepared: none is on the no-limit hot path). @internal */
export function pgFeatureQueries(s: string) {
  const cols =
    'queue, name, cron, tz, every_ms, catch_up, payload, key_id, priority, max_attempts, timeout_ms, next_run_at, last_run_at, created_at, updated_at';
  return {
    progress: `UPDATE ${s}.items SET progress = $4
       WHERE queue = $1 AND id = $2 AND lease_token = $3 AND state = 'active' AND lease_until > $5 RETURNING id`,
    timeouts: `UPDATE ${s}.items i SET timeout_ms = t.ms FROM unnest($2::text[], $3::int8[]) AS t(id, ms)
       WHERE i.queue = $1 AND i.id = t.id`,
    lockItem: `SELECT state, key, key_id FROM ${s}.items WHERE queue = $1 AND id = $2 FOR UPDATE`,
    takeKey: `INSERT INTO ${s}.keys (queue, key, item_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1`,
    dropKey: `DELETE FROM ${s}.keys WHERE queue = $1 AND key = $2 AND item_id = $3`,
    move: `UPDATE ${s}.items SET queue = $3, state = 'pending', attempts = 0, run_at = $4, updated_at = $4,
         redrives = redrives + 1, last_redrive_at = $4, payload = $5, key_id = $6, progress = NULL
       WHERE queue = $1 AND id = $2 AND state = 'dead'`,
    putSchedule: `INSERT INTO ${s}.schedules (${cols}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (queue, name) DO UPDATE SET cron = EXCLUDED.cron, tz = EXCLUDED.tz, every_ms = EXCLUDED.every_ms,
         catch_up = EXCLUDED.catch_up, payload = EXCLUDED.payload, key_id = EXCLUDED.key_id,
         priority = EXCLUDED.priority, max_attempts = EXCLUDED.max_attempts, timeout_ms = EXCLUDED.timeout_ms,
         next_run_at = EXCLUDED.next_run_at, last_run_at = EXCLUDED.last_run_at, updated_at = EXCLUDED.updated_at`,
    removeSchedule: `DELETE FROM ${s}.schedules WHERE queue = $1 AND name = $2`,
    schedules: `SELECT ${cols} FROM ${s}.schedules WHERE ($1::text IS NULL OR queue = $1) ORDER BY queue, name`,
    advance: `UPDATE ${s}.schedules SET next_run_at = $4, last_run_at = coalesce($5, last_run_at), updated_at = $6
       WHERE queue = $1 AND name = $2 AND next_run_at = $3 RETURNING 1`,
    run: `INSERT INTO ${s}.schedule_runs (queue, name, tick, item_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING 1`,
    sweepRuns: `DELETE FROM ${s}.schedule_runs WHERE queue = $1 AND tick < $2`,
    setLimits: `INSERT INTO ${s}.limits (queue, concurrency, rate_per_sec, burst, tokens, refilled_at, updated_at)
       VALUES ($1, $2, $3, $4, NULL, NULL, $5)
       ON CONFLICT (queue) DO UPDATE SET concurrency = $2, rate_per_sec = $3, burst = $4, tokens = NULL,
         refilled_at = NULL, updated_at = $5`,
    clearLimits: `DELETE FROM ${s}.limits WHERE queue = $1`,
    limits: `SELECT queue, concurrency, rate_per_sec, burst, tokens, refilled_at FROM ${s}.limits WHERE ($1::text IS NULL OR queue = $1)`,
    lock: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
    allowance: `SELECT l.concurrency, l.rate_per_sec, l.burst, l.tokens, l.refilled_at,
         (SELECT count(*) FROM ${s}.items i WHERE i.queue = $1 AND i.state = 'active' AND i.lease_until > $2)::int AS active
       FROM ${s}.limits l WHERE l.queue = $1`,
    spend: `UPDATE ${s}.limits SET tokens = $2, refilled_at = $3 WHERE queue = $1`,
  };
}
