/**
 * Small shared helpers of the realtime suites: a seeded PRNG (so a failing random schedule reproduces),
 * REST reads of the log and of record histories, and assertions about seq sequences.
 */
import type { LogEvent, Mutation, MutationResult } from '@syncbridge/protocol';
import { expect } from 'vitest';
import WebSocket from 'ws';

/** mulberry32: a tiny deterministic PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** 1..n (or from..to inclusive). */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k);
}

/** GET a JSON body with a bearer token; fails the test on a non-2xx status. */
export async function getJson<T = Record<string, unknown>>(url: string, token: string): Promise<T> {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function postJson<T = Record<string, unknown>>(
  url: string,
  token: string,
  body: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** The whole log of the token's tenant via GET /v1/events, page by page. */
export async function readLog(baseUrl: string, token: string): Promise<{ events: LogEvent[]; head: number }> {
  const events: LogEvent[] = [];
  let head = 0;
  for (;;) {
    const after = events.length > 0 ? events[events.length - 1]!.seq : 0;
    const page = await getJson<{ events: LogEvent[]; head: number }>(
      `${baseUrl}/v1/events?after=${after}&limit=1000`,
      token,
    );
    head = page.head;
    events.push(...page.events);
    if (page.events.length < 1000) return { events, head };
  }
}

export interface HistoryEntry {
  version: number;
  seq: number;
  op: string;
  data: Record<string, unknown> | null;
}

export async function readHistory(
  baseUrl: string,
  token: string,
  collection: string,
  id: string,
): Promise<HistoryEntry[]> {
  const body = await getJson<{ versions: HistoryEntry[] }>(
    `${baseUrl}/v1/records/${collection}/${encodeURIComponent(id)}/history?limit=1000`,
    token,
  );
  return body.versions;
}

/** Asserts that `seqs` is exactly from..to, naming the first duplicate or gap when it is not. */
export function expectContiguous(seqs: number[], from: number, to: number, what: string): void {
  const seen = new Set<number>();
  for (let i = 0; i < seqs.length; i++) {
    const s = seqs[i]!;
    if (seen.has(s)) throw new Error(`${what}: seq ${s} delivered twice (at index ${i})`);
    seen.add(s);
    if (i > 0 && s <= seqs[i - 1]!) throw new Error(`${what}: seq ${s} after ${seqs[i - 1]} (out of order)`);
    if (i > 0 && s !== seqs[i - 1]! + 1) throw new Error(`${what}: gap between ${seqs[i - 1]} and ${s}`);
  }
  expect(seqs, what).toEqual(range(from, to));
}

/** A writer pumping mutations over one connection as fast as the server answers, until it closes. */
export interface BurstWriter {
  /** Every mutation sent, in order. */
  sent: Mutation[];
  /** Every result the server sent back. */
  results: MutationResult[];
  /** Resolves with the close code once the connection has closed. */
  closed: Promise<number>;
  /** Stops sending (in-flight messages still get their results). */
  stop(): void;
}

/**
 * Opens a connection and keeps `inFlight` mutate messages outstanding, each built by `next(k)` (k counts
 * messages), until stopped or the connection closes.
 */
export async function startBurstWriter(
  wsUrl: string,
  token: string,
  next: (k: number) => Mutation[],
  inFlight = 8,
): Promise<BurstWriter> {
  const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  const writer: BurstWriter = {
    sent: [],
    results: [],
    closed: new Promise((resolve) => ws.on('close', (code) => resolve(code))),
    stop: () => {
      stopped = true;
    },
  };
  let stopped = false;
  let outstanding = 0;
  let k = 0;
  const pump = () => {
    while (!stopped && ws.readyState === WebSocket.OPEN && outstanding < inFlight) {
      const mutations = next(k++);
      writer.sent.push(...mutations);
      outstanding += 1;
      ws.send(JSON.stringify({ type: 'mutate', rid: `b${k}`, mutations }));
    }
  };
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { type: string; results?: MutationResult[] };
    if (m.type === 'results') {
      outstanding -= 1;
      writer.results.push(...m.results!);
      pump();
    } else if (m.type === 'error') {
      outstanding -= 1;
      pump();
    }
  });
  pump();
  return writer;
}
