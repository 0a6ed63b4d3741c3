/** Starts Debian's redis-server on a free loopback port for the tests (`inject('redisUrl')`), and stops it after. */
import type { TestProject } from 'vitest/node';
import { startLocalRedis } from '../src/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startLocalRedis();
  project.provide('redisUrl', redis.url);
  return () => redis.stop();
}
