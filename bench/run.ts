import { cpus, totalmem } from 'node:os';
import {
  heapPerFinalCall,
  heapPerRingingCall,
  heapPerRunningActor,
  replayRate,
  runtimePhases,
  xstateFloor,
} from './replay.js';

/**
 * `npm run bench -- <name>`: prints the machine, then one table per
 * measurement, as Markdown.
 */
const BENCHES: Record<string, () => Promise<Record<string, string | number>[]>> = {
  replay: async () => [
    await replayRate(),
    await runtimePhases(),
    await xstateFloor(),
    heapPerRingingCall(),
    heapPerRunningActor(),
    heapPerFinalCall(),
  ],
  e2e: async () => (await import('./e2e/e2e.js')).e2eBench(),
  webhook: async () => (await import('./webhook/webhook.js')).webhookBench(),
  partitions: async () => (await import('./e2e/partitions.js')).partitionsBench(),
  replicas: async () => (await import('./e2e/replicas.js')).replicasBench(),
};

function table(rows: Record<string, string | number>[]): string {
  return rows
    .map((row) => {
      const keys = Object.keys(row);
      const head = `| ${keys.join(' | ')} |\n|${keys.map(() => '---').join('|')}|`;
      return `${head}\n| ${keys.map((k) => row[k]).join(' | ')} |`;
    })
    .join('\n\n');
}

const name = process.argv[2] ?? 'replay';
const bench = BENCHES[name];
if (!bench) {
  process.stderr.write(`unknown benchmark "${name}"; one of: ${Object.keys(BENCHES).join(', ')}\n`);
  process.exit(2);
}
const cpu = cpus();
process.stdout.write(
  `## bench ${name}\n\nmachine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n\n`,
);
process.stdout.write(`${table(await bench())}\n`);
