import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { STATE_NAMES } from '../../machines/states.js';
import { withCurrentDiagram } from '../../scripts/readme-diagram.js';

describe('the README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('shows the state diagram of the current machine (npm run docs regenerates it)', () => {
    expect(readme).toBe(withCurrentDiagram(readme));
  });

  it('names every state of the contract', () => {
    for (const state of STATE_NAMES) {
      expect(readme).toContain(`\`${state}\``);
    }
  });
});
