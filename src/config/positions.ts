/**
 * Mapping between paths in the parsed build file (['variants', 'app', 'steps', 0, 'mode'])
 * and positions in its YAML text, for problem messages.
 */
import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type Path = (string | number)[];

export interface LineCol {
  line: number;
  column: number;
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** `variants.app.steps[0].mode`; keys with other characters are quoted: `labels["org.x"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) s += s ? `.${seg}` : seg;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return key.value === null || key.value === undefined ? undefined : String(key.value);
  return undefined;
}

export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lc: LineCounter,
  ) {}

  private deref(n: unknown): unknown {
    return isAlias(n) ? n.resolve(this.doc) : n;
  }

  /**
   * The node at `path`, or the deepest existing ancestor when the path does not exist
   * (a missing key, or a key that comes in through a `<<` merge). With `preferKey`, the
   * key node of the last segment instead of its value (for unknown keys, variant names).
   */
  nodeAt(path: readonly (string | number)[], preferKey = false): Node | undefined {
    return this.walk(path, preferKey).found;
  }

  /** The node at exactly `path`, or undefined when it does not exist in the text. */
  exactNodeAt(path: readonly (string | number)[]): Node | undefined {
    const r = this.walk(path, false);
    return r.depth === path.length ? r.found : undefined;
  }

  private walk(path: readonly (string | number)[], preferKey: boolean): { found: Node | undefined; depth: number } {
    let node: unknown = this.doc.contents;
    let found: Node | undefined = isNode(node) ? node : undefined;
    let depth = 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      node = this.deref(node);
      if (isMap(node)) {
        // The last pair with that key: that is the one whose value YAML keeps.
        let pair: (typeof node.items)[number] | undefined;
        for (let j = node.items.length - 1; j >= 0; j--) {
          if (keyText(node.items[j]!.key) === String(seg)) {
            pair = node.items[j];
            break;
          }
        }
        if (!pair) break;
        if ((last && preferKey) || !isNode(pair.value)) {
          if (isNode(pair.key)) found = pair.key;
          depth = i + 1;
          break;
        }
        node = pair.value;
        found = pair.value;
        depth = i + 1;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (!isNode(item)) break;
        node = item;
        found = item;
        depth = i + 1;
      } else {
        break;
      }
    }
    return { found, depth };
  }

  offsetPos(offset: number): LineCol {
    const { line, col } = this.lc.linePos(offset);
    return { line, column: col };
  }

  pos(path: readonly (string | number)[], preferKey = false): LineCol {
    const n = this.nodeAt(path, preferKey);
    return this.offsetPos(n?.range?.[0] ?? 0);
  }

  /** How YAML wrote the scalar at path: 'OCT' for 0o755, 'HEX' for 0x1ed, ... */
  scalarFormat(path: readonly (string | number)[]): string | undefined {
    const n = this.deref(this.exactNodeAt(path));
    return isScalar(n) ? n.format : undefined;
  }

  /** The keys of the map at path, in file order (JS objects put integer-like keys first). */
  keysInOrder(path: readonly (string | number)[]): string[] {
    const n = this.deref(this.exactNodeAt(path));
    if (!isMap(n)) return [];
    const out: string[] = [];
    for (const p of n.items) {
      const k = keyText(p.key);
      if (k !== undefined && k !== '<<' && !out.includes(k)) out.push(k);
    }
    return out;
  }

  /** The path of the innermost key or item at or just before `offset` (for YAML errors). */
  pathAt(offset: number): Path {
    const path: Path = [];
    let node: unknown = this.doc.contents;
    for (;;) {
      if (isMap(node)) {
        // The pair containing offset, else the last one starting before it (an error just
        // after a key, e.g. a bad indentation, belongs to that key).
        const before = node.items.filter((p) => isNode(p.key) && p.key.range != null && p.key.range[0] <= offset);
        const pair = before.at(-1);
        const k = pair ? keyText(pair.key) : undefined;
        if (!pair || k === undefined) return path;
        path.push(k);
        node = pair.value;
      } else if (isSeq(node)) {
        const i = node.items.findLastIndex((it) => isNode(it) && it.range != null && it.range[0] <= offset);
        if (i < 0) return path;
        path.push(i);
        node = node.items[i];
      } else {
        return path;
      }
    }
  }
}
