// Runs in a scratch project where @bvllm/cli (and @bvllm/core, its dependency) were installed from tarballs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const bin = `${process.cwd()}/node_modules/.bin/bvllm`;
const report = JSON.parse(execFileSync(bin, ['doctor', '--json', '--size', '64', '--reps', '1'], { encoding: 'utf8' }));
assert.equal(report.backend.choice, 'wasm');
assert.equal(report.matmul.size, 64);
assert.ok(report.matmul.gflops > 0);
console.log(JSON.stringify({ backend: report.backend.choice, gflops: report.matmul.gflops }));
