/**
 * The demuxer allow-list (issue #20 item 1): every allowed container is recognised by its first bytes (files made
 * by the same ffmpeg), and playlists, concat lists, text and unknown bytes are refused before ffmpeg runs, so a
 * playlist naming a real video is never followed.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, decodeVideo } from './decode.js';
import { UnsupportedMediaError } from './errors.js';
import { ffmpegPath } from './ffmpeg.js';
import { detectMediaFormat, ffmpegInput, sniffMediaFormat } from './media-format.js';
import { probeVideo } from './probe.js';
import { tempDir } from './test-videos.js';

let dir: string;
const make = (name: string, args: string[]) => {
  const path = join(dir, name);
  execFileSync(ffmpegPath(), ['-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=s=32x24:r=5:d=1', ...args, path]);
  return path;
};

beforeAll(() => {
  dir = tempDir();
});

describe('allowed formats', () => {
  const cases: [string, string[], string, boolean][] = [
    ['v.mp4', ['-pix_fmt', 'yuv420p'], 'mov', false],
    ['v.mov', ['-pix_fmt', 'yuv420p'], 'mov', false],
    ['v.webm', [], 'matroska', false],
    ['v.mkv', ['-pix_fmt', 'yuv420p'], 'matroska', false],
    ['v.avi', [], 'avi', false],
    ['v.ts', [], 'mpegts', false],
    ['v.mpeg', ['-c:v', 'mpeg1video', '-r', '25'], 'mpeg', false],
    ['v.gif', [], 'gif', false],
    ['i.png', ['-frames:v', '1'], 'png_pipe', true],
    ['i.jpg', ['-frames:v', '1'], 'jpeg_pipe', true],
    ['i.webp', ['-frames:v', '1'], 'webp_pipe', true],
    ['i.bmp', ['-frames:v', '1'], 'bmp_pipe', true],
  ];

  it.each(cases)('%s is read with -f %s', async (name, args, demuxer, image) => {
    const path = make(name, args);
    expect(detectMediaFormat(path)).toEqual({ demuxer, image });
    // ffmpeg opens it with that demuxer and the file protocol alone.
    expect(ffmpegInput(path)).toEqual(['-protocol_whitelist', 'file', '-f', demuxer, '-i', `file:${path}`]);
    if (image) expect((await decodeImage(path)).width).toBe(32);
    else expect((await probeVideo(path)).width).toBe(32);
  });
});

describe('refused heads', () => {
  const secret = () => make('secret.ts', []);
  const heads = (): [string, string][] => [
    [`#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n${secret()}\n#EXT-X-ENDLIST\n`, 'an HLS playlist'],
    [`\n#EXTM3U\n${secret()}\n`, 'an HLS playlist'],
    [`ffconcat version 1.0\nfile '${secret()}'\n`, 'an ffmpeg concat list'],
    [`v=0\no=- 0 0 IN IP4 127.0.0.1\n`, 'text'],
    ['', 'an empty file'],
  ];

  it('names what each one is, and decoding refuses before ffmpeg follows it', async () => {
    for (const [text, kind] of heads()) {
      const path = join(dir, 'upload.mp4');
      writeFileSync(path, text);
      expect(() => detectMediaFormat(path)).toThrow(UnsupportedMediaError);
      const error = (await probeVideo(path).catch((e: unknown) => e)) as UnsupportedMediaError;
      expect(error).toMatchObject({ code: 'MEDIA_UNSUPPORTED', kind });
      expect(error.reason).not.toContain(dir);
      await expect(decodeVideo(path)).rejects.toThrow(UnsupportedMediaError);
    }
  });

  it('refuses unknown binary and near misses of the magic bytes', () => {
    expect(sniffMediaFormat(Uint8Array.from([0x00, 0x01, 0x02, 0x03, 0xfe, 0xff, 0x10, 0x20]))).toBeUndefined();
    // One 0x47 is not a transport stream: the next packet must start with one too.
    expect(sniffMediaFormat(Uint8Array.from({ length: 377 }, (_, i) => (i === 0 ? 0x47 : 0)))).toBeUndefined();
    expect(sniffMediaFormat(Buffer.from('RIFF\0\0\0\0WAVEfmt '))).toBeUndefined();
    expect(sniffMediaFormat(Buffer.from('GIF90a'))).toBeUndefined();
  });
});
