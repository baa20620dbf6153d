/**
 * An HTTP proxy between datasaver and the test S3 server that injects faults into chosen requests: an
 * error status (503, 429...), a connection dropped before any answer, a response body cut short, or a
 * response rewritten (a service that reports another ETag, or bytes that changed on the way back). The
 * rule sees every request in order, so a test can fail "the second part upload" deterministically.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';

export type Fault =
  | { status: number; code?: string }
  | { drop: true }
  | { truncateAfter: number }
  /** The request reaches the server and is done there; its answer never comes back. */
  | { loseAnswer: true }
  /** The whole response body in, the body to send out; `headers` may be changed in place. */
  | { rewrite: (body: Buffer, headers: IncomingHttpHeaders) => Buffer };

export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=2&uploadId=...`. */
  url: string;
  /** 1-based position among all requests the proxy has seen. */
  n: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Every request seen, with the fault injected (if any). */
  log: (ProxiedRequest & { fault?: Fault })[];
  setRule(rule: (req: ProxiedRequest) => Fault | undefined): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let rule: (req: ProxiedRequest) => Fault | undefined = () => undefined;
  const log: FaultProxy['log'] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const info: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', n: log.length + 1 };
    const fault = rule(info);
    log.push({ ...info, fault });
    if (fault && 'drop' in fault) {
      req.socket.destroy();
      return;
    }
    if (fault && 'status' in fault) {
      req.resume();
      req.on('end', () => {
        const code = fault.code ?? (fault.status === 429 ? 'SlowDown' : 'ServiceUnavailable');
        res.writeHead(fault.status, { 'content-type': 'application/xml', connection: 'close' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`,
        );
      });
      return;
    }
    const upstreamReq = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upstreamRes) => {
        if (fault && 'loseAnswer' in fault) {
          upstreamRes.resume();
          upstreamRes.on('end', () => res.socket?.destroy());
          return;
        }
        if (fault && 'rewrite' in fault) {
          buffer(upstreamRes).then(
            (original) => {
              const headers = { ...upstreamRes.headers };
              delete headers['transfer-encoding'];
              const body = fault.rewrite(original, headers);
              res.writeHead(upstreamRes.statusCode ?? 502, { ...headers, 'content-length': body.length });
              res.end(body);
            },
            () => res.socket?.destroy(),
          );
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        if (!fault || !('truncateAfter' in fault)) {
          upstreamRes.pipe(res);
          return;
        }
        let sent = 0;
        upstreamRes.on('data', (chunk: Buffer) => {
          if (sent >= fault.truncateAfter) return;
          const part = chunk.subarray(0, fault.truncateAfter - sent);
          sent += part.length;
          res.write(part);
          if (sent >= fault.truncateAfter) {
            upstreamRes.destroy();
            res.socket?.destroy();
          }
        });
        upstreamRes.on('end', () => res.end());
      },
    );
    upstreamReq.on('error', () => res.socket?.destroy());
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    log,
    setRule: (r) => {
      rule = r;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An ETag that is no MD5, as services return under SSE-KMS, in a response's header and XML body. */
export function opaqueEtag(body: Buffer, headers: IncomingHttpHeaders): Buffer {
  if (headers.etag) headers.etag = '"kms-0123456789"';
  return Buffer.from(body.toString('utf8').replace(/<ETag>[^<]*<\/ETag>/, '<ETag>"kms-0123456789"</ETag>'));
}

/** The body with one byte changed in its middle. */
export function flipByte(body: Buffer): Buffer {
  const out = Buffer.from(body);
  if (out.length > 0) out[out.length >> 1]! ^= 0xff;
  return out;
}

/** Is this request a CompleteMultipartUpload (POST with uploadId)? */
export function isCompleteUpload(req: ProxiedRequest): boolean {
  return req.method === 'POST' && /[?&]uploadId=/.test(req.url);
}

/** Is this request an UploadPart (PUT with partNumber)? */
export function isPartUpload(req: ProxiedRequest): boolean {
  return req.method === 'PUT' && /[?&]partNumber=/.test(req.url);
}
