// A worker process as a deployment runs one, on the built package: `node worker.child.mjs URL PREFIX LOCK_MS`.
// Prints `ready` once it takes jobs; SIGTERM closes it after its current job.
import { startWorker } from '../dist/index.js';

const [url, prefix, lockMs] = process.argv.slice(2);
const worker = await startWorker(url, { prefix, lockDurationMs: Number(lockMs) });
process.stdout.write('ready\n');
process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
