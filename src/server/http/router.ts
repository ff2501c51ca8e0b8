/**
 * Routes on Google's HTTP rule templates, e.g. `/v1/{name=projects/*\/attestors/*}:getIamPolicy`:
 * `*` is one path segment, `**` any number, and a trailing `:verb` is a custom method. One router
 * table per Google API; the server tries them all (Google's paths do not collide).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../iam/principal.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestContext {
  readonly method: HttpMethod;
  /** Path without query, trailing slash removed, percent-decoded per segment. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Variables bound by the route template (`name`, `parent`, …). */
  readonly params: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  /** The Host the client addressed (from the absolute-form target or the Host header). */
  readonly host: string;
  /** The authenticated principal (undefined only on public routes). */
  readonly principal: Principal | undefined;
  /** The request body as JSON (an empty body is `{}`); INVALID_ARGUMENT if it does not parse. */
  json(): Promise<unknown>;
  rawBody(): Promise<Buffer>;
}

export interface HandlerResult {
  readonly status?: number;
  /** JSON-serialized unless `raw` is set. */
  readonly body?: unknown;
  readonly raw?: { readonly contentType: string; readonly data: string | Buffer };
  readonly headers?: Readonly<Record<string, string>>;
}

export type Handler = (ctx: RequestContext) => Promise<HandlerResult>;

export interface RouteOptions {
  /** Served without a token (health, metrics). */
  readonly public?: boolean;
}

interface Route {
  readonly method: HttpMethod;
  readonly template: string;
  readonly regex: RegExp;
  readonly vars: readonly string[];
  readonly verb: string | undefined;
  readonly handler: Handler;
  readonly options: RouteOptions;
}

export type RouteMatch =
  | { readonly kind: 'match'; readonly handler: Handler; readonly params: Record<string, string>; readonly options: RouteOptions; readonly template: string }
  | { readonly kind: 'method-not-allowed'; readonly allowed: readonly HttpMethod[] }
  | { readonly kind: 'none' };

export class Router {
  private readonly routes: Route[] = [];

  constructor(readonly api: string) {}

  add(method: HttpMethod, template: string, handler: Handler, options: RouteOptions = {}): this {
    const { regex, vars, verb } = compileTemplate(template);
    this.routes.push({ method, template, regex, vars, verb, handler, options });
    // Custom-verb routes first, so `…/attestors/a:getIamPolicy` never binds `a:getIamPolicy` as a name.
    this.routes.sort((a, b) => Number(b.verb !== undefined) - Number(a.verb !== undefined));
    return this;
  }

  get(t: string, h: Handler, o?: RouteOptions): this { return this.add('GET', t, h, o); }
  post(t: string, h: Handler, o?: RouteOptions): this { return this.add('POST', t, h, o); }
  put(t: string, h: Handler, o?: RouteOptions): this { return this.add('PUT', t, h, o); }
  patch(t: string, h: Handler, o?: RouteOptions): this { return this.add('PATCH', t, h, o); }
  delete(t: string, h: Handler, o?: RouteOptions): this { return this.add('DELETE', t, h, o); }

  match(method: string, path: string): RouteMatch {
    const allowed: HttpMethod[] = [];
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (m === null) continue;
      if (r.method !== method) {
        allowed.push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      r.vars.forEach((v, i) => { params[v] = m[i + 1] as string; });
      return { kind: 'match', handler: r.handler, params, options: r.options, template: r.template };
    }
    return allowed.length > 0 ? { kind: 'method-not-allowed', allowed } : { kind: 'none' };
  }
}

function compileTemplate(template: string): { regex: RegExp; vars: string[]; verb: string | undefined } {
  const vars: string[] = [];
  let verb: string | undefined;
  let body = template;
  const verbMatch = /:([A-Za-z]+)$/.exec(template);
  if (verbMatch !== null && !template.endsWith('}')) {
    verb = verbMatch[1];
    body = template.slice(0, -verbMatch[0].length);
  }
  let src = '';
  let i = 0;
  while (i < body.length) {
    const open = body.indexOf('{', i);
    if (open < 0) {
      src += literal(body.slice(i));
      break;
    }
    src += literal(body.slice(i, open));
    const close = body.indexOf('}', open);
    if (close < 0) throw new Error(`bad template ${template}`);
    const inner = body.slice(open + 1, close);
    const eq = inner.indexOf('=');
    const name = eq < 0 ? inner : inner.slice(0, eq);
    const pattern = eq < 0 ? '*' : inner.slice(eq + 1);
    vars.push(name);
    src += `(${pattern.split('/').map(segment).join('/')})`;
    i = close + 1;
  }
  if (verb !== undefined) src += `:${verb}`;
  return { regex: new RegExp(`^${src}$`), vars, verb };
}

function segment(s: string): string {
  if (s === '*') return '[^/]+?';
  if (s === '**') return '.+?';
  return literal(s);
}

function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
