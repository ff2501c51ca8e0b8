/**
 * `tollgate iam`: principals and access tokens on a running server (superusers only), through
 * Tollgate's admin API (`/tollgate/v1/principals`, `/tollgate/v1/tokens`).
 */
import type { Command } from 'commander';
import { clientSettings, createClient, formatTable, listAll, printJson, withClientOptions, type ClientFlags } from '../client.js';
import { CliExit, EXIT } from '../exit-codes.js';

interface PrincipalView {
  name: string;
  email: string;
  type: string;
  superuser: boolean;
  description?: string;
  createTime: string;
}

interface TokenView {
  name: string;
  principal: string;
  expireTime?: string;
  description?: string;
  createTime: string;
}

function setup(flags: ClientFlags) {
  const settings = clientSettings(flags);
  return { settings, client: createClient(settings) };
}

const idOf = (name: string) => name.replace(/^tokens\//, '');
const out = (text: string) => process.stdout.write(text);

export function registerIam(program: Command): void {
  const iam = program.command('iam').description('manage who may call a Tollgate server: principals and access tokens (superusers only)');

  const principals = iam.command('principals').description('users and service accounts known to the server');

  withClientOptions(
    principals
      .command('create')
      .description('create a principal (a user unless --service-account)')
      .argument('<email>', 'the principal\'s email: alice@example.com, ci@demo.iam.gserviceaccount.com')
      .option('--service-account', 'the principal is a service account')
      .option('--superuser', 'may do everything on every project, including managing principals and tokens')
      .option('--description <text>', 'a note shown in listings'),
  ).action(async (email: string, opts: ClientFlags & { serviceAccount?: boolean; superuser?: boolean; description?: string }) => {
    const { settings, client } = setup(opts);
    const p = await client.request<PrincipalView>('POST', '/tollgate/v1/principals', {
      email,
      type: opts.serviceAccount === true ? 'serviceAccount' : 'user',
      superuser: opts.superuser === true,
      ...(opts.description === undefined ? {} : { description: opts.description }),
    });
    if (settings.format === 'json') printJson(p);
    else out(`Created ${p.superuser ? 'superuser ' : ''}${p.type === 'serviceAccount' ? 'service account' : 'user'} ${p.email}.\n`);
  });

  withClientOptions(principals.command('list').description('list principals')).action(async (opts: ClientFlags) => {
    const { settings, client } = setup(opts);
    const all = await listAll<PrincipalView>(client, '/tollgate/v1/principals?pageSize=1000', 'principals');
    if (settings.format === 'json') printJson(all);
    else out(formatTable(['EMAIL', 'TYPE', 'SUPERUSER', 'CREATED', 'DESCRIPTION'], all.map((p) => [p.email, p.type, p.superuser ? 'yes' : 'no', p.createTime, p.description ?? ''])));
  });

  withClientOptions(
    principals.command('delete').description('delete a principal and revoke all its tokens').argument('<email>', 'the principal\'s email'),
  ).action(async (email: string, opts: ClientFlags) => {
    const { settings, client } = setup(opts);
    await client.request('DELETE', `/tollgate/v1/principals/${encodeURIComponent(email)}`);
    if (settings.format === 'json') printJson({ deleted: `principals/${email.toLowerCase()}` });
    else out(`Deleted principal ${email.toLowerCase()} and revoked its tokens.\n`);
  });

  const tokens = iam.command('tokens').description('access tokens (bearer tokens; gcloud sends them as its access token)');

  withClientOptions(
    tokens
      .command('create')
      .description('issue a token; prints the secret once (it is stored hashed and cannot be shown again)')
      .argument('<principal>', 'email of the principal the token acts as')
      .option('--expires-in <duration>', 'lifetime such as 3600s, 90m, 24h or 30d (default: never expires)')
      .option('--description <text>', 'a note shown in listings'),
  ).action(async (principal: string, opts: ClientFlags & { expiresIn?: string; description?: string }) => {
    const { settings, client } = setup(opts);
    const r = await client.request<{ token: TokenView; secret: string }>('POST', '/tollgate/v1/tokens', {
      principal,
      ...(opts.expiresIn === undefined ? {} : { expiresIn: opts.expiresIn }),
      ...(opts.description === undefined ? {} : { description: opts.description }),
    });
    if (settings.format === 'json') {
      printJson(r);
      return;
    }
    // The secret alone on stdout, so `tollgate iam tokens create X > token-file` works; the rest on stderr.
    out(`${r.secret}\n`);
    process.stderr.write(
      `Created token ${idOf(r.token.name)} for ${r.token.principal}${r.token.expireTime === undefined ? ' (no expiry)' : `, expires ${r.token.expireTime}`}. ` +
        'The secret above is shown only this once.\n',
    );
  });

  withClientOptions(
    tokens.command('list').description('list tokens (never their secrets)').option('--principal <email>', 'only the tokens of this principal'),
  ).action(async (opts: ClientFlags & { principal?: string }) => {
    const { settings, client } = setup(opts);
    const query = `pageSize=1000${opts.principal === undefined ? '' : `&principal=${encodeURIComponent(opts.principal)}`}`;
    const all = await listAll<TokenView>(client, `/tollgate/v1/tokens?${query}`, 'tokens');
    if (settings.format === 'json') printJson(all);
    else out(formatTable(['ID', 'PRINCIPAL', 'EXPIRES', 'CREATED', 'DESCRIPTION'], all.map((t) => [idOf(t.name), t.principal, t.expireTime ?? 'never', t.createTime, t.description ?? ''])));
  });

  withClientOptions(
    tokens.command('revoke').description('revoke a token at once, on every replica').argument('<token-id>', 'the id `tokens list` shows (or tokens/ID)'),
  ).action(async (tokenId: string, opts: ClientFlags) => {
    const { settings, client } = setup(opts);
    const id = idOf(tokenId);
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new CliExit(EXIT.USAGE, `"${tokenId}" is not a token id (tokens list shows them)`);
    await client.request('DELETE', `/tollgate/v1/tokens/${id}`);
    if (settings.format === 'json') printJson({ revoked: `tokens/${id}` });
    else out(`Revoked token ${id}.\n`);
  });

  for (const group of [iam, principals, tokens]) {
    group.exitOverride();
    for (const c of group.commands) c.exitOverride();
  }
}
