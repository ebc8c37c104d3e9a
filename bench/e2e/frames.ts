/** Where a profile's frames come from, shared by the CPU and the allocation summaries. */

/** A frame as V8's profiles name it. */
export interface Frame {
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
}

/** Where a frame's code lives, coarsely. */
export function areaOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native / builtin)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const own = /\/(src|machines|bench)\/(.+)$/.exec(url);
  if (own) return `${own[1]}/${own[2]?.split('/')[0]}`;
  return url;
}

/** "name  file:line" of a frame, file relative to node_modules or the project. */
export function keyOf(node: Frame): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const short = url
    .replace(/^.*\/node_modules\//, '')
    .replace(/^file:\/\/.*\/(src|machines|bench)\//, '$1/');
  return `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`;
}
