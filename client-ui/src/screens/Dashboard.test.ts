import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Dashboard from './Dashboard.svelte';
import { setTransport } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

function transport(status: unknown, drafts: unknown[] = [], uploads: unknown[] = []) {
  const command = vi.fn(async (c: { op: string }) =>
    c.op === 'status' ? { kind: 'status', output: status }
      : c.op === 'uploads' ? { kind: 'uploads', output: uploads }
        : { kind: 'drafts', output: drafts });
  setTransport({ login: vi.fn(), command, form: vi.fn() } as any);
  return command;
}

const base = {
  machine: { fingerprint: 'ab12-cd34' }, operator: 'officer1', lastMasterSync: null, configVersion: '1', idSchemaVersion: '1',
  dashboard: { drafts: 1, awaitingApproval: 3, approved: 2, rejected: 1, exported: 5, uploaded: 4, processed: 6 },
  server: null,
};

describe('Dashboard', () => {
  it('shows the counts from the core status fields and the open drafts', async () => {
    ui.lang = 'eng';
    transport({ ...base, frozen: null }, [{ id: 7, process: 'NEW', updatedAt: '2026-11-20T09:00:00Z' }]);
    render(Dashboard);
    expect((await screen.findByTestId('count-awaiting')).textContent).toContain('3');
    // uploaded is the core's `uploaded` field, not `exported`
    expect(screen.getByTestId('count-uploaded').textContent).toMatch(/^4/);
    expect(screen.getByTestId('count-processed').textContent).toMatch(/^6/);
    expect(screen.getByTestId('count-exported').textContent).toMatch(/^5/);
    expect(await screen.findByRole('button', { name: 'Resume' })).toBeTruthy();
    expect(screen.queryByTestId('freeze')).toBeNull();
    expect(screen.getByTestId('last-sync').textContent).toBe('never');
    expect(screen.getByTestId('not-enrolled')).toBeTruthy();
  });

  it('counts packets the server rejected and explains the last sync error in plain words', async () => {
    ui.lang = 'eng';
    const server = { url: 'http://s', machineStatus: 'ACTIVE', lastContact: '2026-11-29T10:00:00Z', lastError: 'error sending request: connection refused' };
    transport({ ...base, frozen: null, server }, [], [
      { rid: '1', serverStatus: 'REJECTED' }, { rid: '2', serverStatus: 'PROCESSED' }, { rid: '3', serverStatus: 'REJECTED' },
    ]);
    render(Dashboard);
    await screen.findByTestId('count-awaiting');
    await waitFor(() => expect(screen.getByTestId('count-rejected-server').textContent).toMatch(/^2/));
    expect(screen.getByTestId('dashboard-sync-error').textContent).toContain('cannot reach the server');
    expect(screen.queryByTestId('not-enrolled')).toBeNull();
  });

  it('explains a freeze and what to do, in French', async () => {
    ui.lang = 'fra';
    transport({ ...base, frozen: { rule: 'tooManyAwaitingApproval', count: 120, limit: 100 } });
    render(Dashboard);
    const banner = await screen.findByTestId('freeze');
    expect(banner.textContent).toContain('un superviseur doit les examiner');
    ui.lang = 'eng';
  });

  it('a freeze offers the place to fix it', async () => {
    ui.lang = 'eng';
    ui.roles = ['officer'];
    transport({ ...base, frozen: { rule: 'masterDataStale', days: 9, limit: 5 } });
    render(Dashboard);
    const action = await screen.findByTestId('freeze-action');
    expect(action.textContent).toBe('Sync');
    await fireEvent.click(action);
    expect(ui.screen).toBe('sync');
    cleanup();
    ui.roles = ['supervisor', 'officer'];
    transport({ ...base, frozen: { rule: 'tooManyAwaitingApproval', count: 120, limit: 100 } });
    render(Dashboard);
    expect((await screen.findByTestId('freeze-action')).textContent).toBe('Approvals');
    ui.roles = [];
  });
});
