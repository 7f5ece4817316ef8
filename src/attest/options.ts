/** `provenance: true | false | mode=min | mode=max` (also plain `min` / `max`), as docker/build-push-action spells it. */
export function parseProvenance(value: string): false | 'min' | 'max' {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on', 'mode=min', 'min'].includes(v)) return 'min';
  if (['mode=max', 'max'].includes(v)) return 'max';
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new Error(`provenance: "${value}" is not true, false, mode=min or mode=max`);
}

export function parseSbom(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new Error(`sbom: "${value}" is not true or false`);
}
