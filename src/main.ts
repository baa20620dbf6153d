#!/usr/bin/env node
/** datasaver's executable: wires the process (argv, streams, signals) to the command line and exits. */
import { run } from './cli/program.ts';

async function main(): Promise<void> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    process.stderr.write(`\n${sig}: stopping (send again to exit at once)\n`);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.exitCode = await run(process.argv.slice(2), {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    signal: controller.signal,
  });
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Everything is done and reported; a stray handle (a child that ignored its kill, a socket) must not
  // keep the process alive past its exit code.
  setTimeout(() => process.exit(), 1000).unref();
}

await main();
