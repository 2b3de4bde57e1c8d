/**
 * The reviewed plan of an adoption (`seal --adopt --plan <file>`): the (oid, ACS id) pairs the dry
 * run found unsealed and adoptable, written for the operator to read, and the only pairs
 * `seal --adopt --apply --plan <file>` may adopt. Adoption vouches for what a user-writable mapping
 * says, so it must never extend to a claim written after the review: the plan pins both values.
 * It holds oids and ACS ids only (nothing secret: no seal, no key).
 */

/** One mapping the operator agreed to adopt: this user, naming exactly this ACS id. */
export interface AdoptionPair {
  readonly oid: string;
  readonly acsUserId: string;
}

export interface AdoptionPlan {
  readonly kind: typeof PLAN_KIND;
  readonly version: 1;
  readonly tenantId: string;
  readonly extensionName: string;
  readonly createdAt: string;
  readonly adopt: readonly AdoptionPair[];
}

export const PLAN_KIND = 'acs-auth-server mapping adoption plan';

/** Where a plan must have come from: a plan for another tenant or extension names other users' data. */
export interface PlanScope {
  readonly tenantId: string;
  readonly extensionName: string;
}

export function serializeAdoptionPlan(scope: PlanScope, adopt: readonly AdoptionPair[], now: Date = new Date()): string {
  const plan: AdoptionPlan = { kind: PLAN_KIND, version: 1, ...scope, createdAt: now.toISOString(), adopt };
  return `${JSON.stringify(plan, null, 2)}\n`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pairAt(entry: unknown, index: number): AdoptionPair {
  const where = `adopt[${index}]`;
  if (!isRecord(entry)) throw new Error(`${where} is not an object`);
  const { oid, acsUserId } = entry;
  if (typeof oid !== 'string' || oid === '') throw new Error(`${where}.oid is not a non-empty string`);
  if (typeof acsUserId !== 'string' || acsUserId === '') throw new Error(`${where}.acsUserId is not a non-empty string`);
  const extra = Object.keys(entry).find((key) => key !== 'oid' && key !== 'acsUserId');
  if (extra !== undefined) throw new Error(`${where} has an unknown property '${extra}'`);
  return { oid, acsUserId };
}

/**
 * The pairs of a plan file's text, or an Error naming what is wrong with it. Checked strictly: a
 * plan edited into something else should stop the run, not adopt part of it.
 */
export function parseAdoptionPlan(text: string, scope: PlanScope): AdoptionPair[] {
  let plan: unknown;
  try {
    plan = JSON.parse(text);
  } catch (error) {
    throw new Error(`it is not JSON (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  if (!isRecord(plan) || plan['kind'] !== PLAN_KIND) throw new Error(`it is not an adoption plan (no "kind": "${PLAN_KIND}")`);
  if (plan['version'] !== 1) throw new Error(`its version is ${JSON.stringify(plan['version'])}, not 1`);
  if (plan['tenantId'] !== scope.tenantId)
    throw new Error(`it was made for tenant ${JSON.stringify(plan['tenantId'])}, not ${scope.tenantId}`);
  if (plan['extensionName'] !== scope.extensionName) {
    throw new Error(`it was made for the extension ${JSON.stringify(plan['extensionName'])}, not ${scope.extensionName}`);
  }
  const adopt = plan['adopt'];
  if (!Array.isArray(adopt)) throw new Error('its "adopt" is not an array');
  const pairs = adopt.map(pairAt);
  const seen = new Set<string>();
  for (const { oid } of pairs) {
    if (seen.has(oid)) throw new Error(`it lists the user ${oid} twice`);
    seen.add(oid);
  }
  return pairs;
}
