// Shared UI state (Svelte 5 runes): language, session, current screen.
import { applyLang, initialLang, translate, type Lang } from './i18n';

export type ScreenName = 'firstrun' | 'login' | 'dashboard' | 'wizard' | 'supervisor' | 'settings' | 'sync' | 'setup' | 'audit';

export const ui = $state({
  lang: 'eng' as Lang,
  screen: 'login' as ScreenName,
  operator: '' as string,
  roles: [] as string[],
  resumeDraft: null as number | null,
  /** Bumped to start the wizard afresh (New registration while a draft is open). */
  wizardRun: 0,
  /** The draft open in the wizard (set by the wizard), so an idle lock can resume it after the new login. */
  currentDraft: null as number | null,
  /** Set when the idle lock logged the operator out: who, and where to return after they log in again. */
  locked: null as null | { operator: string; screen: ScreenName; draft: number | null },
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

/** Where to look for SBI devices (Settings > Devices); kept in this browser's storage. */
export interface DeviceSettings { firstPort: number; lastPort: number }
export const DEFAULT_DEVICES: DeviceSettings = { firstPort: 4501, lastPort: 4600 };

export function deviceSettings(): DeviceSettings {
  try {
    const raw = localStorage.getItem('tessera.devices');
    if (raw) {
      const v = JSON.parse(raw);
      if (Number.isInteger(v.firstPort) && Number.isInteger(v.lastPort) && v.firstPort > 0 && v.lastPort >= v.firstPort && v.lastPort < 65536)
        return { firstPort: v.firstPort, lastPort: v.lastPort };
    }
  } catch {
    /* unreadable: defaults */
  }
  return { ...DEFAULT_DEVICES };
}

export function saveDeviceSettings(d: DeviceSettings): void {
  try {
    localStorage.setItem('tessera.devices', JSON.stringify(d));
  } catch {
    /* storage unavailable */
  }
}
