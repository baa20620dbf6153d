import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NO_NOTIFICATIONS } from '../../src/config/target.ts';
import type { NotifyConfig } from '../../src/config/types.ts';
import { deliveries, type Notification, Notifier } from '../../src/notify/channels.ts';
import { Secret } from '../../src/util/secret.ts';
import { freePort } from '../support/postgres-server.ts';

const none = NO_NOTIFICATIONS;
const all: NotifyConfig = {
  webhookUrl: new Secret('https://hooks.example/datasaver'),
  slackWebhookUrl: new Secret('https://hooks.slack.example/services/T0/B0/slacksecret'),
  discordWebhookUrl: new Secret('https://discord.example/api/webhooks/1/discordsecret'),
  ntfy: { url: new Secret('https://ntfy.example/secret-topic'), token: new Secret('tk_ntfysecret') },
  telegram: { botToken: new Secret('123:telegramsecret'), chatId: '-100200', apiUrl: 'https://tg.example' },
  healthchecksUrl: new Secret('https://hc.example/ping/0000-uuid'),
  onSuccess: false,
};
const n = (event: Notification['event']): Notification => ({
  event,
  target: 'shop',
  time: '2026-11-22T02:00:05.000Z',
  message: `datasaver: shop: ${event}`,
  backup: null,
  error: event === 'failure' ? { message: 'connection refused', exitCode: 3 } : null,
  lastSuccess: null,
  sizeChange: null,
  drill: null,
  host: 'h',
  datasaver: '0.1.0',
});

describe('which channels get which events', () => {
  const channels = (config: NotifyConfig, event: Notification['event']) =>
    deliveries(config, n(event)).map((d) => `${d.channel} ${d.url}`);

  it('failures, recoveries and stale go to every chat channel; start only pings healthchecks', () => {
    expect(channels(all, 'failure')).toEqual([
      'webhook https://hooks.example/datasaver',
      'slack https://hooks.slack.example/services/T0/B0/slacksecret',
      'discord https://discord.example/api/webhooks/1/discordsecret',
      'ntfy https://ntfy.example/secret-topic',
      'telegram https://tg.example/bot123:telegramsecret/sendMessage',
      'healthchecks https://hc.example/ping/0000-uuid/fail',
    ]);
    expect(channels(all, 'recovery').at(-1)).toBe('healthchecks https://hc.example/ping/0000-uuid');
    expect(channels(all, 'stale')).toHaveLength(5);
    expect(channels(all, 'start')).toEqual(['healthchecks https://hc.example/ping/0000-uuid/start']);
  });

  it('a size change is a warning on every chat channel; it is no run result, so it never pings', () => {
    expect(channels(all, 'size-change')).toEqual([
      'webhook https://hooks.example/datasaver',
      'slack https://hooks.slack.example/services/T0/B0/slacksecret',
      'discord https://discord.example/api/webhooks/1/discordsecret',
      'ntfy https://ntfy.example/secret-topic',
      'telegram https://tg.example/bot123:telegramsecret/sendMessage',
    ]);
    const ntfy = deliveries(all, n('size-change')).find((d) => d.channel === 'ntfy')!;
    expect(ntfy.init.headers).toMatchObject({ Priority: 'high', Tags: 'warning' });
  });

  it('success reaches chat channels only with on_success; healthchecks always', () => {
    expect(channels(all, 'success')).toEqual(['healthchecks https://hc.example/ping/0000-uuid']);
    expect(channels({ ...all, onSuccess: true }, 'success')).toHaveLength(6);
    expect(channels(none, 'failure')).toEqual([]);
  });

  it('formats each service as it expects', () => {
    const byChannel = new Map(deliveries(all, n('failure')).map((d) => [d.channel, d]));
    expect(JSON.parse(byChannel.get('webhook')!.init.body)).toEqual(n('failure'));
    expect(JSON.parse(byChannel.get('slack')!.init.body)).toEqual({ text: 'datasaver: shop: failure' });
    expect(JSON.parse(byChannel.get('discord')!.init.body)).toEqual({ content: 'datasaver: shop: failure' });
    expect(JSON.parse(byChannel.get('telegram')!.init.body)).toMatchObject({
      chat_id: '-100200',
      text: 'datasaver: shop: failure',
    });
    const ntfy = byChannel.get('ntfy')!;
    expect(ntfy.init.body).toBe('datasaver: shop: failure');
    expect(ntfy.init.headers).toMatchObject({ Priority: 'high', Authorization: 'Bearer tk_ntfysecret' });
  });
});

describe('delivery', () => {
  let server: Server;
  let url: string;
  const received: { path: string; body: string }[] = [];
  let answer: (req: IncomingMessage) => number | 'hang' = () => 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        const status = answer(req);
        if (status === 'hang') return;
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function logger() {
    const warnings: { fields: Record<string, unknown>; message: string }[] = [];
    return {
      warnings,
      log: {
        warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
        debug: () => {},
      },
    };
  }

  it('retries 5xx with backoff, then succeeds; 4xx is not retried and is logged without the URL', async () => {
    received.length = 0;
    let calls = 0;
    answer = (req) => (req.url === '/flaky' ? (++calls < 3 ? 503 : 200) : 404);
    const { log, warnings } = logger();
    const failed: string[] = [];
    const notifier = new Notifier({ log, retryDelayMs: 10, onFailure: (c) => failed.push(c) });
    notifier.notify({ ...none, webhookUrl: new Secret(`${url}/flaky`) }, n('failure'));
    notifier.notify({ ...none, slackWebhookUrl: new Secret(`${url}/gone-slacksecret`) }, n('failure'));
    await notifier.flush(5000);
    expect(received.filter((r) => r.path === '/flaky')).toHaveLength(3);
    expect(received.filter((r) => r.path === '/gone-slacksecret')).toHaveLength(1);
    expect(failed).toEqual(['slack']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({
      channel: 'slack',
      event: 'failure',
      target: 'shop',
      error: 'HTTP 404',
    });
    expect(JSON.stringify(warnings)).not.toMatch(/slacksecret/);
  });

  /** Waits for `check` to pass: an event, not a time (the bound only ends a test that would hang). */
  const eventually = (check: () => void) => vi.waitFor(check, { timeout: 20_000, interval: 5 });

  /** A sleep the test ends by hand, with every wait it was asked for. */
  function manualSleep() {
    const waits: { ms: number; end: () => void }[] = [];
    const sleep = (ms: number, signal: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        waits.push({ ms, end: resolve });
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    return { waits, sleep };
  }

  it('times out a receiver that never answers, and notify itself never waits', async () => {
    answer = () => 'hang';
    const { log, warnings } = logger();
    let requests = 0;
    const notifier = new Notifier({
      log,
      timeoutMs: 200,
      attempts: 2,
      retryDelayMs: 10,
      fetch: (url, init) => {
        requests++;
        return fetch(url, init);
      },
    });
    notifier.notify({ ...none, webhookUrl: new Secret(`${url}/hang`) }, n('stale'));
    // notify has returned before its delivery even started, let alone met the receiver that hangs.
    expect(requests).toBe(0);
    expect(warnings).toEqual([]);
    // A bound far above the two 200 ms timeouts: flush returns as soon as the delivery has failed.
    await notifier.flush(60_000);
    expect(requests).toBe(2);
    expect(warnings[0]!.fields.error).toMatch(/timeout|aborted/i);
    answer = () => 200;
  });

  it('flush waits its bound, but only 1 s more once its signal aborts, and then gives up', async () => {
    received.length = 0;
    answer = () => 'hang';
    const { log, warnings } = logger();
    const { waits, sleep } = manualSleep();
    const notifier = new Notifier({ log, timeoutMs: 60_000, attempts: 1, sleep });
    notifier.notify({ ...none, webhookUrl: new Secret(`${url}/hang`) }, n('failure'));
    const stop = new AbortController();
    let flushed = false;
    const flushing = notifier.flush(30_000, stop.signal).then(() => {
      flushed = true;
    });
    await eventually(() => expect(received.map((r) => r.path)).toEqual(['/hang']));
    expect(waits.map((w) => w.ms)).toEqual([30_000]);
    stop.abort();
    await eventually(() => expect(waits.map((w) => w.ms)).toEqual([30_000, 1000]));
    expect(flushed).toBe(false);
    waits[1]!.end();
    await flushing;
    await eventually(() =>
      expect(warnings.map((w) => w.message)).toEqual(['webhook notification abandoned at shutdown']),
    );
    answer = () => 200;
  });

  it('deliveries to one channel for one target keep their order (start before fail), and honour Retry-After', async () => {
    received.length = 0;
    let first = true;
    answer = (req) => {
      if (req.url === '/hc/start' && first) {
        first = false;
        return 429;
      }
      return 200;
    };
    const { log } = logger();
    const { waits, sleep } = manualSleep();
    const notifier = new Notifier({
      log,
      retryDelayMs: 10,
      sleep,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        // The test server cannot set headers per answer here; a wrapper adds Retry-After to the 429.
        return res.status === 429
          ? new Response(null, { status: 429, headers: { 'retry-after': '0.3' } })
          : res;
      },
    });
    const hc = { ...none, healthchecksUrl: new Secret(`${url}/hc`) };
    notifier.notify(hc, n('start'));
    notifier.notify(hc, n('failure'));
    const flushing = notifier.flush(5000);
    // Besides flush's bound, the retry waits what Retry-After asked (0.3 s), not its own 10 ms.
    await eventually(() => expect(waits.map((w) => w.ms)).toEqual([5000, 300]));
    expect(received.map((r) => r.path)).toEqual(['/hc/start']);
    waits[1]!.end();
    await flushing;
    expect(received.map((r) => r.path)).toEqual(['/hc/start', '/hc/start', '/hc/fail']);
  });

  it('an unreachable receiver is a logged failure with the cause, never a throw', async () => {
    const { log, warnings } = logger();
    const notifier = new Notifier({ log, attempts: 1 });
    const closed = `http://127.0.0.1:${await freePort()}`;
    notifier.notify(
      { ...none, telegram: { botToken: new Secret('999:tgsecret'), chatId: '1', apiUrl: closed } },
      n('failure'),
    );
    await notifier.flush(5000);
    expect(warnings[0]!.fields.error).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify(warnings)).not.toMatch(/tgsecret/);
  });
});
