import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { errorBody } from '../helpers/bodies';
import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * docs/deploy.md makes the first POST /api/user after a deployment the check of the app's role on the ACS
 * resource, and quotes the log line an operator looks for when ACS refuses the managed identity. This keeps
 * that quote true: ACS answers 403 (as for an identity without a sufficient role), and the service's answer
 * and error line must be the ones the guide describes.
 */
const guide = readFileSync(join(__dirname, '..', '..', 'docs', 'deploy.md'), 'utf8');
const QUOTED = /whose message is:\n\n```text\n(.+)\n```/.exec(guide)?.[1];

describe('POST /api/user when ACS refuses the managed identity (the first-call check of docs/deploy.md)', () => {
  const service = useTestService();

  it('answers 502 upstream_error and logs the line the deployment guide quotes', async () => {
    expect(QUOTED).toContain('<code>');
    service.local.acs.faults.inject({
      route: 'identities.create',
      status: 403,
      code: 'AuthorizationFailed',
      message: 'The caller is not authorized.',
    });

    const res = await service.http
      .post('/api/user')
      .set({ Authorization: `Bearer ${await service.tokenFor('carol')}` })
      .expect(502);

    expect(res.body).toMatchObject({ code: 'upstream_error' });
    const errorLines = service.rawLogs
      .map((line) => JSON.parse(line) as { level?: unknown; requestId?: unknown; msg?: unknown })
      .filter((record) => record.level === 'error' && record.requestId === errorBody(res).requestId);
    expect(errorLines.map((record) => record.msg)).toContain(
      present(QUOTED, 'the quoted log line in docs/deploy.md').replace('<code>', 'AuthorizationFailed'),
    );
  });
});
