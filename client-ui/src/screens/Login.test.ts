import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import Login from './Login.svelte';
import { setTransport, StationError } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

describe('Login screen', () => {
  it('labels its inputs and shows the core error', async () => {
    const login = vi.fn(async () => { throw new StationError({ code: 'WRONG_PASSWORD', message: 'wrong password for officer1' }); });
    setTransport({ login, command: vi.fn(), form: vi.fn() } as any);
    render(Login);
    await fireEvent.input(screen.getByLabelText('Operator id'), { target: { value: 'officer1' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'x' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    expect(await screen.findByRole('alert')).toHaveProperty('textContent', 'wrong password for officer1');
    expect(login).toHaveBeenCalledWith('officer1', 'x');
  });

  it('switches to Arabic, right to left', async () => {
    setTransport({ login: vi.fn(), command: vi.fn(), form: vi.fn() } as any);
    render(Login);
    await fireEvent.click(screen.getByRole('button', { name: 'العربية' }));
    expect(ui.lang).toBe('ara');
    expect(document.documentElement.dir).toBe('rtl');
    expect(screen.getByLabelText('كلمة المرور')).toBeTruthy();
  });

  it('logs in and goes to the dashboard', async () => {
    const login = vi.fn(async () => ({ operator: 'super1', roles: ['supervisor', 'officer'], recovery: {} }));
    setTransport({ login, command: vi.fn(), form: vi.fn() } as any);
    ui.lang = 'eng';
    render(Login);
    await fireEvent.input(screen.getByLabelText('Operator id'), { target: { value: ' super1 ' } });
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await vi.waitFor(() => expect(ui.screen).toBe('dashboard'));
    expect(ui.roles).toContain('supervisor');
    expect(login).toHaveBeenCalledWith('super1', 'pw');
  });

  it('after an idle lock, says why and returns the same operator to their draft', async () => {
    const login = vi.fn(async () => ({ operator: 'officer1', roles: ['officer'], recovery: {} }));
    setTransport({ login, command: vi.fn(), form: vi.fn() } as any);
    ui.lang = 'eng';
    ui.operator = '';
    ui.locked = { operator: 'officer1', screen: 'wizard', draft: 7 };
    render(Login);
    expect(screen.getByTestId('locked').textContent).toContain('officer1, log in again to continue where you stopped');
    expect((screen.getByLabelText('Operator id') as HTMLInputElement).value).toBe('officer1');
    await fireEvent.input(screen.getByLabelText('Password'), { target: { value: 'pw' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Log in' }));
    await vi.waitFor(() => expect(ui.screen).toBe('wizard'));
    expect(ui.resumeDraft).toBe(7);
    expect(ui.locked).toBeNull();
    ui.resumeDraft = null;
  });
});
