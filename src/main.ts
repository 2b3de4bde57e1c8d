// First: it makes the modules imported after it load from the compile cache.
import './compile-cache';

import { loadDotEnv } from './config/dotenv';
import { describeStartupError, startService } from './server';

/** Process entry point (`npm start`, App Service's start command): start, and stop cleanly on SIGTERM. */
async function main(): Promise<void> {
  loadDotEnv();
  const service = await startService(process.env, { announce: true });
  const shutdown = (signal: NodeJS.Signals): void => {
    service.logger.info({ signal }, 'shutting down');
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        service.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(describeStartupError(error));
  process.exit(1);
});
