/**
 * The HTTP side of a delivery: one POST over a keep-alive undici Agent whose connections go only to
 * addresses the SSRF policy checked, with an overall timeout, no redirects followed, and at most 1 KiB
 * of the answer kept for the attempt log.
 */
import { isIP } from 'node:net';
import type { Agent } from 'undici';
import type { AddressPolicy } from './ssrf.ts';

// undici is loaded with the first delivery: a server without webhooks never pays for it at start
// (it was the largest module the server loaded, a sixth of its idle memory).
type Undici = typeof import('undici');
let undici: Promise<Undici> | undefined;
function loadUndici(): Promise<Undici> {
  undici ??= import('undici');
  return undici;
}

export interface SendOutcome {
  status: number | null;
  retryAfter: string | undefined;
  body: string | null;
  error: string | null;
  durationMs: number;
}

const KEEP_BYTES = 1024;
/** Answers longer than this are cut off (the connection is then dropped rather than drained). */
const DRAIN_BYTES = 64 * 1024;

function describe(err: unknown, timeoutMs: number, { errors }: Undici): string {
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
    return `timeout: no answer within ${timeoutMs} ms`;
  }
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown };
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_ABORTED') {
    return `timeout: no answer within ${timeoutMs} ms`;
  }
  const cause = e.cause as { code?: string; message?: string } | undefined;
  const code = e.code ?? cause?.code;
  if (code === 'EBLOCKED') return `refused by SSRF protection: ${e.message ?? cause?.message}`;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ENOTFOUND') return `host not found: ${e.message}`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `timeout: no connection within ${timeoutMs} ms`;
  return `${code ? `${code}: ` : ''}${e.message ?? String(err)}`.slice(0, 500);
}

export class WebhookSender {
  /** Made with the first delivery. */
  private agent: Agent | null = null;

  constructor(
    private readonly policy: AddressPolicy,
    private readonly timeoutMs: number,
  ) {}

  private agentOf(mod: Undici): Agent {
    this.agent ??= new mod.Agent({
      connect: { lookup: this.policy.lookup, timeout: this.timeoutMs },
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
    return this.agent;
  }

  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<SendOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const fail = (error: string): SendOutcome => ({
      status: null,
      retryAfter: undefined,
      body: null,
      error,
      durationMs: elapsed(),
    });
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return fail('the endpoint URL is not valid');
    }
    // A literal address never reaches `lookup`: check it here.
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) {
      const reason = this.policy.blockedReason(host);
      if (reason) return fail(`refused by SSRF protection: ${host} is ${reason}`);
    }
    const mod = await loadUndici();
    try {
      // The timeouts are the agent's (connect, headers, and each pause in the body): no timer per request.
      const res = await mod.request(parsed, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agentOf(mod),
        ...(signal ? { signal } : {}),
      });
      let kept = '';
      let read = 0;
      try {
        for await (const chunk of res.body) {
          const buf = chunk as Buffer;
          if (kept.length < KEEP_BYTES) kept += buf.subarray(0, KEEP_BYTES - kept.length).toString('utf8');
          read += buf.length;
          if (read > DRAIN_BYTES) {
            res.body.destroy();
            break;
          }
        }
      } catch {
        // The status is what counts; a body cut short changes nothing.
      }
      const retryAfter = res.headers['retry-after'];
      return {
        status: res.statusCode,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        body: kept.length > 0 ? kept.slice(0, KEEP_BYTES) : null,
        error: null,
        durationMs: elapsed(),
      };
    } catch (err) {
      if (signal?.aborted) return fail('aborted: syncbridge is shutting down');
      return fail(describe(err, this.timeoutMs, mod));
    }
  }

  async close(): Promise<void> {
    await this.agent?.destroy().catch(() => {});
  }
}
