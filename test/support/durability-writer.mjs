// A child process for the durability and replica tests: a bounded burst of transactional writes
// against the BUILT store (dist/, made by `npm run build`), each acknowledged on stdout only after
// its commit returned.
//
//   node test/support/durability-writer.mjs DATABASE_URL WRITER_ID TRANSACTIONS CONCURRENCY
//
// Each transaction: read the counter note, compare-and-set it to count+1, create an occurrence
// that records the count it produced, and append an audit record for it. Conflicting writers
// retry. Prints `ready`, then `ack <id>` per commit, then `done`; stops by itself after
// TRANSACTIONS commits or 60 seconds, whichever comes first.
import process from 'node:process';
import { openStore } from '../../dist/server/store/sql-store.js';
import { StoreAlreadyExists, StoreVersionConflict } from '../../dist/server/store/store.js';

const [url, writer, transactionsArg, concurrencyArg] = process.argv.slice(2);
if (url === undefined || writer === undefined) {
  process.stderr.write('usage: durability-writer.mjs DATABASE_URL WRITER_ID [TRANSACTIONS] [CONCURRENCY]\n');
  process.exit(2);
}
const transactions = Number(transactionsArg ?? '100000');
const concurrency = Number(concurrencyArg ?? '1');
const deadline = Date.now() + 60_000;

const PROJECT = 'projects/durability';
const COUNTER = `${PROJECT}/notes/counter`;

// Writes to a pipe are synchronous on Linux: once write() returns the parent can read the line.
const say = (line) => process.stdout.write(`${line}\n`);

const store = await openStore(url);
try {
  await store.create({ kind: 'note', name: COUNTER, parent: PROJECT, body: { count: 0 } });
} catch (err) {
  if (!(err instanceof StoreAlreadyExists)) throw err;
}
say('ready');

let next = 0;
let conflicts = 0;

async function worker() {
  for (;;) {
    if (next >= transactions || Date.now() > deadline) return;
    const id = `${writer}-${next++}`;
    for (let attempt = 0; ; attempt++) {
      try {
        await store.transaction(async (tx) => {
          const counter = await tx.get('note', COUNTER);
          if (counter === undefined) throw new Error('counter missing');
          const count = counter.body.count + 1;
          await tx.update('note', COUNTER, { body: { count, last: id }, expectVersion: counter.version });
          await tx.create({
            kind: 'occurrence',
            name: `${PROJECT}/occurrences/${id}`,
            parent: PROJECT,
            k1: COUNTER,
            k2: writer,
            body: { id, count, padding: 'p'.repeat(512) },
          });
          await tx.appendAudit([{ time: new Date().toISOString(), project: PROJECT, logId: 'durability', entry: { id, count } }]);
        });
        say(`ack ${id}`);
        break;
      } catch (err) {
        if (!(err instanceof StoreVersionConflict) || attempt > 10_000) throw err;
        conflicts++;
      }
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, () => worker()));
await store.close();
say(`done ${next} conflicts ${conflicts}`);
