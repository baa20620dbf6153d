/** The control-connection lifecycle engines share: opened, used, always closed, closed at once on abort. */
import { describe, expect, it } from 'vitest';
import { withSession } from '../../src/engines/session.ts';

function fakeConnection() {
  const events: string[] = [];
  return {
    events,
    session: {
      open: async () => {
        events.push('open');
        return { id: 1 };
      },
      close: () => {
        events.push('close');
      },
      failure: (err: unknown) => new Error(`mapped: ${(err as Error).message}`),
    },
  };
}

describe('withSession', () => {
  it('returns what use returns and closes the connection', async () => {
    const { events, session } = fakeConnection();
    expect(await withSession({ ...session, use: async (c) => c.id + 1 })).toBe(2);
    expect(events).toEqual(['open', 'close']);
  });

  it('maps what use throws, and still closes', async () => {
    const { events, session } = fakeConnection();
    const use = async () => {
      throw new Error('query failed');
    };
    await expect(withSession({ ...session, use })).rejects.toThrow('mapped: query failed');
    expect(events).toEqual(['open', 'close']);
  });

  it('does not connect when the signal has already aborted', async () => {
    const { events, session } = fakeConnection();
    const reason = new Error('stopped');
    const use = async () => 0;
    await expect(withSession({ ...session, use, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(events).toEqual([]);
  });

  it('closes at once on abort and rejects with the reason, not the mapped error', async () => {
    const { events, session } = fakeConnection();
    const controller = new AbortController();
    const reason = new Error('stopped');
    let failPending: (err: Error) => void = () => {};
    const use = () =>
      new Promise<number>((_, reject) => {
        failPending = reject;
        controller.abort(reason);
      });
    const close = () => {
      events.push('close');
      failPending(new Error('connection closed'));
    };
    await expect(withSession({ ...session, close, use, signal: controller.signal })).rejects.toBe(reason);
    expect(events).toEqual(['open', 'close', 'close']);
  });
});
