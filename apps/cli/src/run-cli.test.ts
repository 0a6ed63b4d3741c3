import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { output: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describe('runCli', () => {
  it('--help lists every command and exits 0', async () => {
    const { output, out } = capture();
    expect(await runCli(['node', 'bvllm', '--help'], output)).toBe(0);
    expect(out.join('')).toMatch(/Usage: bvllm \[options\] \[command\]/);
    expect(out.join('')).toMatch(/^ +doctor \[options\] +report the tensor backend/m);
  });

  it('--version prints the package version', async () => {
    const { output, out } = capture();
    expect(await runCli(['node', 'bvllm', '--version'], output)).toBe(0);
    expect(out.join('').trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('a bad flag value exits 1 with commander’s one-line message', async () => {
    const { output, err } = capture();
    expect(await runCli(['node', 'bvllm', 'doctor', '--reps', '-3'], output)).toBe(1);
    expect(err.join('')).toMatch(/^error: option '--reps <n>' argument '-3' is invalid/);
  });
});
