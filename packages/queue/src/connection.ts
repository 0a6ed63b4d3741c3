/**
 * One Redis deployment as the queue uses it: the URL (BullMQ opens its own connections from it), the key prefix, and
 * one ioredis client for the queue's own keys (answers, run progress).
 */
import { Redis } from 'ioredis';
import { RedisUnavailableError } from './errors.js';

export interface ConnectOptions {
  /** Redis key prefix of the queues and the queue's own keys; deployments sharing one Redis use different ones. */
  prefix?: string;
  /** How long the first connection may take before Redis counts as unavailable. Default 5000 ms. */
  connectTimeoutMs?: number;
}

export interface QueueConnection {
  readonly url: string;
  readonly prefix: string;
  /** For the queue's own keys; reconnects by itself after Redis comes back. */
  readonly redis: Redis;
  /** BullMQ's connection options: the URL, with `maxRetriesPerRequest: null` as its workers require. */
  readonly bullmq: { url: string; maxRetriesPerRequest: null };
}

/**
 * Connects and checks that Redis answers, so a Redis that is down or unreachable fails here, once, with the URL
 * named, instead of as BullMQ's endless reconnection attempts. Later outages are ridden out by reconnecting.
 */
export async function connectQueue(url: string, options: ConnectOptions = {}): Promise<QueueConnection> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: options.connectTimeoutMs ?? 5000, enableOfflineQueue: false });
  probe.on('error', () => undefined); // reported through connect() below, not as an unhandled event
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    probe.disconnect();
    throw new RedisUnavailableError(url, (error as Error).message || String(error), { cause: error });
  }
  probe.disconnect();
  // Commands wait through a reconnect instead of failing, so no write of a finished result is lost to an outage.
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // ioredis logs and retries; the next command waits for the reconnect
  return { url, prefix: options.prefix ?? 'bvllm', redis, bullmq: { url, maxRetriesPerRequest: null } };
}

/** Closes the connection's own client (BullMQ's are closed with their queues and workers). */
export async function closeQueueConnection(connection: QueueConnection): Promise<void> {
  await connection.redis.quit().catch(() => connection.redis.disconnect());
}
