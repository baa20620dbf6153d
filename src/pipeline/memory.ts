/**
 * Keeps the memory of a long-running stream flat.
 *
 * Every chunk that flows through a pipeline (pipe reads, 1 MB batches, compressor output) is a short-lived
 * Buffer whose memory lives outside V8's heap. V8 frees that memory only when it collects, and it lets
 * about 64 MB of such garbage pile up before it does, because JavaScript allocates almost nothing else
 * here. A minor collection once 24 MB of buffers are alive frees most of them at no measurable cost.
 * Buffers that were in flight during a minor collection get promoted and are freed only by a full one,
 * which runs once 40 MB are alive: that bound is what keeps the peak flat on long dumps (with 64 MB,
 * a 2 GB dump peaked ~25 MB higher than a 500 MB one). Thresholds much lower than these cost speed.
 *
 * Buffers held on purpose (S3 parts waiting to be uploaded, ~40 MB) are not garbage: their owner
 * declares them with `holdExternal`, and the thresholds count only what is beyond them. Without that,
 * every check would run a full collection that frees nothing (seconds of CPU on a large upload).
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options?: { type?: 'major' | 'minor' }) => void;

let collect: Collect | undefined | null = null;

/**
 * V8's `gc()`, made available without a command-line flag; undefined if this runtime refuses.
 *
 * The same step sets how far V8 lets the old generation grow past what survived a full collection. By
 * default that step is only a few MB for a heap as small as datasaver's (~20 MB: almost all of its memory
 * is buffers outside the heap), and once the first full collection came mid-stream, V8 went on marking
 * again right after each one: most S3 uploads of a 1 GB database (157 MB stored) ran 40-100 full
 * collections, about 1 s of CPU on the main thread and 8% of the wall time, against 5-10 with this
 * setting (12 runs each). Both flags are read when used, so setting them at run time takes effect.
 */
function gcFunction(): Collect | undefined {
  if (collect === null) {
    try {
      setFlagsFromString('--heap-growing-percent=200');
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as Collect;
    } catch {
      collect = undefined;
    }
  }
  return collect;
}

let held = 0;

/** Declares `bytes` of buffers as deliberately alive until the returned function is called. */
export function holdExternal(bytes: number): () => void {
  held += bytes;
  let released = false;
  return () => {
    if (!released) held -= bytes;
    released = true;
  };
}

export class MemoryGovernor {
  readonly #minorAt: number;
  readonly #majorAt: number;

  constructor(options: { minorAtBytes?: number; majorAtBytes?: number } = {}) {
    this.#minorAt = options.minorAtBytes ?? 24 * 1024 * 1024;
    this.#majorAt = options.majorAtBytes ?? 40 * 1024 * 1024;
    gcFunction();
  }

  /** Call once per chunk (about every MB): collects when buffer garbage passes the thresholds. */
  check(): void {
    const external = getHeapStatistics().external_memory - held;
    if (external < this.#minorAt) return;
    gcFunction()?.({ type: external >= this.#majorAt ? 'major' : 'minor' });
  }
}
