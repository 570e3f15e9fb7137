// Eager validation of every option and input, with one message shape throughout:
//   Expected positive integer for numClasses but received 1.5 of type number
import { inspect } from 'node:util';
import { InvalidArgumentError } from './errors.js';

/** "1.5 of type number", "'cuda:x' of type string", "[ 1, 2 ] of type object" */
export function describe(value: unknown): string {
  const shown = inspect(value, { depth: 1, breakLength: Infinity, maxArrayLength: 8, maxStringLength: 60 });
  return `${shown} of type ${value === null ? 'null' : typeof value}`;
}

export function invalid(expected: string, name: string, value: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid('positive integer', name, value);
  }
  return value;
}

export function nonNegativeInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid('non-negative integer', name, value);
  }
  return value;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid('boolean', name, value);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalid(`one of ${allowed.map((a) => `'${a}'`).join(', ')}`, name, value);
  }
  return value as T;
}

export function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('an object', name, value);
  }
  return value as Record<string, unknown>;
}

/** Rejects option names the function does not know (a typo must not be silently ignored). */
export function knownKeys(name: string, options: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new InvalidArgumentError(
        `Unknown option '${key}' for ${name}; expected one of: ${known.join(', ')}`,
      );
    }
  }
}

const devicePattern = /^(cpu|cuda(:\d+)?)$/;

export function device(name: string, value: unknown): string {
  if (typeof value !== 'string' || !devicePattern.test(value)) {
    throw invalid("'cpu', 'cuda' or 'cuda:N'", name, value);
  }
  return value;
}

/**
 * `table[key]` when key is the table's own property, else undefined: user input such as
 * 'constructor', 'toString' or '__proto__' must not find what every object inherits.
 */
export function ownEntry<T>(table: Readonly<Record<string, T>>, key: unknown): T | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** Sets `record[key]` as an own property even for a key like '__proto__' (from a file or a user). */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
