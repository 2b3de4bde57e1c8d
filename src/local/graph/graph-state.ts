import { SlidingWindowThrottle } from './graph-throttle';
import { GraphUserDirectory } from './graph-user-directory';
import { OpenExtensionStore } from './open-extension-store';
import { UserListing } from './user-listing';

/**
 * Everything one Graph emulator holds: its tenant's users, their open extensions, the paging of the
 * user list and the per-app throttle. The actions and route steps share this one value, which is what
 * lets each of them live in a module of its own.
 */
export interface GraphEmulatorState {
  readonly tenantId: string;
  readonly directory: GraphUserDirectory;
  readonly store: OpenExtensionStore;
  readonly listing: UserListing;
  readonly throttle: SlidingWindowThrottle;
  /**
   * Base URL without the version segment. Known once listening, so it is set after the routes exist;
   * contexts and `Location` headers point back at this emulator through it.
   */
  baseUrl: string;
}

/** Graph's per-app budget: 455 requests per 10 seconds (concepts/throttling-limits.md). */
const DEFAULT_THROTTLE_LIMIT = 455;
const DEFAULT_THROTTLE_WINDOW_MS = 10_000;

/** A fresh state: the demo users, no extensions, a full request budget. */
export function createGraphEmulatorState(
  tenantId: string,
  throttle: { readonly limit?: number; readonly windowMs?: number } = {},
): GraphEmulatorState {
  const directory = new GraphUserDirectory();
  const store = new OpenExtensionStore();
  return {
    tenantId,
    directory,
    store,
    listing: new UserListing(directory, store),
    throttle: new SlidingWindowThrottle(throttle.limit ?? DEFAULT_THROTTLE_LIMIT, throttle.windowMs ?? DEFAULT_THROTTLE_WINDOW_MS),
    baseUrl: '',
  };
}
