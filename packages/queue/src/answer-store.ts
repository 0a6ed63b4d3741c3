/**
 * Finished answers, kept in Redis under the model's hash, keyed by what determines an answer: the video's content
 * hash, the question, the seed, and the sampling and generation overrides. A re-run (or a retried job) finds them
 * and answers only what is missing. The batch size is not in the key: `generateBatch` answers as one by one.
 */
import { createHash } from 'node:crypto';
import type { EvalAnswer } from '@bvllm/pipeline';
import type { QueueConnection } from './connection.js';

/** What an answer depends on besides the model. */
export interface AnswerKeyParts {
  videoHash: string;
  question: string;
  seed: number;
  sampling?: unknown;
  generation?: unknown;
}

const canonical = (value: unknown): string =>
  JSON.stringify(value ?? null, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

export function answerKey(parts: AnswerKeyParts): string {
  return createHash('sha256').update(canonical(parts)).digest('hex');
}

export class AnswerStore {
  private readonly key: string;
  constructor(
    private readonly connection: QueueConnection,
    modelHash: string,
  ) {
    this.key = `${connection.prefix}:answers:${modelHash}`;
  }

  /** The stored answer of each key, or undefined. */
  async get(keys: readonly string[]): Promise<(EvalAnswer | undefined)[]> {
    if (!keys.length) return [];
    const values = await this.connection.redis.hmget(this.key, ...keys);
    return values.map((v) => (v === null ? undefined : (JSON.parse(v) as EvalAnswer)));
  }

  async set(entries: readonly [string, EvalAnswer][]): Promise<void> {
    if (entries.length) await this.connection.redis.hset(this.key, Object.fromEntries(entries.map(([k, a]) => [k, JSON.stringify(a)])));
  }
}
