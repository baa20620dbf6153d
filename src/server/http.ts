/**
 * The daemon's one HTTP port: `/health` (JSON, 200 or 503), `/ready` (200 once the scheduler runs) and
 * `/metrics` (Prometheus text). `handle` is a plain function of method and path, tested without a socket;
 * `serve` binds it to a port.
 */
import { createServer, type Server } from 'node:http';
import { errorMessage } from '../util/errors.ts';

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Endpoints {
  health(): { httpStatus: number; report: unknown };
  ready(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export async function handle(method: string, url: string, endpoints: Endpoints): Promise<HttpResponse> {
  const path = new URL(url, 'http://localhost').pathname.replace(/\/+$/, '') || '/';
  if (method !== 'GET' && method !== 'HEAD') {
    return {
      status: 405,
      headers: { allow: 'GET, HEAD', 'content-type': JSON_TYPE },
      body: '{"error":"method not allowed"}\n',
    };
  }
  switch (path) {
    case '/health':
    case '/healthz': {
      const { httpStatus, report } = endpoints.health();
      return {
        status: httpStatus,
        headers: { 'content-type': JSON_TYPE },
        body: `${JSON.stringify(report, null, 2)}\n`,
      };
    }
    case '/ready':
    case '/readyz': {
      const ready = endpoints.ready();
      return {
        status: ready ? 200 : 503,
        headers: { 'content-type': JSON_TYPE },
        body: `${JSON.stringify({ ready })}\n`,
      };
    }
    case '/metrics': {
      const m = await endpoints.metrics();
      return { status: 200, headers: { 'content-type': m.contentType }, body: m.body };
    }
    default:
      return {
        status: 404,
        headers: { 'content-type': JSON_TYPE },
        body: `${JSON.stringify({ error: 'not found', endpoints: ['/health', '/ready', '/metrics'] })}\n`,
      };
  }
}

/**
 * What the port allows. Its clients are a few probes and a scraper, each with one short request; anyone
 * else who can reach it must not be able to hold it, or hold the process's file descriptors (a backup
 * needs them to spawn its dump tool and open files). Beyond `maxConnections`, new connections are closed
 * at once; a connection that sends nothing for `idleTimeoutMs` is closed; headers must arrive within
 * `headersTimeoutMs` and the whole request within `requestTimeoutMs`.
 */
export const HTTP_LIMITS = {
  maxConnections: 32,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  // A scraper holding a keep-alive connection must not keep the daemon from exiting.
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
} as const;

/**
 * Listens on `host`:`port` with HTTP_LIMITS; resolves once bound. `onDrop` is told of every connection
 * closed unserved because `maxConnections` were open.
 */
export async function serve(
  endpoints: Endpoints,
  port: number,
  host: string,
  onDrop: () => void = () => {},
): Promise<Server> {
  const server = createServer(
    {
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
      // How often the two timeouts above are enforced (30 s by default, longer than they are).
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      handle(req.method ?? 'GET', req.url ?? '/', endpoints).then(
        (r) => {
          res.writeHead(r.status, { ...r.headers, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : r.body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': JSON_TYPE });
          res.end(`${JSON.stringify({ error: errorMessage(err) })}\n`);
        },
      );
    },
  );
  server.maxConnections = HTTP_LIMITS.maxConnections;
  server.on('drop', onDrop);
  // With no 'timeout' listener, Node destroys a socket that has been idle this long.
  server.timeout = HTTP_LIMITS.idleTimeoutMs;
  // A connection past its header or request timeout (or sending garbage) is closed at once. Node's own
  // default answers it instead, and a connection that never sent a byte then stays open, idle timer and
  // all, for as long as the client likes.
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
