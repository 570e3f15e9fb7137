// The native interface's TypeScript declaration (types/native.d.ts) names exactly what the addon
// exports: the functions of the binding and the methods and properties of a NativeModel. Read
// with the TypeScript compiler, compared with the loaded addon's keys.
import test from 'ava';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { native } from '../lib/native.ts';

function declaredMembers(interfaceName: string): string[] {
  const file = new URL('../types/native.d.ts', import.meta.url);
  const source = ts.createSourceFile('native.d.ts', readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  for (const statement of source.statements) {
    if (ts.isInterfaceDeclaration(statement) && statement.name.text === interfaceName) {
      return statement.members.map((m) => (m.name && ts.isIdentifier(m.name) ? m.name.text : '?')).sort();
    }
  }
  throw new Error(`no interface ${interfaceName} in types/native.d.ts`);
}

test('NativeBinding declares exactly the addon\'s exports', (t) => {
  // `path` is added by the `bindings` package that loads the addon, not by the addon.
  const exported = Object.keys(native).filter((k) => k !== 'path').sort();
  t.deepEqual(declaredMembers('NativeBinding'), exported);
});

test('NativeModel declares exactly what a native model has', async (t) => {
  const model = await native.createModel(
    { block: 'basic', stem: 'cifar', shortcut: 'A', widths: [4, 4, 4], layers: [1, 1, 1], numClasses: 2, zeroInitResidual: false, groups: 1, widthPerGroup: 64, replaceStrideWithDilation: [false, false], inChannels: 3 },
    'cpu',
    0,
  );
  t.teardown(() => model.dispose());
  const keys = new Set<string>();
  for (let o: object | null = model; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor') keys.add(k);
  }
  t.deepEqual(declaredMembers('NativeModel'), [...keys].sort());
});
