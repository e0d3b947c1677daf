/**
 * The order in which one served model's ONNX calls run, so that batch requests cannot starve single predictions.
 *
 * ONNX Runtime runs a call on the main thread and a call costs about as much for 16 rows as for one, so the rows of
 * all small requests that arrive in the same event-loop turn go into one call (under load that multiplies
 * throughput; when idle a request waits for nothing, the call starts in the same turn). A large request is cut into
 * chunks of `chunkRows` and queued apart: each turn runs one call for every small request waiting and then one
 * chunk of the oldest large request, and gives the event loop a turn in between. A single prediction therefore waits
 * behind at most one chunk, never behind a whole 1,000-customer batch (issue 14.8: with one client looping
 * batches, singles' p99 went from 3.5 ms to 35–42 ms), and a batch still moves one chunk per turn however many
 * singles arrive.
 */
export interface InferenceQueueOptions {
  /** Rows per ONNX call for a large request; requests of at most this many rows share the small requests' call. */
  chunkRows: number;
}

/** One call's answer: probabilities, and (from an explaining call) each row's contributions, row-major. */
export interface Scored {
  probabilities: Float32Array;
  contributions: Float64Array | null;
}

/** The rows [start, end) of a call's answer. */
function sliceOf(scored: Scored, start: number, end: number): Scored {
  const width = scored.contributions === null ? 0 : scored.contributions.length / scored.probabilities.length;
  return {
    probabilities: scored.probabilities.subarray(start, end),
    contributions: scored.contributions === null ? null : scored.contributions.subarray(start * width, end * width),
  };
}

/** The default chunk: a few hundred microseconds of a tree ensemble, a small share of a 1,000-row call's overhead. */
export const DEFAULT_CHUNK_ROWS = 128;

interface SmallJob<Row> {
  rows: readonly Row[];
  resolve(scored: Scored): void;
  reject(err: unknown): void;
}

/** A large request: its chunks are scored in order into one result array. */
interface LargeJob<Row> {
  rows: readonly Row[];
  next: number;
  out: Float32Array;
  /** Allocated at the first chunk that has contributions (its width tells the size). */
  contributions: Float64Array | null;
  resolve(scored: Scored): void;
  reject(err: unknown): void;
}

export class InferenceQueue<Row> {
  private small: SmallJob<Row>[] = [];
  private readonly large: LargeJob<Row>[] = [];
  private scheduled = false;
  private running = false;

  constructor(
    /** One ONNX call over `rows`, in order. */
    private readonly predict: (rows: readonly Row[]) => Promise<Scored>,
    private readonly options: InferenceQueueOptions = { chunkRows: DEFAULT_CHUNK_ROWS },
  ) {
    if (!Number.isInteger(options.chunkRows) || options.chunkRows < 1) throw new RangeError(`chunkRows ${options.chunkRows}: expected a whole number ≥ 1`);
  }

  /** Churn probabilities of `rows` (and contributions, when the call gives them), in order. */
  score(rows: readonly Row[]): Promise<Scored> {
    return new Promise((resolve, reject) => {
      if (rows.length <= this.options.chunkRows) this.small.push({ rows, resolve, reject });
      else this.large.push({ rows, next: 0, out: new Float32Array(rows.length), contributions: null, resolve, reject });
      this.schedule();
    });
  }

  /** Requests (small and large) not yet answered. */
  get waiting(): number {
    return this.small.length + this.large.length;
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    // After this turn's I/O: the small requests that arrive with it are scored in the same call.
    setImmediate(() => {
      this.scheduled = false;
      void this.turn();
    });
  }

  private async turn(): Promise<void> {
    this.running = true;
    try {
      await this.runSmall();
      await this.runOneChunk();
    } finally {
      this.running = false;
    }
    if (this.waiting > 0) this.schedule();
  }

  private async runSmall(): Promise<void> {
    const jobs = this.small;
    if (jobs.length === 0) return;
    this.small = [];
    let scored: Scored;
    try {
      scored = await this.predict(jobs.length === 1 ? (jobs[0] as SmallJob<Row>).rows : jobs.flatMap((j) => j.rows));
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    let offset = 0;
    for (const job of jobs) {
      job.resolve(sliceOf(scored, offset, offset + job.rows.length));
      offset += job.rows.length;
    }
  }

  private async runOneChunk(): Promise<void> {
    const job = this.large[0];
    if (job === undefined) return;
    const end = Math.min(job.rows.length, job.next + this.options.chunkRows);
    try {
      const scored = await this.predict(job.rows.slice(job.next, end));
      job.out.set(scored.probabilities, job.next);
      if (scored.contributions !== null) {
        const width = scored.contributions.length / scored.probabilities.length;
        job.contributions ??= new Float64Array(job.rows.length * width);
        job.contributions.set(scored.contributions, job.next * width);
      }
    } catch (err) {
      this.large.shift();
      job.reject(err);
      return;
    }
    job.next = end;
    if (end === job.rows.length) {
      this.large.shift();
      job.resolve({ probabilities: job.out, contributions: job.contributions });
    }
  }
}
