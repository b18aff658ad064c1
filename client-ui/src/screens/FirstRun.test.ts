import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import FirstRun from './FirstRun.svelte';
import { setTransport, StationError, type KitSummary } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

const summary: KitSummary = {
  kitSha256: 'ab'.repeat(32), centerId: '10001', centerName: { eng: 'Hillborough Central', fra: 'Collineville' }, country: 'Tessera Sample Republic',
  machineId: '00000', serverUrl: 'https://tessera.example:8440', serverKeyFingerprint: 'SHA256:1A2B 3C4D', recoveryKey: 'age1' + 'q'.repeat(58),
  createdAt: '2026-11-29T10:00:00Z', configVersion: '2026.11.1', packetKeys: 1, certificates: 2,
  operators: [{ id: 'officer1', name: 'A. Officer', roles: ['officer'], active: true }, { id: 'gone1', name: 'Gone', roles: ['officer'], active: false }],
};

function kitFile(text = '{"format":"tessera-station-kit"}') {
  return new File([text], 'station-10001.tkit', { type: 'application/json' });
}

describe('First run from a station set-up kit', () => {
  it('shows what the kit holds, asks to compare the fingerprint, creates the station and goes to set-up', async () => {
    ui.lang = 'eng';
    ui.operator = '';
    const inspectKit = vi.fn(async () => summary);
    const createFromKit = vi.fn(async () => ({ operator: 'officer1', roles: ['officer'], machine: { centerId: '10001', machineId: '00000', fingerprint: 'SHA256:FF' }, kit: summary }));
    setTransport({ login: vi.fn(), command: vi.fn(), form: vi.fn(), inspectKit, createFromKit } as any);
    render(FirstRun);
    await fireEvent.change(screen.getByLabelText('Station set-up kit'), { target: { files: [kitFile()] } });
    await screen.findByTestId('kit-summary');
    expect(inspectKit).toHaveBeenCalledWith(btoa('{"format":"tessera-station-kit"}'));
    expect(screen.getByTestId('kit-center').textContent).toContain('Hillborough Central');
    expect(screen.getByTestId('kit-fingerprint').textContent).toBe('SHA256:1A2B 3C4D');
    expect(screen.getByTestId('kit-server').textContent).toBe('https://tessera.example:8440');
    expect(screen.getByTestId('kit-operators').textContent).toContain('officer1 — A. Officer');
    // Only active operators can be the first one.
    const select = screen.getByLabelText('You (first operator)') as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(['officer1']);
    await fireEvent.input(screen.getByLabelText('Your password'), { target: { value: 'pw' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Create the station' }));
    expect(await screen.findByText("Confirm that the fingerprint matches the administrator's slip.")).toBeTruthy();
    expect(createFromKit).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByLabelText("The fingerprint is the same as on the administrator's slip"));
    await fireEvent.click(screen.getByRole('button', { name: 'Create the station' }));
    await waitFor(() => expect(ui.screen).toBe('setup'));
    expect(createFromKit).toHaveBeenCalledWith({ kitBase64: btoa('{"format":"tessera-station-kit"}'), kitSha256: summary.kitSha256, operator: 'officer1', password: 'pw' });
    expect(ui.operator).toBe('officer1');
    ui.operator = '';
  });

  it('a bad kit is refused with the core message and nothing else is offered', async () => {
    const inspectKit = vi.fn(async () => { throw new StationError({ code: 'KIT', message: 'station kit: the kit file is incomplete (it stops after 812 bytes)' }); });
    setTransport({ login: vi.fn(), command: vi.fn(), form: vi.fn(), inspectKit } as any);
    render(FirstRun);
    await fireEvent.change(screen.getByLabelText('Station set-up kit'), { target: { files: [kitFile('{"form')] } });
    expect((await screen.findByTestId('kit-error')).textContent).toContain('incomplete');
    expect(screen.queryByTestId('kit-summary')).toBeNull();
    expect(screen.queryByRole('button', { name: 'Create the station' })).toBeNull();
  });
});
