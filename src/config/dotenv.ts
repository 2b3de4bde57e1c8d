import { existsSync } from 'node:fs';

/**
 * In development a `.env` file in the working folder may hold the settings (`npm start`, `npm run
 * mappings`); production (App Service) uses app settings only, so the file is never read there.
 * Process entry points call this once, before loading the config.
 */
export function loadDotEnv(env: NodeJS.ProcessEnv = process.env, file = '.env'): void {
  if (env['NODE_ENV'] !== 'production' && existsSync(file)) process.loadEnvFile(file);
}
