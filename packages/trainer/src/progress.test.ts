import { describe, expect, it } from 'vitest';
import { ProgressReporter, formatProgress } from './progress.js';

const figures = { step: 5, totalSteps: 10, loss: 2.302585, lr: 1e-3, samplesPerSec: 12.5, elapsedSec: 4, startStep: 0 };

describe('progress', () => {
  it('formats the bar, loss, lr, throughput and an ETA from this run’s speed', () => {
    // 4 s for 5 updates → 0.8 s per update × 5 left = 4 s.
    expect(formatProgress(figures)).toBe('[##########----------] 5/10 loss 2.3026 lr 1.00e-3 12.5 samples/s ETA 00:00:04');
    // Resumed at step 4: 4 s for 1 update → 20 s for the 5 left.
    expect(formatProgress({ ...figures, startStep: 4 })).toContain('ETA 00:00:20');
    expect(formatProgress({ ...figures, step: 0 })).toContain('ETA --:--:--');
  });

  it('redraws in place on a terminal and writes every logEvery-th line otherwise', () => {
    const tty: string[] = [];
    new ProgressReporter({ isTTY: true, write: (t) => tty.push(t) }).update(figures);
    expect(tty[0].startsWith('\r[')).toBe(true);
    const plain: string[] = [];
    const reporter = new ProgressReporter({ isTTY: false, write: (t) => plain.push(t) }, 2);
    for (let step = 1; step <= 10; step++) reporter.update({ ...figures, step });
    expect(plain.map((l) => l.split(' ')[1])).toEqual(['2/10', '4/10', '6/10', '8/10', '10/10']);
  });

  it('names the run at the start of each line when given a label', () => {
    const lines: string[] = [];
    new ProgressReporter({ isTTY: false, write: (t) => lines.push(t) }, 1, 'stage 1').update(figures);
    expect(lines).toEqual([`stage 1 ${formatProgress(figures)}\n`]);
  });
});
