/**
 * Where a pull connector reads from. `PullProvider` is the code hook (a provider SDK wrapped in two
 * functions); `HttpPullProvider` is the configured one: GET requests built from path templates, with the
 * configured headers and a timeout, answering JSON.
 *
 * Its templates (`changesPath`, `snapshotPath`, `headers`) see the connection's id, cursor and params
 * and what `variables` gives (the `env.` and `secrets.` values its definition may read); it never reads
 * the process environment itself.
 */
import type { PullConnection, PullOptions } from './config.ts';
import { renderTemplate } from './json-path.ts';

export interface PullProvider {
  /**
   * The changes of one connection since `cursor` (null: from the beginning), as JSON holding each
   * resource's items at its path, the next cursor and whether more follow (see PullOptions).
   */
  changes(connection: PullConnection, cursor: string | null, signal: AbortSignal): Promise<unknown>;
  /** Everything the provider holds for one connection, for a full reconciliation. */
  snapshot?(connection: PullConnection, signal: AbortSignal): Promise<unknown>;
}

/** A failure of the provider itself (it counts against its circuit breaker). */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/** Template values a connector's definition may read (`env.NAME`, `secrets.NAME`), asked for per request. */
export type TemplateVariables = () => Promise<Record<string, unknown>> | Record<string, unknown>;

export class HttpPullProvider implements PullProvider {
  constructor(
    private readonly http: PullOptions['http'],
    private readonly variables: TemplateVariables = () => ({}),
  ) {}

  private async vars(connection: PullConnection, cursor: string | null): Promise<Record<string, unknown>> {
    const vars: Record<string, unknown> = {};
    try {
      Object.assign(vars, await this.variables());
    } catch (err) {
      throw new ProviderError(`could not prepare the request: ${(err as Error).message}`);
    }
    Object.assign(vars, connection.params ?? {});
    vars.connection = connection.id;
    vars.cursor = cursor === null ? '' : encodeURIComponent(cursor);
    return vars;
  }

  private async get(path: string, vars: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const url = new URL(
      String(renderTemplate(path, vars)),
      this.http.baseUrl.endsWith('/') ? this.http.baseUrl : `${this.http.baseUrl}/`,
    );
    const headers = renderTemplate(this.http.headers ?? {}, vars) as Record<string, string>;
    const timeout = AbortSignal.timeout(this.http.timeoutMs ?? 30_000);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { accept: 'application/json', ...headers },
        signal: AbortSignal.any([signal, timeout]),
        redirect: 'error',
      });
    } catch (err) {
      const e = err as Error;
      if (timeout.aborted)
        throw new ProviderError(`provider did not answer within ${this.http.timeoutMs ?? 30_000} ms`);
      throw new ProviderError(
        `provider unreachable: ${(e.cause as Error | undefined)?.message ?? e.message}`,
      );
    }
    const text = await res.text();
    if (!res.ok)
      throw new ProviderError(`provider answered HTTP ${res.status}: ${text.slice(0, 200)}`, res.status);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError('provider answered something other than JSON');
    }
  }

  async changes(connection: PullConnection, cursor: string | null, signal: AbortSignal): Promise<unknown> {
    return this.get(this.http.changesPath, await this.vars(connection, cursor), signal);
  }

  async snapshot(connection: PullConnection, signal: AbortSignal): Promise<unknown> {
    if (!this.http.snapshotPath) throw new ProviderError('no snapshotPath configured');
    return this.get(this.http.snapshotPath, await this.vars(connection, null), signal);
  }
}
