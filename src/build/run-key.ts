import type { RunStep, VariantSpec } from '../config/model.js';
import type { ImageConfig } from '../oci/types.js';

/**
 * What a run: step's layer is looked up by (before the producer adds compression and
 * timestamp): the file system it starts from (every diffID so far), the step, and the
 * environment it runs in. One function for the builder and `plan --explain`, so the
 * explanation computes the very key the build will.
 */
export function runStepKeyParts(
  step: RunStep,
  parentDiffIds: readonly string[],
  platform: string,
  parentConfig: ImageConfig,
  v: Pick<VariantSpec, 'env'>,
  sourceDateEpoch: number | undefined,
  /** RUN --mount's part (src/build/run-mounts.ts mountKeyParts); absent when the step has none. */
  mounts?: unknown[],
): Record<string, unknown> {
  return {
    kind: 'run',
    parent: [...parentDiffIds],
    platform,
    step: {
      command: step.command,
      shell: step.shell ?? null,
      env: step.env,
      user: step.user ?? null,
      workdir: step.workdir ?? null,
      network: step.network,
    },
    image: {
      env: parentConfig.config?.Env ?? [],
      user: parentConfig.config?.User ?? '',
      workdir: parentConfig.config?.WorkingDir ?? '',
      shell: parentConfig.config?.Shell ?? null,
    },
    // A Dockerfile's RUN carries its own environment (ownEnv): the variant's is already in it.
    variantEnv: step.ownEnv ? {} : v.env,
    sourceDateEpoch: sourceDateEpoch ?? null,
    ...(mounts?.length ? { mounts } : {}),
  };
}
