#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { runReplay } from './cli/replay.js';
import { runViz } from './cli/viz.js';

function wholeNumber(min: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`must be a whole number of milliseconds ≥ ${min}`);
    }
    return n;
  };
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
  .command('viz')
  .description('print the machine definition as JSON for the Stately visualiser')
  .option('--mermaid', 'print a Mermaid state diagram instead')
  .option('--code', "print createMachine(...) code for Stately's editor (Import from code)")
  .action((options: { mermaid?: boolean; code?: boolean }) => {
    runViz(options);
  });

await program.parseAsync();
