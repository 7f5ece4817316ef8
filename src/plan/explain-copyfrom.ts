import type { CopyStep } from '../config/model.js';
import { diffKeyParts, type JournalStep, type KeyChange } from '../cache/key-journal.js';
import type { Decision } from './explain-why.js';

/** What a `copy: from:` layer's fate depends on, as the simulation knows it before building. */
export interface CopyFromInput {
  step: CopyStep;
  fresh: boolean;
  cacheOn: boolean;
  prev: JournalStep | undefined;
  /** The key parts but the entries (layer format, compression, the step's own options), now. */
  options: Record<string, unknown>;
  /** The source variant: whether every layer is known (cached), else its first rebuilt layer. */
  source: { known: boolean; firstRebuilt?: { layer: number; label: string } };
  /** This variant's first rebuilt layer before this step (the directories the copy creates depend on it). */
  ownRebuilt: { layer: number; label: string } | undefined;
  /** The layer recorded last time is still in the cache. */
  prevCached: boolean;
}

/** A key value as the build file writes it: modes in octal, null as (default). */
function shown(field: string, json: string | undefined): string {
  if (json === undefined || json === 'null') return '(default)';
  return field === 'step.mode' ? Number(json).toString(8).padStart(4, '0') : json;
}

const withoutEntries = (parts: Record<string, unknown>) => Object.fromEntries(Object.entries(parts).filter(([k]) => k !== 'entries'));

/**
 * A copy from another variant is keyed by the files it copies, which exist only once that variant
 * is built. When that variant comes whole from the cache, its files are the last build's, and so
 * is this layer unless the step's options or the layers below it changed; otherwise the files are
 * known only once it is built, and the reason names the source's layer that is rebuilt.
 */
export function explainCopyFrom(w: CopyFromInput): { decision: Decision; reasons: string[]; changes: KeyChange[] } {
  const rebuilt = (reasons: string[], changes: KeyChange[] = []) => ({ decision: 'rebuilt' as const, reasons, changes });
  if (w.fresh) return rebuilt(['--rebuild-from: the layer cache is ignored from this step on (and in the variants built from this one)']);
  if (!w.cacheOn) return rebuilt(['the layer cache is off (--no-cache)']);
  if (!w.prev) return rebuilt(['no earlier build of this step is recorded in the cache directory']);
  const changes = diffKeyParts(withoutEntries(w.prev.parts), w.options);
  if (changes.length)
    return rebuilt(
      changes.map(
        (c) =>
          `${c.field.startsWith('step.') ? `step option ${c.field.slice(5)}` : c.field}: ${shown(c.field, c.was)} -> ${shown(c.field, c.now)}`,
      ),
      changes,
    );
  if (!w.source.known) {
    const at = w.source.firstRebuilt;
    const which = at ? `layer ${at.layer + 1}, ${at.label}, is rebuilt` : 'it has layers that are rebuilt';
    return {
      decision: 'unknown',
      reasons: [`depends on variant ${w.step.from}'s files: ${which}, so what this step copies is known only once it is built`],
      changes: [],
    };
  }
  if (w.ownRebuilt)
    return {
      decision: 'unknown',
      reasons: [
        `layer ${w.ownRebuilt.layer + 1}, ${w.ownRebuilt.label}, is rebuilt: the directories this copy creates are known only once it is built`,
      ],
      changes: [],
    };
  if (!w.prevCached) return rebuilt(['the layer recorded under this key is gone from the cache (its blob was removed)']);
  return { decision: 'cached', reasons: [], changes: [] };
}
