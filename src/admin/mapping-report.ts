/**
 * The text the `mappings` command prints. Oids, ACS user ids and key ids only: never a seal (it
 * would let anyone replay the mapping it belongs to elsewhere in the directory), a token or a key.
 */
import type { AuditReport, DuplicateGroup, DuplicateHolder, MappingStatus, SealLine, SealReport, SealResult } from './mapping-maintenance';
import { BROKEN_REASONS } from './mapping-maintenance';

const LABEL_WIDTH = 44;

function row(label: string, count: number, note = ''): string {
  return `  ${label.padEnd(LABEL_WIDTH)}${String(count).padStart(8)}${note === '' ? '' : `   ${note}`}`;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

export function describeStatus(status: MappingStatus): string {
  if (status === 'current_key') return 'sealed (current key)';
  if (status === 'older_key') return 'sealed (older key)';
  if (status === 'no_seal') return 'unsealed (no_seal)';
  return `broken (${status})`;
}

/** A holder's line; one that spells the identity in other letter case shows its own spelling. */
function holderLine(group: DuplicateGroup, holder: DuplicateHolder): string {
  return `    ${holder.oid}  ${describeStatus(holder.status)}${holder.acsUserId === group.acsUserId ? '' : `  as ${holder.acsUserId}`}`;
}

function duplicateLines(report: AuditReport): string[] {
  if (report.duplicates.length === 0) return [];
  const lines = ['', 'Duplicates: one ACS identity named by several users (a forged copy or a bug). None of them is ever sealed;'];
  lines.push('find out whose identity it is, then have the others run POST /api/user (or DELETE their mapping).');
  for (const group of report.duplicates) {
    lines.push(`  ${group.acsUserId}`, ...group.holders.map((holder) => holderLine(group, holder)));
  }
  return lines;
}

export function formatAudit(report: AuditReport): string {
  const { sealed } = report;
  const claimed = report.duplicates.reduce((sum, group) => sum + group.holders.length, 0);
  const lines = [
    `Identity mappings in the open extension ${report.extensionName} (tenant ${report.tenantId})`,
    row('users scanned', report.usersScanned),
    row('users with a mapping', report.usersWithMapping),
    row(`sealed under the current key '${sealed.currentKey.keyId}'`, sealed.currentKey.count),
    ...Object.entries(sealed.olderKeys).map(([keyId, count]) =>
      row(`sealed under the older key '${keyId}'`, count, count === 0 ? 'none left: the key may be removed from MAPPING_SEAL_KEYS' : 'seal --apply re-seals them'),
    ),
    row('unsealed (no_seal)', report.unsealed, report.unsealed > 0 ? 'refused by the service until sealed' : ''),
    ...BROKEN_REASONS.map((reason) => row(`broken: ${reason}`, report.broken[reason])),
    row('duplicates (ACS ids named by 2+ users)', report.duplicates.length, report.duplicates.length > 0 ? `held by ${plural(claimed, 'user', 'users')}` : ''),
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
  failed: 'FAILED',
  not_attempted: 'not attempted',
  skipped_duplicate: 'skipped',
  skipped_broken: 'skipped',
};

function lineDetail(line: SealLine): string {
  switch (line.result) {
    case 'would_seal':
    case 'sealed':
      return 'was unsealed';
    case 'would_reseal':
    case 'resealed':
      return 'was sealed under an older key';
    case 'gone':
      return 'the mapping was deleted since the scan';
    case 'skipped_duplicate':
      return `duplicate: another user names this identity too; ${describeStatus(line.detail as MappingStatus)}`;
    case 'skipped_broken':
      return `broken: ${line.detail ?? ''}`;
    default:
      return line.detail ?? '';
  }
}

/** One user's line, printed as it happens. */
export function formatSealLine(line: SealLine): string {
  return `${RESULT_LABELS[line.result].padEnd(14)}${line.oid}  ${line.acsUserId ?? '-'}  ${lineDetail(line)}\n`;
}

export function formatSealSummary(report: SealReport): string {
  const { counts, apply } = report;
  const lines = [
    '',
    apply ? 'Sealing done:' : 'Dry run: nothing was written. Run again with --apply to write these seals.',
    row(`already sealed under the current key '${report.audit.sealed.currentKey.keyId}'`, report.alreadyCurrent),
    ...(apply
      ? [row('sealed (were unsealed)', counts.sealed), row('re-sealed (were under an older key)', counts.resealed), row('gone since the scan', counts.gone)]
      : [row('would seal (unsealed)', counts.would_seal), row('would re-seal (older key)', counts.would_reseal)]),
    row('skipped: duplicate', counts.skipped_duplicate),
    row('skipped: broken', counts.skipped_broken),
    ...(apply ? [row('failed', counts.failed), row('not attempted', counts.not_attempted)] : []),
  ];
  if (report.stoppedBecause !== undefined) lines.push(`Stopped writing: ${report.stoppedBecause}.`);
  if (counts.failed + counts.not_attempted > 0) lines.push('Not every mapping was written: run the same command again; it rescans and skips what is done.');
  return `${lines.join('\n')}\n`;
}
