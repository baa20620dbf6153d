/** A target's notification settings: where run events go. */
import { Secret } from '../util/secret.ts';
import { FIELDS, type FieldName } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';
import type { NotifyConfig } from './types.ts';
import { BOOLEAN, check, HTTP_URL, type Validator } from './values.ts';

/** The notification channels of a target; a channel missing half of what it needs is a problem. */
export function buildNotify(raw: RawTarget, problems: Problems): NotifyConfig {
  const url = (f: FieldName): Secret | undefined => {
    const v = check(raw[f], SECRET_URL, problems);
    return v === undefined ? undefined : new Secret(v);
  };
  const secret = (f: FieldName): Secret | undefined => {
    const v = raw[f];
    return v === undefined ? undefined : new Secret(String(v.value));
  };
  const ntfyUrl = url('ntfyUrl');
  if (raw.ntfyToken && !raw.ntfyUrl)
    problems.add(raw.ntfyToken.origin, `an ntfy token needs ${FIELDS.ntfyUrl.env} (the topic URL)`);
  const botToken = secret('telegramBotToken');
  const chatId = raw.telegramChatId ? String(raw.telegramChatId.value) : undefined;
  if ((botToken === undefined) !== (chatId === undefined)) {
    const given = raw.telegramBotToken ?? raw.telegramChatId;
    problems.add(
      given!.origin,
      `Telegram needs both ${FIELDS.telegramBotToken.env} and ${FIELDS.telegramChatId.env}`,
    );
  }
  const apiUrl = check(raw.telegramApiUrl, HTTP_URL, problems) ?? 'https://api.telegram.org';
  return {
    webhookUrl: url('webhookUrl'),
    slackWebhookUrl: url('slackWebhookUrl'),
    discordWebhookUrl: url('discordWebhookUrl'),
    ntfy: ntfyUrl ? { url: ntfyUrl, token: secret('ntfyToken') } : undefined,
    telegram: botToken && chatId ? { botToken, chatId, apiUrl } : undefined,
    healthchecksUrl: url('healthchecksUrl'),
    onSuccess: check(raw.notifyOnSuccess, BOOLEAN, problems) ?? false,
  };
}

/**
 * The Prometheus Pushgateway a one-shot run pushes its metrics to (`http://pushgateway:9091`), if any: a
 * secret, as the URL may carry credentials.
 */
export function buildPushgateway(raw: RawTarget, problems: Problems): Secret | undefined {
  const v = check(raw.pushgatewayUrl, SECRET_URL, problems);
  return v === undefined ? undefined : new Secret(v);
}

/** Where notifications go: an http(s) URL (it may carry credentials; it is a secret). */
const SECRET_URL: Validator<string> = {
  parse: (v) => {
    try {
      const u = new URL(String(v));
      return u.protocol === 'http:' || u.protocol === 'https:' ? String(v) : undefined;
    } catch {
      return undefined;
    }
  },
  expected: 'an http:// or https:// URL',
};
