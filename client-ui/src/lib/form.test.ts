import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { choices, demographicFields, demographicsAnswer, documentSlots, inScope, updateGroups, validateField } from './form';

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

describe('UPDATE: the groups that change', () => {
  const upd = { ...spec, uiSpec: cfg('ui-spec/UPDATE') };
  const fields = demographicFields(upd);

  it('asks the UIN first and knows every field group', () => {
    expect(fields[0].id).toBe('UIN');
    expect(fields[0].multilingual).toBe(false);
    expect(fields.find((f) => f.id === 'city')!.group).toBe('Address');
    expect(updateGroups(upd).updatable).toContain('Address');
    expect(updateGroups(upd).always).toEqual(['UIN']);
  });

  it('keeps only the chosen groups plus the UIN; NEW keeps everything', () => {
    const shown = fields.filter((f) => inScope('UPDATE', upd, f, ['Address'])).map((f) => f.id);
    expect(shown).toEqual(['UIN', 'addressLine1', 'region', 'province', 'city', 'postalCode']);
    const docs = documentSlots(upd).filter((d) => inScope('UPDATE', upd, d, ['Address'])).map((d) => d.id);
    expect(docs).toEqual(['proofOfAddress']);
    expect(fields.filter((f) => inScope('UPDATE', upd, f, [])).map((f) => f.id)).toEqual(['UIN']);
    expect(demographicFields(spec).every((f) => inScope('NEW', spec, f, []))).toBe(true);
  });

  it('validates the UIN live', () => {
    const uin = fields[0];
    expect(validateField(uin, '12', ['eng'])[0]?.code).toBe('UIN_INVALID');
    expect(validateField(uin, '2345678906', ['eng'])).toEqual([]);
  });
});
