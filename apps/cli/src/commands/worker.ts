import { startWorker } from '@bvllm/queue';
import type { Command } from 'commander';
import { positiveInt } from '../flags.js';
import type { CliOutput } from '../run-cli.js';

interface WorkerFlags {
  redis: string;
  concurrency: number;
  model?: string;
  threads?: number;
  lockDuration: number;
}

export function registerWorker(program: Command, output: CliOutput): void {
  program
    .command('worker')
    .description('run extract and eval jobs from Redis until SIGINT/SIGTERM (then finish the current jobs)')
    .requiredOption('--redis <url>', 'the Redis all workers and clients share, e.g. redis://queue-host:6379 (/N picks database N)')
    .option('--concurrency <n>', 'jobs run at once per queue', positiveInt, 1)
    .option('--model <dir>', "the model folder to use instead of the job's path (same model, another mount point); opened at start")
    .option('--threads <n>', 'onnxruntime threads per session (default every core; cores / workers when several share a machine)', positiveInt)
    .option('--lock-duration <ms>', "a job's lock; a dead worker's job is retried elsewhere about this long after", positiveInt, 30_000)
    .action(async (flags: WorkerFlags) => {
      const worker = await startWorker(flags.redis, {
        concurrency: flags.concurrency,
        modelDir: flags.model,
        threads: flags.threads,
        lockDurationMs: flags.lockDuration,
        onJob: (queue, job, event, { ms, error }) => output.err(`${queue} ${job.id} ${event} in ${Math.round(ms)} ms${error ? `: ${error.message.replace(/\s*\n\s*/g, ' ')}` : ''}\n`),
      });
      output.err(`bvllm: worker ready (concurrency ${flags.concurrency})\n`);
      await new Promise<void>((stop) => {
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await worker.close();
    });
}
