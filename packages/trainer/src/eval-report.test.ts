import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exactMatchJudge, normalizeAnswer, reportMarkdown, scoreMcqa, scoreOpenQa, writeEvalReport, type AnswerJudge } from './eval-report.js';

const options = ['a blue square', 'a red circle', 'a green triangle', 'nothing'];

describe('scoreMcqa (spec §4.1)', () => {
  const items = [
    { id: '1', task: 'Action Count', options, answerIndex: 1, output: '(B) a red circle' },
    { id: '2', task: 'Action Count', options, answerIndex: 0, output: 'The answer is C.' },
    { id: '3', task: 'Object Shuffle', options, answerIndex: 2, output: 'garbage' }, // unparsed → 2, counted correct as officially
    { id: '4', task: 'Object Shuffle', options, answerIndex: 3, output: 'nothing at all' },
    { id: '5', task: 'Object Shuffle', options, answerIndex: 0, output: 'b' }, // unparsed → 2, wrong
  ];
  const { report, predictions } = scoreMcqa('mvbench', items);

  it('scores overall and per task, counting unparsed answers apart', () => {
    expect(report.overall).toEqual({ total: 5, correct: 3, accuracy: 0.6, unparsed: 2 });
    expect(report.perTask).toEqual({
      'Action Count': { total: 2, correct: 1, accuracy: 0.5, unparsed: 0 },
      'Object Shuffle': { total: 3, correct: 2, accuracy: 2 / 3, unparsed: 2 },
    });
    expect(predictions.map((p) => [p.predictedIndex, p.via])).toEqual([
      [1, 'letter'],
      [2, 'letter'],
      [2, 'unparsed'],
      [3, 'option-text'],
      [2, 'unparsed'],
    ]);
  });

  it('renders a Markdown table with one row per task and the overall row', () => {
    expect(reportMarkdown(report)).toBe(
      [
        '## mvbench',
        '',
        '| task | n | accuracy (%) | unparsed |',
        '| --- | ---: | ---: | ---: |',
        '| Action Count | 2 | 50.0 | 0 |',
        '| Object Shuffle | 3 | 66.7 | 2 |',
        '| **overall** | 5 | 60.0 | 2 |',
        '',
      ].join('\n'),
    );
  });

  it('writes JSON and Markdown files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bvllm-eval-'));
    const paths = writeEvalReport(dir, report, predictions);
    const json = JSON.parse(readFileSync(paths.json, 'utf8'));
    expect(json.overall.accuracy).toBe(0.6);
    expect(json.predictions).toHaveLength(5);
    expect(readFileSync(paths.markdown, 'utf8')).toContain('| **overall** | 5 | 60.0 | 2 |');
  });
});

describe('open-ended QA', () => {
  it('normalises case, punctuation, articles and spaces', () => {
    expect(normalizeAnswer('  The Red  Car! ')).toBe('red car');
    expect(normalizeAnswer('an apple, sliced.')).toBe('apple sliced');
    expect(normalizeAnswer('theatre')).toBe('theatre');
  });

  const items = [
    { id: 'a', task: 'what', question: 'What is it?', answer: 'a dog', prediction: 'The dog.' },
    { id: 'b', task: 'what', question: 'What colour?', answer: 'red', prediction: 'blue' },
    { id: 'c', task: 'how', question: 'How many?', answer: 'two', prediction: 'Two' },
  ];

  it('scores by normalised exact match by default', async () => {
    const r = await scoreOpenQa('msvd-qa', items, exactMatchJudge);
    expect(r.overall).toEqual({ total: 3, correct: 2, accuracy: 2 / 3 });
    expect(r.perTask.what).toEqual({ total: 2, correct: 1, accuracy: 0.5 });
    expect(r.judge).toBe('normalized-exact-match');
  });

  it('takes any judge and reports its mean score (Video-ChatGPT protocol)', async () => {
    const lenient: AnswerJudge = {
      name: 'stub-gpt',
      judge: async (item) => ({ correct: item.id !== 'b', score: item.id === 'b' ? 1 : 4 }),
    };
    const r = await scoreOpenQa('msvd-qa', items, lenient);
    expect(r.overall).toEqual({ total: 3, correct: 2, accuracy: 2 / 3, meanScore: 3 });
    expect(reportMarkdown(r)).toContain('| **overall** | 3 | 66.7 | 3.00 |');
  });
});
