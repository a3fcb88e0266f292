/**
 * Silences (Prometheus Alertmanager semantics): label matchers, a creator, a comment, a start and
 * an end. An alert whose labels every matcher of an active silence accepts is silenced: it is
 * still evaluated and shown (marked with the silence's id), but not notified; when the silence
 * ends (expired or deleted) an alert still firing is notified at the next evaluation.
 */

import type { Clock } from '../core/clock.js';
import { BulwarkError } from '../core/errors.js';
import { s } from '../core/schema.js';

/** One matcher: `=` equal, `!=` not equal, `=~` matches the regex (anchored), `!~` does not. */
export interface SilenceMatcher {
  readonly name: string;
  readonly value: string;
  readonly op: '=' | '!=' | '=~' | '!~';
}

/** A silence. */
export interface Silence {
  readonly id: string;
  readonly matchers: readonly SilenceMatcher[];
  /** Who created it. */
  readonly createdBy: string;
  /** Why. */
  readonly comment: string;
  /** Epoch ms. */
  readonly startsAt: number;
  /** Epoch ms: the silence ends then (or when expired earlier). */
  readonly endsAt: number;
  /** `active` until `endsAt`, then `expired`. */
  readonly state: 'active' | 'expired';
}

/** The longest silence: 30 days. */
export const MAX_SILENCE_MS = 30 * 86_400_000;

const matcherSchema = s.object({
  name: s.string({ pattern: /^[a-zA-Z_][a-zA-Z0-9_]*$/, patternRule: 'a label name' }),
  value: s.string({ minLength: 0, maxLength: 200 }),
  op: s.optional(s.oneOf(['=', '!=', '=~', '!~'] as const), '='),
});

/** The schema of a new silence's input (matchers and duration). @internal */
export const silenceInputSchema = s.object({
  matchers: s.array(matcherSchema, { min: 1, max: 20 }),
  durationMs: s.duration({ positive: true, max: MAX_SILENCE_MS }),
});

/** Compiles a matcher (regexes anchored, as Alertmanager's are); throws on a bad regex. */
function compile(m: SilenceMatcher, path: string): (labels: Readonly<Record<string, string>>) => boolean {
  if (m.op === '=' || m.op === '!=') {
    const eq = m.op === '=';
    return (l) => ((l[m.name] ?? '') === m.value) === eq;
  }
  // A quantified group that is itself quantified ((a+)+) can take exponential time: refused.
  if (/\([^)]*[+*}][^)]*\)\s*[+*{]/.test(m.value))
    return s.fail(`${path}.value`, 'a regular expression without nested quantifiers', m.value);
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${m.value})$`);
  } catch {
    return s.fail(`${path}.value`, 'a valid regular expression', m.value);
  }
  const want = m.op === '=~';
  return (l) => re.test(l[m.name] ?? '') === want;
}

interface Entry {
  silence: Omit<Silence, 'state'>;
  test: (labels: Readonly<Record<string, string>>) => boolean;
}

/**
 * The silences of one alert manager (kept in memory; expired ones are kept for an hour so they
 * can be looked at, then dropped). @internal
 */
export class Silences {
  private readonly entries = new Map<string, Entry>();
  private seq = 0;

  constructor(private readonly clock: Clock) {}

  /** Adds a silence (matchers are checked: a bad regex is a ConfigError naming its field). */
  add(
    matchers: readonly SilenceMatcher[],
    durationMs: number,
    createdBy: string,
    comment: string,
    path = 'silence',
  ): Silence {
    const tests = matchers.map((m, i) => compile(m, `${path}.matchers[${i}]`));
    const now = this.clock.date();
    this.prune(now);
    const id = `s${++this.seq}-${now.toString(36)}`;
    const silence = { id, matchers, createdBy, comment, startsAt: now, endsAt: now + durationMs };
    this.entries.set(id, { silence, test: (l) => tests.every((t) => t(l)) });
    return { ...silence, state: 'active' };
  }

  /** Ends a silence now; throws `UNKNOWN_SILENCE` when there is no such silence. */
  expire(id: string): Silence {
    const e = this.entries.get(id);
    if (e === undefined)
      throw new BulwarkError('UNKNOWN_SILENCE', `No silence "${id}"; GET the silences view lists them`);
    const now = this.clock.date();
    if (e.silence.endsAt > now) e.silence = { ...e.silence, endsAt: now };
    return { ...e.silence, state: 'expired' };
  }

  /** The ids of the active silences that silence an alert with these labels. */
  silencing(labels: Readonly<Record<string, string>>): string[] {
    if (this.entries.size === 0) return [];
    const now = this.clock.date();
    const ids: string[] = [];
    for (const e of this.entries.values())
      if (e.silence.endsAt > now && e.test(labels)) ids.push(e.silence.id);
    return ids;
  }

  /** Every silence (active first, then expired), newest first. */
  list(): Silence[] {
    const now = this.clock.date();
    this.prune(now);
    const all = [...this.entries.values()].map(
      (e): Silence => ({ ...e.silence, state: e.silence.endsAt > now ? 'active' : 'expired' }),
    );
    return all.sort((a, b) =>
      a.state === b.state ? b.startsAt - a.startsAt : a.state === 'active' ? -1 : 1,
    );
  }

  /** Active silences now. */
  get active(): number {
    const now = this.clock.date();
    let n = 0;
    for (const e of this.entries.values()) if (e.silence.endsAt > now) n++;
    return n;
  }

  private prune(now: number): void {
    for (const [id, e] of this.entries) if (e.silence.endsAt + 3_600_000 < now) this.entries.delete(id);
  }
}
