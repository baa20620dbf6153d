/**
 * One stream to several consumers: every chunk of `source` goes to every consumer still running, at the
 * pace of the slowest (each consumer has a small queue, so memory stays bounded). A consumer that fails
 * is dropped and the others go on; when the source fails, every consumer's stream fails with that error,
 * so no consumer can mistake a broken stream for a finished one.
 */

/** Bytes queued per consumer before the source waits for it. */
const QUEUE_BYTES = 4 * 1024 * 1024;

class Channel implements AsyncIterable<Buffer> {
  readonly #queue: Buffer[] = [];
  #bytes = 0;
  #ended = false;
  #error: unknown;
  /** The consumer stopped reading (it failed, or finished early). */
  closed = false;
  #wakeConsumer: (() => void) | undefined;
  #wakeProducer: (() => void) | undefined;

  push(chunk: Buffer): void {
    if (this.closed) return;
    this.#queue.push(chunk);
    this.#bytes += chunk.length;
    this.#wakeConsumer?.();
  }

  end(error?: unknown): void {
    this.#ended = true;
    this.#error = error;
    this.#wakeConsumer?.();
  }

  /** Resolves once the queue has room again, or the consumer is gone. */
  async room(): Promise<void> {
    while (!this.closed && this.#bytes >= QUEUE_BYTES) {
      await new Promise<void>((resolve) => {
        this.#wakeProducer = resolve;
      });
    }
  }

  close(): void {
    this.closed = true;
    this.#queue.length = 0;
    this.#bytes = 0;
    this.#wakeProducer?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const chunk = this.#queue.shift();
        if (chunk) {
          this.#bytes -= chunk.length;
          this.#wakeProducer?.();
          yield chunk;
        } else if (this.#ended) {
          if (this.#error !== undefined) throw this.#error;
          return;
        } else {
          await new Promise<void>((resolve) => {
            this.#wakeConsumer = resolve;
          });
        }
      }
    } finally {
      this.close();
    }
  }
}

/**
 * Feeds `source` to each consumer and settles when all of them have. Rejects with the source's error if
 * the source fails, or with the first consumer's error if every consumer failed (the source is then
 * abandoned); otherwise resolves with each consumer's outcome, in order.
 */
export async function fanOut(
  source: AsyncIterable<Buffer>,
  consumers: ((body: AsyncIterable<Buffer>) => Promise<void>)[],
): Promise<PromiseSettledResult<void>[]> {
  const channels = consumers.map(() => new Channel());
  const running = consumers.map(async (consume, i) => {
    const channel = channels[i]!;
    try {
      await consume(channel);
    } finally {
      channel.close();
    }
  });
  const outcomes = Promise.allSettled(running);
  try {
    for await (const chunk of source) {
      const live = channels.filter((c) => !c.closed);
      if (live.length === 0) break;
      for (const c of live) c.push(chunk);
      await Promise.all(live.map((c) => c.room()));
    }
    for (const c of channels) c.end();
  } catch (err) {
    for (const c of channels) c.end(err);
    await outcomes;
    throw err;
  }
  const results = await outcomes;
  const failure = results.find((r) => r.status === 'rejected');
  if (results.every((r) => r.status === 'rejected')) throw (failure as PromiseRejectedResult).reason;
  return results;
}
