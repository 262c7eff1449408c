/**
 * A bounded request/reply over the bus, so a node standing by for a connector can have the node
 * running it (the holder of its lease) answer a REST call (connector-calls.ts says which calls).
 *
 * The caller publishes a `connector_call` naming the connector, with a request id and how long it
 * waits; every other node hears it, and only the one that holds the connector's lease takes it: it
 * answers `working` at once and every second while it performs the call, then `done` with the status
 * and body or the typed error. The caller answers UNAVAILABLE (with `retryAfterMs`) when no node took
 * the call in time (no node holds the lease, or the bus lost the call), when the node that took it
 * fell silent (it died or was cut off: its lease soon moves), or at the overall deadline. Every
 * waiting call has one timer, and all are answered when the node shuts down: none is left pending
 * (and the callers of calls it was performing hear UNAVAILABLE at once).
 *
 * Messages from the bus were checked against their schema and size (bus/messages.ts); answers for
 * another node or for no waiting call are ignored, as are repeats of a call being performed.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type {
  Bus,
  BusMessage,
  ConnectorAnswerMessage,
  ConnectorCall,
  ConnectorCallMessage,
} from '../bus/types.ts';
import { decodeBusMessage, MAX_CONNECTOR_CALL_CHARS } from '../bus/types.ts';
import { SyncError, toPublicError } from '../core/errors.ts';
import type { CallAnswer } from './connector-calls.ts';

export interface LeaderCallOptions {
  /** No node took the call within this long: UNAVAILABLE. */
  acceptMs: number;
  /** The node performing a call says `working` this often. */
  workingEveryMs: number;
  /** The node that took the call said nothing for this long: UNAVAILABLE. */
  silenceMs: number;
  /** The longest wait for an answer (a long run): UNAVAILABLE, though the call may still complete there. */
  timeoutMs: number;
  /** Calls this node may wait on at once; more are refused at once. */
  maxPending: number;
  /** Other nodes' calls this node may perform at once; more are refused. */
  maxServing: number;
  /** What refusals tell the client to wait before retrying (about one lease check). */
  retryAfterMs: number;
  /** Hears how each call this node forwarded ended (metrics). */
  outcome?: (outcome: CallOutcome) => void;
}

/**
 * How a forwarded call ended: `answered` (a 2xx), `error` (the running node's typed error),
 * `unanswered` (no node took it), `silent` (the running node fell silent), `timeout`, `shutdown`
 * (this node), `refused` (too many waiting, too large, or not forwardable).
 */
export type CallOutcome = 'answered' | 'error' | 'unanswered' | 'silent' | 'timeout' | 'shutdown' | 'refused';

export const DEFAULT_LEADER_CALL_OPTIONS: LeaderCallOptions = {
  acceptMs: 5_000,
  workingEveryMs: 1_000,
  silenceMs: 3_000,
  timeoutMs: 120_000,
  maxPending: 256,
  maxServing: 64,
  retryAfterMs: 2_000,
};

type Perform = (tenant: string, name: string, call: ConnectorCall) => Promise<CallAnswer>;

interface Waiting {
  name: string;
  /** The node that took the call, once it said so. */
  runner: string | null;
  until: number;
  timer: NodeJS.Timeout;
  resolve(answer: CallAnswer): void;
  reject(err: SyncError): void;
}

/** Recently performed call ids remembered against a repeated delivery. */
const RECENT = 1024;

export class LeaderCalls {
  private readonly options: LeaderCallOptions;
  private readonly waiting = new Map<string, Waiting>();
  /** Other nodes' calls being performed here: the call, and the timer of its `working` word. */
  private readonly serving = new Map<string, { call: ConnectorCallMessage; ping: NodeJS.Timeout }>();
  private readonly recent = new Set<string>();
  private leads: ((tenant: string, name: string) => boolean) | null = null;
  private perform: Perform | null = null;
  private closed = false;

  constructor(
    private readonly bus: Bus,
    private readonly node: string,
    private readonly logger: Logger,
    options: Partial<LeaderCallOptions> = {},
  ) {
    this.options = { ...DEFAULT_LEADER_CALL_OPTIONS, ...options };
    bus.subscribe((message) => this.receive(message));
  }

  /** How this node tells the connectors it runs, and performs a call for another node. */
  serve(leads: (tenant: string, name: string) => boolean, perform: Perform): void {
    this.leads = leads;
    this.perform = perform;
  }

  /** Calls waiting for another node's answer (metrics, tests). */
  get pending(): number {
    return this.waiting.size;
  }

  /** Has the node running the connector perform the call; resolves with its answer or throws its error. */
  call(tenant: string, name: string, call: ConnectorCall): Promise<CallAnswer> {
    const { maxPending, timeoutMs, acceptMs, retryAfterMs } = this.options;
    if (this.closed) return this.refuse('shutdown', this.unavailable('this node is shutting down'));
    if (this.waiting.size >= maxPending) {
      const why = `too many calls waiting for other nodes (${maxPending}); retry`;
      return this.refuse('refused', this.unavailable(why, retryAfterMs));
    }
    const requestId = randomUUID();
    const message: ConnectorCallMessage = {
      type: 'connector_call',
      node: this.node,
      requestId,
      tenant,
      connector: name,
      timeoutMs,
      call,
    };
    // Checked as the receiver will check it: a call it would drop is refused here, at once.
    const wire = JSON.stringify(message);
    if (wire.length > MAX_CONNECTOR_CALL_CHARS) {
      return this.refuse('refused', new SyncError('PAYLOAD_TOO_LARGE', 'the call is too large to forward'));
    }
    if (!decodeBusMessage(wire)) {
      const why = 'the call cannot be forwarded to the running node';
      return this.refuse('refused', new SyncError('BAD_REQUEST', why));
    }
    return new Promise<CallAnswer>((resolve, reject) => {
      const waiting: Waiting = {
        name,
        runner: null,
        until: Date.now() + timeoutMs,
        timer: setTimeout(() => this.expire(requestId), acceptMs),
        resolve,
        reject,
      };
      this.waiting.set(requestId, waiting);
      this.bus.publish(message);
    });
  }

  private refuse(outcome: CallOutcome, err: SyncError): Promise<never> {
    this.options.outcome?.(outcome);
    return Promise.reject(err);
  }

  private unavailable(message: string, retryAfterMs = this.options.retryAfterMs): SyncError {
    return new SyncError('UNAVAILABLE', message, { retryAfterMs });
  }

  /** A waiting call's timer fired: no node took it, the one that did fell silent, or time is up. */
  private expire(requestId: string): void {
    const w = this.waiting.get(requestId);
    if (!w) return;
    this.waiting.delete(requestId);
    const { acceptMs, silenceMs, timeoutMs } = this.options;
    const outcome = w.runner === null ? 'unanswered' : Date.now() >= w.until ? 'timeout' : 'silent';
    this.options.outcome?.(outcome);
    w.reject(
      this.unavailable(
        outcome === 'unanswered'
          ? `no node running connector ${w.name} answered within ${acceptMs} ms (no node holds its lease, or it is moving to another node); retry`
          : outcome === 'timeout'
            ? `node ${w.runner} running connector ${w.name} did not answer within ${timeoutMs} ms; the call may still complete there`
            : `node ${w.runner} running connector ${w.name} stopped answering (silent for ${silenceMs} ms); another node takes it over, retry`,
      ),
    );
  }

  private receive(message: BusMessage): void {
    if (message.type === 'connector_call') this.take(message);
    else if (message.type === 'connector_answer' && message.to === this.node) this.answered(message);
  }

  private answered(message: ConnectorAnswerMessage): void {
    const w = this.waiting.get(message.requestId);
    // Once a node took the call, another's word for it (a lease moving meanwhile) is ignored.
    if (!w || (w.runner !== null && w.runner !== message.node)) return;
    w.runner = message.node;
    clearTimeout(w.timer);
    if (message.phase === 'working') {
      const left = w.until - Date.now();
      w.timer = setTimeout(
        () => this.expire(message.requestId),
        Math.max(0, Math.min(this.options.silenceMs, left)),
      );
      return;
    }
    this.waiting.delete(message.requestId);
    this.options.outcome?.(message.error || message.status === undefined ? 'error' : 'answered');
    if (message.error) {
      const { code, message: text, details } = message.error;
      w.reject(new SyncError(code, text, details));
    } else if (message.status === undefined) {
      w.reject(new SyncError('INTERNAL', `node ${message.node} answered without a status`));
    } else {
      w.resolve({ status: message.status, body: message.body ?? null });
    }
  }

  /** Another node's call: performed here when this node runs the connector. */
  private take(message: ConnectorCallMessage): void {
    const { requestId, tenant, connector } = message;
    if (this.closed || !this.leads || !this.perform || !this.leads(tenant, connector)) return;
    if (this.serving.has(requestId) || this.recent.has(requestId)) return;
    this.recent.add(requestId);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.values().next().value!);
    const answer = (fields: Pick<ConnectorAnswerMessage, 'phase' | 'status' | 'body' | 'error'>) =>
      this.answer(message, fields);
    if (this.serving.size >= this.options.maxServing) {
      const why = `node ${this.node} is performing too many calls of other nodes; retry`;
      answer({ phase: 'done', error: toPublicError(this.unavailable(why)) });
      return;
    }
    answer({ phase: 'working' });
    const started = Date.now();
    const ping = setInterval(() => {
      // The caller has given up: no more word for it.
      if (Date.now() - started > message.timeoutMs) clearInterval(ping);
      else answer({ phase: 'working' });
    }, this.options.workingEveryMs);
    ping.unref();
    this.serving.set(requestId, { call: message, ping });
    this.perform(tenant, connector, message.call)
      .then(
        ({ status, body }) => answer({ phase: 'done', status, body }),
        (err: unknown) => {
          if (!(err instanceof SyncError)) {
            this.logger.error({ err, connector, node: message.node }, 'forwarded connector call failed');
          }
          answer({ phase: 'done', error: toPublicError(err) });
        },
      )
      .finally(() => {
        clearInterval(ping);
        this.serving.delete(requestId);
      });
  }

  private answer(
    call: ConnectorCallMessage,
    fields: Pick<ConnectorAnswerMessage, 'phase' | 'status' | 'body' | 'error'>,
  ): void {
    if (this.closed) return;
    let message: ConnectorAnswerMessage = {
      type: 'connector_answer',
      node: this.node,
      requestId: call.requestId,
      to: call.node,
      ...fields,
    };
    const wire = JSON.stringify(message);
    if (wire.length > MAX_CONNECTOR_CALL_CHARS || !decodeBusMessage(wire)) {
      const why =
        wire.length > MAX_CONNECTOR_CALL_CHARS
          ? `the answer is too large to forward; ask node ${this.node}, which runs connector ${call.connector}`
          : `node ${this.node} could not forward its answer`;
      const code = wire.length > MAX_CONNECTOR_CALL_CHARS ? 'PAYLOAD_TOO_LARGE' : 'INTERNAL';
      message = { ...message, status: undefined, body: undefined, error: { code, message: why } };
    }
    this.bus.publish(message);
  }

  /** Answers every waiting call UNAVAILABLE and stops performing (and answering) other nodes' calls. */
  close(): void {
    if (this.closed) return;
    // The callers hear it now rather than after a silence (the call may still complete here).
    for (const { call, ping } of this.serving.values()) {
      clearInterval(ping);
      const why = `node ${this.node} running connector ${call.connector} is shutting down; another node takes it over, retry`;
      this.answer(call, { phase: 'done', error: toPublicError(this.unavailable(why)) });
    }
    this.serving.clear();
    this.closed = true;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) {
      clearTimeout(w.timer);
      this.options.outcome?.('shutdown');
      w.reject(this.unavailable('this node is shutting down; retry (another node answers)'));
    }
  }
}
