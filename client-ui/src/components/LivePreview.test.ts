import { cleanup, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import LivePreview from './LivePreview.svelte';
import { setTransport, type PreviewEvent } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

function fakePreview() {
  const runs: { part: string; emit: (e: PreviewEvent) => void; stop: ReturnType<typeof vi.fn> }[] = [];
  const preview = vi.fn((input: { part: string }, onEvent: (e: PreviewEvent) => void) => {
    const stop = vi.fn();
    runs.push({ part: input.part, emit: onEvent, stop });
    return { stop };
  });
  setTransport({ login: vi.fn(), command: vi.fn(), form: vi.fn(), preview } as any);
  return { preview, runs };
}

const device = { port: 4501, bioType: 'Finger', subType: 'Slap', status: 'Ready', serialNo: 'SLAP-1', model: 'Sim Slap' };

describe('LivePreview', () => {
  it('shows decoded frames, the device and its status, and why the preview ended', async () => {
    ui.lang = 'eng';
    const { runs } = fakePreview();
    const onended = vi.fn();
    render(LivePreview, { props: { part: 'leftSlap', onended } });
    await waitFor(() => expect(runs.length).toBe(1));
    expect(runs[0].part).toBe('leftSlap');
    expect(screen.getByTestId('preview-status').textContent).toContain('Starting the preview of Left hand, four fingers');
    runs[0].emit({ event: 'started', part: 'leftSlap', device });
    runs[0].emit({ event: 'frame', seq: 1, jpegBase64: 'AAAA' });
    runs[0].emit({ event: 'frame', seq: 2, jpegBase64: 'BBBB' });
    runs[0].emit({ event: 'frame', seq: 1, jpegBase64: 'OLD=' }); // late: never shown over a newer one
    await waitFor(() => expect(screen.getByTestId('preview').dataset.frames).toBe('2'));
    const img = screen.getByTestId('preview-image') as HTMLImageElement;
    expect(img.getAttribute('src')).toBe('data:image/jpeg;base64,BBBB');
    expect(img.alt).toContain('Left hand');
    expect(screen.getByTestId('preview-status').textContent).toContain('Live: Left hand, four fingers on Sim Slap SLAP-1 (Ready) — frame 2');
    runs[0].emit({ event: 'ended', reason: 'capture', frames: 2 });
    await waitFor(() => expect(screen.getByTestId('preview-status').textContent).toBe('Preview stopped: the capture started.'));
    expect(onended).toHaveBeenCalledWith('capture');
  });

  it('says in plain words why a device refused', async () => {
    ui.lang = 'eng';
    const { runs } = fakePreview();
    render(LivePreview, { props: { part: 'face' } });
    await waitFor(() => expect(runs.length).toBe(1));
    runs[0].emit({ event: 'failed', error: { code: 'DEVICE', message: 'previewing Face: device F1: the device answered error 111 (Busy)' } });
    expect((await screen.findByTestId('preview-error')).textContent).toContain('The device is busy');
  });

  it('switching part stops the old preview; no part stops it too; leaving stops it', async () => {
    const { runs } = fakePreview();
    const r = render(LivePreview, { props: { part: 'leftSlap' } });
    await waitFor(() => expect(runs.length).toBe(1));
    await r.rerender({ part: 'thumbs' });
    await waitFor(() => expect(runs.length).toBe(2));
    expect(runs[0].stop).toHaveBeenCalled();
    // Events of the old preview are ignored.
    runs[0].emit({ event: 'frame', seq: 9, jpegBase64: 'OLD=' });
    expect(screen.getByTestId('preview').dataset.frames).toBe('0');
    await r.rerender({ part: null });
    expect(runs[1].stop).toHaveBeenCalled();
    expect(screen.getByTestId('preview-status').textContent).toBe('Preview stopped.');
    await r.rerender({ part: 'face' });
    await waitFor(() => expect(runs.length).toBe(3));
    r.unmount();
    expect(runs[2].stop).toHaveBeenCalled();
  });
});
