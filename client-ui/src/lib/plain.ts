// Turns the core's technical error text (sync, devices) into plain words for the officer. The original text
// stays available (shown smaller) for support; patterns are matched case-insensitively.
import { translate } from './i18n';

const RULES: [RegExp, string][] = [
  [/connection refused|unreachable|dns|error sending request|connect(ion)? (error|failed)|no route/i, 'plain.unreachable'],
  [/timed? ?out|deadline/i, 'plain.timeout'],
  [/pending|not (yet )?approved|not active|machine_pending|MACHINE_NOT_ACTIVE/i, 'plain.pending'],
  [/revoked|blocked|suspended|MACHINE_BLOCKED/i, 'plain.blocked'],
  [/device-provider CA|provider's CA|device certificate/i, 'plain.deviceTrust'],
  [/certificate|tls|signature|untrusted|pinned/i, 'plain.trust'],
  [/busy/i, 'plain.busy'],
  [/no .* device found|not ready|no device/i, 'plain.noDevice'],
  [/disk|space|quota/i, 'plain.disk'],
];

/** The i18n key explaining `text`, or null when nothing matches. */
export function plainKey(text: string | null | undefined): string | null {
  if (!text) return null;
  for (const [re, key] of RULES) if (re.test(text)) return key;
  return null;
}

/** Plain words for `text` in `lang` (falls back to the text itself). */
export function plain(lang: string, text: string | null | undefined): string {
  const key = plainKey(text);
  return key ? translate(lang, key) : (text ?? '');
}
