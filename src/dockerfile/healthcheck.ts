/**
 * HEALTHCHECK into the config's Healthcheck, as Docker writes it: `NONE` disables an inherited
 * check; `CMD` in exec form gives ["CMD", ...], in shell form ["CMD-SHELL", "..."]; durations in
 * nanoseconds, zero values left out.
 */
import type { VariantSpec } from '../config/model.js';
import { InstructionError, jsonList, type Instruction } from './instructions.js';

type HealthcheckInstruction = Extract<Instruction, { keyword: 'HEALTHCHECK' | 'ONBUILD' }>;

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("30s", "1m30s", "500ms") in nanoseconds. */
export function durationNs(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return undefined;
  let ns = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(m[1]) * UNIT_NS[m[2]!]!;
  return Math.round(ns);
}

export function healthcheck(ins: HealthcheckInstruction, word: (w: string) => string): NonNullable<VariantSpec['healthcheck']> {
  const fail = (m: string, hint?: string): never => {
    throw new InstructionError(ins.pos, 'HEALTHCHECK', m, hint);
  };
  if (/^none$/i.test(ins.rest.trim())) {
    if (ins.flags.length) fail('HEALTHCHECK NONE takes no options');
    return { Test: ['NONE'] };
  }
  const m = /^cmd\s+([\s\S]+)$/i.exec(ins.rest.trim());
  if (!m) return fail('HEALTHCHECK needs CMD command or NONE', 'write e.g. HEALTHCHECK --interval=30s CMD curl -f http://localhost/');
  const exec = jsonList(m[1]!);
  const out: NonNullable<VariantSpec['healthcheck']> = { Test: exec ? ['CMD', ...exec] : ['CMD-SHELL', m[1]!] };
  const keys: Record<string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'> = {
    interval: 'Interval',
    timeout: 'Timeout',
    'start-period': 'StartPeriod',
    'start-interval': 'StartInterval',
  };
  for (const f of ins.flags) {
    const value = word(f.value ?? '');
    if (f.name === 'retries') {
      if (!/^\d+$/.test(value)) fail(`--retries=${value} is not a whole number`);
      if (Number(value) > 0) out.Retries = Number(value);
      continue;
    }
    const ns = durationNs(value);
    if (ns === undefined) fail(`--${f.name}=${value} is not a duration`, 'write e.g. 30s, 1m30s or 500ms');
    if (ns! > 0) out[keys[f.name]!] = ns!;
  }
  return out;
}
