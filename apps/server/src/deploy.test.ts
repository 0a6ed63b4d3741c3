/**
 * `pnpm deploy` gives a folder that runs without the workspace: deployed into a temp folder (outside the repo, so
 * nothing resolves from the workspace's node_modules), started there, it answers a chat request.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { dataUrl, exited, startProcess } from '../test/helpers.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const target = join(mkdtempSync(join(tmpdir(), 'bvllm-deploy-')), 'server');

afterAll(() => rmSync(join(target, '..'), { recursive: true, force: true }));

describe('pnpm deploy', () => {
  it('gives a self-contained folder whose start command serves chat completions', async () => {
    // pnpm 10 deploys non-injected workspaces only with --legacy (the workspace does not set inject-workspace-packages).
    execFileSync('pnpm', ['--filter', '@bvllm/server', 'deploy', '--legacy', '--prod', target], { cwd: repo, stdio: 'pipe' });
    expect(existsSync(join(target, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(target, 'public', 'index.html'))).toBe(true);
    expect(existsSync(join(target, 'Dockerfile'))).toBe(true);
    // Dev dependencies stay out of a production folder.
    expect(existsSync(join(target, 'node_modules', 'openai'))).toBe(false);
    const { child, url } = await startProcess(['--model', inject('modelDir'), '--media-root', inject('mediaRoot')], target, join(target, 'dist', 'main.js'));
    try {
      expect(((await (await fetch(`${url}/health`)).json()) as { status: string }).status).toBe('ok');
      const name = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: name, max_tokens: 2, messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: dataUrl('clip.mp4', 'video/mp4') } }, { type: 'text', text: 'What colour?' }] }] }),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(2);
      expect((await fetch(url)).headers.get('content-type')).toMatch(/^text\/html/);
    } finally {
      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
    }
  });
});
