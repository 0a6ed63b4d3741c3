import type { RunStatus } from '@bvllm/queue';
import { describe, expect, it } from 'vitest';
import { outageNote, statusLine } from './queue-commands.js';

const running: RunStatus = { runId: 'r1', kind: 'eval', total: 6, createdAt: 0, reportJobId: 'r1', done: 4, failed: 0, running: 1, state: 'running', etaMs: 75_400 };

describe('the queue progress line (issue #23)', () => {
  it('counts done, running and failed items, with an ETA in m:ss while running', () => {
    expect(statusLine(running)).toBe('eval 4/6 done, 1 running, 0 failed, ETA 1:15');
    expect(statusLine({ ...running, done: 6, running: 0, state: 'completed' })).toBe('eval 6/6 done, 0 running, 0 failed, completed');
  });

  it('names the unreachable Redis and how long the follower has waited for it', () => {
    expect(statusLine(running) + outageNote('redis://10.0.0.5:6379', 12_300)).toBe(
      'eval 4/6 done, 1 running, 0 failed, ETA 1:15 (Redis at redis://10.0.0.5:6379 unreachable for 12s; waiting for it)',
    );
  });
});
