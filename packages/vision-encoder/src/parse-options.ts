import { configErrorFrom } from '@bvllm/core';
import type { z } from 'zod';

/** Validates options at the package boundary: a typed value, or a ConfigError naming the zod path of the bad field. */
export function parseOptions<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw configErrorFrom(what, result.error);
  return result.data;
}
