/**
 * The text the `mappings` command prints. Oids, ACS user ids, key ids and the ACS resource only: never
 * a seal (it would let anyone replay the mapping it belongs to elsewhere in the directory), a token, a
 * key or a connection string.
 */
import type { SealOrigin } from '../services/mapping-seal';
import { UNTRUSTED_REASONS, type CopyLine, type CopyReport, type CopyResult } from './mapping-copy';
import type {
  AuditReport,
  DuplicateGroup,
  DuplicateHolder,
  MappingStatus,
  SealLine,
  SealReport,
  SealResult,
  StalePlanEntry,
} from './mapping-maintenance';
import { BROKEN_REASONS } from './mapping-maintenance';

const LABEL_WIDTH = 44;

/** The adoption flags, named here so every message spells them alike. */
export const ADOPT_FLAG = '--adopt';
export const PLAN_FLAG = '--plan';
/** Adopt a plan although a mapping carries a service seal. */
export const AFTER_GO_LIVE_FLAG = '--after-go-live';
/** The store `copy` copies to. */
export const TO_FLAG = '--to';
const ADOPT_STEPS = `seal ${ADOPT_FLAG} ${PLAN_FLAG} <file> (dry run: review the file), then seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file>`;
/** Oids listed per older key in the text report; the JSON lists them all. */
const MAX_LISTED_USERS = 50;

function row(label: string, count: number, note = ''): string {
  return `  ${label.padEnd(LABEL_WIDTH)}${String(count).padStart(8)}${note === '' ? '' : `   ${note}`}`;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

export function describeStatus(status: MappingStatus, origin?: SealOrigin): string {
  const by = origin === undefined ? '' : `, ${origin}`;
  if (status === 'current_key') return `sealed (current key${by})`;
  if (status === 'older_key') return `sealed (older key${by})`;
  if (status === 'no_seal') return 'unsealed (no_seal)';
  return `broken (${status})`;
}

/** A holder's line; one that spells the identity in other letter case shows its own spelling. */
function holderLine(group: DuplicateGroup, holder: DuplicateHolder): string {
  return `    ${holder.oid}  ${describeStatus(holder.status, holder.origin)}${holder.acsUserId === group.acsUserId ? '' : `  as ${holder.acsUserId}`}`;
}

function groupVerdict(group: DuplicateGroup): string {
  if (group.resolution === 'sealed_owner')
    return `owner ${group.owner} (its seal verifies): maintained as usual; the others are forgeries, never sealed`;
  if (group.resolution === 'several_sealed_holders')
    return "several holders' seals verify (a bug, or a leaked key: rotate it): none is sealed";
  return "no holder's seal verifies: none is sealed";
}

function duplicateLines(report: AuditReport): string[] {
  if (report.duplicates.length === 0) return [];
  const lines = ['', 'Duplicates: one ACS identity named by several users (a forged copy or a bug). The one holder whose seal verifies'];
  lines.push('owns it; where none or several do, find out whose identity it is, then have the others run POST /api/user (or');
  lines.push('DELETE their mapping).');
  for (const group of report.duplicates) {
    lines.push(`  ${group.acsUserId}  ${groupVerdict(group)}`, ...group.holders.map((holder) => holderLine(group, holder)));
  }
  return lines;
}

/**
 * How unsealed mappings get adopted, and the service-seal brake. The brake reads user-writable data,
 * so its absence is worded as no proof of anything.
 */
function adoptionLines(audit: AuditReport, afterGoLive: boolean): string[] {
  const first = `Adoption of unsealed mappings: never implicit; only the pairs of a reviewed plan: ${ADOPT_STEPS}.`;
  if (audit.adoptionOpen) {
    return [
      first,
      'No mapping carries a service seal. That is no proof the service is not live: mappings adopted at the cut-over carry',
      'none, and a user can remove their own.',
    ];
  }
  const live = `${plural(audit.sealed.byOrigin.service, 'mapping carries', 'mappings carry')} a service seal (the service is live)`;
  if (afterGoLive) return [first, `${live}, but ${AFTER_GO_LIVE_FLAG} overrides it: the plan's pairs are adopted anyway.`];
  return [
    first,
    `${live}: an unsealed mapping may be a user's own claim on an identity the service left unmapped, so`,
    `seal ${ADOPT_FLAG} adopts nothing without ${AFTER_GO_LIVE_FLAG}; such a user gets a new identity with POST /api/user.`,
  ];
}

/** Who keeps each older key alive: a key is retired only once nobody's mapping needs it. */
function olderKeyUserLines(report: AuditReport): string[] {
  const lines: string[] = [];
  for (const [keyId, oids] of Object.entries(report.sealed.olderKeyUsers)) {
    if (oids.length === 0) continue;
    lines.push('', `Users whose mapping the older key '${keyId}' still seals (seal --apply re-seals them):`);
    lines.push(...oids.slice(0, MAX_LISTED_USERS).map((oid) => `    ${oid}`));
    if (oids.length > MAX_LISTED_USERS) lines.push(`    … and ${oids.length - MAX_LISTED_USERS} more (--json lists them all)`);
  }
  return lines;
}

export function formatAudit(report: AuditReport): string {
  const { sealed } = report;
  const claimed = report.duplicates.reduce((sum, group) => sum + group.holders.length, 0);
  const adoption = report.adoptionOpen
    ? `refused by the service until adopted (seal ${ADOPT_FLAG})`
    : 'refused by the service; the service is live';
  const unsealedNote = report.unsealed === 0 ? '' : adoption;
  const lines = [
    `Identity mappings in the open extension ${report.extensionName} (tenant ${report.tenantId})`,
    row('users scanned', report.usersScanned),
    row('users with a mapping', report.usersWithMapping),
    row(`sealed under the current key '${sealed.currentKey.keyId}'`, sealed.currentKey.count),
    ...Object.entries(sealed.olderKeys).map(([keyId, count]) =>
      row(
        `sealed under the older key '${keyId}'`,
        count,
        count === 0 ? 'none left: the key may be removed from MAPPING_SEAL_KEYS' : 'seal --apply re-seals them',
      ),
    ),
    row('sealed by the service (origin service)', sealed.byOrigin.service),
    row('adopted by this command (origin adopted)', sealed.byOrigin.adopted),
    row('unsealed (no_seal)', report.unsealed, unsealedNote),
    ...BROKEN_REASONS.map((reason) => row(`broken: ${reason}`, report.broken[reason])),
    row(
      'duplicates (ACS ids named by 2+ users)',
      report.duplicates.length,
      report.duplicates.length > 0 ? `held by ${plural(claimed, 'user', 'users')}` : '',
    ),
    '',
    ...olderKeyUserLines(report),
    '',
    ...adoptionLines(report, false),
    ...duplicateLines(report),
  ];
  return `${lines.join('\n')}\n`;
}

const RESULT_LABELS: Readonly<Record<SealResult, string>> = {
  would_seal: 'would seal',
  would_reseal: 'would re-seal',
  sealed: 'sealed',
  resealed: 're-sealed',
  gone: 'gone',
  changed: 'changed',
  failed: 'FAILED',
  not_attempted: 'not attempted',
  skipped_duplicate: 'skipped',
  skipped_forgery: 'skipped',
  skipped_unsealed: 'not adopted',
  skipped_live: 'not adopted',
  not_in_plan: 'not in plan',
  skipped_broken: 'skipped',
};

function changedDetail(line: SealLine): string {
  if (line.now === undefined) return 'the mapping changed since the scan; not written';
  const other = line.now.acsUserId === line.acsUserId ? '' : ` naming ${line.now.acsUserId ?? 'no valid ACS id'}`;
  return `the mapping changed since the scan; not written (now ${describeStatus(line.now.status)}${other})`;
}

function skipDetail(line: SealLine): string {
  const status = describeStatus(line.detail as MappingStatus);
  switch (line.result) {
    case 'skipped_duplicate':
      return `duplicate: another user names this identity too, and ${line.resolution === 'several_sealed_holders' ? "several holders' seals verify" : "no holder's seal verifies"}; ${status}`;
    case 'skipped_forgery':
      return `forgery: ${line.owner ?? 'another user'} holds this identity under a verifying seal; ${status}`;
    case 'skipped_unsealed':
      return `unsealed: not adopted (adopting takes seal ${ADOPT_FLAG} and a reviewed plan)`;
    case 'skipped_live':
      return `unsealed: not adopted, the service is live (a user may have written it; see ${AFTER_GO_LIVE_FLAG}); they get a new identity with POST /api/user`;
    case 'not_in_plan':
      return line.planned === undefined
        ? 'unsealed: not adopted, the plan does not list it'
        : `unsealed: not adopted, the plan lists this user with ${line.planned}`;
    default:
      return `broken: ${line.detail ?? ''}`;
  }
}

function lineDetail(line: SealLine): string {
  switch (line.result) {
    case 'would_seal':
    case 'sealed':
      return 'was unsealed; adopted';
    case 'would_reseal':
    case 'resealed':
      return `was sealed under an older key; origin kept (${line.origin ?? '?'})`;
    case 'gone':
      return 'the mapping was deleted since the scan';
    case 'changed':
      return changedDetail(line);
    case 'skipped_duplicate':
    case 'skipped_forgery':
    case 'skipped_unsealed':
    case 'skipped_live':
    case 'not_in_plan':
    case 'skipped_broken':
      return skipDetail(line);
    default:
      return line.detail ?? '';
  }
}

/** One user's line, printed as it happens. */
export function formatSealLine(line: SealLine): string {
  return `${RESULT_LABELS[line.result].padEnd(14)}${line.oid}  ${line.acsUserId ?? '-'}  ${lineDetail(line)}\n`;
}

function staleLine({ oid, acsUserId, now }: StalePlanEntry): string {
  const found =
    now === undefined
      ? 'no mapping'
      : `${describeStatus(now.status)}${now.acsUserId === acsUserId ? '' : ` naming ${now.acsUserId ?? 'no valid ACS id'}`}`;
  return `    ${oid}  ${acsUserId}  now ${found}`;
}

function dryRunHeading(report: SealReport): string {
  if (!report.adopt) return 'Dry run: nothing was written. Run again with --apply to write these seals.';
  return `Dry run: nothing was written. The mappings listed as "would seal" are the adoption candidates: write them to a plan with ${PLAN_FLAG} <file>, review it, then run seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file>.`;
}

export function formatSealSummary(report: SealReport): string {
  const { counts, apply } = report;
  const lines = [
    '',
    apply ? 'Sealing done:' : dryRunHeading(report),
    ...adoptionLines(report.audit, report.afterGoLive),
    row(`already sealed under the current key '${report.audit.sealed.currentKey.keyId}'`, report.alreadyCurrent),
    ...(apply
      ? [
          row('sealed (were unsealed: adopted, as planned)', counts.sealed),
          row('re-sealed (were under an older key)', counts.resealed),
          row('gone since the scan', counts.gone),
          row('changed since the scan (not written)', counts.changed),
        ]
      : [row('would seal (unsealed: adopt)', counts.would_seal), row('would re-seal (older key)', counts.would_reseal)]),
    row(`not adopted: unsealed, no ${ADOPT_FLAG}`, counts.skipped_unsealed),
    row('not adopted: unsealed, the service is live', counts.skipped_live),
    row('not adopted: unsealed, not in the plan', counts.not_in_plan),
    row('skipped: forgery of a sealed holder', counts.skipped_forgery),
    row('skipped: duplicate', counts.skipped_duplicate),
    row('skipped: broken', counts.skipped_broken),
    ...(apply ? [row('failed', counts.failed), row('not attempted', counts.not_attempted)] : []),
  ];
  if (report.stalePlan.length > 0) {
    lines.push(row('plan entries no longer unsealed (not adopted)', report.stalePlan.length), ...report.stalePlan.map(staleLine));
  }
  if (report.stoppedBecause !== undefined) lines.push(`Stopped writing: ${report.stoppedBecause}.`);
  if (counts.failed + counts.not_attempted > 0)
    lines.push('Not every mapping was written: run the same command again; it rescans and skips what is done.');
  return `${lines.join('\n')}\n`;
}

/** Skipped users listed per outcome in the text report of `copy`; the JSON lists them all. */
const MAX_LISTED_SKIPS = 50;
/** The order skipped users are listed in: what needs a look first. */
const SKIP_ORDER: readonly CopyResult[] = ['failed', 'not_attempted', 'identity_mapped_elsewhere', 'conflict', 'untrusted'];

const SKIP_HEADINGS: Readonly<Partial<Record<CopyResult, string>>> = {
  failed: 'Failed (run the same command again):',
  not_attempted: 'Not attempted (the run stopped; run it again):',
  identity_mapped_elsewhere: 'Not copied: the table maps the identity to another user (it refused the row):',
  conflict: 'Not copied: the table maps the user to another identity or ACS resource (its row is kept):',
  untrusted: 'Not copied: the seal does not verify (the service refuses these mappings too):',
};

function copySkipDetail(line: CopyLine): string {
  switch (line.result) {
    case 'failed':
      return line.detail === undefined ? (line.reason ?? '') : `${line.reason ?? ''}: ${line.detail}`;
    case 'conflict':
      return line.reason === 'other_acs_resource'
        ? `the table maps ${line.acsUserId ?? '-'} to this user for another ACS resource`
        : `the table has ${line.tableAcsUserId ?? 'no valid ACS id'}, Graph ${line.acsUserId ?? '-'}`;
    case 'untrusted':
      return line.reason ?? '';
    default:
      return line.acsUserId ?? '-';
  }
}

function copySkipLines(report: CopyReport): string[] {
  const lines: string[] = [];
  for (const result of SKIP_ORDER) {
    const skipped = report.skipped.filter((line) => line.result === result);
    if (skipped.length === 0) continue;
    lines.push('', SKIP_HEADINGS[result] ?? result);
    lines.push(...skipped.slice(0, MAX_LISTED_SKIPS).map((line) => `    ${line.oid}  ${copySkipDetail(line)}`));
    if (skipped.length > MAX_LISTED_SKIPS) lines.push(`    … and ${skipped.length - MAX_LISTED_SKIPS} more (--json lists them all)`);
  }
  return lines;
}

function copyHeading(report: CopyReport): string {
  if (!report.apply) return 'Dry run: nothing was written. Run again with --apply to copy the mappings counted as "would copy".';
  return 'Copy done:';
}

/** The text report of `copy --to table`: counts per outcome, then the users not copied and why. */
export function formatCopyReport(report: CopyReport): string {
  const { counts, target } = report;
  const lines = [
    `Copy of the sealed identity mappings in the open extension ${report.extensionName} (tenant ${report.tenantId})`,
    `to the table ${target.tableName}, bound to the ACS resource ${target.acsResource}`,
    copyHeading(report),
    row('users scanned', report.usersScanned, report.scanComplete ? '' : 'the scan stopped before the end'),
    row('users with a mapping', report.usersWithMapping),
    report.apply ? row('copied', counts.copied) : row('would copy (sealed, not in the table yet)', counts.would_copy),
    row('already in the table (same identity)', counts.already_copied),
    ...UNTRUSTED_REASONS.map((reason) => row(`not copied: untrusted (${reason})`, report.untrusted[reason])),
    row('not copied: conflict (the table row is kept)', counts.conflict),
    row('not copied: identity mapped to another user', counts.identity_mapped_elsewhere),
    row('failed', counts.failed),
    row('not attempted', counts.not_attempted),
    ...copySkipLines(report),
  ];
  if (report.stoppedBecause !== undefined) lines.push('', `Stopped: ${report.stoppedBecause}.`);
  if (copyIncomplete(report))
    lines.push('Not every mapping was copied: run the same command again; it skips what is in the table already.');
  return `${lines.join('\n')}\n`;
}

/** Something failed or was not reached: the run is to be repeated. Skips by policy (untrusted, conflicts) are not failures. */
export function copyIncomplete(report: CopyReport): boolean {
  return !report.scanComplete || report.counts.failed + report.counts.not_attempted > 0;
}
