/**
 * What a stage knows while its instructions are converted: the environment and args visible to
 * expansion and RUN, and the settings the image config will get. A stage built FROM another
 * starts from that stage's final state (its args included, as BuildKit does); one built FROM an
 * image starts from the image's config.
 */
import type { ContainerConfig, Platform } from '../oci/types.js';
import { formatPlatform } from '../oci/platform.js';
import type { Lookup } from './expand.js';

export interface StageState {
  /** ENV in order (the base image's first). */
  env: Map<string, string>;
  /** Declared ARGs: a value, or undefined when declared without one. */
  args: Map<string, string | undefined>;
  user?: string;
  /** Absolute. */
  workdir: string;
  /** Set by SHELL (here or in a stage this one is built from). */
  shell?: string[];
  /** ONBUILD triggers this stage declares (they run in the stages built FROM it, not further). */
  onBuild: string[];
}

export function stateFromConfig(config: ContainerConfig | undefined): StageState {
  const env = new Map<string, string>();
  for (const e of config?.Env ?? []) {
    const i = e.indexOf('=');
    env.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  const shell = Array.isArray(config?.Shell) && config.Shell.length ? (config.Shell as string[]) : undefined;
  return {
    env,
    args: new Map(),
    onBuild: [],
    ...(config?.User ? { user: config.User } : {}),
    workdir: config?.WorkingDir || '/',
    ...(shell ? { shell } : {}),
  };
}

export function cloneState(s: StageState): StageState {
  return { ...s, env: new Map(s.env), args: new Map(s.args), onBuild: [...s.onBuild], ...(s.shell ? { shell: [...s.shell] } : {}) };
}

/** For expansion: ENV wins over an ARG of the same name. */
export function lookupIn(s: StageState): Lookup {
  return (name) => s.env.get(name) ?? s.args.get(name);
}

/** What a RUN sees on top of the starting image's Env: args with a value, then this stage's ENV. */
export function runEnv(s: StageState, ownEnv: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of s.args) if (v !== undefined && !s.env.has(k)) out[k] = v;
  for (const [k, v] of ownEnv) out[k] = v;
  return out;
}

/** BuildKit's automatic platform args (visible before the first FROM, and in a stage when declared). */
export function platformArgs(target: Platform, build: Platform): Map<string, string> {
  const m = new Map<string, string>();
  for (const [prefix, p] of [
    ['TARGET', target],
    ['BUILD', build],
  ] as const) {
    m.set(`${prefix}PLATFORM`, formatPlatform(p));
    m.set(`${prefix}OS`, p.os);
    m.set(`${prefix}ARCH`, p.architecture);
    m.set(`${prefix}VARIANT`, p.variant ?? '');
  }
  return m;
}
