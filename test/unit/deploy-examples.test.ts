/**
 * The Dockerfile, the Compose example, .env.example and the Kubernetes manifests cannot be run here (no
 * Docker engine), so their settings are checked against the config parser: every DATASAVER_* name they
 * use exists, and the Compose sidecar's environment is a valid configuration.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { DAEMON_FIELDS, FIELDS } from '../../src/config/fields.ts';
import { parseConfig } from '../../src/config/parse.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

const KNOWN = new Set<string>(['DATASAVER_CONFIG', 'DATASAVER_DEBUG']);
for (const f of Object.values(FIELDS)) {
  KNOWN.add(f.env);
  if ('secret' in f && f.secret) KNOWN.add(`${f.env}_FILE`);
}
for (const f of Object.values(DAEMON_FIELDS)) KNOWN.add(f.env);

function namesIn(text: string): string[] {
  return [...new Set(text.match(/\bDATASAVER_[A-Z0-9_]+/g) ?? [])];
}

/** The DATASAVER_* variables of the Dockerfile's ENV instructions. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of read('Dockerfile').matchAll(/\b(DATASAVER_[A-Z0-9_]+)=(\S+)/g)) env[m[1]!] = m[2]!;
  return env;
}

describe('deployment examples', () => {
  it.each([
    'Dockerfile',
    'docker-compose.example.yml',
    '.env.example',
    'deploy/kubernetes/cronjob.yaml',
    'deploy/kubernetes/deployment.yaml',
  ])('%s uses only settings datasaver knows', (file) => {
    const names = namesIn(read(file));
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !KNOWN.has(n))).toEqual([]);
  });

  it('the Compose sidecar with .env.example is a valid configuration', () => {
    const env: Record<string, string> = {};
    for (const line of read('.env.example').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!;
    }
    const compose = parseYaml(read('docker-compose.example.yml')) as {
      services: Record<string, { environment: Record<string, string>; env_file?: string[] }>;
    };
    const sidecar = compose.services.backup!;
    // Compose's ${VAR:-default} substitution, from .env.
    const substituted = Object.fromEntries(
      Object.entries(sidecar.environment).map(([k, v]) => [
        k,
        v.replace(
          /\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g,
          (_, name: string, def?: string) => env[name] ?? def ?? '',
        ),
      ]),
    );
    // The image's ENV, then .env (env_file), then the service's environment.
    const config = parseConfig({
      env: { ...imageEnv(), ...env, ...substituted },
      readFile: () => '',
    });
    // The published port reaches the container's address, not its loopback.
    expect(config.daemon).toMatchObject({ metricsHost: '0.0.0.0', metricsPort: 9090 });
    expect(config.targets).toHaveLength(1);
    expect(config.targets[0]).toMatchObject({
      name: 'app',
      connection: { host: 'postgres', port: 5432, database: 'app', user: 'app' },
      destinations: [{ backend: 'local', path: '/backups' }],
      schedule: { cron: '0 2 * * *' },
      alertAfterHours: 26,
      // Weekly restore drills on a throwaway server (no drill server named).
      drill: { schedule: '0 4 * * 0', server: undefined },
    });
    expect(config.warnings).toEqual([]);
  });

  it('the image runs as a non-root user with a HEALTHCHECK through datasaver health', () => {
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["datasaver", "health"\]$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["tini", "--", "datasaver"\]$/m);
    expect(dockerfile).toMatch(/^FROM .* AS build$/m);
    // The image EXPOSEs its port for publishing: datasaver's loopback default is overridden explicitly.
    expect(imageEnv()).toMatchObject({ DATASAVER_METRICS_HOST: '0.0.0.0', DATASAVER_METRICS_PORT: '9090' });
  });

  it('the Kubernetes manifests are CronJobs running backup and drill, and a Deployment running the daemon', () => {
    const kinds = (file: string) =>
      parseAllDocuments(read(file)).map((d) => d.toJS() as { kind: string; spec: unknown });
    const [cron, drill] = kinds('deploy/kubernetes/cronjob.yaml');
    expect(cron).toMatchObject({
      kind: 'CronJob',
      spec: {
        concurrencyPolicy: 'Forbid',
        jobTemplate: { spec: { template: { spec: { containers: [{ args: ['backup'] }] } } } },
      },
    });
    // A failed drill (exit 5) fails its Job at once; the drill's server needs a writable /tmp.
    expect(drill).toMatchObject({
      kind: 'CronJob',
      spec: {
        schedule: '0 4 * * 0',
        jobTemplate: {
          spec: {
            podFailurePolicy: {
              rules: [{ action: 'FailJob', onExitCodes: { containerName: 'datasaver', values: [5] } }],
            },
            template: {
              spec: {
                containers: [
                  { name: 'datasaver', args: ['drill', 'latest'], volumeMounts: [{ mountPath: '/tmp' }] },
                ],
              },
            },
          },
        },
      },
    });
    const [deployment] = kinds('deploy/kubernetes/deployment.yaml') as {
      kind: string;
      spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
    }[];
    // The kubelet's probes and Prometheus reach the pod's address: the daemon must listen there too.
    expect(deployment!.spec.template.spec.containers[0]!.env).toContainEqual({
      name: 'DATASAVER_METRICS_HOST',
      value: '0.0.0.0',
    });
    expect(deployment!.spec.template.spec.containers[0]!.env).toContainEqual({
      name: 'DATASAVER_DRILL_SCHEDULE',
      value: '0 4 * * 0',
    });
    expect(deployment).toMatchObject({
      kind: 'Deployment',
      spec: {
        replicas: 1,
        template: {
          spec: { containers: [{ args: ['daemon'], readinessProbe: { httpGet: { path: '/ready' } } }] },
        },
      },
    });
  });
});
