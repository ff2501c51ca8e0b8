/**
 * The gcloud lines that point gcloud at a Tollgate server (../shared/gcloud-compat.md §1): a named
 * configuration `tollgate` (the user's own stays intact), endpoint overrides for every API the
 * tutorials call, the token file, and the HTTP proxy that Cloud Run's regional hosts need.
 */

/** APIs Tollgate serves: their override points at the server root. */
export const SERVED_APIS = ['binaryauthorization', 'containeranalysis', 'cloudkms', 'run', 'cloudresourcemanager', 'serviceusage', 'logging'] as const;
/**
 * APIs the tutorials call that Tollgate does not serve. Overriding them makes gcloud send plain
 * HTTP that Tollgate answers with a clear error; without an override gcloud would try an HTTPS
 * CONNECT through the proxy and crash with an unreadable error.
 */
export const UNSERVED_APIS = ['artifactregistry', 'container'] as const;

export function gcloudConfigLines(opts: { url: string; tokenFile: string; project?: string }): string[] {
  const base = new URL(opts.url);
  const root = `${base.protocol}//${base.host}/`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const set = (key: string, value: string) => `gcloud config set ${key} ${q(value)} --verbosity=error`;
  const port = base.port !== '' ? base.port : base.protocol === 'https:' ? '443' : '80';
  const lines = [
    'gcloud config configurations describe tollgate >/dev/null 2>&1 || gcloud config configurations create tollgate --no-activate --verbosity=error',
    'gcloud config configurations activate tollgate --verbosity=error',
    set('core/disable_usage_reporting', 'true'),
    set('component_manager/disable_update_check', 'true'),
    ...SERVED_APIS.map((api) => set(`api_endpoint_overrides/${api}`, root)),
    ...UNSERVED_APIS.map((api) => set(`api_endpoint_overrides/${api}`, `${root}unsupported/${api}/`)),
    set('auth/access_token_file', opts.tokenFile),
    set('proxy/type', 'http'),
    set('proxy/address', base.hostname.replace(/^\[|\]$/g, '')),
    set('proxy/port', port),
  ];
  if (opts.project !== undefined) lines.push(set('core/project', opts.project));
  return lines;
}
