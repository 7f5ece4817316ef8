#!/usr/bin/env node
// The image-types tool's lookup: a type name -> the image reference to pull. Built-in types come
// from the digest map the build wrote (its `ref`, image@digest: exactly what was built, whatever
// the tags say later); custom types from the user's own map of names to references.
//
//   node resolve.mjs TYPE DIGEST_MAP [CUSTOM_TYPES]
import { readFileSync } from 'node:fs';

const [type, digestMap, custom] = process.argv.slice(2);
if (!type || !digestMap) {
  process.stderr.write('usage: resolve.mjs TYPE DIGEST_MAP [CUSTOM_TYPES]\n');
  process.exit(2);
}
const builtIn = JSON.parse(readFileSync(digestMap, 'utf8'));
const customTypes = custom ? JSON.parse(readFileSync(custom, 'utf8')) : {};
const entry = builtIn[type];
if (entry) {
  // `image` is the repository and `digest` the manifest (or index): the parts, for tools that take them apart.
  process.stdout.write(`${JSON.stringify({ type, builtIn: true, ref: entry.ref, image: entry.image, digest: entry.digest })}\n`);
} else if (customTypes[type]) {
  process.stdout.write(`${JSON.stringify({ type, builtIn: false, ref: customTypes[type] })}\n`);
} else {
  const known = [...Object.keys(builtIn), ...Object.keys(customTypes)].sort().join(', ');
  process.stderr.write(`resolve.mjs: no image type "${type}" (known: ${known})\n`);
  process.exit(1);
}
