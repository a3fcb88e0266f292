/**
 * Custom probes of the shipped experiments (a custom probe is a module export: `(args, ctx) =>
 * number | string | boolean`).
 */

/**
 * Orders accepted by the outbox service but not in PostgreSQL, once the outbox has drained (or
 * `waitMs` passed): 0 means none lost.
 */
export async function lostOrders(args: Record<string, unknown>): Promise<number> {
  const url = String(args.url);
  const deadline = Date.now() + Number(args.waitMs ?? 15_000);
  for (;;) {
    const s = (await (await fetch(url)).json()) as {
      accepted: number;
      waiting: number;
      inPostgres: number | null;
    };
    if ((s.waiting === 0 && s.inPostgres !== null) || Date.now() > deadline)
      return s.accepted - (s.inPostgres ?? 0);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How many orders were kept in the outbox rather than written at once (shows the fault bit). */
export async function queuedOrders(args: Record<string, unknown>): Promise<number> {
  const s = (await (await fetch(String(args.url))).json()) as { queued: number };
  return s.queued;
}

/**
 * Retries as a share of the requests a gateway route received since it started (from its admin
 * /metrics): the retry budget keeps it under the route's `budgetRatio`.
 */
export async function retryShare(args: Record<string, unknown>): Promise<number> {
  const text = await (await fetch(String(args.url))).text();
  const route = String(args.route ?? 'api');
  const read = (name: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{name="${route}"}`));
    return line === undefined ? Number.NaN : Number(line.split(' ').pop());
  };
  return read('bulwark_gateway_route_retries_total') / read('bulwark_gateway_route_requests_total');
}
