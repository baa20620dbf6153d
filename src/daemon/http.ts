/**
 * The daemon's one HTTP port: `/health` (JSON, 200 or 503), `/ready` (200 once the scheduler runs) and
 * `/metrics` (Prometheus text). `handle` is a plain function of method and path, tested without a socket;
 * `serve` binds it to a port.
 */
import { createServer, type Server } from 'node:http';
import { errorMessage } from '../errors.ts';

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

/** Listens on `port` (all interfaces unless `host` is given); resolves once bound. */
export async function serve(endpoints: Endpoints, port: number, host: string | undefined): Promise<Server> {
  const server = createServer((req, res) => {
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
  });
  // A scraper holding a keep-alive connection must not keep the daemon from exiting.
  server.keepAliveTimeout = 5000;
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
