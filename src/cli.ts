#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { runReplay } from './cli/replay.js';
import { runServe } from './cli/serve.js';
import { runViz } from './cli/viz.js';

function wholeNumber(min: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`must be a whole number ≥ ${min}`);
    }
    return n;
  };
}

/**
 * The development tools (the Graph emulator) are loaded only by their own
 * command: the service's module graph never contains them, and the
 * production image leaves them out.
 */
async function loadTool<T>(name: string, load: () => Promise<T>): Promise<T | undefined> {
  try {
    return await load();
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    process.stderr.write(
      `callgate: the ${name} is a development tool, not part of this installation (the production image leaves it out)\n`,
    );
    process.exitCode = 2;
    return undefined;
  }
}

const program = new Command()
  .name('callgate')
  .description('Owns the lifecycle of incoming Microsoft Teams calls for calling bots.')
  .showHelpAfterError();

program
  .command('replay')
  .description(
    'replay a recorded event log (JSON Lines) through the call machine on a simulated clock, with no NATS and no Graph',
  )
  .argument('<file>', 'JSONL event log')
  .option('--json', 'print one JSON document {"calls": {...}} on stdout')
  .option('--summary', "print only the table of final states, not each call's transitions")
  .option(
    '--answer-timeout-ms <ms>',
    'the answer window (default: ANSWER_TIMEOUT_MS, else 15000)',
    wholeNumber(100),
  )
  .action(
    async (
      file: string,
      options: { json?: boolean; summary?: boolean; answerTimeoutMs?: number },
    ) => {
      process.exitCode = await runReplay(file, options);
    },
  );

program
  .command('serve')
  .description(
    'run the service: NATS JetStream in, Graph reject out (configured by environment variables)',
  )
  .action(async () => {
    process.exit(await runServe());
  });

program
  .command('emulate-graph')
  .description(
    'run a loopback Graph emulator: the reject and token routes, faults on request, a control API under /_emulator',
  )
  .option('--port <n>', 'port (0: a free one)', wholeNumber(0), 4010)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--latency-ms <ms>', 'added to every answer', wholeNumber(0))
  .option('--token-ttl-seconds <s>', 'lifetime of issued tokens', wholeNumber(1))
  .option('--client-id <id>', 'the only client id the token route accepts')
  .option('--client-secret <secret>', 'the only client secret the token route accepts')
  .option(
    '--answer-timeout-ms <ms>',
    'how long a placed call rings before the emulator ends it',
    wholeNumber(1),
  )
  .option('--log-level <level>', 'pino level', 'info')
  .action(
    async (options: {
      port: number;
      host: string;
      latencyMs?: number;
      tokenTtlSeconds?: number;
      clientId?: string;
      clientSecret?: string;
      answerTimeoutMs?: number;
      logLevel: string;
    }) => {
      const tool = await loadTool('Graph emulator', () => import('./tools/emulator/main.js'));
      await tool?.runEmulateGraph(options);
    },
  );

program
  .command('viz')
  .description('print the machine definition as JSON for the Stately visualiser')
  .option('--mermaid', 'print a Mermaid state diagram instead')
  .option('--code', "print createMachine(...) code for Stately's editor (Import from code)")
  .action((options: { mermaid?: boolean; code?: boolean }) => {
    runViz(options);
  });

await program.parseAsync();
