import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { track } from '../../test/support/bulkhead-harness.js';
import { configError } from '../../test/support/config-error.js';
import { type BulkheadRejectedError, bulkhead } from '../index.js';
import { createFakeClock, type Deferred, deferred, flushMicrotasks } from '../testing/index.js';

describe('bulkhead: validation', () => {
  const bad = (f: () => unknown, option: string) => {
    const error = configError(f);
    expect(error.option).toBe(option);
    expect(error.message).toMatch(
      new RegExp(`^${option.replace(/[.()]/g, '\\$&')} (must be|is not an option)`),
    );
  };

  it('limit is required and must be an integer >= 1', () => {
    bad(() => bulkhead({} as never), 'bulkhead.limit');
    bad(() => bulkhead(0), 'bulkhead.limit');
    bad(() => bulkhead(1.5), 'bulkhead.limit');
    bad(() => bulkhead(-1), 'bulkhead.limit');
    bad(() => bulkhead(Number.POSITIVE_INFINITY), 'bulkhead.limit');
    bad(() => bulkhead({ limit: '2' as never }), 'bulkhead.limit');
  });

  it('queue must be an integer >= 0 or Infinity', () => {
    bad(() => bulkhead(1, -1), 'bulkhead.queue');
    bad(() => bulkhead({ limit: 1, queue: 0.5 }), 'bulkhead.queue');
    expect(bulkhead({ limit: 1, queue: Number.POSITIVE_INFINITY }).kind).toBe('bulkhead');
  });

  it('queueTimeout must be a number >= 0', () => {
    bad(() => bulkhead({ limit: 1, queueTimeoutMs: -1 }), 'bulkhead.queueTimeoutMs');
    bad(() => bulkhead({ limit: 1, queueTimeoutMs: Number.NaN }), 'bulkhead.queueTimeoutMs');
  });

  it('bypass must be an array of priority names; name a non-empty string; unknown options refused', () => {
    bad(() => bulkhead({ limit: 1, bypass: 'critical' as never }), 'bulkhead.bypass');
    bad(() => bulkhead({ limit: 1, bypass: [1] as never }), 'bulkhead.bypass');
    bad(() => bulkhead({ limit: 1, name: '' }), 'bulkhead.name');
    bad(() => bulkhead({ limit: 1, max: 2 } as never), 'bulkhead.max');
    bad(() => bulkhead(null as never), 'bulkhead');
  });
});

describe('bulkhead: property', () => {
  type Action =
    | { type: 'arrive'; signal: boolean }
    | { type: 'complete'; pick: number; ok: boolean }
    | { type: 'abort'; pick: number }
    | { type: 'tick'; ms: number };

  const action: fc.Arbitrary<Action> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ type: fc.constant('arrive' as const), signal: fc.boolean() }) },
    {
      weight: 3,
      arbitrary: fc.record({ type: fc.constant('complete' as const), pick: fc.nat(), ok: fc.boolean() }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('abort' as const), pick: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    },
  );

  it('never exceeds its limit, never loses or duplicates a call, and starts queued calls in FIFO order (matches a reference model)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
        fc.array(action, { maxLength: 60 }),
        async (limit, queue, queueTimeout, actions) => {
          const clock = createFakeClock();
          const b = bulkhead(
            queueTimeout === undefined
              ? { limit, queue, clock }
              : { limit, queue, queueTimeoutMs: queueTimeout, clock },
          );

          // The system under test.
          interface Call {
            id: number;
            controller: AbortController | null;
            runs: number;
            settle: Deferred<number> | null;
            outcome: ReturnType<typeof track>;
          }
          const calls: Call[] = [];
          const started: number[] = [];
          let concurrent = 0;
          let maxConcurrent = 0;

          // The reference model.
          const model = {
            running: new Set<number>(),
            queue: [] as { id: number; deadline: number }[],
            started: [] as number[],
            rejected: new Map<number, string>(),
          };
          const modelStartQueued = () => {
            while (model.running.size < limit && model.queue.length > 0) {
              const next = model.queue.shift()!;
              model.running.add(next.id);
              model.started.push(next.id);
            }
          };

          for (const a of actions) {
            if (a.type === 'arrive') {
              const id = calls.length;
              const controller = a.signal ? new AbortController() : null;
              const call: Call = {
                id,
                controller,
                runs: 0,
                settle: null,
                outcome: { current: { state: 'pending' }, settledTimes: 0 },
              };
              calls.push(call);
              call.outcome = track(
                b.execute(
                  () => {
                    call.runs++;
                    started.push(id);
                    concurrent++;
                    maxConcurrent = Math.max(maxConcurrent, concurrent);
                    call.settle = deferred<number>();
                    return call.settle.promise;
                  },
                  controller === null ? undefined : { signal: controller.signal },
                ),
              );
              if (model.running.size < limit) {
                model.running.add(id);
                model.started.push(id);
              } else if (model.queue.length < queue) {
                model.queue.push({ id, deadline: clock.now() + (queueTimeout ?? Number.POSITIVE_INFINITY) });
              } else {
                model.rejected.set(id, 'BULKHEAD_FULL');
              }
            } else if (a.type === 'complete') {
              const running = [...model.running];
              if (running.length === 0) continue;
              const id = running[a.pick % running.length]!;
              const call = calls[id]!;
              concurrent--;
              if (a.ok) call.settle!.resolve(id);
              else call.settle!.reject(new Error(`call ${id} failed`));
              model.running.delete(id);
              modelStartQueued();
            } else if (a.type === 'abort') {
              const withSignal = calls.filter((c) => c.controller !== null && !c.controller.signal.aborted);
              if (withSignal.length === 0) continue;
              const call = withSignal[a.pick % withSignal.length]!;
              call.controller!.abort(`abort ${call.id}`);
              const i = model.queue.findIndex((w) => w.id === call.id);
              if (i >= 0) {
                model.queue.splice(i, 1);
                model.rejected.set(call.id, 'aborted');
              }
            } else {
              const now = clock.now() + a.ms;
              await clock.tick(a.ms);
              while (model.queue.length > 0 && model.queue[0]!.deadline <= now) {
                model.rejected.set(model.queue.shift()!.id, 'BULKHEAD_QUEUE_TIMEOUT');
              }
            }
            await flushMicrotasks();

            // After every step the bulkhead agrees with the model.
            expect(maxConcurrent).toBeLessThanOrEqual(limit);
            expect(started).toEqual(model.started);
            expect(b.inFlight).toBe(model.running.size);
            expect(b.queued).toBe(model.queue.length);
            for (const [id, why] of model.rejected) {
              const outcome = calls[id]!.outcome.current;
              expect(outcome.state).toBe('rejected');
              const error = (outcome as { error: unknown }).error;
              if (why === 'aborted') expect(error).toBe(`abort ${id}`);
              else expect((error as BulkheadRejectedError).code).toBe(why);
            }
          }

          // Drain: finish everything still running (and whatever the queue hands over).
          for (let guard = 0; model.running.size > 0 && guard < 1_000; guard++) {
            const id = [...model.running][0]!;
            concurrent--;
            calls[id]!.settle!.resolve(id);
            model.running.delete(id);
            modelStartQueued();
            await flushMicrotasks();
          }
          expect(started).toEqual(model.started);
          expect(b.inFlight).toBe(0);
          expect(b.queued).toBe(0);

          // Every call ran exactly once or was rejected exactly once: none lost, none duplicated.
          for (const call of calls) {
            expect(call.outcome.settledTimes).toBe(1);
            const ran = call.runs === 1;
            const rejectedBefore = model.rejected.has(call.id);
            expect(call.runs).toBeLessThanOrEqual(1);
            expect(ran !== rejectedBefore).toBe(true);
            if (ran) {
              const outcome = call.outcome.current;
              if (outcome.state === 'fulfilled') expect(outcome.value).toBe(call.id);
              else expect((outcome as { error: Error }).error.message).toBe(`call ${call.id} failed`);
            }
          }
          // FIFO: calls start in arrival order.
          expect(started).toEqual([...started].sort((x, y) => x - y));
          // Nothing left behind.
          for (const call of calls) {
            if (call.controller) expect(getEventListeners(call.controller.signal, 'abort')).toHaveLength(0);
          }
          expect(clock.refed).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('bulkhead: per-priority limits', () => {
  it('a waiter whose own limit is reached does not block a later waiter with a higher limit', async () => {
    const b = bulkhead({ limit: (ctx) => (ctx.priority === 'critical' ? 2 : 1), queue: 10 });
    const started: string[] = [];
    const gates = new Map<string, Deferred<void>>();
    const run = (label: string) => async () => {
      started.push(label);
      const d = deferred<void>();
      gates.set(label, d);
      await d.promise;
    };
    const all = [
      b.execute(run('normal-1')),
      b.execute(run('critical-1'), { priority: 'critical' }),
      b.execute(run('normal-2')), // queued: 2 running >= 1
      b.execute(run('critical-2'), { priority: 'critical' }), // queued: 2 running >= 2
    ];
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1']);
    expect(b.queued).toBe(2);
    gates.get('critical-1')!.resolve(); // 1 running: normal-2 (limit 1) must wait, critical-2 (limit 2) may start
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1', 'critical-2']);
    expect(b.queued).toBe(1);
    gates.get('normal-1')!.resolve();
    gates.get('critical-2')!.resolve();
    await flushMicrotasks();
    expect(started).toEqual(['normal-1', 'critical-1', 'critical-2', 'normal-2']);
    gates.get('normal-2')!.resolve();
    await Promise.all(all);
    expect(b.inFlight).toBe(0);
  });
});
