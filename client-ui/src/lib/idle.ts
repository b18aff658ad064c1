// Idle lock: after `warnAfterMs` without keyboard, pointer or wheel activity the officer is warned (with the
// seconds left), after `lockAfterMs` the session is locked. Any activity before that clears the warning. The
// station core applies the same limit to its session (`idleLogoutSeconds` in station-settings.json).

export interface IdleOptions {
  warnAfterMs: number;
  lockAfterMs: number;
  onWarn(secondsLeft: number): void;
  onActive(): void;
  onLock(): void;
}

const EVENTS = ['keydown', 'pointerdown', 'wheel', 'touchstart'];

/** Starts watching `target` for activity; returns a function that stops watching. */
export function watchIdle(target: EventTarget, o: IdleOptions, now: () => number = () => Date.now()): () => void {
  let last = now();
  let warned = false;
  let locked = false;
  const active = () => {
    if (locked) return;
    last = now();
    if (warned) {
      warned = false;
      o.onActive();
    }
  };
  const tick = () => {
    if (locked) return;
    const idle = now() - last;
    if (idle >= o.lockAfterMs) {
      locked = true;
      o.onLock();
    } else if (idle >= o.warnAfterMs) {
      warned = true;
      o.onWarn(Math.ceil((o.lockAfterMs - idle) / 1000));
    }
  };
  for (const e of EVENTS) target.addEventListener(e, active, { passive: true, capture: true });
  const timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    for (const e of EVENTS) target.removeEventListener(e, active, { capture: true });
  };
}

/** The limits from the synced station settings (seconds), with the sample country's defaults. */
export function idleLimits(settings: any): { warnAfterMs: number; lockAfterMs: number } {
  const lock = Number(settings?.login?.idleLogoutSeconds) > 0 ? Number(settings.login.idleLogoutSeconds) : 900;
  const warnRaw = Number(settings?.login?.idleWarningSeconds);
  const warn = warnRaw > 0 && warnRaw < lock ? warnRaw : Math.max(0, lock - 60);
  return { warnAfterMs: warn * 1000, lockAfterMs: lock * 1000 };
}
