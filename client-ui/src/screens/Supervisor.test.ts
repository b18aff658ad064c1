import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Supervisor from './Supervisor.svelte';
import { setTransport } from '../lib/api';
import { ui } from '../lib/app.svelte';

afterEach(cleanup);

const root = join(dirname(fileURLToPath(import.meta.url)), '../../../config/sample-country');
const cfg = (n: string) => JSON.parse(readFileSync(join(root, `${n}.json`), 'utf8'));
const spec = { uiSpec: cfg('ui-spec/NEW'), schema: cfg('id-schema'), lists: cfg('dynamic-lists'), locations: cfg('locations'), documents: cfg('documents') };
const RID = '10001100770000120261129090505';

describe('Supervisor queue', () => {
  it('shows the review copy of a packet: demographics with list labels, documents, biometrics', async () => {
    ui.lang = 'eng';
    const command = vi.fn(async (c: { op: string; input?: any }) => {
      switch (c.op) {
        case 'pending': return { kind: 'packets', output: [{ rid: RID, process: 'NEW', operatorId: 'officer1', createdAt: '2026-11-29T09:05:05Z' }] };
        case 'rejectionReasons': return { kind: 'reasons', output: [] };
        case 'packetReview': return { kind: 'draft', output: { id: 4, process: 'NEW', body: {
          answers: { languages: ['eng', 'fra'], demographics: { fullName: { eng: 'Amina Diallo', fra: 'Amina Diallo' }, gender: 'FLE' }, biometrics: { exceptions: { rightLittle: { kind: 'MISSING' } } } },
          documents: { proofOfAddress: { docType: 'DOC002', refNumber: 'BILL-1', mime: 'application/pdf', size: 2048 } },
          captures: { rightThumb: { quality: 77, forceCaptured: false } },
        } } };
        case 'draftDocument': return { kind: 'draftDocument', output: { mime: 'application/pdf', content_base64: 'JVBERi0=' } };
        default: throw new Error(c.op);
      }
    });
    const form = vi.fn(async () => spec);
    setTransport({ login: vi.fn(), command, form } as any);
    render(Supervisor);
    await fireEvent.click(await screen.findByRole('button', { name: 'Review data' }));
    const body = await screen.findByTestId('review-copy-body');
    await waitFor(() => expect(body.textContent).toContain('Amina Diallo / Amina Diallo'));
    expect(command).toHaveBeenCalledWith({ op: 'packetReview', input: { rid: RID } });
    expect(form).toHaveBeenCalledWith('NEW');
    expect(body.textContent).toMatch(/Female \(FLE\)|\(FLE\)/);
    expect(body.textContent).toContain('BILL-1');
    expect(screen.getByTestId('review-copy-bio').textContent).toContain('Right thumb: 77');
    expect(screen.getByTestId('review-copy-bio').textContent).toContain('Right little: Missing');
    await screen.findByTestId('docprev-pdf-proofOfAddress');
    expect(command).toHaveBeenCalledWith({ op: 'draftDocument', input: { draft: 4, field: 'proofOfAddress' } });
    // Closing it again.
    await fireEvent.click(screen.getByRole('button', { name: 'Review data' }));
    expect(screen.queryByTestId('review-copy-body')).toBeNull();
  });
});
