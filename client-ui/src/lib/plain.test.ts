import { describe, expect, it } from 'vitest';
import { plain, plainKey } from './plain';
import { HANDS, PARTS, partOf } from './bio';

describe('plain words for technical errors', () => {
  it('recognises the usual sync and device failures', () => {
    expect(plainKey('error sending request for url (http://10.0.0.1:8440/v1/sync): connection refused')).toBe('plain.unreachable');
    expect(plainKey('operation timed out')).toBe('plain.timeout');
    expect(plainKey('server refused: MACHINE_NOT_ACTIVE machine is PENDING')).toBe('plain.pending');
    expect(plainKey('capturing LeftSlap from device SIM-1: device is Busy')).toBe('plain.busy');
    expect(plainKey('no Finger device found on ports 4501-4600')).toBe('plain.noDevice');
    expect(plainKey("no device-provider CA certificate is trusted yet; sync with the server (certificates) or give the provider's CA")).toBe('plain.deviceTrust');
    expect(plainKey('server signature does not verify with the pinned key')).toBe('plain.trust');
    expect(plainKey(null)).toBeNull();
    expect(plainKey('something else entirely')).toBeNull();
  });

  it('translates, and keeps unknown text as it is', () => {
    expect(plain('fra', 'connection refused')).toContain('ne joint pas le serveur');
    expect(plain('ara', 'device busy')).toContain('الجهاز مشغول');
    expect(plain('eng', 'odd failure')).toBe('odd failure');
  });
});

describe('capture parts and hands', () => {
  it('cover the ten fingers, two irises and the face exactly once', () => {
    const all = PARTS.flatMap((p) => p.attributes);
    expect(new Set(all).size).toBe(13);
    expect(all.length).toBe(13);
    const fingers = HANDS.flatMap((h) => h.fingers.map((f) => f.attribute));
    expect(fingers.sort()).toEqual(PARTS.filter((p) => p.modality === 'finger').flatMap((p) => p.attributes).sort());
    expect(partOf('rightThumb')?.id).toBe('thumbs');
    expect(partOf('leftRing')?.id).toBe('leftSlap');
  });
});
