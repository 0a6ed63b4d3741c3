import { execFile } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked } from '../../../test/pack/pack-install.js';
import { packedPackages } from '../../../test/pack/packages.js';

/** Published tarballs, installed with npm outside the workspace, work as users will use them. */
const probes = join(dirname(fileURLToPath(import.meta.url)), '../../../test/pack/probes');
let scratch: string;

beforeAll(async () => {
  scratch = (await installPacked(packedPackages.map((p) => p.dir))).scratch;
}, 300_000);

// The scratch install holds onnxruntime-node's native libraries: deleting it takes longer than the default hook limit.
afterAll(async () => {
  if (scratch) await rm(dirname(scratch), { recursive: true, force: true });
}, 60_000);

describe('packed packages', () => {
  it.each(packedPackages)('$dir works from its tarball ($probe)', async ({ probe }) => {
    // The probe is copied in, so its imports resolve from the scratch project's node_modules only.
    copyFileSync(join(probes, probe), join(scratch, probe));
    // The CLI probe asks the shipped default model about the repository's sample video.
    const env = { ...process.env, BVLLM_BACKEND: '', BVLLM_SAMPLE_VIDEO: join(probes, '../../../examples/brief-event.mp4') };
    const { stdout } = await promisify(execFile)(process.execPath, [probe], { cwd: scratch, encoding: 'utf8', env });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.backend).toBe('wasm');
  });
});
