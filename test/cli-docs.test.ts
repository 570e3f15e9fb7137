// The command line's flags agree between the code, each command's help and the README: every flag a
// usage text shows is one its command parses, every flag a command parses is in its usage, and
// every `npx resnet ...` line of the README parses with its command's own options.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { commands } from '../bin/commands.ts';

const flagsIn = (text: string) => new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));

test('each usage text shows exactly the flags its commands parse', (t) => {
  // Commands that share a usage text (train and eval; plot and experiment) are checked together.
  const byUsage = new Map<string, Set<string>>();
  for (const command of Object.values(commands)) {
    const known = byUsage.get(command.usage) ?? new Set<string>();
    for (const name of Object.keys(command.options)) known.add(name);
    byUsage.set(command.usage, known);
  }
  for (const [name, command] of Object.entries(commands)) {
    const shown = flagsIn(command.usage);
    for (const option of Object.keys(command.options)) t.true(shown.has(option), `${name}: --${option} is parsed but not in its help`);
  }
  for (const [usage, known] of byUsage) {
    for (const flag of flagsIn(usage)) t.true(known.has(flag), `--${flag} is in the help but no command of it parses it:\n${usage}`);
  }
});

/** The README's command lines: `npx resnet <command> ...`, continuation lines joined, comments dropped. */
function readmeCommandLines(): string[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8').replace(/\\\n\s*/g, ' ');
  const lines: string[] = [];
  for (const block of readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
    if (!['sh', 'bash', ''].includes(block[1]!)) continue;
    for (const raw of block[2]!.split('\n')) {
      for (const part of raw.split(/;|&&/)) {
        const line = part.replace(/\s#.*$/, '').trim();
        const at = line.indexOf('npx resnet ');
        if (at >= 0) lines.push(line.slice(at + 'npx resnet '.length));
      }
    }
  }
  return lines;
}

test('every README command line parses with its command\'s options', (t) => {
  const lines = readmeCommandLines();
  t.true(lines.length >= 15, `found ${lines.length} command lines`);
  for (const line of lines) {
    if (line.startsWith('<command>') || line.startsWith('--version')) continue;
    // Optional parts are written [--flag VALUE]; `...` stands for flags shown elsewhere.
    const words = line.replace(/[[\]]/g, ' ').split(/\s+/).filter((w) => w !== '' && w !== '...' && w !== '|');
    const [name, ...args] = words;
    const command = commands[name!];
    if (!command) {
      t.fail(`README: unknown command '${name}' in: npx resnet ${line}`);
      continue;
    }
    t.notThrows(() => parseArgs({ args, options: command.options, allowPositionals: true, strict: true }), `npx resnet ${line}`);
  }
});

test('the README links only to files the package ships', (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[] };
  // npm always ships these, whatever "files" says.
  const always = ['LICENSE', 'README.md', 'package.json'];
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
  t.true(links.length >= 4, `found ${links.length} links`);
  for (const link of links) {
    t.notThrows(() => readFileSync(new URL(`../${link}`, import.meta.url)), `README links to ${link}, which does not exist`);
    const shipped = always.includes(link) || pkg.files.some((f) => (f.endsWith('/') ? link.startsWith(f) : link === f));
    t.true(shipped, `README links to ${link}, which package.json "files" does not ship`);
  }
});
