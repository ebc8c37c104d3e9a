import { readFileSync, writeFileSync } from 'node:fs';
import { withCurrentDiagram } from './readme-diagram.js';

const path = new URL('../README.md', import.meta.url);
writeFileSync(path, withCurrentDiagram(readFileSync(path, 'utf8')));
process.stdout.write('README.md: state diagram regenerated from machines/call.machine.ts\n');
