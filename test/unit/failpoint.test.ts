/**
 * The failpoint test hook: armed by DATASAVER_FAILPOINT, `kill` ends the process by SIGKILL at that
 * point, `pause` announces the point on stderr and holds there until SIGCONT, and an unarmed point or an
 * unset variable changes nothing. A malformed setting or an unknown name fails loudly, before any point
 * is reached, instead of injecting nothing.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../src/util/failpoint.ts', import.meta.url));

/** Two real points, passed in this order by the script below, and a third it never passes. */
const A = 'backup.before-manifest';
const B = 'backup.dumping';
const OTHER = 'restore.spooled';

/**
 * Runs a script that checks the setting, then passes failpoints A and B, printing after each, with
 * DATASAVER_FAILPOINT = spec.
 */
function run(spec: string | undefined, onStderr?: (text: string, pid: number) => void) {
  const script = `
    const { checkFailpoints, failpoint, failpointAfterFirst } = await import(${JSON.stringify(MODULE)});
    checkFailpoints();
    console.log('start');
    await failpoint('${A}');
    console.log('after a');
    for await (const x of failpointAfterFirst('${B}', ['x1', 'x2'])) console.log(x);
    console.log('end');
  `;
  const env = { PATH: process.env.PATH, ...(spec === undefined ? {} : { DATASAVER_FAILPOINT: spec }) };
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    onStderr?.(stderr, child.pid!);
  });
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

describe('failpoint', () => {
  it('does nothing when unset or when another point is armed', async () => {
    for (const spec of [undefined, '', `${OTHER}=kill`]) {
      const res = await run(spec);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toBe('start\nafter a\nx1\nx2\nend\n');
    }
  });

  it('kill: the process dies by SIGKILL at that point', async () => {
    const res = await run(`${A}=kill`);
    expect(res.signal).toBe('SIGKILL');
    expect(res.stdout).toBe('start\n');
  });

  it('kill after the first item of a stream', async () => {
    const res = await run(`${OTHER}=pause, ${B}=kill`);
    expect(res.signal).toBe('SIGKILL');
    expect(res.stdout).toBe('start\nafter a\nx1\n');
  });

  it('pause: says where it stopped on stderr and goes on after SIGCONT', async () => {
    let continued = false;
    const res = await run(`${B}=pause`, (text, pid) => {
      if (!continued && text.includes(`failpoint ${B}\n`)) {
        continued = true;
        process.kill(pid, 'SIGCONT');
      }
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe(`failpoint ${B}\n`);
    expect(res.stdout).toBe('start\nafter a\nx1\nx2\nend\n');
  });

  it('a malformed setting is an error before any point, not a run without faults', async () => {
    const res = await run(`${B}=explode`);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`DATASAVER_FAILPOINT: '${B}=explode' is not name=kill or name=pause`);
  });

  it('an unknown name is an error before any point, naming the known ones', async () => {
    const res = await run(`${OTHER}=pause,backup.dumpign=kill`);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(
      "DATASAVER_FAILPOINT: there is no failpoint 'backup.dumpign'; the failpoints: ",
    );
    expect(res.stderr).toContain(B);
  });
});
