// Memory bandwidth as a large buffer copy: `threads` workers each copy their own 256 MiB buffer (TypedArray.set,
// a memcpy) at the same moment; bytes read plus bytes written over the wall time, best of `trials`. Decode reads
// every weight once per token, so weight bytes per token ÷ this rate bounds decode tokens/s from above.
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const src = new Uint8Array(workerData.bytes).fill(1);
const dst = new Uint8Array(workerData.bytes);
dst.set(src);
parentPort.on('message', (msg) => {
  if (msg === 'stop') return process.exit(0);
  for (let r = 0; r < workerData.reps; r++) dst.set(src);
  parentPort.postMessage('done');
});
parentPort.postMessage('ready');
`;

/** Copy bandwidth in GB/s (10^9 bytes, read + write) with `threads` threads. */
export async function copyBandwidth({ threads = 2, bytes = 256 * 2 ** 20, reps = 4, trials = 3 } = {}) {
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { bytes, reps } }));
  const next = (w) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await Promise.all(workers.map(next));
  let best = 0;
  for (let t = 0; t < trials; t++) {
    const start = performance.now();
    const done = Promise.all(workers.map(next));
    for (const w of workers) w.postMessage('go');
    await done;
    best = Math.max(best, (2 * bytes * reps * threads) / ((performance.now() - start) / 1000) / 1e9);
  }
  await Promise.all(workers.map((w) => (w.postMessage('stop'), new Promise((resolve) => w.once('exit', resolve)))));
  return best;
}
