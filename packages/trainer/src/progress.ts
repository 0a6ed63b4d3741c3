/** Training progress on stderr: a one-line bar redrawn in place on a terminal, plain lines every `logEvery` steps otherwise. */

export interface ProgressFigures {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  samplesPerSec: number;
  /** Seconds since this run (not the resumed one) started. */
  elapsedSec: number;
  /** Updates done when this run started (0 unless resumed), so the ETA uses this run's speed only. */
  startStep: number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--:--';
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** `[#####-----] 5/10 loss 2.3026 lr 1.00e-3 12.5 samples/s ETA 00:00:04`. */
export function formatProgress(f: ProgressFigures, width = 20): string {
  const filled = Math.min(width, Math.round((f.step / f.totalSteps) * width));
  const done = f.step - f.startStep;
  const eta = done > 0 ? (f.elapsedSec / done) * (f.totalSteps - f.step) : Number.POSITIVE_INFINITY;
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${f.step}/${f.totalSteps} ` +
    `loss ${f.loss.toFixed(4)} lr ${f.lr.toExponential(2)} ${f.samplesPerSec.toFixed(1)} samples/s ETA ${clock(eta)}`
  );
}

/** Where progress goes; the default is process.stderr. */
export interface ProgressSink {
  isTTY?: boolean;
  write(text: string): unknown;
}

export class ProgressReporter {
  /** @param label names the run at the start of each bar (`vision pre-training [###---] …`) */
  constructor(
    private readonly sink: ProgressSink = process.stderr,
    private readonly logEvery = 1,
    private readonly label?: string,
  ) {}

  update(figures: ProgressFigures): void {
    const line = this.label ? `${this.label} ${formatProgress(figures)}` : formatProgress(figures);
    if (this.sink.isTTY) this.sink.write(`\r${line}${figures.step === figures.totalSteps ? '\n' : ''}`);
    else if (figures.step % this.logEvery === 0 || figures.step === figures.totalSteps) this.sink.write(`${line}\n`);
  }

  /** A message on its own line (a skipped sample, a saved checkpoint), not overwritten by the bar. */
  note(message: string): void {
    this.sink.write(this.sink.isTTY ? `\r\x1b[K${message}\n` : `${message}\n`);
  }
}
