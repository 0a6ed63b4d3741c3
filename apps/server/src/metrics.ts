/**
 * Prometheus text exposition (format 0.0.4) for `/metrics`, written by hand: a dozen series do not justify a
 * client library. Counters only grow; gauges are read when scraped.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tf } from '@bvllm/core';

type Labels = Record<string, string>;

const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}` : '';
};

class Series {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'summary',
  ) {}

  add(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + value);
  }
}

/** Seconds, as a count and a sum (a Prometheus summary without quantiles). */
class Timing {
  count = 0;
  sum = 0;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
  }
}

export class Metrics {
  readonly httpRequests = new Series('bvllm_http_requests_total', 'HTTP responses by route and status.', 'counter');
  readonly completions = new Series('bvllm_chat_completions_total', 'Finished chat completions by finish reason.', 'counter');
  readonly promptTokens = new Series('bvllm_prompt_tokens_total', 'Prompt positions (text plus visual tokens) of finished completions.', 'counter');
  readonly completionTokens = new Series('bvllm_completion_tokens_total', 'Generated tokens of finished completions.', 'counter');
  readonly featureCache = new Series('bvllm_feature_cache_total', 'Feature cache look-ups by result (hit: the video was not re-encoded).', 'counter');
  readonly rejected = new Series('bvllm_queue_rejections_total', 'Requests refused with 429 because the generation queue was full.', 'counter');
  readonly aborted = new Series('bvllm_generations_aborted_total', 'Generations cancelled by a client disconnect, a timeout or shutdown.', 'counter');
  readonly timeToFirstToken = new Timing('bvllm_time_to_first_token_seconds', 'From request arrival to the first answer text.');
  readonly generation = new Timing('bvllm_generation_seconds', 'From request arrival to the last answer text.');

  /** How late the event loop ran its timers, in nanoseconds: the figure that says whether anything blocks it. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly gauges: () => Record<string, { help: string; value: number }>) {
    this.loopDelay.enable();
  }

  /** Stops the event-loop sampling (the server's close). */
  close(): void {
    this.loopDelay.disable();
  }

  render(): string {
    const lines: string[] = [];
    for (const s of [this.httpRequests, this.completions, this.promptTokens, this.completionTokens, this.featureCache, this.rejected, this.aborted]) {
      lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
      if (s.values.size === 0) lines.push(`${s.name} 0`);
      for (const [labels, value] of s.values) lines.push(`${s.name}${labels} ${value}`);
    }
    for (const t of [this.timeToFirstToken, this.generation])
      lines.push(`# HELP ${t.name} ${t.help}`, `# TYPE ${t.name} summary`, `${t.name}_sum ${t.sum}`, `${t.name}_count ${t.count}`);
    const memory = process.memoryUsage();
    const gauges = {
      ...this.gauges(),
      bvllm_tensors: { help: 'Live tfjs tensors (constant between requests unless something leaks).', value: tf.memory().numTensors },
      process_resident_memory_bytes: { help: 'Resident set size in bytes.', value: memory.rss },
      nodejs_heap_used_bytes: { help: 'V8 heap in use, bytes.', value: memory.heapUsed },
      // Since the previous scrape (the histogram is reset below), as prom-client reports it.
      nodejs_eventloop_lag_p99_seconds: { help: 'Event-loop delay since the last scrape, 99th percentile, seconds.', value: this.loopDelay.percentile(99) / 1e9 },
      nodejs_eventloop_lag_max_seconds: { help: 'Event-loop delay since the last scrape, maximum, seconds.', value: this.loopDelay.max / 1e9 },
    };
    this.loopDelay.reset();
    for (const [name, g] of Object.entries(gauges)) lines.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.value}`);
    return `${lines.join('\n')}\n`;
  }
}
