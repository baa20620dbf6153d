/**
 * Notification channels and their delivery: an event of a target (events.ts says which a run produces)
 * goes to every channel its config names. Delivery runs in the background with a timeout and retries; a
 * channel that fails is logged and counted, and never fails or delays a backup (callers do not await
 * `notify`). A new channel is a config field and a request built in `deliveries`; the Notifier delivers
 * it like every other.
 *
 * Which events each channel gets:
 *   - webhook, Slack, Discord, ntfy, Telegram: failure, recovery, stale, size-change, drill-failure;
 *     success and drill-success only with `on_success`;
 *   - healthchecks.io-style ping URL: `<url>/start` when a run starts, `<url>` on success or recovery,
 *     `<url>/fail` on failure (it runs its own dead man's switch, so stale is not sent there; it watches
 *     the backup schedule, so drills are not sent there either).
 *
 * The payload holds the target name, times, backup id and sizes, and error messages that have had secrets
 * removed; never a URL, a password or a token. The generic webhook's JSON is documented in
 * docs/notifications.md and is stable.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NotifyConfig } from '../config/types.ts';
import type { DrillStatus } from '../jobs/drill.ts';
import { errorMessage } from '../util/errors.ts';
import { redact, type Secret } from '../util/secret.ts';

export type NotifyEvent =
  | 'start'
  | 'success'
  | 'failure'
  | 'recovery'
  | 'stale'
  | 'size-change'
  | 'drill-success'
  | 'drill-failure';

/** The generic webhook payload (docs/notifications.md). */
export interface Notification {
  event: NotifyEvent;
  target: string;
  /** ISO time of the event. */
  time: string;
  /** One line for humans, e.g. `datasaver: backup of shop failed: connection refused`. */
  message: string;
  /** The backup this run committed, if any. */
  backup: {
    id: string;
    sizeBytes: number;
    storedBytes: number;
    durationMs: number;
    destinations: string[];
  } | null;
  error: { message: string; exitCode: number } | null;
  /** The last successful backup before this event. */
  lastSuccess: { time: string; backupId: string } | null;
  /**
   * On `size-change`: the new backup's raw size against the median of the earlier ones, and the change
   * as a fraction (-0.6 is 60% smaller); null on other events.
   */
  sizeChange: {
    sizeBytes: number;
    medianBytes: number;
    change: number;
    basis: number;
    threshold: number;
  } | null;
  /**
   * On `drill-success` and `drill-failure`: the backup drilled, the verdict (`error`: the drill could not
   * run), why it failed, the restore time, and how many items were compared and differ (the message names
   * them); null on other events.
   */
  drill: Omit<DrillStatus, 'startedAt' | 'finishedAt' | 'message'> | null;
  host: string;
  datasaver: string;
}

/**
 * One HTTP request a channel makes for a notification. A channel is a few lines of `deliveries`: it maps
 * a notification to this request and nothing more; timeouts, retries, ordering and logging are the
 * Notifier's, the same for every channel.
 */
export interface Delivery {
  /** The channel's name in logs and in the `channel` label of `datasaver_notification_failures_total`. */
  channel: string;
  /** Where the request goes; a secret (it holds tokens): never logged, never in a metric. */
  url: string;
  init: { method: 'POST'; headers: Record<string, string>; body: string };
  /** Values to remove from any error message about this delivery (the URL and tokens). */
  secrets: (Secret | string)[];
}

const CHAT_EVENTS = new Set<NotifyEvent>(['failure', 'recovery', 'stale', 'size-change', 'drill-failure']);
const SUCCESS_EVENTS = new Set<NotifyEvent>(['success', 'drill-success']);
const WARNING_EVENTS = new Set<NotifyEvent>(['failure', 'stale', 'size-change', 'drill-failure']);
/** What a ping service hears: runs only (stale is its own alarm, a size change and a drill are no run). */
const PING_EVENTS = new Set<NotifyEvent>(['start', 'success', 'recovery', 'failure']);

/**
 * The requests that announce `n` on every channel of `config` that takes this event, in a fixed order
 * (webhook, Slack, Discord, ntfy, Telegram, healthchecks). Pure; never throws; empty when no channel is
 * configured or none takes this event.
 */
export function deliveries(config: NotifyConfig, n: Notification): Delivery[] {
  const out: Delivery[] = [];
  const chat = CHAT_EVENTS.has(n.event) || (SUCCESS_EVENTS.has(n.event) && config.onSuccess);
  const json = (channel: string, url: Secret, body: unknown, secrets: Secret[] = []): Delivery => ({
    channel,
    url: url.reveal(),
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    secrets: [url, ...secrets],
  });
  if (chat && config.webhookUrl) out.push(json('webhook', config.webhookUrl, n));
  if (chat && config.slackWebhookUrl) out.push(json('slack', config.slackWebhookUrl, { text: n.message }));
  if (chat && config.discordWebhookUrl)
    out.push(json('discord', config.discordWebhookUrl, { content: n.message }));
  if (chat && config.ntfy) {
    const bad = WARNING_EVENTS.has(n.event);
    const headers: Record<string, string> = {
      'content-type': 'text/plain; charset=utf-8',
      Title: `datasaver: ${n.target} ${n.event}`,
      Priority: bad ? 'high' : 'default',
      Tags: bad ? 'warning' : 'white_check_mark',
    };
    if (config.ntfy.token) headers.Authorization = `Bearer ${config.ntfy.token.reveal()}`;
    out.push({
      channel: 'ntfy',
      url: config.ntfy.url.reveal(),
      init: { method: 'POST', headers, body: n.message },
      secrets: [config.ntfy.url, ...(config.ntfy.token ? [config.ntfy.token] : [])],
    });
  }
  if (chat && config.telegram) {
    const { botToken, chatId, apiUrl } = config.telegram;
    const url = `${apiUrl.replace(/\/+$/, '')}/bot${botToken.reveal()}/sendMessage`;
    out.push({
      channel: 'telegram',
      url,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ chat_id: chatId, text: n.message, disable_web_page_preview: true }),
      },
      secrets: [url, botToken],
    });
  }
  if (config.healthchecksUrl && PING_EVENTS.has(n.event)) {
    const base = config.healthchecksUrl.reveal().replace(/\/+$/, '');
    const suffix = n.event === 'start' ? '/start' : n.event === 'failure' ? '/fail' : '';
    out.push({
      channel: 'healthchecks',
      url: `${base}${suffix}`,
      init: {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: n.message,
      },
      secrets: [config.healthchecksUrl],
    });
  }
  return out;
}

/**
 * What the daemon and `datasaver backup` send notifications through. Nothing a channel does (an HTTP
 * error, a timeout, a receiver that is down or never answers) can fail, delay or change the exit code of
 * a backup: `notify` returns at once and never throws, and `flush` never throws and is bounded.
 */
export interface NotificationSender {
  /**
   * Starts delivering `n` to every channel of `config` that takes its event, and returns at once; never
   * throws. Deliveries to one channel for one target go out in the order of these calls (`/start` before
   * `/fail`). A delivery that finally fails is logged (without its URL or tokens) and reported; one that
   * shutdown cut short is logged only.
   */
  notify(config: NotifyConfig, n: Notification): void;
  /**
   * Waits for the deliveries in flight, at most `timeoutMs`, or 1 s more once `signal` aborts (1 s if it
   * already has); then abandons the rest and sends nothing more. Never throws.
   */
  flush(timeoutMs: number, signal?: AbortSignal): Promise<void>;
}

export interface NotifierLog {
  /** A delivery that finally failed, or was abandoned at shutdown: channel, event, target, error. */
  warn(fields: Record<string, unknown>, message: string): void;
  /** A delivery that succeeded. */
  debug(fields: Record<string, unknown>, message: string): void;
}

export interface NotifierOptions {
  log: NotifierLog;
  /** Told of every delivery that finally failed (for a metric); not of those abandoned at shutdown. */
  onFailure?: (channel: string) => void;
  /** The HTTP client (tests replace it); a rejection counts as a network error. */
  fetch?: typeof fetch;
  /** Per attempt (10 s by default); an attempt that takes longer is aborted and counts as failed. */
  timeoutMs?: number;
  /** Tries per delivery (3 by default). */
  attempts?: number;
  /**
   * Before the second attempt (1 s by default); doubles after that. A `Retry-After` on the answer
   * lengthens it, up to a minute.
   */
  retryDelayMs?: number;
  /**
   * Waits `ms`, and rejects once `signal` aborts; with `unref`, the wait does not keep the process
   * alive. Timers by default; tests pass their own to observe the waits.
   */
  sleep?: (ms: number, signal: AbortSignal, options?: { unref: boolean }) => Promise<void>;
}

/**
 * The NotificationSender over HTTP. Each delivery is tried `attempts` times on a network error, a timeout,
 * HTTP 408, 429 and 5xx; other answers that are not 2xx are final, as a retry will not change them.
 */
export class Notifier implements NotificationSender {
  readonly #options: Required<Omit<NotifierOptions, 'onFailure'>> & Pick<NotifierOptions, 'onFailure'>;
  readonly #pending = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  /** The last delivery per channel and target: the next one waits for it, so `/start` precedes `/fail`. */
  readonly #last = new Map<string, Promise<void>>();

  constructor(options: NotifierOptions) {
    this.#options = {
      fetch: globalThis.fetch,
      timeoutMs: 10_000,
      attempts: 3,
      retryDelayMs: 1000,
      sleep: (ms, signal, o) => sleep(ms, undefined, { signal, ref: !o?.unref }),
      ...options,
    };
  }

  notify(config: NotifyConfig, n: Notification): void {
    for (const d of deliveries(config, n)) {
      const key = `${d.channel}\u0000${n.target}`;
      const previous = this.#last.get(key) ?? Promise.resolve();
      const p: Promise<void> = previous
        .then(() => this.#deliver(d, n))
        .finally(() => {
          this.#pending.delete(p);
          if (this.#last.get(key) === p) this.#last.delete(key);
        });
      this.#last.set(key, p);
      this.#pending.add(p);
    }
  }

  /** A Ctrl-C or SIGTERM (`signal`) must not wait the whole bound: 1 s more after it is enough. */
  async flush(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#pending.size === 0) return;
    const done = new AbortController();
    const wait = (ms: number) => this.#options.sleep(ms, done.signal, { unref: true });
    const bound = wait(timeoutMs);
    const aborted = signal?.aborted
      ? Promise.resolve()
      : signal && once(signal, 'abort', { signal: done.signal });
    const cut = aborted ? aborted.then(() => wait(1000)) : new Promise<never>(() => {});
    await Promise.race([Promise.allSettled([...this.#pending]), bound, cut]).catch(() => {});
    done.abort();
    this.#stop.abort();
  }

  async #deliver(d: Delivery, n: Notification): Promise<void> {
    const { log, attempts, timeoutMs, retryDelayMs } = this.#options;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let retry = true;
      let wait = retryDelayMs * 2 ** (attempt - 1);
      if (this.#stop.signal.aborted) break;
      try {
        const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#stop.signal]);
        const res = await this.#options.fetch(d.url, { ...d.init, signal });
        await res.body?.cancel().catch(() => {});
        if (res.ok) {
          log.debug({ channel: d.channel, event: n.event, target: n.target }, 'notification sent');
          return;
        }
        lastError = `HTTP ${res.status}`;
        // Client errors other than rate limiting will not change on a retry.
        retry = res.status >= 500 || res.status === 429 || res.status === 408;
        // Rate limits (Slack, Discord, Telegram) say how long to wait; up to a minute is honoured.
        const after = Number(res.headers.get('retry-after'));
        if (Number.isFinite(after) && after > 0) wait = Math.max(wait, Math.min(after * 1000, 60_000));
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause;
        lastError = cause ? `${errorMessage(err)}: ${errorMessage(cause)}` : errorMessage(err);
      }
      if (!retry || attempt === attempts || this.#stop.signal.aborted) break;
      try {
        await this.#options.sleep(wait, this.#stop.signal);
      } catch {
        break;
      }
    }
    const fields = {
      channel: d.channel,
      event: n.event,
      target: n.target,
      error: redact(lastError, d.secrets),
    };
    if (this.#stop.signal.aborted) {
      log.warn(fields, `${d.channel} notification abandoned at shutdown`);
      return;
    }
    this.#options.onFailure?.(d.channel);
    log.warn(fields, `${d.channel} notification failed`);
  }
}
