import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The folder structure README's layout section describes: which folder imports which (type
 * imports included), with no cycle between folders, output/ independent of build/, and config/
 * (the model and its front ends) independent of github/ except the tag grammar.
 */

const SRC = resolve(import.meta.dirname, '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Folder of a file under src/; of the top-level files, log.ts is a leaf everyone may import and
 * the others (pipeline, cli, action, runtime) are the entry points, '.'.
 */
const folderOf = (file: string) => (relative(SRC, file) === 'log.ts' ? 'log' : dirname(relative(SRC, file)));

/** file -> the src files it imports */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)[^'"]*?from\s+'(\.[^']+)'/gm)].map((m) =>
      resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')),
    );
    out.set(file, targets);
  }
  return out;
}

function folderEdges(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const [file, targets] of imports()) {
    for (const t of targets) {
      const [from, to] = [folderOf(file), folderOf(t)];
      if (from === to) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)!.add(to);
    }
  }
  return edges;
}

describe('source layout', () => {
  it('has no import cycle between folders', () => {
    const edges = folderEdges();
    const cycles: string[] = [];
    const walk = (node: string, trail: string[]): void => {
      for (const next of edges.get(node) ?? []) {
        if (trail.includes(next)) cycles.push([...trail.slice(trail.indexOf(next)), next].join(' -> '));
        else walk(next, [...trail, next]);
      }
    };
    for (const start of edges.keys()) walk(start, [start]);
    expect([...new Set(cycles)]).toEqual([]);
  });

  it('keeps sinks apart from the builder, and the model apart from GitHub (but the tag grammar)', () => {
    const offending: string[] = [];
    for (const [file, targets] of imports()) {
      const from = folderOf(file);
      for (const t of targets) {
        const to = folderOf(t);
        const name = relative(SRC, t);
        if (from === 'output' && to === 'build') offending.push(`${relative(SRC, file)} -> ${name}`);
        if (from === 'config' && to === 'github' && !['github/tags.ts', 'github/template.ts'].includes(name))
          offending.push(`${relative(SRC, file)} -> ${name}`);
      }
    }
    expect(offending).toEqual([]);
  });
});
