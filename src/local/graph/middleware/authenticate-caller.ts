import type { RequestHandler, Response } from 'express';
import type { SigningKeySet } from '../../entra/signing-keys';
import { authenticateGraphCaller, type GraphCaller } from '../graph-caller';
import { GraphEmulatorError } from '../graph-emulator-error';

/**
 * The bearer-token step of every Graph route: verifies the token and leaves the caller on the
 * response for the steps after it. A refused token gets Graph's `WWW-Authenticate` challenge, which
 * clients read to find where to get a better token.
 *
 * @packageDocumentation
 */

const CALLER_KEY = 'graphCaller';

/** The challenge that goes with every 401, in the shape Graph sends. */
const WWW_AUTHENTICATE =
  'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"';

/** Authenticate the caller against the Entra keys of `tenantId`; errors go to the error step. */
export function authenticateCaller(keys: SigningKeySet, tenantId: string): RequestHandler {
  return async (req, res, next) => {
    try {
      res.locals[CALLER_KEY] = await authenticateGraphCaller(req.get('authorization'), keys, tenantId);
    } catch (error) {
      if (error instanceof GraphEmulatorError && error.status === 401) res.set('WWW-Authenticate', WWW_AUTHENTICATE);
      throw error;
    }
    next();
  };
}

/** The caller {@link authenticateCaller} verified; only valid on steps behind it. */
export function callerOf(res: Response): GraphCaller {
  return res.locals[CALLER_KEY] as GraphCaller;
}
