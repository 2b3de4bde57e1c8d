/**
 * A small parser and evaluator for the ARM template expression language, enough to check
 * deploy/azuredeploy.json without Azure: `[func('literal', 1).prop[0]]`, string escapes (`''`), and
 * `[[` for a literal bracket. ARM evaluates `if()` lazily (only the chosen branch), which is what lets a
 * template guard `reference()`/`listKeys()` of a conditional resource; the evaluator does the same.
 * Values that derive from a secret carry a taint (`SecretValue`) through `concat`/`format`, so checks can
 * tell where a setting's value came from.
 */

export type ArmNode =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly ArmNode[] }
  | { readonly kind: 'property'; readonly target: ArmNode; readonly name: string }
  | { readonly kind: 'index'; readonly target: ArmNode; readonly index: ArmNode };

/** A value derived from a secret: a securestring parameter or a `list*()` call. */
export class SecretValue {
  constructor(
    readonly text: string,
    readonly origins: readonly string[],
  ) {}
}

export type ArmValue = string | number | boolean | null | SecretValue | readonly ArmValue[] | { readonly [key: string]: ArmValue };

/** A function the evaluator may call; `lazy` ones get their arguments unevaluated (only `if`). */
export type ArmFunction = (args: readonly ArmValue[]) => ArmValue;

export class ArmExpressionError extends Error {
  override readonly name = 'ArmExpressionError';
}

export function isArmExpression(value: string): boolean {
  return value.startsWith('[') && value.endsWith(']') && !value.startsWith('[[');
}

/** Parses the text of one expression, brackets included. */
export function parseArmExpression(source: string): ArmNode {
  if (!isArmExpression(source)) throw new ArmExpressionError(`not an expression: ${source}`);
  const text = source.slice(1, -1);
  let pos = 0;

  const fail = (message: string): never => {
    throw new ArmExpressionError(`${message} at ${pos} in ${source}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length && /\s/.test(text.charAt(pos))) pos += 1;
  };
  const expect = (char: string): void => {
    skipSpace();
    if (text[pos] !== char) fail(`expected '${char}'`);
    pos += 1;
  };

  const parseString = (): ArmNode => {
    pos += 1; // opening quote
    let value = '';
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const char = text.charAt(pos);
      if (char === "'") {
        if (text[pos + 1] === "'") {
          value += "'";
          pos += 2;
          continue;
        }
        pos += 1;
        return { kind: 'string', value };
      }
      value += char;
      pos += 1;
    }
  };

  const parsePrimary = (): ArmNode => {
    skipSpace();
    const char = text[pos];
    if (char === "'") return parseString();
    const number = /^-?\d+/.exec(text.slice(pos));
    if (number) {
      pos += number[0].length;
      return { kind: 'number', value: Number(number[0]) };
    }
    const identifier = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(pos));
    if (!identifier) return fail('expected a function call or a literal');
    pos += identifier[0].length;
    skipSpace();
    if (text[pos] !== '(') fail(`expected '(' after ${identifier[0]}`);
    pos += 1;
    const args: ArmNode[] = [];
    skipSpace();
    if (text[pos] === ')') {
      pos += 1;
    } else {
      for (;;) {
        args.push(parseChain());
        skipSpace();
        if (text[pos] === ',') {
          pos += 1;
          continue;
        }
        expect(')');
        break;
      }
    }
    return { kind: 'call', name: identifier[0], args };
  };

  const parseChain = (): ArmNode => {
    let node = parsePrimary();
    for (;;) {
      skipSpace();
      if (text[pos] === '.') {
        pos += 1;
        const name = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(pos));
        if (!name) return fail('expected a property name');
        pos += name[0].length;
        node = { kind: 'property', target: node, name: name[0] };
      } else if (text[pos] === '[') {
        pos += 1;
        const index = parseChain();
        expect(']');
        node = { kind: 'index', target: node, index };
      } else {
        return node;
      }
    }
  };

  const node = parseChain();
  skipSpace();
  if (pos !== text.length) fail('unexpected trailing text');
  return node;
}

/** Every function call in an expression tree, depth first. */
export function callsIn(node: ArmNode): Extract<ArmNode, { kind: 'call' }>[] {
  switch (node.kind) {
    case 'call':
      return [node, ...node.args.flatMap(callsIn)];
    case 'property':
      return callsIn(node.target);
    case 'index':
      return [...callsIn(node.target), ...callsIn(node.index)];
    default:
      return [];
  }
}

/** Every expression string inside a JSON value, with its JSON path. */
export function expressionsIn(value: unknown, path = '$'): { readonly path: string; readonly node: ArmNode }[] {
  if (typeof value === 'string') return isArmExpression(value) ? [{ path, node: parseArmExpression(value) }] : [];
  if (Array.isArray(value)) return value.flatMap((item, index) => expressionsIn(item, `${path}[${index}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => expressionsIn(item, `${path}.${key}`));
  }
  return [];
}

export function isArmObject(value: ArmValue | undefined): value is Readonly<Record<string, ArmValue>> {
  return value !== null && typeof value === 'object' && !isArmArray(value) && !(value instanceof SecretValue);
}

/** `Array.isArray` for an ArmValue: it narrows to the readonly array of ArmValues, where `Array.isArray` gives `any[]`. */
export function isArmArray(value: ArmValue | undefined): value is readonly ArmValue[] {
  return Array.isArray(value);
}

/** Text of a scalar, for concat/format; a secret's text is kept but the result stays tainted. */
function textOf(value: ArmValue): string {
  if (value instanceof SecretValue) return value.text;
  if (value === null || typeof value === 'object') throw new ArmExpressionError(`expected a scalar, got ${JSON.stringify(value)}`);
  return String(value);
}

function joinTainted(parts: readonly ArmValue[], text: string): ArmValue {
  const origins = parts.flatMap((part) => (part instanceof SecretValue ? part.origins : []));
  return origins.length > 0 ? new SecretValue(text, [...new Set(origins)]) : text;
}

function sameValue(left: ArmValue, right: ArmValue): boolean {
  const plain = (value: ArmValue): unknown => (value instanceof SecretValue ? value.text : value);
  return JSON.stringify(plain(left)) === JSON.stringify(plain(right));
}

function asBoolean(value: ArmValue, what: string): boolean {
  if (typeof value !== 'boolean') throw new ArmExpressionError(`${what} must be a bool, got ${JSON.stringify(value)}`);
  return value;
}

/** ARM's comparisons take two ints or two strings (ordinal), never a mix. */
function compare(left: ArmValue | undefined, right: ArmValue | undefined, what: string): number {
  if (typeof left === 'number' && typeof right === 'number') return left - right;
  if (typeof left === 'string' && typeof right === 'string') return left < right ? -1 : left > right ? 1 : 0;
  throw new ArmExpressionError(`${what} compares two ints or two strings, got ${JSON.stringify(left)} and ${JSON.stringify(right)}`);
}

/** The pure functions of the ARM language this project's template uses (and a few neighbours). */
export const STANDARD_FUNCTIONS: Readonly<Record<string, ArmFunction>> = {
  concat: (args) => {
    if (args.every(isArmArray)) return args.flat();
    return joinTainted(args, args.map(textOf).join(''));
  },
  format: ([template, ...args]) => {
    const text = textOf(template ?? '').replace(/\{(\d+)\}/g, (_match, index: string) => {
      const arg = args[Number(index)];
      if (arg === undefined) throw new ArmExpressionError(`format(): no argument {${index}}`);
      return textOf(arg);
    });
    return joinTainted(args, text);
  },
  equals: ([left, right]) => sameValue(left ?? null, right ?? null),
  not: ([value]) => !asBoolean(value ?? null, 'not()'),
  and: (args) => args.every((arg) => asBoolean(arg, 'and()')),
  or: (args) => args.some((arg) => asBoolean(arg, 'or()')),
  bool: ([value]) => value === true || value === 'true',
  contains: ([container, item]) => {
    if (isArmArray(container)) return container.some((entry) => sameValue(entry, item ?? null));
    if (typeof container === 'string') return container.includes(textOf(item ?? ''));
    if (isArmObject(container)) return Object.hasOwn(container, textOf(item ?? ''));
    throw new ArmExpressionError('contains(): unsupported container');
  },
  createArray: (args) => [...args],
  createObject: (args) => {
    const entries: [string, ArmValue][] = [];
    for (let i = 0; i < args.length; i += 2) entries.push([textOf(args[i] ?? ''), args[i + 1] ?? null]);
    return Object.fromEntries(entries);
  },
  empty: ([value]) => {
    if (value === null || value === undefined) return true;
    if (value instanceof SecretValue) return value.text === '';
    if (typeof value === 'string' || isArmArray(value)) return value.length === 0;
    if (isArmObject(value)) return Object.keys(value).length === 0;
    return false;
  },
  split: ([value, separator]) => textOf(value ?? '').split(textOf(separator ?? '')),
  first: ([value]) => {
    if (typeof value === 'string') return value.slice(0, 1);
    if (isArmArray(value)) return value[0] ?? null;
    throw new ArmExpressionError(`first() of ${JSON.stringify(value)}`);
  },
  last: ([value]) => {
    if (typeof value === 'string') return value.slice(-1);
    if (isArmArray(value)) return value[value.length - 1] ?? null;
    throw new ArmExpressionError(`last() of ${JSON.stringify(value)}`);
  },
  length: ([value]) => {
    if (value instanceof SecretValue) return value.text.length;
    if (typeof value === 'string' || isArmArray(value)) return value.length;
    if (isArmObject(value)) return Object.keys(value).length;
    throw new ArmExpressionError(`length() of ${JSON.stringify(value)}`);
  },
  replace: ([value, from, to]) =>
    joinTainted(
      [value ?? '', to ?? ''],
      textOf(value ?? '')
        .split(textOf(from ?? ''))
        .join(textOf(to ?? '')),
    ),
  take: ([value, count]) => {
    if (typeof count !== 'number') throw new ArmExpressionError(`take() count must be an int, got ${JSON.stringify(count)}`);
    if (isArmArray(value)) return value.slice(0, Math.max(0, count));
    return joinTainted([value ?? ''], textOf(value ?? '').slice(0, Math.max(0, count)));
  },
  less: ([left, right]) => compare(left, right, 'less()') < 0,
  lessOrEquals: ([left, right]) => compare(left, right, 'lessOrEquals()') <= 0,
  greater: ([left, right]) => compare(left, right, 'greater()') > 0,
  greaterOrEquals: ([left, right]) => compare(left, right, 'greaterOrEquals()') >= 0,
  toLower: ([value]) => joinTainted([value ?? ''], textOf(value ?? '').toLowerCase()),
  toUpper: ([value]) => joinTainted([value ?? ''], textOf(value ?? '').toUpperCase()),
  string: ([value]) => (typeof value === 'string' || value instanceof SecretValue ? value : JSON.stringify(value)),
};

/**
 * Evaluates a parsed expression. `functions` must supply the deployment functions (parameters, variables,
 * resourceGroup, reference, listKeys, ...); an unknown function is an error, so a template using one this
 * evaluator does not model fails the checks loudly instead of passing them silently.
 */
export function evaluateNode(node: ArmNode, functions: Readonly<Record<string, ArmFunction>>): ArmValue {
  switch (node.kind) {
    case 'string':
    case 'number':
      return node.value;
    case 'property': {
      const target = evaluateNode(node.target, functions);
      if (!isArmObject(target)) throw new ArmExpressionError(`.${node.name} of a non-object (${JSON.stringify(target)})`);
      const value = target[node.name];
      if (value === undefined) throw new ArmExpressionError(`the object has no property '${node.name}'`);
      return value;
    }
    case 'index': {
      const target = evaluateNode(node.target, functions);
      const index = evaluateNode(node.index, functions);
      if (isArmArray(target) && typeof index === 'number') return target[index] ?? fail(`index ${index} out of range`);
      if (isArmObject(target) && typeof index === 'string') return target[index] ?? fail(`no property '${index}'`);
      return fail('bad index');
    }
    case 'call': {
      const name = node.name.toLowerCase() === 'if' ? 'if' : node.name;
      if (name === 'if') {
        const [condition, whenTrue, whenFalse] = node.args;
        if (!condition || !whenTrue || !whenFalse) return fail('if() needs three arguments');
        return asBoolean(evaluateNode(condition, functions), 'if() condition')
          ? evaluateNode(whenTrue, functions)
          : evaluateNode(whenFalse, functions);
      }
      const fn = functions[name] ?? STANDARD_FUNCTIONS[name];
      if (!fn) return fail(`function ${node.name}() is not modelled by the test evaluator`);
      return fn(node.args.map((arg) => evaluateNode(arg, functions)));
    }
  }
}

function fail(message: string): never {
  throw new ArmExpressionError(message);
}

/** Evaluates every expression inside a JSON value (ARM never evaluates property names). */
export function evaluateDeep(value: unknown, functions: Readonly<Record<string, ArmFunction>>): ArmValue {
  if (typeof value === 'string') {
    if (isArmExpression(value)) return evaluateNode(parseArmExpression(value), functions);
    return value.startsWith('[[') ? value.slice(1) : value;
  }
  if (Array.isArray(value)) return value.map((item) => evaluateDeep(item, functions));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, evaluateDeep(item, functions)]));
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  throw new ArmExpressionError(`unsupported JSON value of type ${typeof value}`);
}
