// One benchmark worker process: `node bench/worker.mjs URL PREFIX THREADS MODEL_DIR`. Opens the model before it
// prints `ready`, and prints one JSON line per finished job with the processor's own time: {queue, id, ms}.
import { setSessionThread } from '@bvllm/pipeline';
import { startWorker } from '../dist/index.js';

// As `bvllm worker` runs it: a batch process computes on the calling thread (no worker-thread hop per call).
setSessionThread('main');

const [url, prefix, threads, modelDir] = process.argv.slice(2);
const worker = await startWorker(url, {
  prefix,
  modelDir,
  threads: Number(threads),
  onJob: (queue, job, event, { ms }) => process.stdout.write(`${JSON.stringify({ queue, id: job.id, event, ms })}\n`),
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
