/**
 * Character-wise three-way merge of a text field, through Yjs: both sides' edits (computed as character
 * diffs from the common base) are applied as concurrent Y.Text operations and merged by the CRDT, so
 * two offline edits of one document body both survive. Deterministic: the same three inputs always
 * give the same result, on every node.
 *
 * Yjs is loaded on the first text merge (most deployments have no text fields): it is a tenth of the
 * server's start-up and memory otherwise.
 */
import { createRequire } from 'node:module';
import diff from 'fast-diff';
import type * as Yjs from 'yjs';

const load = createRequire(import.meta.url);
let yjs: typeof Yjs | undefined;
function Y(): typeof Yjs {
  yjs ??= load('yjs') as typeof Yjs;
  return yjs;
}

const BASE_CLIENT = 1;
const SERVER_CLIENT = 2;
const CLIENT_CLIENT = 3;

function docWith(clientId: number): Yjs.Doc {
  const doc = new (Y().Doc)();
  doc.clientID = clientId;
  return doc;
}

/** Applies the character diff from `from` to `to` onto a Y.Text that currently reads `from`. */
function applyDiff(text: Yjs.Text, from: string, to: string): void {
  let index = 0;
  for (const [op, chunk] of diff(from, to)) {
    if (op === diff.EQUAL) index += chunk.length;
    else if (op === diff.DELETE) text.delete(index, chunk.length);
    else {
      text.insert(index, chunk);
      index += chunk.length;
    }
  }
}

export function mergeText(base: string, server: string, client: string): string {
  if (server === client) return server;
  if (server === base) return client;
  if (client === base) return server;
  const baseDoc = docWith(BASE_CLIENT);
  baseDoc.getText('t').insert(0, base);
  const baseUpdate = Y().encodeStateAsUpdate(baseDoc);

  const side = (clientId: number, target: string): Uint8Array => {
    const doc = docWith(clientId);
    Y().applyUpdate(doc, baseUpdate);
    applyDiff(doc.getText('t'), base, target);
    return Y().encodeStateAsUpdate(doc, Y().encodeStateVector(baseDoc));
  };
  const merged = docWith(0);
  Y().applyUpdate(merged, baseUpdate);
  Y().applyUpdate(merged, side(SERVER_CLIENT, server));
  Y().applyUpdate(merged, side(CLIENT_CLIENT, client));
  return merged.getText('t').toString();
}
