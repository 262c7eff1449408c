/**
 * Load-generator side of the WebSocket: opening many connections (spread over several loopback source
 * addresses so ephemeral ports never run short), and a request/reply helper for the syncbridge protocol.
 */
import WebSocket from 'ws';

const SOURCE_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
const OPEN_TIMEOUT_MS = 15_000;

/** The loopback address connection `i` should come from. */
export function sourceAddress(i: number): string {
  return SOURCE_ADDRESSES[i % SOURCE_ADDRESSES.length]!;
}

/**
 * Opens a socket. With `welcome`, resolves only once the server's first message arrived and is a
 * `welcome` (a syncbridge connection authenticated by the token in its URL).
 */
export function openSocket(url: string, options: { localAddress?: string; welcome?: boolean } = {}) {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, {
      localAddress: options.localAddress,
      perMessageDeflate: false,
      handshakeTimeout: OPEN_TIMEOUT_MS,
    });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(
        new Error(`no ${options.welcome ? 'welcome' : 'open'} from ${url} within ${OPEN_TIMEOUT_MS} ms`),
      );
    }, OPEN_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    const done = () => {
      clearTimeout(timer);
      ws.off('error', fail);
      ws.on('error', () => undefined);
      resolve(ws);
    };
    if (!options.welcome) ws.once('open', done);
    else
      ws.once('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { type: string; message?: string };
        if (message.type === 'welcome') done();
        else fail(new Error(`expected welcome, got ${data.toString().slice(0, 200)}`));
      });
  });
}

export function syncbridgeUrl(wsUrl: string, token: string): string {
  return `${wsUrl}?token=${encodeURIComponent(token)}`;
}

/** Runs fn(0..n-1) with at most `concurrency` calls in flight; results in index order. */
export async function mapLimit<T>(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

type Reply = { type: string; rid?: number; [key: string]: unknown };

/** A syncbridge connection driven by requests: each carries a rid and resolves with the reply to it. */
export class RequestClient {
  private nextRid = 1;
  private readonly pending = new Map<number, { resolve: (m: Reply) => void; reject: (e: Error) => void }>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as Reply;
      if (message.rid === undefined) return;
      const waiter = this.pending.get(message.rid);
      if (!waiter) return;
      this.pending.delete(message.rid);
      waiter.resolve(message);
    });
    ws.on('close', () => {
      for (const w of this.pending.values()) w.reject(new Error('connection closed'));
      this.pending.clear();
    });
  }

  static async connect(wsUrl: string, token: string, localAddress?: string): Promise<RequestClient> {
    return new RequestClient(await openSocket(syncbridgeUrl(wsUrl, token), { localAddress, welcome: true }));
  }

  /** Sends a message with a fresh rid; resolves with the reply (results, ok, subscribed, error…). */
  request(message: Record<string, unknown>, timeoutMs = 30_000): Promise<Reply> {
    const rid = this.nextRid++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`no reply to ${String(message.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ ...message, rid }));
    });
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Closes sockets without a closing handshake (the server sees the TCP close). */
export function terminateAll(sockets: Iterable<WebSocket | RequestClient>): void {
  for (const s of sockets) {
    if (s instanceof RequestClient) s.close();
    else s.terminate();
  }
}
