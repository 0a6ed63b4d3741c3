import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WorkerChannel } from './worker-channel.js';

/** A worker that doubles `value`, echoes the length of a moved buffer, and exits on `die`. */
function script(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'bvllm-channel-')), 'worker.mjs');
  writeFileSync(
    path,
    `import { parentPort } from 'node:worker_threads';
parentPort.on('message', ({ id, value, bytes, die }) => {
  if (die) process.exit(3);
  parentPort.postMessage({ id, value: value * 2, length: bytes ? bytes.byteLength : -1 });
});`,
  );
  return path;
}

type Req = { value?: number; bytes?: ArrayBuffer; die?: boolean };
type Rep = { id: number; value: number; length: number };

describe('WorkerChannel', () => {
  it('answers each call by its id, also when calls overlap, and moves transferred buffers', async () => {
    const channel = new WorkerChannel<Req, Rep>(script(), (reason) => new Error(reason));
    const replies = await Promise.all([1, 2, 3].map((value) => channel.call({ value })));
    expect(replies.map((r) => r.value)).toEqual([2, 4, 6]);
    const bytes = new ArrayBuffer(64);
    expect((await channel.call({ value: 0, bytes }, [bytes])).length).toBe(64);
    expect(bytes.byteLength).toBe(0);
    expect(channel.pending).toBe(0);
    await channel.close();
  });

  it('rejects pending calls with the caller’s error when the thread dies, and starts a new thread after', async () => {
    const channel = new WorkerChannel<Req, Rep>(script(), (reason) => Object.assign(new Error(reason), { code: 'TEST' }));
    await expect(channel.call({ die: true })).rejects.toMatchObject({ code: 'TEST', message: expect.stringContaining('code 3') });
    expect((await channel.call({ value: 5 })).value).toBe(10);
    await channel.close();
  });
});
