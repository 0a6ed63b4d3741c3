/**
 * Small JPEGs of the frames the model selected, for the web page's frame strip. ffmpeg seeks to each frame's
 * timestamp (accurate seek: it decodes from the previous keyframe) and scales it down; nothing touches the disk.
 */
import { spawn } from 'node:child_process';
import { ffmpegInput, ffmpegPath } from '@bvllm/vision-encoder';

const TIMEOUT_MS = 15_000;
const MAX_BYTES = 2 * 1024 * 1024;

/** A `data:image/jpeg;base64,…` URL of the frame at `timestampSec`, `width` pixels wide, or null if ffmpeg fails. */
export function thumbnail(path: string, timestampSec: number, width: number, signal?: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    let input: string[];
    try {
      input = ffmpegInput(path);
    } catch {
      return resolve(null);
    }
    const args = ['-loglevel', 'error', '-ss', timestampSec.toFixed(3), ...input, '-frames:v', '1', '-vf', `scale=${width}:-2`, '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '5', 'pipe:1'];
    const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'ignore'], signal });
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BYTES) child.kill('SIGKILL');
      else chunks.push(chunk);
    });
    // A thumbnail is decoration: any failure (abort, timeout, odd codec) leaves the frame without a picture.
    child.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0 && size > 0 && size <= MAX_BYTES ? `data:image/jpeg;base64,${Buffer.concat(chunks).toString('base64')}` : null);
    });
  });
}
