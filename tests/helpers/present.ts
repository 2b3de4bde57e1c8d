/**
 * `value`, or a failure that names what is missing: for a lookup a test relies on (an array `find`,
 * an index, a regex group, an optional field), where a non-null assertion would fail later and vaguely.
 */
export function present<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}, found none`);
  return value;
}
