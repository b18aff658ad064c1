// Shared UI state (Svelte 5 runes): language, session, current screen.
import { applyLang, initialLang, translate, type Lang } from './i18n';

export type ScreenName = 'login' | 'dashboard' | 'wizard' | 'supervisor' | 'settings';

export const ui = $state({
  lang: 'eng' as Lang,
  screen: 'login' as ScreenName,
  operator: '' as string,
  roles: [] as string[],
  resumeDraft: null as number | null,
});

export function initUi(): void {
  try {
    ui.lang = initialLang();
  } catch {
    ui.lang = 'eng';
  }
  applyLang(ui.lang);
}

export function setLang(l: Lang): void {
  ui.lang = l;
  applyLang(l);
  try {
    localStorage.setItem('tessera.lang', l);
  } catch {
    /* storage unavailable: language lasts for this session */
  }
}

export function t(key: string, vars?: Record<string, string | number>): string {
  return translate(ui.lang, key, vars);
}

/** Changes screen and records how long the change took (read by the E2E run). */
export function go(screen: ScreenName): void {
  const start = performance.now();
  ui.screen = screen;
  requestAnimationFrame(() => {
    const w = window as any;
    (w.__tesseraScreenTimes ??= []).push({ screen, ms: performance.now() - start });
  });
}
