import type { z } from 'zod';

/** "field: rule" for every problem zod found, joined with "; ". */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return `${path || '(message)'}: ${issue.message}`;
    })
    .join('; ');
}
