/**
 * The size of a still image read from its header, before ffmpeg sees it. ffmpeg's image demuxers decode the whole
 * picture even to report its size (a 16000² PNG costs 2 s and 760 MB in ffmpeg before the first byte reaches us),
 * so the pixel limit is checked here from the bytes that declare the size: PNG's IHDR, JPEG's SOF marker, WebP's
 * VP8/VP8L/VP8X header, BMP's info header, GIF's logical screen.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { ResolutionLimitError, VideoDecodeError } from './errors.js';
import { sniffMediaFormat } from './media-format.js';
import { DEFAULT_MAX_PIXELS } from './probe.js';

export interface ImageSize {
  width: number;
  height: number;
}

/** JPEG start-of-frame markers (baseline, progressive, lossless, …); C4 (DHT), C8 (JPG) and CC (DAC) are not frames. */
const isSof = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
/** Segments a JPEG may hold before its frame header; past this many it is not a photo but a puzzle. */
const MAX_JPEG_SEGMENTS = 4096;

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
function readAt(fd: number, offset: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const n = readSync(fd, buffer, 0, length, offset);
  return buffer.subarray(0, n);
}

function jpegSize(fd: number): ImageSize | undefined {
  let offset = 2; // after SOI (FF D8)
  for (let i = 0; i < MAX_JPEG_SEGMENTS; i++) {
    const head = readAt(fd, offset, 9);
    if (head.length < 4 || head[0] !== 0xff) return undefined;
    const marker = head[1];
    // Fill bytes and markers without a length (RSTn, TEM).
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2;
      continue;
    }
    if (isSof(marker)) return head.length < 9 ? undefined : { height: head.readUInt16BE(5), width: head.readUInt16BE(7) };
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image, or scan data before any frame header
    offset += 2 + head.readUInt16BE(2);
  }
  return undefined;
}

function webpSize(head: Buffer): ImageSize | undefined {
  const chunk = head.toString('latin1', 12, 16);
  if (chunk === 'VP8 ' && head.length >= 30) return { width: head.readUInt16LE(26) & 0x3fff, height: head.readUInt16LE(28) & 0x3fff };
  if (chunk === 'VP8L' && head.length >= 25) {
    const bits = head.readUInt32LE(21);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
  }
  if (chunk === 'VP8X' && head.length >= 30) return { width: 1 + head.readUIntLE(24, 3), height: 1 + head.readUIntLE(27, 3) };
  return undefined;
}

function bmpSize(head: Buffer): ImageSize | undefined {
  if (head.length < 26) return undefined;
  // BITMAPCOREHEADER (OS/2, 12 bytes) has 16-bit sizes; every later header 32-bit ones, height negative when top-down.
  if (head.readUInt32LE(14) === 12) return { width: head.readUInt16LE(18), height: head.readUInt16LE(20) };
  return { width: Math.abs(head.readInt32LE(18)), height: Math.abs(head.readInt32LE(22)) };
}

/** The declared size of a png, jpeg, webp, bmp or gif file; undefined for other formats or a header that says nothing. */
export function readImageSize(path: string): ImageSize | undefined {
  const fd = openSync(path, 'r');
  try {
    const head = readAt(fd, 0, 64);
    const format = sniffMediaFormat(head);
    switch (format?.demuxer) {
      case 'png_pipe':
        return head.length >= 24 && head.toString('latin1', 12, 16) === 'IHDR' ? { width: head.readUInt32BE(16), height: head.readUInt32BE(20) } : undefined;
      case 'jpeg_pipe':
        return jpegSize(fd);
      case 'webp_pipe':
        return webpSize(head);
      case 'bmp_pipe':
        return bmpSize(head);
      // A GIF sent as an image is decoded for its first frame; its logical screen bounds every frame.
      case 'gif':
        return head.length >= 10 ? { width: head.readUInt16LE(6), height: head.readUInt16LE(8) } : undefined;
      default:
        return undefined;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The size of an image, checked against `maxPixels` (default 8192²) before anything decodes it. Throws
 * {@link ResolutionLimitError} when it is over, {@link VideoDecodeError} when the header declares no usable size.
 */
export function probeImage(path: string, options: { maxPixels?: number } = {}): ImageSize {
  const size = readImageSize(path);
  if (!size) throw new VideoDecodeError(path, 'the image header declares no frame size (unsupported or broken image)');
  if (size.width === 0 || size.height === 0) throw new VideoDecodeError(path, `the image has an empty frame size ${size.width}x${size.height}`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (size.width * size.height > maxPixels) throw new ResolutionLimitError(path, size.width, size.height, maxPixels);
  return size;
}
