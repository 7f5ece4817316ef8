import type { Step } from '../config/model.js';
import type { LayerEntry } from '../layer/types.js';
import { FsView } from './fsview.js';
import { stepEntries, type Owner, type StepContext } from './steps.js';

/**
 * A step's entries in two halves, so that its layer can be keyed without the file system below
 * it (a fresh runner would have to download and scan the base for that):
 * - the probe: the entries the step makes on an empty file system, every directory and parent
 *   included, with a stand-in owner (one walk of the build context; no base needed);
 * - settle: the real entries from the probe and the file system below (directories that exist
 *   there are left out, so they keep their owner and mode; the owner is resolved).
 * For the steps probeable() accepts, stepEntries gives exactly settle(probe) (the unit test
 * step-probe.test.ts checks it against stepEntries), so the file system below and its users
 * enter a layer only through those two rules: the layers below (their diffIDs) and the probe
 * decide the layer (src/build/chain-key.ts).
 */

/** An owner no build file names (uid and gid 2^32-3): which entries take the step's owner. */
export const PROBE_OWNER: Owner = { uid: 4294967293, gid: 4294967293 };

/**
 * Steps whose entries depend on the file system below only through existing directories and
 * the owner: not a copy from another variant (its own alias keys it), not an archive unpacked
 * (its entries keep the archive's owners), and with Docker's rules only a copy that goes into
 * its destination as a directory anyway (else a destination that is a directory below changes
 * where the file goes).
 */
export function probeable(step: Step): boolean {
  if (step.kind === 'run') return false;
  if (step.kind !== 'copy') return true;
  if (step.from !== undefined || step.extract) return false;
  return !step.dockerRules || step.to.endsWith('/') || step.sources.length > 1 || step.sources.some((s) => s.isGlob);
}

/** The probe: the step's entries on an empty file system, the step's owner as PROBE_OWNER. */
export function probeEntries(step: Step, ctx: Omit<StepContext, 'fs' | 'resolveOwner' | 'variantRoot'>): Promise<LayerEntry[]> {
  return stepEntries(step, { ...ctx, fs: new FsView(), resolveOwner: async () => PROBE_OWNER });
}

/** The real entries of a probed step on the file system `fs`; `resolveOwner` is asked for the step's owner. */
export async function settleEntries(
  step: Step,
  probe: readonly LayerEntry[],
  fs: FsView,
  resolveOwner: (owner: string) => Promise<Owner>,
): Promise<LayerEntry[]> {
  const owner = step.kind !== 'run' && step.owner ? await resolveOwner(step.owner) : undefined;
  const out: LayerEntry[] = [];
  for (const e of probe) {
    if (e.type === 'dir' && fs.has(e.path)) continue;
    out.push(owner && e.uid === PROBE_OWNER.uid && e.gid === PROBE_OWNER.gid ? { ...e, uid: owner.uid, gid: owner.gid } : e);
  }
  return out;
}
