/** Loopback helpers for the live-stream tests of every package (issue #22: tests use loopback only). */
import { createSocket } from 'node:dgram';

/** A UDP port on 127.0.0.1 that was free a moment ago (bound, read, released), for an ffmpeg sender to target. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
