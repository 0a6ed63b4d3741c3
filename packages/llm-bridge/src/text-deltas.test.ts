import { describe, expect, it } from 'vitest';
import { StopStringMatcher, TextDeltaDecoder } from './text-deltas.js';
import { qwenTokenizer } from './test-tokenizer.js';

describe('TextDeltaDecoder', () => {
  const tok = qwenTokenizer();
  it('never splits a UTF-8 character across byte-level pieces (emoji, CJK)', () => {
    const text = 'Hi 🫠 龘鬱 🧑‍🚀 ok';
    const ids = tok.encode(text);
    // The text really does contain pieces that end mid-character.
    expect(ids.some((_, i) => tok.decode(ids.slice(0, i + 1)).endsWith('\uFFFD'))).toBe(true);
    const decoder = new TextDeltaDecoder(tok);
    const deltas = ids.map((id) => decoder.push(id));
    deltas.push(decoder.flush());
    expect(deltas.join('')).toBe(text);
    for (const d of deltas) expect(d).not.toContain('\uFFFD');
    // 🫠 is three pieces: the first two yield nothing, the third the whole emoji.
    const emoji = tok.encode('🫠');
    expect(emoji.length).toBe(3);
    const d2 = new TextDeltaDecoder(tok);
    expect(emoji.map((id) => d2.push(id))).toEqual(['', '', '🫠']);
  });

  it('skips special tokens by default', () => {
    const decoder = new TextDeltaDecoder(tok);
    expect(tok.encode('A<|im_end|>').map((id) => decoder.push(id)).join('')).toBe('A');
  });
});

describe('StopStringMatcher', () => {
  it('holds back a possible stop-string prefix and cuts at the stop string', () => {
    const m = new StopStringMatcher(['###', 'END']);
    expect(m.push('Hello #')).toBe('Hello ');
    expect(m.push('#')).toBe('');
    expect(m.push('x E')).toBe('##x ');
    expect(m.push('NDafter')).toBe('');
    expect(m.done).toBe(true);
    expect(m.flush()).toBe('');
  });

  it('releases the held tail at the end when no stop string completes', () => {
    const m = new StopStringMatcher(['###']);
    expect(m.push('a##')).toBe('a');
    expect(m.flush()).toBe('##');
    expect(m.done).toBe(false);
  });
});
