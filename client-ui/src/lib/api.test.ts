import { describe, expect, it, vi } from 'vitest';
import { StationError, bridgeToken, detectTransport, httpTransport, tauriTransport } from './api';

function fakeFetch(status: number, body: unknown) {
  return vi.fn(async (_url: string, _init?: RequestInit) => new Response(JSON.stringify(body), { status }));
}

describe('HTTP bridge transport', () => {
  it('sends the token header and the command as JSON', async () => {
    const f = fakeFetch(200, { kind: 'status', output: { operator: 'officer1' } });
    const out = await httpTransport('abc', '', f as any).command({ op: 'status' });
    expect(out.kind).toBe('status');
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('/api/command');
    expect((init!.headers as Record<string, string>)['x-tessera-token']).toBe('abc');
    expect(JSON.parse(init!.body as string)).toEqual({ op: 'status' });
  });

  it('turns a CommandError body into a typed StationError', async () => {
    const f = fakeFetch(422, { code: 'VALIDATION', message: 'bad', fields: [{ field: 'email', code: 'INVALID', message: 'x' }] });
    const e = await httpTransport('t', '', f as any).command({ op: 'saveAnswers' }).catch((x) => x);
    expect(e).toBeInstanceOf(StationError);
    expect(e.code).toBe('VALIDATION');
    expect(e.fields[0].field).toBe('email');
    expect(e.status).toBe(422);
  });

  it('401 means a missing token', async () => {
    const e = await httpTransport('', '', fakeFetch(401, { error: 'missing' }) as any).login('a', 'b').catch((x) => x);
    expect(e.code).toBe('BRIDGE_TOKEN');
  });

  it('an unreachable bridge is an IO error, not a crash', async () => {
    const f = vi.fn(async () => { throw new TypeError('failed to fetch'); });
    const e = await httpTransport('t', '', f as any).form('NEW').catch((x) => x);
    expect(e.code).toBe('IO');
  });

  it('reads the token from the URL fragment and remembers it', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => store.set(k, v) } as any;
    expect(bridgeToken({ hash: '#token=00ff' } as any, storage)).toBe('00ff');
    expect(bridgeToken({ hash: '' } as any, storage)).toBe('00ff');
  });
});

describe('transport detection', () => {
  it('uses the bridge with the token from the fragment, read at call time', async () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => store.set(k, v) };
    const loc = { hash: '' };
    const f = fakeFetch(200, { kind: 'done' });
    const orig = globalThis.fetch;
    globalThis.fetch = f as any;
    try {
      const t = detectTransport({ location: loc, sessionStorage: storage });
      loc.hash = '#token=beef';
      await t.command({ op: 'logout' });
      expect((f.mock.calls[0][1]!.headers as Record<string, string>)['x-tessera-token']).toBe('beef');
    } finally {
      globalThis.fetch = orig;
    }
  });

  it('uses Tauri invoke when the shell is present', async () => {
    const invoke = vi.fn(async () => ({ kind: 'done' }));
    const t = detectTransport({ __TAURI_INTERNALS__: { invoke }, location: { hash: '' }, sessionStorage: window.sessionStorage });
    await t.command({ op: 'logout' });
    expect(invoke).toHaveBeenCalledWith('station', { request: { call: 'command', input: { op: 'logout' } } });
  });

  it('sends login and form requests through the one station command', async () => {
    const invoke = vi.fn(async (_cmd: string, _args?: Record<string, unknown>) => ({}));
    const t = tauriTransport(invoke);
    await t.login('officer1', 'pw');
    await t.form('NEW');
    expect(invoke.mock.calls).toEqual([
      ['station', { request: { call: 'login', input: { operator: 'officer1', password: 'pw' } } }],
      ['station', { request: { call: 'formSpec', input: { process: 'NEW' } } }],
    ]);
  });

  it('a rejection without a typed error is an IO error', async () => {
    const invoke = vi.fn(async () => { throw 'window closed'; });
    const e = await tauriTransport(invoke).command({ op: 'status' }).catch((x) => x);
    expect(e).toBeInstanceOf(StationError);
    expect(e.code).toBe('IO');
    expect(e.message).toContain('window closed');
  });

  it('Tauri errors become StationErrors', async () => {
    const invoke = vi.fn(async () => { throw { code: 'WRONG_PASSWORD', message: 'wrong password' }; });
    const t = detectTransport({ __TAURI_INTERNALS__: { invoke }, location: { hash: '' }, sessionStorage: window.sessionStorage });
    const e = await t.login('a', 'b').catch((x) => x);
    expect(e).toBeInstanceOf(StationError);
    expect(e.code).toBe('WRONG_PASSWORD');
  });
});

describe('live preview', () => {
  function ndjson(lines: unknown[], chunkAt = 7) {
    const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    const bytes = new TextEncoder().encode(text);
    // Chunks that cut lines in the middle, as a network would.
    return new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += chunkAt) c.enqueue(bytes.slice(i, i + chunkAt));
        c.close();
      },
    });
  }

  it('reads the bridge stream line by line into events, with the token', async () => {
    const events = [
      { event: 'started', part: 'face', device: { port: 4504, bioType: 'Face', subType: 'Full face', status: 'Ready', serialNo: 'F1', model: 'Sim' } },
      { event: 'frame', seq: 1, jpegBase64: '/9j/AA==' },
      { event: 'frame', seq: 2, jpegBase64: '/9j/AB==' },
      { event: 'ended', reason: 'capture', frames: 2 },
    ];
    const f = vi.fn(async (_u: string, _i?: RequestInit) => new Response(ndjson(events), { status: 200 }));
    const got: any[] = [];
    await new Promise<void>((done) => {
      httpTransport('tok', '', f as any).preview({ part: 'face' }, (e) => {
        got.push(e);
        if (e.event === 'ended') done();
      });
    });
    expect(got).toEqual(events);
    const [url, init] = f.mock.calls[0];
    expect(url).toBe('/api/preview');
    expect((init!.headers as Record<string, string>)['x-tessera-token']).toBe('tok');
    expect(JSON.parse(init!.body as string)).toEqual({ part: 'face' });
  });

  it('a refused preview is one failed event with the core error', async () => {
    const f = fakeFetch(403, { code: 'NOT_LOGGED_IN', message: 'log in first' });
    const got = await new Promise<any>((done) => httpTransport('t', '', f as any).preview({ part: 'face' }, done));
    expect(got).toEqual({ event: 'failed', error: { code: 'NOT_LOGGED_IN', message: 'log in first' } });
  });

  it('a stream that stops without an end is a failure, and stop() silences the rest', async () => {
    const f = vi.fn(async () => new Response(ndjson([{ event: 'frame', seq: 1, jpegBase64: 'x' }]), { status: 200 }));
    const got: any[] = [];
    await new Promise<void>((done) => httpTransport('t', '', f as any).preview({ part: 'face' }, (e) => { got.push(e); if (e.event === 'failed') done(); }));
    expect(got.map((e) => e.event)).toEqual(['frame', 'failed']);

    const slow = vi.fn(async (_u: string, init?: RequestInit) => new Promise<Response>((_ok, fail) => init!.signal!.addEventListener('abort', () => fail(new DOMException('aborted', 'AbortError')))));
    const after: any[] = [];
    const h = httpTransport('t', '', slow as any).preview({ part: 'face' }, (e) => after.push(e));
    h.stop();
    await new Promise((r) => setTimeout(r, 10));
    expect(after).toEqual([]);
    expect(slow).toHaveBeenCalledTimes(1);
  });

  it('inside Tauri: a channel carries the events and stop sends stopPreview', async () => {
    let deliver: (m: unknown) => void = () => undefined;
    const channel = { id: 1 };
    const invoke = vi.fn(async (_cmd: string, _args?: Record<string, unknown>) => ({ kind: 'done' }));
    const t = tauriTransport(invoke, (onMessage) => { deliver = onMessage; return channel; });
    const got: any[] = [];
    const h = t.preview({ part: 'leftSlap', devices: { firstPort: 4501, lastPort: 4504 } }, (e) => got.push(e));
    expect(invoke).toHaveBeenCalledWith('preview', { request: { part: 'leftSlap', devices: { firstPort: 4501, lastPort: 4504 } }, onEvent: channel });
    deliver({ event: 'frame', seq: 1, jpegBase64: 'x' });
    h.stop();
    deliver({ event: 'frame', seq: 2, jpegBase64: 'y' });
    expect(got).toEqual([{ event: 'frame', seq: 1, jpegBase64: 'x' }]);
    expect(invoke).toHaveBeenLastCalledWith('station', { request: { call: 'command', input: { op: 'stopPreview' } } });
  });

  it('inside Tauri: a refused preview call becomes a failed event', async () => {
    const invoke = vi.fn(async () => { throw { code: 'DEVICE', message: 'no device-provider CA' }; });
    const got = await new Promise<any>((done) => tauriTransport(invoke, () => ({})).preview({ part: 'face' }, done));
    expect(got).toEqual({ event: 'failed', error: { code: 'DEVICE', message: 'no device-provider CA' } });
  });
});
