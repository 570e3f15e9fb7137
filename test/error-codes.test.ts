// One list of error codes: the addon's (native/core/types.h, namespace `codes`) is the list that
// lib/errors.ts maps to classes, no other native file writes a code of its own, and every class
// carries the code it is mapped from.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromNative, nativeErrorClasses } from '../lib/errors.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the C++ codes and the TypeScript classes are the same list', (t) => {
  const header = readFileSync(join(root, 'native/core/types.h'), 'utf8');
  const block = /namespace codes \{([\s\S]*?)\}/.exec(header)?.[1] ?? '';
  const cpp = [...block.matchAll(/"(ERR_RESNET_[A-Z_]+)"/g)].map((m) => m[1]!).sort();
  t.true(cpp.length >= 5, `codes in types.h: ${cpp.join(', ')}`);
  t.deepEqual(Object.keys(nativeErrorClasses).sort(), cpp);
  for (const code of cpp) {
    const error = fromNative(Object.assign(new Error('x'), { code }));
    t.is(error.code, code, `${code} becomes a ${error.name} with that code`);
  }
});

test('no native file spells an error code outside types.h', (t) => {
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(cc|cpp|h|hpp)$/.test(entry.name) && !path.endsWith(join('core', 'types.h'))) {
        const text = readFileSync(path, 'utf8').replace(/\/\/.*$/gm, ''); // comments may name codes
        if (/"ERR_RESNET_/.test(text)) offenders.push(path.slice(root.length));
      }
    }
  };
  walk(join(root, 'native'));
  t.deepEqual(offenders, []);
});
