/**
 * Transport fallback: a link that tries its transports in order (by default the WebSocket, then
 * server-sent events) until one is welcomed, and keeps that one for the rest of the session. It moves
 * on when an attempt at every URL failed before its welcome (an upgrade a proxy refused, a connection
 * reset), or one has not been welcomed within `fallbackTimeoutMs` (a proxy holding the upgrade);
 * after a round of every transport failing it waits the backoff before the next round. The application sees one link: its
 * state, and every `status` naming the transport in use.
 */
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import { type StatusChange, StatusReason, type Transport } from './codes.ts';
import { TypedEventEmitter } from './emitter.ts';
import type { ClientLink, LinkEvents, LinkOptions } from './link.ts';

const DEFAULT_FALLBACK_MS = 5_000;
/** Connection epochs of successive inner links never collide: each link's epochs are offset by this. */
const EPOCH_STRIDE = 1_000_000;

export class FallbackLink implements ClientLink {
  readonly events = new TypedEventEmitter<LinkEvents>();
  private index = 0;
  private switches = 0;
  private rounds = 0;
  private active: ClientLink;
  /** A transport was welcomed in this session: it is kept. */
  private settled = false;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  private waitTimer: ReturnType<typeof setTimeout> | null = null;
  private detach: (() => void) | null = null;
  /** Failed attempts of the current transport in a row; it is given up after one per URL. */
  private failuresHere = 0;

  constructor(
    private readonly options: LinkOptions,
    private readonly transports: Transport[],
    private readonly make: (transport: Transport, options: LinkOptions) => ClientLink,
  ) {
    this.active = this.attach(make(transports[0]!, options));
  }

  get transport(): Transport {
    return this.transports[this.index]!;
  }

  get state() {
    return this.active.state;
  }

  get authenticated(): boolean {
    return this.active.authenticated;
  }

  get connectionEpoch(): number {
    return this.switches * EPOCH_STRIDE + this.active.connectionEpoch;
  }

  get currentToken(): string | null {
    return this.active.currentToken;
  }

  connect(): void {
    if (this.waitTimer) {
      clearTimeout(this.waitTimer);
      this.waitTimer = null;
    }
    this.active.connect();
  }

  disconnect(): void {
    this.clearTimers();
    this.active.disconnect();
  }

  async close(): Promise<void> {
    this.clearTimers();
    await this.active.close();
  }

  send(message: Parameters<ClientLink['send']>[0]): boolean {
    return this.active.send(message);
  }

  markSynced(epoch: number): void {
    this.active.markSynced(epoch - this.switches * EPOCH_STRIDE);
  }

  private attach(link: ClientLink): ClientLink {
    const offs = [
      link.events.on('status', (change) => this.statusOf(link, change)),
      link.events.on('welcome', (welcome) => this.events.emit('welcome', welcome)),
      link.events.on('message', (message) => this.events.emit('message', message)),
    ];
    this.detach = () => {
      for (const off of offs) off();
    };
    return link;
  }

  private statusOf(link: ClientLink, change: StatusChange): void {
    if (link !== this.active) return;
    this.events.emit('status', { ...change, transport: this.transport });
    if (this.settled) return;
    if (change.newState === 'syncing') {
      this.settled = true;
      this.clearTimers();
      return;
    }
    if (change.newState === 'connecting' && !this.fallbackTimer) {
      this.fallbackTimer = setTimeout(() => {
        this.fallbackTimer = null;
        if (!this.settled && this.active.state === 'connecting') this.next(StatusReason.CONNECT_TIMEOUT);
      }, this.options.fallbackTimeoutMs ?? DEFAULT_FALLBACK_MS);
    }
    const failed =
      change.reason === StatusReason.CONNECT_FAILED || change.reason === StatusReason.CONNECT_TIMEOUT;
    // Every URL gets its try on this transport (the link moves through them) before the next transport.
    if (change.newState === 'offline' && failed && ++this.failuresHere >= this.options.urls.length)
      this.next(null);
  }

  /** Gives up on the current transport for the next one (`reason`: say so, the link has not). */
  private next(reason: StatusReason | null): void {
    this.clearTimers();
    const old = this.active;
    const oldState = old.state;
    this.detach?.();
    old.disconnect();
    if (reason !== null && oldState !== 'offline') {
      this.events.emit('status', { newState: 'offline', oldState, reason, transport: this.transport });
    }
    this.index = (this.index + 1) % this.transports.length;
    this.switches += 1;
    this.failuresHere = 0;
    this.active = this.attach(this.make(this.transport, this.options));
    if (this.index !== 0) {
      this.active.connect();
      return;
    }
    // Every transport failed once more: wait as a reconnect would before the next round.
    const delay = backoffDelay(this.rounds++, this.options.backoff as BackoffOptions | undefined);
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      if (this.active.state === 'offline') this.active.connect();
    }, delay);
  }

  private clearTimers(): void {
    if (this.fallbackTimer) clearTimeout(this.fallbackTimer);
    this.fallbackTimer = null;
  }
}
