/**
 * A throwaway `redis-server` (Debian's package) on a free loopback port, in memory only: for tests and for trying
 * the queue on one machine.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { RedisUnavailableError } from './errors.js';

export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
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
export async function startLocalRedis(): Promise<LocalRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const child = spawn(process.env.BVLLM_REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  for (let i = 0; i < 100; i++) {
    if (spawnError) throw new RedisUnavailableError(url, `cannot start redis-server: ${spawnError.message} (apt-get install -y redis-server)`);
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    const up = await probe.connect().then(() => probe.ping().then(() => true), () => false);
    probe.disconnect();
    if (up) {
      return {
        url,
        stop: async () => {
          child.kill('SIGTERM');
          await exited;
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new RedisUnavailableError(url, 'redis-server did not answer within 5 s');
}
