/**
 * Imported first by the process entry points, for its side effect: on Node 22.1 and later, V8's
 * compiled code for this service and its dependencies is kept on disk (in the OS temporary folder)
 * and reused by the next start, which then loads its modules faster: a restart on App Service, or a
 * newcomer's next `npm start`. Node 20 has no such cache; nothing happens there. The cache holds
 * compiled JavaScript only, no data of the service.
 *
 * @packageDocumentation
 */

import nodeModule from 'node:module';

/** `module.enableCompileCache`, which @types/node for Node 20 does not declare. */
const withCompileCache = nodeModule as { enableCompileCache?: () => unknown };
// A failure (a read-only temporary folder) only costs the speed-up: Node reports it in the return value.
withCompileCache.enableCompileCache?.();
