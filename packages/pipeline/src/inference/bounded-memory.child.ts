/**
 * Child process of bounded-memory.test.ts: opens a session on the test model, encodes `argv[2]` (patches spilling
 * to disk past a small limit), answers one question, and prints its peak RSS (`process.resourceUsage().maxRSS`,
 * KiB) as JSON. Run by vite-node so it reads this package's sources.
 */
import { initBackend } from '@bvllm/core';
import { BvllmModel } from '../bvllm-model.js';
import { InferenceSession } from '../inference-session.js';
import { testAssets, testConfig } from '../test-model.js';

await initBackend();
const model = BvllmModel.create(testConfig({ generation: { maxNewTokens: 2 } }), testAssets(), 1);
const session = await InferenceSession.fromModel(model, { patchMemoryBytes: 64 * 1024 });
const video = await session.encode(process.argv[2]!);
const answer = await session.answer(video, [{ role: 'user', content: 'What colour is the square?' }]);
const result = { frames: video.numFrames, location: video.patches.location, framesRead: answer.selection.framesRead, maxRssKiB: process.resourceUsage().maxRSS };
video.close();
await session.close();
model.dispose();
process.stdout.write(`${JSON.stringify(result)}\n`);
