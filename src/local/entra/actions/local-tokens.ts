/**
 * Endpoints that exist only in the emulator, under `/_local`: they stand in for the interactive sign-ins
 * a real client app would do, so the local-mode CLI (`npm run token -- alice`) and manual testing can get
 * a user's token for the API, or a Teams user's token for `/api/token/teams`, with one request.
 *
 * @packageDocumentation
 */
import express, { type Request, type RequestHandler } from 'express';
import { LOCAL_SPA_CLIENT_ID, type DemoUser } from '../../local-directory';
import { AadError } from '../aad-error';
import type { EntraTenant } from '../entra-tenant';
import { mintAccessToken, mintTeamsToken } from '../token-minting';

/** The JSON body of a user token request; small, since it holds a handful of options. */
export const localUserTokenBody: RequestHandler = express.json({ limit: '16kb' });

/** The options a user token request may set, checked. */
interface LocalUserTokenRequest {
  readonly version: 1 | 2 | undefined;
  readonly scp: string | undefined;
  readonly lifetimeSeconds: number | undefined;
  /** App roles assigned to the user (e.g. AcsAuth.Admin), as an admin would assign them in the portal. */
  readonly roles: string[] | undefined;
}

/** POST `/_local/users/:name/token`: a user token for the API (the first app registration). */
export function localUserTokenAction(tenant: EntraTenant): RequestHandler {
  return async (req, res) => {
    const user = namedUser(tenant, req);
    const request = localUserTokenRequest(req.body ?? {});
    const lifetime = request.lifetimeSeconds ?? 3600;
    const accessToken = await mintAccessToken(tenant, {
      user: user.name,
      version: request.version,
      scp: request.scp,
      lifetimeSeconds: lifetime,
      ...(request.roles === undefined ? {} : { roles: request.roles }),
    });
    res.status(200).json({ token_type: 'Bearer', access_token: accessToken, expires_in: lifetime });
  };
}

/**
 * POST `/_local/users/:name/teams-token`: a Teams user's Entra token for ACS (what a Teams client app
 * would obtain with Teams.ManageCalls and Teams.ManageChats), issued to the sample SPA when it is
 * registered, else to the first registered app.
 */
export function localTeamsTokenAction(tenant: EntraTenant): RequestHandler {
  // The client app users sign in to obtains a Teams token, so it is that app's `appid` ACS checks: the same as a
  // token the SPA gets through the code or refresh token grant.
  const teamsClient = tenant.applications.byClientId(LOCAL_SPA_CLIENT_ID) ?? tenant.applications.api;
  return async (req, res) => {
    const user = namedUser(tenant, req);
    const accessToken = await mintTeamsToken(tenant, { user: user.name, appId: teamsClient.clientId });
    res.status(200).json({ token_type: 'Bearer', access_token: accessToken, expires_in: 3600 });
  };
}

function namedUser(tenant: EntraTenant, req: Request): DemoUser {
  const name = String(req.params['name']);
  const user = tenant.users.byName(name);
  if (user === undefined) throw new AadError(404, 'not_found', undefined, `No user named '${name}' in the local directory.`);
  return user;
}

/** Checks the body in a fixed order, so the first mistake is the one reported. */
function localUserTokenRequest(body: unknown): LocalUserTokenRequest {
  if (!isJsonObject(body)) throw new AadError(400, 'invalid_request', undefined, 'The body must be a JSON object.');
  const { version, scp, lifetimeSeconds, roles } = body;
  if (roles !== undefined && !isRoleList(roles))
    throw new AadError(400, 'invalid_request', undefined, 'roles must be an array of app role names.');
  if (version !== undefined && version !== 1 && version !== 2)
    throw new AadError(400, 'invalid_request', undefined, 'version must be 1 or 2.');
  if (scp !== undefined && (typeof scp !== 'string' || scp.trim() === '')) {
    throw new AadError(400, 'invalid_request', undefined, 'scp must be a non-empty string.');
  }
  if (lifetimeSeconds !== undefined && !isAcceptedLifetime(lifetimeSeconds)) {
    throw new AadError(400, 'invalid_request', undefined, 'lifetimeSeconds must be an integer between 60 and 86400.');
  }
  return { version, scp, lifetimeSeconds, roles };
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRoleList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((role) => typeof role === 'string' && role.trim() !== '');
}

/** Whole seconds, from a minute to a day. */
function isAcceptedLifetime(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 60 && value <= 86_400;
}
