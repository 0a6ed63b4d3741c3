import { describe, expect, it } from 'vitest';
import { mcqaPrompt } from './prompts.js';

describe('mcqaPrompt (spec §4.1)', () => {
  it('words the Perception Test prompt exactly', () => {
    expect(mcqaPrompt('What colour is the circle?', ['red', 'blue'], 'perception-test')).toBe(
      "Question: What colour is the circle?\nOptions:\n(A) red\n(B) blue\nAnswer with the option's letter from the given choices directly and only give the best option.",
    );
  });

  it('adds the MVBench preamble before the same body', () => {
    const body = mcqaPrompt('Which way does the red cross move?', ['left', 'right', 'up', 'down'], 'perception-test');
    const mv = mcqaPrompt('Which way does the red cross move?', ['left', 'right', 'up', 'down'], 'mvbench');
    expect(mv.startsWith('Carefully watch the video and pay attention to the cause and sequence of events,')).toBe(true);
    expect(mv.endsWith(`accurately addresses the question.\n${body}`)).toBe(true);
    expect(body).toContain('(D) down\nAnswer');
  });
});
