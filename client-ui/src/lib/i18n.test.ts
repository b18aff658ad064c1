import { describe, expect, it } from 'vitest';
import { LOCALES, applyLang, dirOf, label, translate } from './i18n';

describe('i18n', () => {
  it('every locale has exactly the English keys', () => {
    const keys = Object.keys(LOCALES.eng).sort();
    for (const l of ['fra', 'ara'] as const) expect(Object.keys(LOCALES[l]).sort()).toEqual(keys);
    for (const l of ['eng', 'fra', 'ara'] as const)
      for (const [k, v] of Object.entries(LOCALES[l])) expect(v.trim(), `${l}:${k}`).not.toBe('');
  });

  it('placeholders survive translation', () => {
    for (const [k, v] of Object.entries(LOCALES.eng)) {
      const vars = (v.match(/\{\w+\}/g) ?? []).sort();
      expect((LOCALES.fra[k].match(/\{\w+\}/g) ?? []).sort(), k).toEqual(vars);
      expect((LOCALES.ara[k].match(/\{\w+\}/g) ?? []).sort(), k).toEqual(vars);
    }
  });

  it('fills placeholders and falls back', () => {
    expect(translate('fra', 'wizard.step', { n: 2, total: 9 })).toBe('Étape 2 sur 9');
    expect(translate('xxx', 'nav.logout')).toBe('Log out');
    expect(translate('eng', 'no.such.key')).toBe('no.such.key');
  });

  it('Arabic is right to left', () => {
    expect(dirOf('ara')).toBe('rtl');
    expect(dirOf('fra')).toBe('ltr');
    applyLang('ara');
    expect(document.documentElement.dir).toBe('rtl');
    expect(document.documentElement.lang).toBe('ar');
    applyLang('eng');
    expect(document.documentElement.dir).toBe('ltr');
  });

  it('picks multilingual labels with fallback', () => {
    expect(label({ eng: 'Name', fra: 'Nom' }, 'fra')).toBe('Nom');
    expect(label({ eng: 'Name', fra: 'Nom' }, 'ara')).toBe('Name');
    expect(label(undefined, 'eng')).toBe('');
  });
});
