import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { retryAfterSeconds } from './upstream-errors';

/**
 * The Azure SDK clients (ACS Identity, Tables) honour any `Retry-After` in their retry policy. A wait
 * longer than a request can afford is hidden from that policy here and kept as `x-original-retry-after`
 * for the adapter: the caller then gets a 503 with that Retry-After at once instead of a request held
 * for it.
 */
export const ORIGINAL_RETRY_AFTER = 'x-original-retry-after';

export function capRetryAfter(maxWaitMs: number): PipelinePolicy {
  return {
    name: 'acsAuthCapRetryAfter',
    async sendRequest(request, next) {
      const response = await next(request);
      const retryAfter = response.headers.get('retry-after');
      if ((response.status === 429 || response.status === 503) && retryAfter) {
        if (retryAfterSeconds(retryAfter, 0) * 1000 > maxWaitMs) {
          response.headers.set(ORIGINAL_RETRY_AFTER, retryAfter);
          response.headers.delete('retry-after');
        }
      }
      return response;
    },
  };
}
