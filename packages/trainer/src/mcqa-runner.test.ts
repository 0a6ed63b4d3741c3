import { describe, expect, it } from 'vitest';
import { AbortedError } from '@bvllm/core';
import { runMcqa, type McqaBenchmarkItem } from './mcqa-runner.js';

const items: McqaBenchmarkItem[] = [
  { id: 'q1', task: 'short', video: 'v1.mp4', question: 'What moves?', options: ['car', 'bird', 'boat', 'train'], answerIndex: 1 },
  { id: 'q2', task: 'long', video: 'v2.mp4', question: 'How many?', options: ['1', '2', '3', '4'], answerIndex: 3 },
];

describe('runMcqa', () => {
  it('passes each item the benchmark prompt and scores the outputs with the benchmark rule', async () => {
    const seen: string[] = [];
    // Stands in for generation: answers from the prompt text, so the test also checks what the model would see.
    const answer = async (item: McqaBenchmarkItem, instruction: string) => {
      seen.push(instruction);
      return item.id === 'q1' ? 'B.' : 'there are four';
    };
    const progress: number[] = [];
    const { report, predictions } = await runMcqa('videomme', items, answer, { onItem: (done) => progress.push(done) });
    expect(seen[0]).toContain('What moves?\nA. car\nB. bird\nC. boat\nD. train\n');
    expect(seen[0].endsWith('The best answer is: ')).toBe(true);
    expect(report.overall).toEqual({ total: 2, correct: 2, accuracy: 1, unparsed: 0 });
    expect(Object.keys(report.perTask)).toEqual(['long', 'short']);
    expect(predictions.map((p) => [p.via, p.output])).toEqual([
      ['letter', 'B.'],
      ['option-text', 'there are four'],
    ]);
    expect(progress).toEqual([1, 2]);
  });

  it('stops with AbortedError when the signal fires', async () => {
    const controller = new AbortController();
    const answer = async () => {
      controller.abort();
      return 'A';
    };
    await expect(runMcqa('mvbench', items, answer, { signal: controller.signal })).rejects.toThrow(AbortedError);
  });
});
