// UI strings come from the locale files; the document direction follows the language (Arabic is RTL).
import eng from '../locales/eng.json';
import fra from '../locales/fra.json';
import ara from '../locales/ara.json';

export type Lang = 'eng' | 'fra' | 'ara';
export const LOCALES: Record<Lang, Record<string, string>> = { eng, fra, ara };
export const LANGS: Lang[] = ['eng', 'fra', 'ara'];
const RTL = new Set(['ara', 'ar', 'fas', 'heb', 'urd']);
const HTML_LANG: Record<string, string> = { eng: 'en', fra: 'fr', ara: 'ar' };

export function dirOf(lang: string): 'rtl' | 'ltr' {
  return RTL.has(lang) ? 'rtl' : 'ltr';
}

/** Translates `key`, filling `{name}` placeholders; falls back to English, then to the key. */
export function translate(lang: string, key: string, vars: Record<string, string | number> = {}): string {
  const table = LOCALES[lang as Lang] ?? eng;
  const text = table[key] ?? (eng as Record<string, string>)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

/** Picks a label in `lang` from a multilingual label object, falling back to English then any. */
export function label(l: Record<string, string> | undefined | null, lang: string): string {
  if (!l) return '';
  return l[lang] ?? l.eng ?? Object.values(l)[0] ?? '';
}

/** Applies language and direction to the document. */
export function applyLang(lang: string, doc: Document = document): void {
  doc.documentElement.lang = HTML_LANG[lang] ?? lang;
  doc.documentElement.dir = dirOf(lang);
}

export function initialLang(store: Storage = localStorage): Lang {
  const l = store.getItem('tessera.lang');
  return l && (LANGS as string[]).includes(l) ? (l as Lang) : 'eng';
}
