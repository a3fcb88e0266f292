/**
 * The execution context every policy and the user's function see.
 *
 * One context object is made per `execute()` call. A timeout makes a child context per
 * call so that its abort does not leak to the layers outside it. The `signal` is made
 * lazily: a call whose function never reads `ctx.signal` creates no AbortController and
 * adds no listener anywhere.
 */

/** Built-in priority classes, most important first. Any other string is allowed too. */
export type Priority = 'critical' | 'high' | 'normal' | 'low' | (string & {});

/**
 * What the function passed to `execute` receives.
 *
 * @example
 * ```ts
 * import { retry } from 'bulwark';
 * await retry({ maxAttempts: 3 }).execute(
 *   ({ signal, attempt, priority, props }) => fetch(`https://api.example/${props.id}?try=${attempt}`, { signal }),
 *   { priority: 'critical', props: { id: 42 } },
 * );
 * ```
 */
export interface Context<P extends object = Record<string, unknown>> {
  /**
   * Aborted when the caller's signal aborts or an enclosing timeout elapses.
   * Created on first read, so reading it is the only thing that costs an AbortController.
   */
  readonly signal: AbortSignal;
  /** 1 for the first attempt, 2 for the first retry, and so on. */
  readonly attempt: number;
  /** The priority given to `execute` (`normal` when none was). */
  readonly priority: Priority;
  /** The operation name given to `execute`, if any (used in events and metrics). */
  readonly name: string | undefined;
  /** The typed property bag given to `execute` as `props` (an empty object when none was). */
  readonly props: P;
}

/**
 * Options of one `execute()` call.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * await policy.execute(work, { signal: controller.signal, priority: 'low', name: 'nightly-sync' });
 * ```
 */
export interface ExecuteOptions<P extends object = Record<string, unknown>> {
  /** The caller's signal: honoured by every policy and propagated to `ctx.signal`. */
  signal?: AbortSignal | undefined;
  /** Priority class of this call; policies may treat tiers differently. Default `normal`. */
  priority?: Priority | undefined;
  /** Operation name, for events and metrics. */
  name?: string | undefined;
  /** A typed property bag, visible to the function and to option functions as `ctx.props`. */
  props?: P | undefined;
}

/**
 * Abort watchers of callers' signals, multiplexed: however many calls wait on one long-lived
 * signal (a shutdown signal shared by every request), the signal carries ONE listener of ours,
 * so Node never warns of a possible listener leak, and the listener goes when the last watcher
 * does.
 */
const signalWatchers = new WeakMap<AbortSignal, Set<() => void>>();

function fireWatchers(this: AbortSignal): void {
  const set = signalWatchers.get(this);
  if (set === undefined) return;
  signalWatchers.delete(this);
  for (const fn of set) fn();
}

function watchSignal(signal: AbortSignal, fn: () => void): void {
  let set = signalWatchers.get(signal);
  if (set === undefined) {
    set = new Set();
    signalWatchers.set(signal, set);
    signal.addEventListener('abort', fireWatchers, { once: true });
  }
  set.add(fn);
}

function unwatchSignal(signal: AbortSignal, fn: () => void): void {
  const set = signalWatchers.get(signal);
  if (set === undefined || !set.delete(fn) || set.size !== 0) return;
  signalWatchers.delete(signal);
  signal.removeEventListener('abort', fireWatchers);
}

const EMPTY_PROPS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** A function run by a policy. */
export type Operation<T, P extends object> = (ctx: Context<P>) => T | PromiseLike<T>;

/**
 * The concrete context of an `execute()` call (the root). Its underscore members are
 * internal to Bulwark. Kept small: it is the one object every call allocates.
 * @internal
 */
export class ExecutionContext implements Context<Record<string, unknown>> {
  attempt = 1;
  readonly priority: Priority;
  readonly name: string | undefined;
  readonly props: Record<string, unknown>;

  /** The user's function. */
  readonly _fn: (ctx: ExecutionContext) => unknown;
  /** The caller's signal (root only). */
  readonly _callerSignal: AbortSignal | null;
  _controller: AbortController | null = null;

  constructor(
    fn: (ctx: ExecutionContext) => unknown,
    callerSignal: AbortSignal | null,
    priority: Priority,
    name: string | undefined,
    props: Record<string, unknown>,
  ) {
    this._fn = fn;
    this._callerSignal = callerSignal;
    this.priority = priority;
    this.name = name;
    this.props = props;
  }

  /** Makes the root context of an `execute()` call. */
  static root(fn: (ctx: never) => unknown, options: ExecuteOptions<object> | undefined): ExecutionContext {
    if (options === undefined) {
      return new ExecutionContext(
        fn as (ctx: ExecutionContext) => unknown,
        null,
        'normal',
        undefined,
        EMPTY_PROPS,
      );
    }
    return new ExecutionContext(
      fn as (ctx: ExecutionContext) => unknown,
      options.signal ?? null,
      options.priority ?? 'normal',
      options.name,
      (options.props as Record<string, unknown> | undefined) ?? EMPTY_PROPS,
    );
  }

  /** Makes a child context that can be aborted on its own (used by timeouts). */
  child(): ChildContext {
    const c = new ChildContext(this);
    c.attempt = this.attempt;
    return c;
  }

  get signal(): AbortSignal {
    if (this._controller !== null) return this._controller.signal;
    if (this._callerSignal !== null) return this._callerSignal;
    this._controller = new AbortController();
    return this._controller.signal;
  }

  /** True when this context (or one enclosing it, or the caller) was aborted. */
  get _isAborted(): boolean {
    return this._callerSignal !== null && this._callerSignal.aborted;
  }

  /** The abort reason, when `_isAborted`. */
  get _abortReason(): unknown {
    return this._callerSignal?.reason;
  }

  /** True when this context can ever be aborted (so waiting code must listen). */
  get _canAbort(): boolean {
    return this._callerSignal !== null;
  }

  /**
   * Calls `fn` once when this context is aborted, WITHOUT creating an AbortController (the
   * root listens on the caller's signal; a child keeps a list). Call only when `_canAbort`
   * and not `_isAborted`; undo with `_unwatch(fn)`.
   */
  _watch(fn: () => void): void {
    if (this._callerSignal !== null) watchSignal(this._callerSignal, fn);
  }

  /** Undoes `_watch(fn)` (harmless when `fn` was already called or removed). */
  _unwatch(fn: () => void): void {
    if (this._callerSignal !== null) unwatchSignal(this._callerSignal, fn);
  }
}

/**
 * A context a timeout makes per call: aborted by its own deadline, or when its parent aborts.
 * It is also its own node in the timeout's deadline queue.
 * @internal
 */
export class ChildContext extends ExecutionContext {
  readonly _parent: ExecutionContext;
  _aborted = false;
  _reason: unknown = undefined;
  /** Registered on the parent (by `_link`) so that the parent's abort reaches this context. */
  _parentListener: (() => void) | null = null;
  /** Internal abort watchers (see `_watch`); null when none. */
  _watchers: (() => void)[] | null = null;
  /** Set by `_finish`: the call is over, so nothing links this context to its parent again. */
  _done = false;

  // Deadline-queue links.
  _dlPrev: ChildContext | null = null;
  _dlNext: ChildContext | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  /** The timeout (ms) the timeout policy set on this context. */
  _timeoutMs = 0;
  /** Set by an abandon timeout: called when the deadline passes. */
  _onExpire: ((ctx: ChildContext) => void) | null = null;

  constructor(parent: ExecutionContext) {
    super(parent._fn, null, parent.priority, parent.name, parent.props);
    this._parent = parent;
  }

  override get signal(): AbortSignal {
    if (this._controller !== null) return this._controller.signal;
    const controller = new AbortController();
    this._controller = controller;
    if (this._aborted) controller.abort(this._reason);
    else this._link(); // may abort this context (and so the controller) at once
    return controller.signal;
  }

  override get _isAborted(): boolean {
    return this._aborted || this._parent._isAborted;
  }

  override get _abortReason(): unknown {
    return this._aborted ? this._reason : this._parent._abortReason;
  }

  override get _canAbort(): boolean {
    return true;
  }

  override _watch(fn: () => void): void {
    if (this._watchers === null) this._watchers = [fn];
    else this._watchers.push(fn);
    this._link();
  }

  override _unwatch(fn: () => void): void {
    const watchers = this._watchers;
    if (watchers === null) return;
    const i = watchers.indexOf(fn);
    if (i >= 0) watchers.splice(i, 1);
  }

  /**
   * Makes the parent's abort reach this context: through the parent's own watch list, so an
   * enclosing timeout's context needs no AbortController for it either.
   */
  private _link(): void {
    if (this._parentListener !== null || this._aborted) return;
    const parent = this._parent;
    if (parent._isAborted) {
      this._abort(parent._abortReason);
      return;
    }
    if (this._done || !parent._canAbort) return;
    const listener = () => this._abort(parent._abortReason);
    this._parentListener = listener;
    parent._watch(listener);
  }

  /** Aborts this context: its signal (if made) and its watchers. */
  _abort(reason: unknown): void {
    if (this._aborted) return;
    this._aborted = true;
    this._reason = reason;
    this._detach();
    if (this._controller !== null) this._controller.abort(reason);
    const watchers = this._watchers;
    if (watchers !== null) {
      this._watchers = null; // an _unwatch from a watcher then changes nothing mid-loop
      for (let i = 0; i < watchers.length; i++) watchers[i]!();
    }
  }

  /**
   * The call this context belongs to is over: unlinks it from its parent for good, so that a
   * late read of `signal` (from work the function left behind) adds no listener anywhere.
   */
  _finish(): void {
    this._done = true;
    this._detach();
  }

  /** Removes the listener this context put on its parent. */
  _detach(): void {
    const listener = this._parentListener;
    if (listener !== null) {
      this._parentListener = null;
      this._parent._unwatch(listener);
    }
  }
}
