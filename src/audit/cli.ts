/**
 * The `bulwark audit` command line.
 *
 * ```text
 * bulwark audit verify     --store SPEC [--public-key PEM_FILE] [--no-payloads] [--json]
 * bulwark audit tail       --store SPEC [--limit N] [--tag T] [--subject S] [--actor A] [--action X] [--json]
 * bulwark audit proof      --store SPEC --seq N [--tree-size N] [--json]
 * bulwark audit checkpoint --store SPEC --signing-key PEM_FILE [--json]
 * bulwark audit purge      --store SPEC (--tag T | --subject S | --before ISO | --seqs 1,2) --actor A --reason R (--yes | --dry-run) [--json]
 * ```
 * Encrypted payloads are read with `BULWARK_KEYS` (and `--subject-keys PATH|postgres://…?schema=S`
 * for subject keys).
 * @module
 */

import { readFileSync } from 'node:fs';
import {
  type CliIo,
  closeCliKeys,
  encryptionFromEnv,
  need,
  optionSpec,
  parse,
  runCli,
  throttled,
  UsageError,
  wholeNumber,
} from './cli-support.js';
import { openAuditLog } from './log.js';

const USAGE = `Usage: bulwark audit <command> --store SPEC [options]

Commands:
  verify      walk the chain, payload digests and checkpoints; exit 1 and name the first bad entry if any
              [--public-key PEM_FILE] [--no-payloads]
  tail        the newest entries     [--limit N (20)] [--tag T] [--subject S] [--actor A] [--action X]
  proof       inclusion proof        --seq N [--tree-size N]
  checkpoint  sign the current tree head --signing-key PEM_FILE (prints it: send it off the box)
  purge       purge payloads (recorded as an entry; legal holds win)
              (--tag T | --subject S | --before ISO_TIME | --seqs 1,2,3) --actor A --reason R (--yes | --dry-run)

Options:
  --store SPEC         sqlite:PATH or postgres://user@host/db?schema=NAME (required)
  --subject-keys AT    subject keys: a SQLite file, or postgres://…?schema=NAME (with BULWARK_KEYS)
  --json               machine-readable output
`;

const OPTIONS = optionSpec(
  'store public-key signing-key subject-keys limit tag subject actor action seq seqs tree-size before reason',
  'no-payloads yes dry-run',
);

function pem(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

/** Runs `bulwark audit …` (argv includes the word `audit`). Exit 0 ok, 1 failure (or tampering found), 2 usage. */
export function main(argv: readonly string[], io: CliIo): Promise<number> {
  return runCli(io, USAGE, async () => {
    const { positionals, values: v } = parse(argv.slice(1), OPTIONS);
    const command = positionals[0];
    if (v.help === true || command === undefined) {
      io.out(USAGE);
      return command === undefined && v.help !== true ? 2 : 0;
    }
    if (!['verify', 'tail', 'proof', 'checkpoint', 'purge'].includes(command))
      throw new UsageError(`unknown command "${command}"`);
    const json = v.json === true;
    const encryption = encryptionFromEnv(v['subject-keys'] as string | undefined);
    const log = openAuditLog({
      store: need(v, 'store'),
      ...(encryption === undefined ? {} : { encryption }),
      ...(typeof v['public-key'] === 'string' ? { publicKey: pem(v['public-key']) } : {}),
      ...(typeof v['signing-key'] === 'string' ? { signingKey: pem(v['signing-key']) } : {}),
    });
    try {
      if (command === 'verify') {
        const started = Date.now();
        const progress = throttled<[number, number]>(1000, ([done, total]) => {
          const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
          io.err(
            `verify: ${done}/${total} entries  ${Math.round(rate)} entries/s  ETA ${Math.ceil((total - done) / Math.max(1, rate))}s`,
          );
        });
        const rep = await log.verify({
          payloads: v['no-payloads'] !== true,
          onProgress: (d, t) => progress([d, t]),
        });
        if (json) io.out(JSON.stringify(rep));
        else if (rep.ok)
          io.out(
            `ok: ${rep.entries} entries, root ${rep.rootHash}, ${rep.checkpoints} checkpoints${rep.signaturesChecked ? '' : ' (signatures not checked: no --public-key)'}, payloads checked ${rep.payloads.checked}, unreadable ${rep.payloads.unreadable}`,
          );
        else
          io.out(
            `TAMPERED: first bad entry ${rep.firstBad!.seq} (${rep.firstBad!.reason}): ${rep.firstBad!.message}\n${rep.issues.length} issue(s)`,
          );
        return rep.ok ? 0 : 1;
      }
      if (command === 'tail') {
        const entries = await log.list({
          order: 'desc',
          limit: wholeNumber(v, 'limit') ?? 20,
          ...(typeof v.tag === 'string' ? { tag: v.tag } : {}),
          ...(typeof v.subject === 'string' ? { subject: v.subject } : {}),
          ...(typeof v.actor === 'string' ? { actor: v.actor } : {}),
          ...(typeof v.action === 'string' ? { action: v.action } : {}),
        });
        if (json) io.out(JSON.stringify(entries));
        else
          for (const e of entries.reverse())
            io.out(
              `${e.seq}  ${new Date(e.time).toISOString()}  ${e.actor}  ${e.action}  ${e.resource}  ${e.outcome}  [${e.tags.join(',')}]${e.subject === null ? '' : `  subject=${e.subject}`}`,
            );
        return 0;
      }
      if (command === 'proof') {
        const seq = wholeNumber(v, 'seq');
        if (seq === undefined) throw new UsageError('--seq is required');
        const p = await log.proof(seq, wholeNumber(v, 'tree-size'));
        io.out(
          json
            ? JSON.stringify(p)
            : `entry ${p.seq} in tree of ${p.treeSize}\nleaf ${p.leafHash}\nroot ${p.rootHash}\npath:\n${p.path.map((h) => `  ${h}`).join('\n')}`,
        );
        return 0;
      }
      if (command === 'checkpoint') {
        if (typeof v['signing-key'] !== 'string') throw new UsageError('--signing-key is required');
        io.out(JSON.stringify(await log.checkpoint()));
        return 0;
      }
      // purge
      const actor = need(v, 'actor');
      const reason = need(v, 'reason');
      if (v.yes === true && v['dry-run'] === true)
        throw new UsageError('--yes and --dry-run cannot be used together');
      if (v.yes !== true && v['dry-run'] !== true)
        throw new UsageError('purge changes data: pass --yes to do it, or --dry-run to see what it would do');
      const before = typeof v.before === 'string' ? Date.parse(v.before) : undefined;
      if (before !== undefined && Number.isNaN(before))
        throw new UsageError(`--before must be an ISO time (got ${String(v.before)})`);
      const seqs = typeof v.seqs === 'string' ? v.seqs.split(',').map((x) => Number(x)) : undefined;
      if (seqs?.some((n) => !Number.isSafeInteger(n) || n < 1))
        throw new UsageError('--seqs must be a comma-separated list of entry numbers');
      const selection = {
        ...(typeof v.tag === 'string' ? { tag: v.tag } : {}),
        ...(typeof v.subject === 'string' ? { subject: v.subject } : {}),
        ...(before === undefined ? {} : { before }),
        ...(seqs === undefined ? {} : { seqs }),
      };
      if (Object.keys(selection).length === 0)
        throw new UsageError('purge needs a selection: --tag, --subject, --before or --seqs');
      if (v['dry-run'] === true) {
        const n = await log.list({
          ...(selection.tag ? { tag: selection.tag } : {}),
          ...(selection.subject ? { subject: selection.subject } : {}),
          ...(before === undefined ? {} : { until: before }),
          hasPayload: true,
          limit: 10_000,
        });
        const count = n.filter((e) => seqs === undefined || seqs.includes(e.seq)).length;
        io.out(
          json
            ? JSON.stringify({ dryRun: true, wouldPurge: count })
            : `would purge up to ${count} payloads (legal holds are applied when run)`,
        );
        return 0;
      }
      const r = await log.purge({ ...selection, actor, reason });
      io.out(
        json
          ? JSON.stringify({ purged: r.purged, held: r.held, seq: r.entry.seq })
          : `purged ${r.purged} payloads (${r.held} kept by legal holds); recorded as entry ${r.entry.seq}`,
      );
      return 0;
    } finally {
      await log.close();
      await closeCliKeys();
    }
  });
}
