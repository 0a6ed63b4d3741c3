// A minimal valid byte-level BPE vocabulary of any size, for the peers' model files (GGUF and transformers.js'
// tokenizer.json): the bench passes token ids directly, but both runtimes load a vocabulary with the model and
// llama.cpp decodes every token's text at load (each character must be one of GPT-2's 256 byte characters).
//   ids 0–255      the 256 bytes, as GPT-2's `bytes_to_unicode` characters
//   then           two-byte tokens `ab` (merge "a b"), then three-byte tokens `ab` + `c` (merge "ab c"), in order
//   last three     <|endoftext|>, <|im_start|>, <|im_end|> (control tokens; EOS is <|im_end|>)

/** GPT-2's byte → printable character table (`bytes_to_unicode` in openai/gpt-2 encoder.py). */
export function byteChars() {
  const printable = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars = new Array(256);
  for (const b of printable) chars[b] = String.fromCodePoint(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) if (chars[b] === undefined) chars[b] = String.fromCodePoint(256 + extra++);
  return chars;
}

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/**
 * `{ tokens, merges, specialIds, eosId, padId }` for a vocabulary of exactly `size` tokens (size ≥ 259).
 * `tokens[id]` is the token's text; `merges` are "left right" strings in rank order, each producing a token.
 */
export function byteLevelVocab(size) {
  const regular = size - SPECIAL_TOKENS.length;
  if (regular < 256) throw new Error(`vocabulary of ${size}: needs at least ${256 + SPECIAL_TOKENS.length} tokens`);
  if (regular > 256 + 256 ** 2 + 256 ** 3) throw new Error(`vocabulary of ${size}: too large for three-byte tokens`);
  const chars = byteChars();
  const tokens = [...chars];
  const merges = [];
  const pairs = [];
  outer: for (let a = 0; a < 256; a++)
    for (let b = 0; b < 256; b++) {
      if (tokens.length === regular) break outer;
      const pair = chars[a] + chars[b];
      tokens.push(pair);
      pairs.push(pair);
      merges.push(`${chars[a]} ${chars[b]}`);
    }
  outer: for (const pair of pairs)
    for (let c = 0; c < 256; c++) {
      if (tokens.length === regular) break outer;
      tokens.push(pair + chars[c]);
      merges.push(`${pair} ${chars[c]}`);
    }
  const specialIds = SPECIAL_TOKENS.map((t, i) => {
    tokens.push(t);
    return regular + i;
  });
  return { tokens, merges, specialIds, eosId: specialIds[2], padId: specialIds[0] };
}
