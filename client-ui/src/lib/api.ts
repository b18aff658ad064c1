// The one adapter between the UI and the station core: Tauri `invoke` inside the desktop app, the local
// HTTP bridge (`tessera-station ui`) in a browser. Both carry the same command table.
import { Channel } from '@tauri-apps/api/core';

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

/** What to preview: a capture part (`leftSlap`, `rightSlap`, `thumbs`, `irises`, `face`) and where the devices are. */
export interface PreviewInput { part: string; devices?: { firstPort: number; lastPort: number }; timeoutSecs?: number }
/** One event of a live STREAM preview, in order: `started`, `frame`s, then `ended` or `failed`. */
export type PreviewEvent =
  | { event: 'started'; part: string; device: { port: number; bioType: string; subType: string; status: string; serialNo: string; model: string } }
  | { event: 'frame'; seq: number; jpegBase64: string }
  | { event: 'ended'; reason: 'stopped' | 'capture' | 'replaced' | 'logout' | 'timeout' | 'deviceEnded'; frames: number }
  | { event: 'failed'; error: CommandError };
/** A running preview; `stop()` ends it (no further events are delivered). */
export interface PreviewHandle { stop(): void }

/** What a station set-up kit holds (the core's `KitSummary`). */
export interface KitSummary {
  kitSha256: string; centerId: string; centerName: Record<string, string>; country: string; machineId: string;
  serverUrl: string; serverKeyFingerprint: string; recoveryKey: string; createdAt: string; configVersion: string;
  operators: { id: string; name: string; roles: string[]; active: boolean }[]; packetKeys: number; certificates: number;
}
export interface KitCreated { operator: string; roles: string[]; machine: { centerId: string; machineId: string; fingerprint: string }; kit: KitSummary }
export interface KitCreate { kitBase64: string; kitSha256: string; operator: string; password: string }

export interface Transport {
  login(operator: string, password: string): Promise<LoginOutput>;
  command(cmd: Command): Promise<Output>;
  form(process: string): Promise<any>;
  /** Starts the live STREAM preview; events arrive on `onEvent` until `ended`/`failed` or `stop()`. */
  preview(input: PreviewInput, onEvent: (e: PreviewEvent) => void): PreviewHandle;
  /** First run: whether the station folder holds a station yet. */
  home(): Promise<{ initialised: boolean }>;
  /** Reads a station set-up kit (base64) and says what it holds; writes nothing. */
  inspectKit(kitBase64: string): Promise<KitSummary>;
  /** Creates the station from the kit the officer confirmed; the first operator is then logged in. */
  createFromKit(input: KitCreate): Promise<KitCreated>;
}

type Invoke = (cmd: string, args?: Record<string, unknown>) => Promise<unknown>;
/** Makes a Tauri IPC channel delivering messages to `onMessage` (`Channel` of `@tauri-apps/api/core`). */
export type MakeChannel = (onMessage: (m: any) => void) => unknown;

/**
 * Tauri shell (`client/desktop`): one command, `station`, carrying `{ call, input }` where call is `login`,
 * `command` (a command of the station's table) or `formSpec`. It answers exactly what the HTTP bridge answers
 * for the same call, and rejects with the core's typed `CommandError`.
 */
export function tauriTransport(invoke: Invoke, makeChannel: MakeChannel = defaultChannel): Transport {
  const call = async <T>(name: 'login' | 'command' | 'formSpec' | 'home' | 'kitInspect' | 'kitCreate', input?: unknown): Promise<T> => {
    try {
      return (await invoke('station', { request: input === undefined ? { call: name } : { call: name, input } })) as T;
    } catch (e) {
      throw new StationError(asCommandError(e));
    }
  };
  return {
    login: (operator, password) => call('login', { operator, password }),
    command: (cmd) => call('command', cmd),
    form: (process) => call('formSpec', { process }),
    home: () => call('home'),
    inspectKit: (kitBase64) => call('kitInspect', { kitBase64 }),
    createFromKit: (input) => call('kitCreate', input),
    preview(input, onEvent) {
      let live = true;
      const deliver = (e: PreviewEvent) => {
        if (!live) return;
        if (e.event === 'ended' || e.event === 'failed') live = false;
        onEvent(e);
      };
      const channel = makeChannel((m) => deliver(m as PreviewEvent));
      invoke('preview', { request: input, onEvent: channel }).catch((e) => deliver({ event: 'failed', error: asCommandError(e) }));
      return {
        stop() {
          if (!live) return;
          live = false;
          call('command', { op: 'stopPreview' }).catch(() => undefined);
        },
      };
    },
  };
}

function defaultChannel(onMessage: (m: any) => void): unknown {
  return new Channel<any>(onMessage);
}

/** Splits a byte stream of JSON lines (the bridge's `application/x-ndjson`) into parsed values. */
export async function readJsonLines(body: ReadableStream<Uint8Array>, onValue: (v: any) => void): Promise<void> {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onValue(JSON.parse(line));
    }
    if (done) break;
  }
  if (buf.trim()) onValue(JSON.parse(buf));
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
    home: () => send('GET', '/api/home'),
    inspectKit: (kitBase64) => send('POST', '/api/kit/inspect', { kitBase64 }),
    createFromKit: (input) => send('POST', '/api/kit/create', input),
    preview(input, onEvent) {
      const abort = new AbortController();
      let live = true;
      const deliver = (e: PreviewEvent) => {
        if (!live) return;
        if (e.event === 'ended' || e.event === 'failed') live = false;
        onEvent(e);
      };
      (async () => {
        const tok = typeof token === 'function' ? token() : token;
        const res = await fetchFn(base + '/api/preview', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-tessera-token': tok },
          body: JSON.stringify(input),
          signal: abort.signal,
        });
        if (!res.ok || !res.body) {
          const text = await res.text();
          let err: CommandError;
          try {
            err = res.status === 401 ? { code: 'BRIDGE_TOKEN', message: JSON.parse(text).error } : asCommandError(JSON.parse(text));
          } catch {
            err = { code: 'IO', message: `unexpected answer from the bridge (HTTP ${res.status})` };
          }
          deliver({ event: 'failed', error: err });
          return;
        }
        await readJsonLines(res.body, (v) => deliver(v as PreviewEvent));
        // The stream closed without a final event: the bridge went away.
        deliver({ event: 'failed', error: { code: 'IO', message: 'the preview stream stopped unexpectedly' } });
      })().catch((e) => {
        if (live) deliver({ event: 'failed', error: { code: 'IO', message: `the station bridge is not reachable: ${String(e)}` } });
      });
      return {
        stop() {
          live = false;
          abort.abort();
        },
      };
    },
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
