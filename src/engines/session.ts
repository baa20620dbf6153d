/**
 * The lifecycle every engine's control connection shares (a node-postgres client, an ioredis client):
 * open, use, always close, close at once on abort.
 */

export interface Session<C, T> {
  signal?: AbortSignal | undefined;
  /** Connects; what it throws (the engine's ConnectionError) is rethrown as it is. */
  open: () => Promise<C>;
  /** Closes the connection; never throws. Called on abort too, so a pending call fails at once. */
  close: (connection: C) => void | Promise<void>;
  use: (connection: C) => Promise<T>;
  /** The error to throw for what `use` threw, unless the signal aborted. */
  failure: (err: unknown) => unknown;
}

/**
 * Opens a connection, runs `use` on it and closes it, whatever happens. Rejects with the signal's reason
 * when the signal aborts (before connecting, or while `use` runs); otherwise with what `open` threw, or
 * what `failure` made of what `use` threw.
 */
export async function withSession<C, T>(session: Session<C, T>): Promise<T> {
  const { signal } = session;
  signal?.throwIfAborted();
  const connection = await session.open();
  const onAbort = () => void Promise.resolve(session.close(connection)).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await session.use(connection);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw session.failure(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await session.close(connection);
  }
}
