import { JobFailedError, QueueClient } from '@bvllm/queue';
import type { Command } from 'commander';
import { printRunResult, statusLine } from '../queue-commands.js';
import type { CliOutput } from '../run-cli.js';

export function registerJobs(program: Command, output: CliOutput): void {
  const jobs = program.command('jobs').description('runs enqueued with --redis');
  jobs
    .command('status')
    .description("a run's progress; once finished, its result as extract or eval prints it")
    .argument('<id>', 'the run id that --detach printed')
    .requiredOption('--redis <url>', 'the Redis the run was enqueued on')
    .option('--out <dir>', 'write the JSON and Markdown reports of a finished eval here')
    .action(async (id: string, flags: { redis: string; out?: string }) => {
      const client = await QueueClient.connect(flags.redis);
      try {
        const status = await client.status(id);
        output.out(`${statusLine(status)}\n`);
        if (status.result) printRunResult(status.result, flags.out, output);
        if (status.state === 'failed') throw new JobFailedError(id, status.failedReason ?? 'unknown');
      } finally {
        await client.close();
      }
    });
}
