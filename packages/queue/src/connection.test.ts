import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { QueueClient } from './client.js';
import { connectQueue, closeQueueConnection } from './connection.js';
import { startWorker } from './worker.js';
import { inject } from 'vitest';

/** A loopback port with nothing listening on it. */
const closedPort = () =>
  new Promise<number>((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });

describe('Redis at start', () => {
  it('a Redis that is down fails the client and the worker with REDIS_UNAVAILABLE naming the URL', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    for (const start of [() => QueueClient.connect(url), () => startWorker(url)]) {
      const error = await start().then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string; url: string },
      );
      expect(error?.code).toBe('REDIS_UNAVAILABLE');
      expect(error?.url).toBe(url);
      expect(error?.message).toContain(url);
    }
  });

  it('names the URL without its password', async () => {
    const url = `redis://user:hunter2@127.0.0.1:${await closedPort()}`;
    const error = (await QueueClient.connect(url).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('redis://user:***@127.0.0.1');
    expect(error.message).not.toContain('hunter2');
  });

  it('connects to the running one', async () => {
    const connection = await connectQueue(inject('redisUrl'));
    expect(await connection.redis.ping()).toBe('PONG');
    await closeQueueConnection(connection);
  });
});
