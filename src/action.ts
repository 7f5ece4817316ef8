import * as core from '@actions/core';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { z } from 'zod';
import { runPipeline, type PipelineInputs, type PipelineResult } from './pipeline.js';
import { parseOutput, type OutputSpec } from './output/targets.js';
import { ConfigError } from './config/model.js';
import type { Logger } from './log.js';

/** The action's inputs, read once into one object and checked before any I/O. */
export interface ActionInputs {
  config: string;
  variants: string[];
  push: boolean;
  tags: string[];
  registry: string;
  registryUsername: string;
  registryPassword: string;
  digestMap: string;
  outputs: OutputSpec[];
  platforms: string[];
  gzipLevel: number;
}

const list = (s: string) => s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);

const inputsSchema = z.object({
  config: z.string().min(1, 'config: give the path of the build file, e.g. oci-build.yml'),
  variants: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'variants: names are lowercase letters, digits, _ . -')),
  push: z.boolean(),
  tags: z.array(z.string()),
  registry: z.string().min(1),
  registryUsername: z.string(),
  registryPassword: z.string(),
  digestMap: z.string(),
  outputs: z.array(z.custom<OutputSpec>()),
  platforms: z.array(z.string()),
  gzipLevel: z.number().int().min(0, 'gzip-level: 0-9').max(9, 'gzip-level: 0-9'),
});

function bool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off', ''].includes(v)) return false;
  throw new Error(`input ${name}: "${value}" is not true or false`);
}

export function readInputs(): ActionInputs {
  const inputs: ActionInputs = {
    config: core.getInput('config') || 'oci-build.yml',
    variants: list(core.getInput('variants')),
    push: bool('push', core.getInput('push') || 'true'),
    tags: list(core.getInput('tags')),
    registry: core.getInput('registry') || 'ghcr.io',
    registryUsername: core.getInput('registry-username'),
    registryPassword: core.getInput('registry-password'),
    digestMap: core.getInput('digest-map') || 'image-digests.json',
    outputs: list(core.getInput('outputs')).map(parseOutput),
    platforms: list(core.getInput('platforms')),
    gzipLevel: Number(core.getInput('gzip-level') || '6'),
  };
  // Mask before anything can log it, even a validation error.
  if (inputs.registryPassword) core.setSecret(inputs.registryPassword);
  const checked = inputsSchema.safeParse(inputs);
  if (!checked.success) throw new Error(`invalid inputs: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return inputs;
}

export const coreLogger: Logger = {
  info: (m) => core.info(m),
  warn: (m) => core.warning(m),
  debug: (m) => core.debug(m),
  group: (name, fn) => core.group(name, fn),
};

export function pipelineInputs(a: ActionInputs, env: NodeJS.ProcessEnv): PipelineInputs {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch && !/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${epoch}"`);
  return {
    config: a.config,
    variants: a.variants,
    push: a.push,
    tags: a.tags,
    outputs: a.outputs,
    digestMap: a.digestMap,
    // The credentials go to the one registry they were given for, never elsewhere.
    credentials: a.registryUsername && a.registryPassword
      ? { [a.registry]: { username: a.registryUsername, password: a.registryPassword } }
      : {},
    dockerConfig: true,
    platforms: a.platforms,
    sourceDateEpoch: epoch ? Number(epoch) : undefined,
    gzipLevel: a.gzipLevel,
    workDir: join(env.RUNNER_TEMP || tmpdir(), 'oci-build'),
    env,
  };
}

/** Outputs are set here and only here. */
function setOutputs(result: PipelineResult): void {
  core.setOutput('digests', JSON.stringify(result.digests));
  core.setOutput('metadata', JSON.stringify(result.digestMap));
  core.setOutput('digest-map', result.digestMapPath ?? '');
}

export async function run(): Promise<void> {
  try {
    const inputs = readInputs();
    const result = await runPipeline(pipelineInputs(inputs, process.env), coreLogger);
    setOutputs(result);
  } catch (err) {
    if (err instanceof ConfigError) {
      // One annotation per problem, pointing at the build file line.
      for (const p of err.problems) {
        core.error(`${p.field ? `${p.field}: ` : ''}${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`, {
          title: 'oci-build: build file',
          file: p.file,
          startLine: p.line,
          startColumn: p.column,
        });
      }
    }
    core.setFailed((err as Error).message ?? String(err));
  }
}
