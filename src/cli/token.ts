import { request } from 'node:https';

import { readLocalSession, sessionFilePath } from '../local/local-session';

/**
 * `npm run -s token -- <user> [--v2] [--scp "<scopes>"] [--role <app role>]… [--teams]`: prints an access
 * token for a demo user of the running local mode, minted by the Entra ID emulator, so the README's curl
 * lines work. `--role AcsAuth.Admin` gives the user that app role (for admin erasure); `--teams` prints a
 * Teams user's Entra token for `/api/token/teams` instead.
 */
const USAGE = 'usage: npm run -s token -- <alice|bob|carol> [--v2] [--scp "access_as_user"] [--role AcsAuth.Admin] [--teams]';

interface Arguments {
  readonly user: string;
  readonly version: 1 | 2;
  readonly scp: string | undefined;
  readonly roles: readonly string[];
  readonly teams: boolean;
}

function parseArguments(argv: readonly string[]): Arguments {
  let user: string | undefined;
  let version: 1 | 2 = 1;
  let scp: string | undefined;
  let teams = false;
  const roles: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    if (argument === '--v2') version = 2;
    else if (argument === '--teams') teams = true;
    else if (argument === '--scp' || argument === '--role') {
      const value = argv[index + 1];
      index += 1;
      if (value === undefined) throw new Error(USAGE);
      if (argument === '--scp') scp = value;
      else roles.push(value);
    } else if (!argument.startsWith('-') && user === undefined) user = argument;
    else throw new Error(USAGE);
  }
  if (user === undefined) throw new Error(USAGE);
  if (teams && (scp !== undefined || roles.length > 0 || version === 2)) throw new Error(`--teams takes no other option\n${USAGE}`);
  return { user, version, scp, roles, teams };
}

function post(url: URL, ca: string, body: unknown): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', ca, timeout: 5000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the Entra ID emulator did not answer')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const session = await readLocalSession();
  if (!session) {
    throw new Error(`no local mode is running here (${sessionFilePath()} not found): start it with 'npm start' in this folder first`);
  }
  const route = args.teams ? 'teams-token' : 'token';
  const url = new URL(`/_local/users/${encodeURIComponent(args.user)}/${route}`, session.entraUrl);
  const body = args.teams
    ? {}
    : {
        version: args.version,
        ...(args.scp === undefined ? {} : { scp: args.scp }),
        ...(args.roles.length > 0 ? { roles: args.roles } : {}),
      };
  let answer: { status: number; text: string };
  try {
    answer = await post(url, session.caCertPem, body);
  } catch (error) {
    throw new Error(
      `could not reach the local Entra ID emulator at ${session.entraUrl} (is 'npm start' still running?): ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (answer.status !== 200) throw new Error(`the Entra ID emulator refused (${answer.status}): ${answer.text}`);
  const { access_token: token } = JSON.parse(answer.text) as { access_token?: unknown };
  if (typeof token !== 'string') throw new Error('the Entra ID emulator returned no access_token');
  process.stdout.write(`${token}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
