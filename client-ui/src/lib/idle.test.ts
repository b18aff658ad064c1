import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { idleLimits, watchIdle } from './idle';

describe('idle lock', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('warns with the seconds left, clears on activity, then locks once', () => {
    const target = new EventTarget();
    const onWarn = vi.fn();
    const onActive = vi.fn();
    const onLock = vi.fn();
    const stop = watchIdle(target, { warnAfterMs: 10_000, lockAfterMs: 15_000, onWarn, onActive, onLock }, () => Date.now());
    vi.advanceTimersByTime(9_000);
    expect(onWarn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2_000);
    expect(onWarn).toHaveBeenLastCalledWith(4);
    // A key press: the warning goes, the clock starts again.
    target.dispatchEvent(new Event('keydown'));
    expect(onActive).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(14_000);
    expect(onLock).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2_000);
    expect(onLock).toHaveBeenCalledTimes(1);
    // Locked: activity no longer counts, and it does not lock twice.
    target.dispatchEvent(new Event('pointerdown'));
    vi.advanceTimersByTime(60_000);
    expect(onLock).toHaveBeenCalledTimes(1);
    stop();
  });

  it('stops watching', () => {
    const target = new EventTarget();
    const onLock = vi.fn();
    const stop = watchIdle(target, { warnAfterMs: 1_000, lockAfterMs: 2_000, onWarn: vi.fn(), onActive: vi.fn(), onLock });
    stop();
    vi.advanceTimersByTime(10_000);
    expect(onLock).not.toHaveBeenCalled();
  });

  it('takes the limits from the station settings', () => {
    expect(idleLimits({ login: { idleLogoutSeconds: 900, idleWarningSeconds: 600 } })).toEqual({ warnAfterMs: 600_000, lockAfterMs: 900_000 });
    expect(idleLimits({ login: { idleLogoutSeconds: 120, idleWarningSeconds: 500 } })).toEqual({ warnAfterMs: 60_000, lockAfterMs: 120_000 });
    expect(idleLimits(undefined)).toEqual({ warnAfterMs: 840_000, lockAfterMs: 900_000 });
  });
});
