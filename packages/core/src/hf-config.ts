import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.js';

/**
 * Reads a Hugging Face `config.json`. We don't own that format, so it is parsed leniently: only the fields a model
 * reads are checked, by the caller's zod schema (`.passthrough()`/unknown keys ignored).
 */
export function readHfConfig(dir: string, fileName = 'config.json'): Record<string, unknown> {
  const path = join(dir, fileName);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`${path}: cannot read (${(cause as Error).message})`, [], { cause });
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (cause) {
    throw new ConfigError(`${path}: not a valid config (${(cause as Error).message})`, [], { cause });
  }
}
