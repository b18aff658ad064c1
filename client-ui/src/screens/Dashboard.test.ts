import { cleanup, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Dashboard from './Dashboard.svelte';
import { setTransport } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

function transport(status: unknown, drafts: unknown[] = []) {
  const command = vi.fn(async (c: { op: string }) =>
    c.op === 'status' ? { kind: 'status', output: status } : { kind: 'drafts', output: drafts });
  setTransport({ login: vi.fn(), command, form: vi.fn() } as any);
  return command;
}

const base = {
  machine: {}, operator: 'officer1', lastMasterSync: null, configVersion: '1', idSchemaVersion: '1',
  dashboard: { drafts: 1, awaitingApproval: 3, approved: 2, rejected: 1, exported: 5 },
};

describe('Dashboard', () => {
  it('shows the counts and the open drafts', async () => {
    ui.lang = 'eng';
    transport({ ...base, frozen: null }, [{ id: 7, process: 'NEW', updatedAt: '2026-11-20T09:00:00Z' }]);
    render(Dashboard);
    expect((await screen.findByTestId('count-awaiting')).textContent).toContain('3');
    expect(screen.getByTestId('count-uploaded').textContent).toContain('5');
    expect(await screen.findByRole('button', { name: 'Resume' })).toBeTruthy();
    expect(screen.queryByTestId('freeze')).toBeNull();
    expect(screen.getByTestId('last-sync').textContent).toBe('never');
  });

  it('explains a freeze and what to do, in French', async () => {
    ui.lang = 'fra';
    transport({ ...base, frozen: { rule: 'tooManyAwaitingApproval', count: 120, limit: 100 } });
    render(Dashboard);
    const banner = await screen.findByTestId('freeze');
    expect(banner.textContent).toContain('un superviseur doit les examiner');
    ui.lang = 'eng';
  });
});
