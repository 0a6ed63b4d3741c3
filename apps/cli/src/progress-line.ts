import type { CliOutput } from './run-cli.js';

/** A one-line progress indicator on stderr (`encode 12/40`), rewritten in place on a terminal. */
export function progressLine(label: string, output: CliOutput): (done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  return (done, total) => {
    if (tty) output.err(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
    else if (done === total) output.err(`${label} ${done}/${total}\n`);
  };
}
