/**
 * Which ffmpeg demuxer may open a file, decided from its first bytes, never from its name or ffmpeg's own probe.
 * ffmpeg picks a demuxer by content, and some demuxers open other files: an HLS playlist (`#EXTM3U`) or a concat
 * list (`ffconcat`) names absolute paths, and ffmpeg reads them (issue #20 item 1: a playlist uploaded as
 * `data:video/mp4` made the server describe a video outside its media root). So only containers that hold their
 * own data are allowed, each run names its demuxer with `-f`, and the protocol whitelist admits the one local file.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { UnsupportedMediaError } from './errors.js';

/** An allowed container: the demuxer ffmpeg must use for it, and whether it is a still image. */
export interface MediaFormat {
  /** ffmpeg's demuxer name, passed as `-f`. */
  demuxer: 'mov' | 'matroska' | 'avi' | 'mpegts' | 'mpeg' | 'gif' | 'png_pipe' | 'jpeg_pipe' | 'webp_pipe' | 'bmp_pipe';
  /** One frame (png, jpeg, webp, bmp); GIFs count as videos. */
  image: boolean;
}

/** Bytes read for detection: two MPEG-TS packets (188 bytes each) plus their sync bytes. */
const SNIFF_BYTES = 377;

const ascii = (head: Uint8Array, offset: number, text: string) =>
  head.length >= offset + text.length && [...text].every((c, i) => head[offset + i] === c.charCodeAt(0));
const bytes = (head: Uint8Array, offset: number, expected: readonly number[]) =>
  head.length >= offset + expected.length && expected.every((b, i) => head[offset + i] === b);

/**
 * QuickTime / ISO-BMFF top-level atoms that may come first (ffmpeg's `mov_probe` takes the same ones). External
 * data references (`dref`) are not followed: the mov demuxer's `enable_drefs` is off by default.
 */
const MOV_FIRST_ATOMS = ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip'];

/** The allowed format of a file starting with `head`, or undefined for anything else (playlists, lists, text, …). */
export function sniffMediaFormat(head: Uint8Array): MediaFormat | undefined {
  if (MOV_FIRST_ATOMS.some((atom) => ascii(head, 4, atom))) return { demuxer: 'mov', image: false };
  if (bytes(head, 0, [0x1a, 0x45, 0xdf, 0xa3])) return { demuxer: 'matroska', image: false }; // EBML: mkv, webm
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'AVI ')) return { demuxer: 'avi', image: false };
  if (ascii(head, 0, 'RIFF') && ascii(head, 8, 'WEBP')) return { demuxer: 'webp_pipe', image: true };
  // A transport stream is 188-byte packets that each start with the sync byte 0x47; one byte alone is too weak.
  if (head[0] === 0x47 && head[188] === 0x47 && (head.length <= 376 || head[376] === 0x47)) return { demuxer: 'mpegts', image: false };
  if (bytes(head, 0, [0x00, 0x00, 0x01, 0xba])) return { demuxer: 'mpeg', image: false }; // MPEG-PS pack header
  if (ascii(head, 0, 'GIF87a') || ascii(head, 0, 'GIF89a')) return { demuxer: 'gif', image: false };
  if (bytes(head, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { demuxer: 'png_pipe', image: true };
  if (bytes(head, 0, [0xff, 0xd8, 0xff])) return { demuxer: 'jpeg_pipe', image: true };
  if (ascii(head, 0, 'BM') && head.length >= 14) return { demuxer: 'bmp_pipe', image: true };
  return undefined;
}

/** What a refused head looks like, for the error message (the names users will recognise). */
function describeRefusedHead(head: Uint8Array): string {
  const text = Buffer.from(head).toString('latin1').trimStart();
  if (text.startsWith('#EXTM3U')) return 'an HLS playlist';
  if (text.startsWith('ffconcat')) return 'an ffmpeg concat list';
  if (head.length === 0) return 'an empty file';
  // Printable ASCII and whitespace only: a text file (SDP, subtitles, any list of URLs).
  if (head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) return 'text';
  return 'an unknown format';
}

/** Reads the head of `path` and returns its allowed format; throws {@link UnsupportedMediaError} otherwise. */
export function detectMediaFormat(path: string): MediaFormat {
  const head = Buffer.alloc(SNIFF_BYTES);
  const fd = openSync(path, 'r');
  let length: number;
  try {
    length = readSync(fd, head, 0, SNIFF_BYTES, 0);
  } finally {
    closeSync(fd);
  }
  const view = head.subarray(0, length);
  const format = sniffMediaFormat(view);
  if (!format) throw new UnsupportedMediaError(path, describeRefusedHead(view));
  return format;
}

/**
 * ffmpeg input arguments that open `path` and nothing else: the detected demuxer (no content probing), only the
 * `file` protocol (so no nested http, data or pipe input), and the `file:` prefix so a name holding a colon is
 * never read as another protocol.
 */
export function ffmpegInput(path: string): string[] {
  const { demuxer } = detectMediaFormat(path);
  return ['-protocol_whitelist', 'file', '-f', demuxer, '-i', `file:${path}`];
}
