import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

// Both packages are CommonJS with a default export; require() sidesteps the interop typing.
const require = createRequire(import.meta.url);
interface ValidateFn {
  (doc: unknown): boolean;
  errors?: { instancePath: string; message?: string }[] | null;
}
interface AjvLike {
  addSchema(s: object, key: string): void;
  getSchema(id: string): ValidateFn | undefined;
  compile(s: object): ValidateFn;
}
const Ajv04 = require('ajv-draft-04') as new (opts: object) => AjvLike;
const addFormats = require('ajv-formats') as (a: AjvLike) => void;

/** Validates documents against the official OCI image-spec JSON schemas in ../shared. */
const DIR = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'oci-image-spec-schemas');

type Kind = 'manifest' | 'index' | 'config' | 'layout';
const FILES: Record<Kind, string> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  layout: 'image-layout-schema.json',
};

function load(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(DIR, name), 'utf8')) as Record<string, unknown>;
}

let ajv: AjvLike | undefined;

function instance(): AjvLike {
  if (ajv) return ajv;
  const a = new Ajv04({ allErrors: true, strict: false });
  addFormats(a);
  // The schemas refer to each other by relative names resolved against their (nested) ids,
  // which live under several bases; register the shared definitions under each.
  const bases = new Set<string>();
  for (const f of Object.values(FILES).concat(['content-descriptor.json'])) {
    for (const m of readFileSync(join(DIR, f), 'utf8').matchAll(/"id":\s*"(https:[^"]*)"/g)) bases.add(m[1]!.replace(/[^/]*$/, ''));
  }
  for (const base of bases) {
    for (const f of ['defs.json', 'defs-descriptor.json', 'content-descriptor.json']) {
      const s = load(f);
      delete s.id;
      a.addSchema(s, `${base}${f}`);
    }
  }
  ajv = a;
  return a;
}

export function validateOci(kind: Kind, doc: unknown): string[] {
  const a = instance();
  const schema = load(FILES[kind]);
  const v = a.getSchema(String(schema.id)) ?? a.compile(schema);
  if (v(doc)) return [];
  return (v.errors ?? []).map((e) => `${kind}${e.instancePath} ${e.message}`);
}
