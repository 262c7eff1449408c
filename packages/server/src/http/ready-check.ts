/**
 * Readiness probes with a deadline. A store or bus client that is reconnecting queues a ping until the
 * connection is back (ioredis' offline queue, a NATS flush, a pool waiting for a connection), so an
 * unbounded probe would hang `GET /v1/ready` for the whole outage instead of answering 503.
 */

/** How long `GET /v1/ready` waits for the store and for the bus before calling it unavailable. */
export const READY_PROBE_TIMEOUT_MS = 2_000;

/** Resolves to whether `probe` answered truthily within `timeoutMs`; a rejection or a timeout is false. */
export async function probeWithin(
  probe: () => Promise<unknown>,
  timeoutMs: number = READY_PROBE_TIMEOUT_MS,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    const answered = probe().then(
      (value) => value !== false,
      () => false,
    );
    return await Promise.race([answered, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
