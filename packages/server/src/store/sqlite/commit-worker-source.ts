/**
 * The source of the SQLite commit thread (a worker_threads worker started with `eval`, see
 * commit-thread.ts), kept as plain JavaScript so it runs the same from the TypeScript sources, the
 * compiled tree and the bundled CLI, none of which a worker file path could serve alike.
 *
 * The thread owns one write connection to the database file. Each message is a group of commits
 * (commit-ops.ts: checks, then statements, as names and parameters, in one JSON text); the thread runs them in one
 * transaction (BEGIN IMMEDIATE ... COMMIT, so one fsync for the group), each commit's checks first: a
 * commit whose checks fail writes nothing and is answered 'moved', one whose statements fail is rolled
 * back to its savepoint and answered with the error, the others commit. It answers only after COMMIT
 * returned (durable under synchronous=FULL). A failure of the transaction itself fails the whole group.
 * It must never hold domain logic: what to write was decided by the main thread.
 */
export const COMMIT_WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.pragma(pragma);
const statements = {};
for (const [name, sql] of Object.entries(workerData.statements)) statements[name] = db.prepare(sql);
for (const name of workerData.checks) statements[name].pluck();

function errorOf(err) {
  return {
    message: err && err.message ? String(err.message) : String(err),
    code: err && typeof err.code === 'string' ? err.code : undefined,
  };
}

function passes(check) {
  const value = statements[check[1]].get(...check.slice(2));
  return (value === undefined ? null : value) === check[0];
}

function runGroup(commits) {
  const outcomes = new Array(commits.length);
  db.exec('BEGIN IMMEDIATE');
  try {
    for (let i = 0; i < commits.length; i += 1) {
      const [checks, ops] = commits[i];
      if (!checks.every(passes)) {
        outcomes[i] = 'moved';
        continue;
      }
      db.exec('SAVEPOINT one_commit');
      try {
        for (const op of ops) statements[op[0]].run(...op.slice(1));
        db.exec('RELEASE one_commit');
        outcomes[i] = 'committed';
      } catch (err) {
        db.exec('ROLLBACK TO one_commit');
        db.exec('RELEASE one_commit');
        outcomes[i] = { error: errorOf(err) };
      }
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
  return outcomes;
}

parentPort.on('message', (message) => {
  if (message.type === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    parentPort.postMessage({ id: message.id, outcomes: runGroup(JSON.parse(message.commits)) });
  } catch (err) {
    parentPort.postMessage({ id: message.id, error: errorOf(err) });
  }
});
parentPort.postMessage({ ready: true });
`;
