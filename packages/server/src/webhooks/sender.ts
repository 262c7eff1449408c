/**
 * The HTTP side of a delivery: one POST over a keep-alive undici Agent whose connections go only to
 * addresses the SSRF policy checked, with an overall timeout, no redirects followed, and at most 1 KiB
 * of the answer kept for the attempt log. A POST is dispatched with a handler of its own (no response
 * stream), and each endpoint URL is parsed and checked once.
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

/** What a POST needs of its URL, parsed once per endpoint URL. */
interface Target {
  origin: string;
  path: string;
  /** Why a literal address is refused (a name is checked on connect, by `lookup`), or null. */
  refused: string | null;
}

/** URLs remembered at most (the endpoints' URLs, so a handful; forgotten all at once past this). */
const MAX_TARGETS = 1024;

/** Why the answer was cut short: the status already arrived, the rest is not read. */
const CUT = new Error('answer too long: not read further');

/**
 * One POST as an undici dispatch handler: keeps the status, Retry-After and the first KiB of the answer.
 * Cheaper than `request()`, which wraps every answer in a stream read by an async iterator.
 */
class PostHandler {
  private status: number | null = null;
  private retryAfter: string | undefined;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private read = 0;
  private abortRequest: ((err: Error) => void) | null = null;
  private done = false;
  private readonly onSignal = () => this.abortRequest?.(new Error('aborted'));

  constructor(
    private readonly started: number,
    private readonly finish: (outcome: SendOutcome | { failed: unknown }) => void,
    private readonly signal: AbortSignal | undefined,
  ) {
    signal?.addEventListener('abort', this.onSignal, { once: true });
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.signal?.aborted) abort(new Error('aborted'));
    else this.abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode;
    if (statusCode === 429 || statusCode === 503) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (rawHeaders[i]!.toString('latin1').toLowerCase() === 'retry-after') {
          this.retryAfter = rawHeaders[i + 1]!.toString('latin1');
          break;
        }
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.keptBytes < KEEP_BYTES) {
      const part = chunk.subarray(0, KEEP_BYTES - this.keptBytes);
      this.kept.push(part);
      this.keptBytes += part.length;
    }
    this.read += chunk.length;
    if (this.read > DRAIN_BYTES) {
      // Longer than any answer worth reading: drop the connection rather than drain it.
      this.abortRequest?.(CUT);
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.answered();
  }

  onError(err: Error): void {
    if (err === CUT) this.answered();
    else this.end({ failed: err });
  }

  private answered(): void {
    const body = this.keptBytes > 0 ? Buffer.concat(this.kept).toString('utf8') : null;
    this.end({
      status: this.status,
      retryAfter: this.retryAfter,
      body,
      error: null,
      durationMs: Math.round(performance.now() - this.started),
    });
  }

  private end(outcome: SendOutcome | { failed: unknown }): void {
    if (this.done) return;
    this.done = true;
    this.signal?.removeEventListener('abort', this.onSignal);
    this.finish(outcome);
  }
}

export class WebhookSender {
  /** Made with the first delivery. */
  private agent: Agent | null = null;
  private readonly targets = new Map<string, Target | null>();

  constructor(
    private readonly policy: AddressPolicy,
    private readonly timeoutMs: number,
  ) {}

  private agentOf(mod: Undici): Agent {
    // One keep-alive pool per origin (undici's Agent), no pipelining: one request per connection at a time.
    this.agent ??= new mod.Agent({
      connect: { lookup: this.policy.lookup, timeout: this.timeoutMs },
      keepAliveTimeout: 30_000,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      pipelining: 1,
    });
    return this.agent;
  }

  /** The URL's origin and path, and whether a literal address in it is refused; null: not a URL. */
  private target(url: string): Target | null {
    const known = this.targets.get(url);
    if (known !== undefined) return known;
    let target: Target | null = null;
    try {
      const parsed = new URL(url);
      // A literal address never reaches `lookup`: check it here.
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
      const reason = isIP(host) ? this.policy.blockedReason(host) : null;
      target = {
        origin: parsed.origin,
        path: `${parsed.pathname}${parsed.search}`,
        refused: reason ? `refused by SSRF protection: ${host} is ${reason}` : null,
      };
    } catch {
      target = null;
    }
    if (this.targets.size >= MAX_TARGETS) this.targets.clear();
    this.targets.set(url, target);
    return target;
  }

  async post(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal?: AbortSignal,
  ): Promise<SendOutcome> {
    const started = performance.now();
    const fail = (error: string): SendOutcome => ({
      status: null,
      retryAfter: undefined,
      body: null,
      error,
      durationMs: Math.round(performance.now() - started),
    });
    const target = this.target(url);
    if (!target) return fail('the endpoint URL is not valid');
    if (target.refused) return fail(target.refused);
    const mod = await loadUndici();
    const agent = this.agentOf(mod);
    // The timeouts are the agent's (connect, headers, and each pause in the body): no timer per request.
    const outcome = await new Promise<SendOutcome | { failed: unknown }>((resolve) => {
      const handler = new PostHandler(started, resolve, signal);
      try {
        agent.dispatch({ origin: target.origin, path: target.path, method: 'POST', headers, body }, handler);
      } catch (err) {
        handler.onError(err as Error);
      }
    });
    if (!('failed' in outcome)) return outcome;
    if (signal?.aborted) return fail('aborted: syncbridge is shutting down');
    return fail(describe(outcome.failed, this.timeoutMs, mod));
  }

  async close(): Promise<void> {
    await this.agent?.destroy().catch(() => {});
  }
}
