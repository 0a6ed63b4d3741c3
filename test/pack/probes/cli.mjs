// Runs in a scratch project where @bvllm/cli and its workspace dependencies were installed from tarballs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

const bin = `${process.cwd()}/node_modules/.bin/bvllm`;
const report = JSON.parse(execFileSync(bin, ['doctor', '--json', '--size', '64', '--reps', '1'], { encoding: 'utf8' }));
assert.equal(report.backend.choice, 'wasm');
assert.equal(report.matmul.size, 64);
assert.ok(report.matmul.gflops > 0);
// The default model ships inside @bvllm/bvllm-tiny's tarball: `bvllm ask` works with no --model.
const asked = JSON.parse(execFileSync(bin, ['ask', process.env.BVLLM_SAMPLE_VIDEO, 'What shape flashed briefly?', '--json'], { encoding: 'utf8' }));
assert.equal(typeof asked.answer, 'string');
assert.ok(asked.answer.length > 0);
assert.ok(asked.selection.frames.length >= 1);
console.log(JSON.stringify({ backend: report.backend.choice, gflops: report.matmul.gflops, answer: asked.answer }));
