/**
 * Reading the `scope` parameter of a v2 On-Behalf-Of request the way Entra does: OpenID Connect scopes
 * apart, bare permission names meaning Microsoft Graph, resource URLs split from permission names,
 * names matched case-insensitively, and `.default` not mixed with named permissions.
 *
 * @packageDocumentation
 */
import { GRAPH_RESOURCE } from '../local-directory';
import { canonicalDelegatedGraphPermission, OIDC_SCOPES } from './graph-permission-catalog';
import { splitScope } from './requested-scopes';
import { invalidScope, resourceNotFound } from './sts-refusals';

export interface ParsedScopes {
  /** Graph permissions asked for (canonical names), or `.default`. */
  readonly graph: readonly string[] | '.default';
  /** OpenID Connect scopes asked for. */
  readonly oidc: readonly string[];
}

/** Splits and checks a v2 `scope` parameter aimed at Microsoft Graph. */
export function parseDelegatedScopes(raw: string, tenantId: string): ParsedScopes {
  const requested = raw.split(' ').filter((scope) => scope !== '');
  const graph: string[] = [];
  const oidc: string[] = [];
  let wantsDefault = false;
  for (const scope of requested) {
    if (OIDC_SCOPES.has(scope.toLowerCase())) {
      oidc.push(scope.toLowerCase());
      continue;
    }
    const { resource, permission } = splitScope(scope, raw);
    if (resource.toLowerCase() !== GRAPH_RESOURCE) {
      // Only Graph exists as a downstream resource in the emulated tenant.
      throw resourceNotFound(resource, tenantId);
    }
    if (permission === '.default') {
      wantsDefault = true;
      continue;
    }
    const canonical = canonicalDelegatedGraphPermission(permission);
    if (canonical === undefined) throw invalidScope(raw);
    graph.push(canonical);
  }
  if (wantsDefault && graph.length > 0) throw invalidScope(raw);
  if (!wantsDefault && graph.length === 0) throw invalidScope(raw);
  return { graph: wantsDefault ? '.default' : [...new Set(graph)], oidc: [...new Set(oidc)] };
}
