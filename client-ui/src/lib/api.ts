// The one adapter between the UI and the station core: Tauri `invoke` inside the desktop app, the local
// HTTP bridge (`tessera-station ui`) in a browser. Both carry the same command table.

export interface FieldError { field: string; code: string; language?: string; message: string }
export interface CommandError { code: string; message: string; fields?: FieldError[]; freeze?: unknown }
export interface LoginOutput { operator: string; roles: string[]; recovery: unknown }
export type Command = { op: string; input?: unknown };
export interface Output { kind: string; output?: any }

/** Thrown for every failed call; carries the core's typed error. */
export class StationError extends Error {
  constructor(public readonly error: CommandError, public readonly status = 0) {
    super(error.message);
  }
  get code(): string { return this.error.code; }
  get fields(): FieldError[] { return this.error.fields ?? []; }
}

export interface Transport {
  login(operator: string, password: string): Promise<LoginOutput>;
  command(cmd: Command): Promise<Output>;
  form(process: string): Promise<any>;
}

type Invoke = (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;

/**
 * Tauri shell (`client/desktop`): one command, `station`, carrying `{ call, input }` where call is `login`,
 * `command` (a command of the station's table) or `formSpec`. It answers exactly what the HTTP bridge answers
 * for the same call, and rejects with the core's typed `CommandError`.
 */
export function tauriTransport(invoke: Invoke): Transport {
  const call = async <T>(name: 'login' | 'command' | 'formSpec', input: unknown): Promise<T> => {
    try {
      return (await invoke('station', { request: { call: name, input } })) as T;
    } catch (e) {
      throw new StationError(asCommandError(e));
    }
  };
  return {
    login: (operator, password) => call('login', { operator, password }),
    command: (cmd) => call('command', cmd),
    form: (process) => call('formSpec', { process }),
  };
}

function asCommandError(e: unknown): CommandError {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) return e as CommandError;
  return { code: 'IO', message: String(e) };
}

/** Reads the per-launch token from the URL fragment (`#token=...`) and keeps it for the session. */
export function bridgeToken(loc: Location = window.location, store: Storage = window.sessionStorage): string {
  const m = /(?:^#|&)token=([0-9a-f]+)/.exec(loc.hash);
  if (m) {
    store.setItem('tessera.token', m[1]);
    return m[1];
  }
  return store.getItem('tessera.token') ?? '';
}

/** HTTP bridge transport; `token` may be a function so a token arriving later (new URL fragment) is used. */
export function httpTransport(token: string | (() => string), base = '', fetchFn: typeof fetch = fetch.bind(globalThis)): Transport {
  const send = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    const tok = typeof token === 'function' ? token() : token;
    try {
      res = await fetchFn(base + path, {
        method,
        headers: { 'content-type': 'application/json', 'x-tessera-token': tok },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new StationError({ code: 'IO', message: `the station bridge is not reachable: ${String(e)}` });
    }
    const text = await res.text();
    let data: any;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      throw new StationError({ code: 'IO', message: `unexpected answer from the bridge (HTTP ${res.status})` }, res.status);
    }
    if (res.status === 401) {
      throw new StationError({ code: 'BRIDGE_TOKEN', message: data?.error ?? 'missing bridge token' }, 401);
    }
    if (!res.ok) throw new StationError(asCommandError(data), res.status);
    return data as T;
  };
  return {
    login: (operator, password) => send('POST', '/api/login', { operator, password }),
    command: (cmd) => send('POST', '/api/command', cmd),
    form: (process) => send('GET', `/api/form/${encodeURIComponent(process)}`),
  };
}

/** Picks the transport for where the UI runs. */
export function detectTransport(w: any = window): Transport {
  if (w.__TAURI_INTERNALS__?.invoke) return tauriTransport(w.__TAURI_INTERNALS__.invoke);
  return httpTransport(() => bridgeToken(w.location, w.sessionStorage));
}

let current: Transport | null = null;
export function api(): Transport {
  current ??= detectTransport();
  return current;
}
export function setTransport(t: Transport): void {
  current = t;
}
