// Fails when the README's inputs/outputs tables and action.yml disagree (names, defaults).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

const action = parse(readFileSync('action.yml', 'utf8'));
const readme = readFileSync('README.md', 'utf8');

function table(heading) {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${heading}" section`);
  const body = readme.slice(start + heading.length + 5).split('\n## ')[0];
  const rows = new Map();
  for (const line of body.split('\n')) {
    const m = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const cells = m[2].split('|').map((c) => c.trim());
    rows.set(m[1], cells);
  }
  return rows;
}

const problems = [];
const inputs = table('Inputs');
for (const [name, spec] of Object.entries(action.inputs ?? {})) {
  const row = inputs.get(name);
  if (!row) {
    problems.push(`input "${name}" is in action.yml but not in the README's Inputs table`);
    continue;
  }
  const want = spec.default === undefined || spec.default === '' ? '' : `\`${spec.default}\``;
  const have = row[row.length - 1];
  if (have !== want && !(want === '' && (have === '' || have === '-')))
    problems.push(`input "${name}": README default ${have || '(empty)'} but action.yml has ${want || '(empty)'}`);
  if (!spec.description) problems.push(`input "${name}" has no description in action.yml`);
}
for (const name of inputs.keys())
  if (!(name in (action.inputs ?? {}))) problems.push(`README documents input "${name}" that action.yml does not have`);
const outputs = table('Outputs');
for (const [name, spec] of Object.entries(action.outputs ?? {})) {
  if (!outputs.has(name)) problems.push(`output "${name}" is in action.yml but not in the README's Outputs table`);
  if (!spec.description) problems.push(`output "${name}" has no description in action.yml`);
}
for (const name of outputs.keys())
  if (!(name in (action.outputs ?? {}))) problems.push(`README documents output "${name}" that action.yml does not have`);
if (problems.length) {
  console.error(problems.map((p) => `check-docs: ${p}`).join('\n'));
  process.exit(1);
}
console.log(`check-docs: README and action.yml agree (${inputs.size} inputs, ${outputs.size} outputs)`);
