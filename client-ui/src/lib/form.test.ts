import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { choices, demographicFields, demographicsAnswer, documentSlots, validateField } from './form';

// The sample country configuration, shaped as the bridge's FormSpec.
const root = join(dirname(fileURLToPath(import.meta.url)), '../../../config/sample-country');
const cfg = (n: string) => JSON.parse(readFileSync(join(root, `${n}.json`), 'utf8'));
const spec = {
  uiSpec: cfg('ui-spec/NEW'),
  schema: cfg('id-schema'),
  languages: cfg('manifest').languages,
  lists: cfg('dynamic-lists'),
  locations: cfg('locations'),
  documents: cfg('documents'),
};

describe('form generation from the UI spec', () => {
  const fields = demographicFields(spec);
  const f = (id: string) => fields.find((x) => x.id === id)!;

  it('follows the UI spec order and types', () => {
    expect(fields[0].id).toBe('fullName');
    expect(f('fullName').multilingual).toBe(true);
    expect(f('gender').multilingual).toBe(false);
    expect(f('gender').list).toBe('gender');
    expect(f('parentOrGuardianName').conditional).toBe(true);
  });

  it('chains location drop-downs', () => {
    expect(f('province').parentField).toBe('region');
    const provinces = choices(spec, f('province'), { region: 'NOR' });
    expect(provinces.length).toBeGreaterThan(0);
    expect(provinces.map((p) => p.code)).toContain('NOR-HL');
    expect(choices(spec, f('province'), {})).toEqual([]);
    expect(choices(spec, f('gender'), {}).map((c) => c.code)).toContain('FLE');
  });

  it('validates live with the schema validators', () => {
    expect(validateField(f('email'), 'not-an-email', ['eng'])[0].code).toBe('EMAIL_INVALID');
    expect(validateField(f('email'), 'a@b.org', ['eng'])).toEqual([]);
    expect(validateField(f('email'), '', ['eng'])).toEqual([]);
    const name = validateField(f('fullName'), { eng: 'Amina' }, ['eng', 'fra']);
    expect(name).toEqual([expect.objectContaining({ code: 'REQUIRED', language: 'fra' })]);
    expect(validateField(f('fullName'), { eng: 'Am1na', fra: 'Amina' }, ['eng', 'fra'])[0].code).toBe('NAME_INVALID');
    expect(validateField(f('dateOfBirth'), '14/03/1988', ['eng'])[0].code).toBe('DOB_FORMAT');
  });

  it('builds the answers the core expects', () => {
    const a = demographicsAnswer(fields, { fullName: { eng: ' Amina ', fra: '' }, gender: 'FLE', email: '  ' }, ['eng', 'fra']);
    expect(a).toEqual({ fullName: { eng: 'Amina' }, gender: 'FLE' });
  });

  it('offers document types per category', () => {
    const poa = documentSlots(spec).find((s) => s.id === 'proofOfAddress')!;
    expect(poa.category).toBe('POA');
    expect(poa.types.length).toBeGreaterThan(0);
  });
});
