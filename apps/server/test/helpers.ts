/** Shared by the server's tests: a server on loopback over the global setup's model, and media as data URLs. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';

export const mainJs = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export const dataUrl = (file: string, mime: string) => `data:${mime};base64,${readFileSync(join(inject('mediaRoot'), file)).toString('base64')}`;

/** `node dist/main.js …` on a free port; resolves once it prints its address. */
export function startProcess(args: string[], cwd?: string, script = mainJs): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [script, '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /at (http:\/\/[\d.:]+)/.exec(output);
      if (match) resolve({ child, url: match[1], output: () => output });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
}

/** Resolves with the exit code once the child ends. */
export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
