import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Sync from './Sync.svelte';
import Setup from './Setup.svelte';
import { setTransport, StationError } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

const server = { url: 'http://127.0.0.1:8440', machineStatus: 'ACTIVE', lastContact: null, lastError: 'error sending request: connection refused' };
const status = (s: unknown) => ({ machine: { fingerprint: 'ab12 cd34 ef56' }, dashboard: {}, server: s });

describe('Sync screen', () => {
  it('shows per-packet state with progress, the last error in plain words, and retries', async () => {
    ui.lang = 'eng';
    const calls: string[] = [];
    const command = vi.fn(async (c: { op: string }) => {
      calls.push(c.op);
      if (c.op === 'status') return { kind: 'status', output: status(server) };
      if (c.op === 'uploads') return { kind: 'uploads', output: [
        { rid: '10001100770000120261129101010', state: 'APPROVED', serverStatus: null, attempts: 2, lastError: 'connection refused' },
        { rid: '10001100770000220261129101010', state: 'UPLOADED', serverStatus: 'PROCESSED', attempts: 1, lastError: null },
      ] };
      if (c.op === 'sync') return { kind: 'synced', output: { uploaded: ['x'], failed: [], queued: 0, stopped: null, masterDataError: null } };
      throw new Error(c.op);
    });
    setTransport({ login: vi.fn(), command, form: vi.fn() } as any);
    render(Sync);
    expect((await screen.findByTestId('last-error')).textContent).toContain('cannot reach the server');
    await waitFor(() => expect(screen.getAllByTestId('packet-state').length).toBe(2));
    const states = screen.getAllByTestId('packet-state').map((e) => e.textContent);
    expect(states[0]).toBe('Upload failed, will retry');
    expect(states[1]).toBe('Processed: UIN issued');
    const bars = screen.getAllByRole('progressbar') as HTMLProgressElement[];
    expect(bars.map((b) => b.value)).toEqual([1, 3]);
    await fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect((await screen.findByTestId('sync-report')).textContent).toContain('1 uploaded, 0 failed');
    expect(calls).toContain('sync');
  });

  it('export needs a folder, then reports what it wrote', async () => {
    ui.lang = 'eng';
    const command = vi.fn(async (c: any) => {
      if (c.op === 'status') return { kind: 'status', output: status(null) };
      if (c.op === 'export') return { kind: 'exported', output: { dir: c.input.dir, rids: ['a', 'b'], manifest: 'm' } };
      throw new Error(c.op);
    });
    setTransport({ login: vi.fn(), command, form: vi.fn() } as any);
    render(Sync);
    await fireEvent.click(await screen.findByRole('button', { name: 'Export' }));
    expect((await screen.findByTestId('sync-error')).textContent).toContain('Enter the folder');
    await fireEvent.input(screen.getByLabelText('Folder on the USB drive'), { target: { value: '/media/usb' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Export' }));
    expect((await screen.findByTestId('export-report')).textContent).toBe('2 packets exported to /media/usb.');
  });
});

describe('First-run setup', () => {
  it('checks the address, enrols showing the fingerprint, and reports a refused enrolment', async () => {
    ui.lang = 'eng';
    let enrolled = false;
    const command = vi.fn(async (c: any) => {
      if (c.op === 'status') return { kind: 'status', output: status(enrolled ? { ...server, machineStatus: 'PENDING', lastError: null } : null) };
      if (c.op === 'enrolMachine') {
        if (c.input.server_url.includes('down')) throw new StationError({ code: 'SERVER', message: 'enrolling: error sending request: connection refused' });
        enrolled = true;
        return { kind: 'enrolled', output: { serverUrl: c.input.server_url, machineId: '10077', status: 'PENDING', fingerprint: 'ab12 cd34 ef56', serverKeyFingerprint: 'ff00', machineIdChanged: false } };
      }
      throw new Error(c.op);
    });
    setTransport({ login: vi.fn(), command, form: vi.fn() } as any);
    render(Setup);
    expect((await screen.findByTestId('fingerprint')).textContent).toBe('ab12 cd34 ef56');
    const url = screen.getByLabelText('Server address');
    await fireEvent.input(url, { target: { value: 'not a url' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enrol this machine' }));
    expect(url.getAttribute('aria-invalid')).toBe('true');
    expect(command.mock.calls.some(([c]) => c.op === 'enrolMachine')).toBe(false);
    await fireEvent.input(url, { target: { value: 'http://down.example:8440' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enrol this machine' }));
    expect((await screen.findByTestId('setup-error')).textContent).toContain('cannot reach the server');
    await fireEvent.input(url, { target: { value: 'http://127.0.0.1:8440' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Enrol this machine' }));
    expect((await screen.findByTestId('machine-status')).textContent).toContain('Waiting for the administrator');
    expect(screen.getByRole('button', { name: 'Run the first sync' })).toBeTruthy();
  });
});
