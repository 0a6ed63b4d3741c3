/**
 * A throwaway `redis-server` (Debian's package) on a loopback port: for tests and for trying the queue on one
 * machine. In memory only, unless given a `dir`, where it keeps an append-only file synced on every write, so it
 * can be killed and started again on the same port and `dir` with every acknowledged write.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { RedisUnavailableError } from './errors.js';

export interface LocalRedisOptions {
  /** Default: a free port. */
  port?: number;
  /** Persist into this folder (AOF, `appendfsync always`); default in memory only. */
  dir?: string;
}

export interface LocalRedis {
  url: string;
  port: number;
  /** SIGTERM (a clean shutdown) by default; SIGKILL is a crash. Resolves when the process has exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

const freePort = () =>
  new Promise<number>((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.on('error', fail);
  });

/** Starts `redis-server` (`BVLLM_REDIS_SERVER` names another binary) and resolves once it answers PING. */
export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const url = `redis://127.0.0.1:${port}`;
  const persistence = options.dir ? ['--dir', options.dir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const child = spawn(process.env.BVLLM_REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  for (let i = 0; i < 100; i++) {
    if (spawnError) throw new RedisUnavailableError(url, `cannot start redis-server: ${spawnError.message} (apt-get install -y redis-server)`);
    if (child.exitCode !== null) throw new RedisUnavailableError(url, `redis-server exited with ${child.exitCode} at start (port taken?)`);
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    // A server still loading its AOF answers PING with LOADING: not up yet.
    const up = await probe.connect().then(() => probe.ping().then(() => true, () => false), () => false);
    probe.disconnect();
    if (up) {
      return {
        url,
        port,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new RedisUnavailableError(url, 'redis-server did not answer within 5 s');
}
