// Queue throughput (issue #23): videos/s for extract and questions/s for eval with 1 and 2 worker processes (each
// one onnxruntime thread, so two workers use two cores), the queue's overhead per job against the job's own time,
// and a projection to N machines from the measured per-job costs and Redis round trips. Prints; asserts nothing.
// Usage: pnpm --filter @bvllm/queue bench   or   node bench/throughput.mjs [videos=128] [modelDir]   (built dist)
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelDir } from '@bvllm/bvllm-tiny';
import { generateBenchmark } from '@bvllm/synth';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_NAMES, QueueClient, startLocalRedis } from '../dist/index.js';

const VIDEOS = Number(process.argv[2] ?? 128);
const modelDir = process.argv[3] ?? defaultModelDir();
const TARGET_SPEEDUP = 1.7;
const TARGET_OVERHEAD_MS = 5;
/** An assumed LAN round trip to a Redis on another host, for the projection (loopback is measured). */
const LAN_RTT_MS = 0.3;
const workerScript = fileURLToPath(new URL('./worker.mjs', import.meta.url));
const scratch = (name) => mkdtempSync(join(tmpdir(), `bvllm-qbench-${name}-`));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const f = (x, digits = 2) => x.toFixed(digits);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

console.log(`queue throughput: ${cpus()[0]?.model ?? 'cpu'} × ${availableParallelism()}, node ${process.version}, loadavg at start ${load()}`);
const dir = scratch('data');
await generateBenchmark({ outDir: dir, seed: 23, counts: { train: 0, val: 0, test: VIDEOS }, minDurationSec: 3, maxDurationSec: 5 });
const split = join(dir, 'test.json');
const entries = JSON.parse(readFileSync(split, 'utf8'));
const videos = [...new Set(entries.map((e) => join(dir, e.video)))];
const questions = entries.length;
// A separate small split warms each worker (first inference of every onnx session is slower) outside the timings.
const warmDir = scratch('warm');
await generateBenchmark({ outDir: warmDir, seed: 24, counts: { train: 0, val: 0, test: 4 }, minDurationSec: 3, maxDurationSec: 5 });
console.log(`${videos.length} synthetic videos of 3–5 s at 1 fps, ${questions} questions; model ${modelDir}`);

const redis = await startLocalRedis();
const admin = new Redis(redis.url);

/**
 * Redis's process CPU seconds (user + sys: commands, Lua, I/O, and its timers when idle) and the commands it has
 * executed (those inside MULTI and Lua scripts included) so far.
 */
async function redisCounters() {
  const info = await admin.info();
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)[1]);
  return { cpuS: field('used_cpu_user') + field('used_cpu_sys'), commands: field('total_commands_processed') };
}

/** Redis's CPU seconds a second while `seconds` pass with nothing enqueued (idle workers still poll). */
async function idleRedisCpu(seconds) {
  const before = (await redisCounters()).cpuS;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return ((await redisCounters()).cpuS - before) / seconds;
}

/** W worker processes on `prefix`; each job's processor time lands in `times` by `queue:id`. */
async function startWorkers(prefix, n, times) {
  return Promise.all(
    Array.from({ length: n }, () => {
      const proc = spawn(process.execPath, [workerScript, redis.url, prefix, '1', modelDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buffer = '';
      return new Promise((ready, fail) => {
        proc.stdout.on('data', (chunk) => {
          buffer += chunk.toString();
          const lines = buffer.split('\n');
          buffer = lines.pop();
          for (const line of lines) {
            if (line === 'ready') ready(proc);
            else if (line.startsWith('{')) {
              const job = JSON.parse(line);
              times.set(`${job.queue}:${job.id}`, job.ms);
            }
          }
        });
        proc.once('exit', (code) => fail(new Error(`bench worker exited with ${code}`)));
      });
    }),
  );
}

/** CPU seconds the worker processes have used so far, their finished children (ffmpeg) included. */
function workerCpuS(procs) {
  return procs.reduce((sum, p) => {
    const fields = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime, stime, cutime, cstime: fields 14–17 of stat(5), here 11–14 after the name; 100 ticks a second.
    return sum + fields.slice(11, 15).reduce((s, x) => s + Number(x), 0) / 100;
  }, 0);
}

const stopWorkers = (procs) => Promise.all(procs.map((p) => new Promise((done) => (p.once('exit', done), p.kill('SIGTERM')))));

/**
 * One run from enqueue to report: its jobs' BullMQ records (timestamp, processedOn, finishedOn) with each job's own
 * processor time, the wall time to the last job of `kind`, and Redis's commands and CPU during it, less the
 * client's polls (measured as one poll's commands times the polls made).
 */
async function measureRun(client, prefix, procs, times, kind, enqueue) {
  const queues = Object.values(QUEUE_NAMES).map((name) => new Queue(name, { connection: client.connection.bullmq, prefix }));
  const before = await redisCounters();
  const cpu0 = workerCpuS(procs);
  const t0 = Date.now();
  const runId = await enqueue();
  let polls = 0;
  const result = await client.wait(runId, { intervalMs: 1000, onStatus: () => polls++ });
  const workerCpu = workerCpuS(procs) - cpu0;
  const after = await redisCounters();
  const probe = (await redisCounters()).commands;
  await client.status(runId);
  const perPoll = (await redisCounters()).commands - probe - 1; // less the INFO itself
  const records = (await Promise.all(queues.map((q) => q.getJobs(['completed'], 0, -1)))).flat().filter((j) => j.data.runId === runId);
  await Promise.all(queues.map((q) => q.close()));
  const jobs = records.map((j) => ({ queue: j.queueName, processedOn: j.processedOn, finishedOn: j.finishedOn, timestamp: j.timestamp, ms: times.get(`${j.queueName}:${j.id}`) }));
  const counted = jobs.filter((j) => j.queue === kind);
  const wallS = (Math.max(...counted.map((j) => j.finishedOn)) - t0) / 1000;
  const commands = after.commands - before.commands - 1 - polls * perPoll;
  const runS = (Date.now() - t0) / 1000;
  // Cores the workers kept busy until the last job of `kind` ended (idle after it): about 1 a worker when the
  // machine has them to give.
  return { result, jobs, counted, wallS, commands, redisCpuS: after.cpuS - before.cpuS, runS, cores: workerCpu / wallS };
}

/**
 * Queue overhead per job on one serial worker: everything between the first job's start and the last one's end
 * that is not the processors' own time (fetching the next job, its lock, the progress marks, the completion write),
 * per job; and its in-worker part (finishedOn − processedOn − processor time).
 */
function overheadOf(jobs) {
  const sorted = [...jobs].sort((a, b) => a.processedOn - b.processedOn);
  const span = sorted.at(-1).finishedOn - sorted[0].processedOn;
  const own = sorted.reduce((s, j) => s + j.ms, 0);
  return {
    perJobMs: (span - own) / sorted.length,
    inWorkerMs: mean(sorted.map((j) => j.finishedOn - j.processedOn - j.ms)),
    ownMs: own / sorted.length,
  };
}

const runs = {};
for (const n of [1, 2]) {
  const prefix = `bench${n}`;
  const times = new Map();
  const procs = await startWorkers(prefix, n, times);
  const client = await QueueClient.connect(redis.url, { prefix });
  await client.wait(await client.enqueueEval({ annotationsPath: join(warmDir, 'test.json'), modelDir, cacheDir: scratch('warmcache') }), { intervalMs: 100 });
  const idleCpu = await idleRedisCpu(2);
  const cacheDir = scratch('cache');
  console.log(`\n${n} worker process${n > 1 ? 'es' : ''} (onnxruntime threads 1 each), loadavg ${load()}`);
  const extract = await measureRun(client, prefix, procs, times, QUEUE_NAMES.extract, () => client.enqueueExtract({ videos, modelDir, cacheDir }));
  if (extract.result.stats.encoded !== videos.length) throw new Error(`extract encoded ${extract.result.stats.encoded} of ${videos.length}`);
  console.log(`  extract: ${videos.length} videos in ${f(extract.wallS)} s = ${f(videos.length / extract.wallS)} videos/s; job own time ${f(mean(extract.counted.map((j) => j.ms)), 0)} ms mean; workers busy ${f(extract.cores)} cores`);
  // Eval over the filled cache: its extract children are cache hits, so this is the questions' own throughput.
  const evalRun = await measureRun(client, prefix, procs, times, QUEUE_NAMES.eval, () => client.enqueueEval({ annotationsPath: split, modelDir, cacheDir }));
  if (evalRun.result.stats.answered !== questions) throw new Error(`eval answered ${evalRun.result.stats.answered} of ${questions}`);
  console.log(`  eval:    ${questions} questions in ${f(evalRun.wallS)} s = ${f(questions / evalRun.wallS)} questions/s; job own time ${f(mean(evalRun.counted.map((j) => j.ms)), 0)} ms mean (${f(questions / videos.length, 1)} questions a job); workers busy ${f(evalRun.cores)} cores`);
  // A re-run of extract finds every video in the cache: near-trivial jobs, so what is left is the queue's cost.
  const trivial = await measureRun(client, prefix, procs, times, QUEUE_NAMES.extract, () => client.enqueueExtract({ videos, modelDir, cacheDir }));
  runs[n] = { extract, evalRun, trivial, idleCpu };
  await client.close();
  await stopWorkers(procs);
}

const rate = (run, items) => items / run.wallS;
console.log('\nscaling, 2 workers against 1 (target ≥ 1.7×):');
for (const [name, key, items] of [
  ['extract videos/s', 'extract', videos.length],
  ['eval questions/s', 'evalRun', questions],
]) {
  const speedup = rate(runs[2][key], items) / rate(runs[1][key], items);
  // Per core the workers actually got: on a machine others load, W workers get less than W cores, and this says
  // what the queue itself costs the second worker (1.00: nothing; W × it is the speedup given W free cores).
  const perCore = (n) => rate(runs[n][key], items) / runs[n][key].cores;
  const efficiency = perCore(2) / perCore(1);
  console.log(`  ${name.padEnd(18)} ${f(rate(runs[1][key], items))} → ${f(rate(runs[2][key], items))}: ${f(speedup)}× (${f(speedup / TARGET_SPEEDUP)} of the target) on ${f(runs[1][key].cores)} → ${f(runs[2][key].cores)} busy cores`);
  console.log(`  ${''.padEnd(18)} per busy core ${f(perCore(1))} → ${f(perCore(2))}: efficiency ${f(efficiency)}, projecting ${f(2 * efficiency)}× given two free cores (${f((2 * efficiency) / TARGET_SPEEDUP)} of the target)`);
}

console.log('\nqueue overhead per job, one worker, jobs back to back (target ≤ 5 ms):');
const overheads = {};
for (const [name, run] of [
  ['extract (encodes)', runs[1].extract.counted],
  ['extract (cache hit)', runs[1].trivial.counted],
]) {
  const o = overheadOf(run);
  overheads[name] = o;
  console.log(`  ${name.padEnd(20)} ${f(o.perJobMs)} ms a job (${f(o.perJobMs / TARGET_OVERHEAD_MS)} of the target; ${f(o.inWorkerMs)} ms of it inside the job's record) against ${f(o.ownMs, 1)} ms of its own = ${f((100 * o.perJobMs) / o.ownMs, 1)}%`);
}
const evalJobs = runs[1].evalRun.counted;
const evalInWorker = mean(evalJobs.map((j) => j.finishedOn - j.processedOn - j.ms));
console.log(`  eval, inside the job's record: ${f(evalInWorker)} ms a job (${f(evalInWorker / TARGET_OVERHEAD_MS)} of the target) against ${f(mean(evalJobs.map((j) => j.ms)), 1)} ms of its own`);

// Redis's side. Round trips per job, counted by MONITOR in a run of its own (MONITOR slows Redis, so not during
// the timed runs): every command a client sent, a MULTI…EXEC block as one (ioredis writes it at once), commands
// run inside Lua scripts not at all; the client's polls left out. An upper bound: pipelined commands share a trip.
async function countRoundTrips() {
  const prefix = 'bench-count';
  // Before any traffic: ioredis mistakes a command echoed before MONITOR's OK for a reply.
  const monitor = await admin.monitor(); // a connection of its own
  const procs = await startWorkers(prefix, 1, new Map());
  const client = await QueueClient.connect(redis.url, { prefix });
  const inMulti = new Set();
  let trips = 0;
  monitor.on('monitor', (_, args, source) => {
    if (source === 'lua') return;
    const command = String(args[0]).toLowerCase();
    if (inMulti.has(source)) {
      if (command === 'exec' || command === 'discard') inMulti.delete(source);
      return;
    }
    if (command === 'multi') inMulti.add(source);
    trips++;
  });
  const cacheDir = scratch('countcache');
  const counts = {};
  for (const [kind, enqueue, jobs] of [
    ['extract', () => client.enqueueExtract({ videos, modelDir, cacheDir }), videos.length + 1],
    ['eval', () => client.enqueueEval({ annotationsPath: split, modelDir, cacheDir }), 2 * videos.length + 1],
  ]) {
    const start = trips;
    let polls = 0;
    const runId = await enqueue();
    await client.wait(runId, { intervalMs: 1000, onStatus: () => polls++ });
    const afterRun = trips;
    await client.status(runId);
    const perPoll = trips - afterRun;
    counts[kind] = (afterRun - start - polls * perPoll) / jobs;
  }
  monitor.disconnect();
  await client.close();
  await stopWorkers(procs);
  return counts;
}
const trips = await countRoundTrips();
const all = [runs[1].extract, runs[1].evalRun, runs[1].trivial];
const childJobs = all.reduce((s, r) => s + r.jobs.length, 0);
const commandsPerJob = all.reduce((s, r) => s + r.commands, 0) / childJobs;
// Less what the same Redis burns idle with the worker connected over as long.
const redisUsPerJob = (1e6 * all.reduce((s, r) => s + r.redisCpuS - runs[1].idleCpu * r.runS, 0)) / childJobs;
const t0 = performance.now();
for (let i = 0; i < 2000; i++) await admin.ping();
const loopbackMs = (performance.now() - t0) / 2000;
console.log(`\nRedis per job (one worker; an eval run's jobs are its videos' extract and eval jobs, and the report):`);
console.log(`  round trips ≤ ${f(trips.extract, 1)} (extract run), ≤ ${f(trips.eval, 1)} (eval run); ${f(commandsPerJob, 1)} commands executed, Lua scripts' included`);
console.log(`  Redis CPU ${f(redisUsPerJob, 0)} µs (the whole process, less its idle rate of ${f(runs[1].idleCpu * 1000, 1)} ms/s with the worker connected)`);
console.log(`  loopback round trip ${f(loopbackMs, 3)} ms (PING, back to back)`);

// The projection: N quiet machines of 2 cores like this one, each 2 workers of 1 thread getting a core each (the
// rate per busy core measured with 2 workers, so another agents' load here does not enter), one Redis on its own
// host. A job
// grows by its round trips times the extra LAN latency (all taken as serial: the worst case); machines add up
// until Redis, single-threaded, is busy all the time at the CPU per job measured here.
console.log(`\nprojection to N quiet 2-core machines (2 workers each, a core each), one Redis on a LAN at an assumed ${LAN_RTT_MS} ms round trip:`);
const extraMs = (perJob) => perJob * Math.max(0, LAN_RTT_MS - loopbackMs);
const cap = 1e6 / redisUsPerJob;
/** Items/s of `machines`: 2 cores at the 2-worker rate per busy core, slowed by LAN round trips, up to Redis's. */
const project = (run, items, jobsPerItem, perJobTrips) => (machines) => {
  const ownMs = (mean(run.counted.map((j) => j.ms)) * run.cores) / 2; // at a full core per worker
  const perMachine = ((2 * items) / run.wallS / run.cores) * (ownMs / (ownMs + extraMs(perJobTrips)));
  return Math.min(machines * perMachine, cap / jobsPerItem);
};
const ex = project(runs[2].extract, videos.length, 1, trips.extract);
const qs = project(runs[2].evalRun, questions, (2 * videos.length) / questions, trips.eval);
console.log(`  each job +${f(extraMs(trips.extract))} ms (extract) / +${f(extraMs(trips.eval))} ms (eval) of LAN round trips; Redis saturates at ${f(cap, 0)} jobs/s`);
console.log('  machines   extract videos/s   eval questions/s');
for (const machines of [1, 2, 4, 8, 16, 64, 256, 1024]) console.log(`  ${String(machines).padStart(8)}   ${f(ex(machines)).padStart(16)}   ${f(qs(machines)).padStart(16)}`);
console.log("  (not modelled: the shared filesystem, where each extract job writes and each eval job reads one video's features)");
console.log(`\nloadavg at end ${load()}`);

admin.disconnect();
await redis.stop();
