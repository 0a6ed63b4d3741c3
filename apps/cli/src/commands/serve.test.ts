import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { bvllm, testWorkspace } from '../test-workspace.js';

let modelDir: string;
let video: string;

beforeAll(async () => {
  ({ modelDir, video } = await testWorkspace({ train: 1, test: 1 }));
}, 120_000);

describe('bvllm serve', () => {
  it('serves chat completions on one session, answering as `bvllm ask` does, and drains on SIGTERM', { timeout: 120_000 }, async () => {
    const bin = fileURLToPath(new URL('../../dist/bvllm.js', import.meta.url));
    // Flags of the server's own start command (issue #20 item 6: the same flags).
    const child = spawn(process.execPath, [bin, 'serve', '--model', modelDir, '--port', '0', '--api-key', 'sesame', '--max-tokens', '3', '--drain-sec', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        const match = /at (http:\/\/[\d.:]+)/.exec(log);
        if (match) resolve(match[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${log}`)));
    });
    expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    const auth = { authorization: 'Bearer sesame' };
    const name = ((await (await fetch(`${url}/v1/models`, { headers: auth })).json()) as { data: { id: string }[] }).data[0]!.id;
    const media = `data:video/mp4;base64,${readFileSync(video).toString('base64')}`;
    const question = 'What colour is the square?';
    const chat = (maxTokens: number) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ model: name, max_tokens: maxTokens, messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: media } }, { type: 'text', text: question }] }] }),
      });
    expect((await chat(4)).status).toBe(400);
    const response = await chat(3);
    expect(response.status).toBe(200);
    const served = ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const asked = await bvllm(['ask', video, question, '--model', modelDir, '--json', '--max-new-tokens', '3']);
    expect(asked.code).toBe(0);
    expect(served).toBe((JSON.parse(asked.stdout) as { answer: string }).answer);
    const code = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await code).toBe(0);
    expect(log).toMatch(/SIGTERM, draining/);
  });

  it('an unknown flag is one typed error line, exit 1', async () => {
    const run = await bvllm(['serve', '--frobnicate', '3']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^bvllm: error INVALID_ARGUMENT: .*--frobnicate.*\n$/);
  });
});
