// File helpers for the wizard.

/** Reads a file as base64 (no data: prefix). */
export async function fileBase64(f: Blob): Promise<string> {
  const buf = new Uint8Array(typeof f.arrayBuffer === 'function' ? await f.arrayBuffer() : await readWithFileReader(f));
  let s = '';
  for (let i = 0; i < buf.length; i += 0x8000) s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
  return btoa(s);
}

function readWithFileReader(f: Blob): Promise<ArrayBuffer> {
  return new Promise((ok, fail) => {
    const r = new FileReader();
    r.onload = () => ok(r.result as ArrayBuffer);
    r.onerror = () => fail(r.error);
    r.readAsArrayBuffer(f);
  });
}

export const BIO_ATTRIBUTES = [
  'rightThumb', 'rightIndex', 'rightMiddle', 'rightRing', 'rightLittle',
  'leftThumb', 'leftIndex', 'leftMiddle', 'leftRing', 'leftLittle',
  'rightEye', 'leftEye', 'face',
];

/** The biometric attribute a capture file is named after (`rightThumb.iso` -> `rightThumb`). */
export function attributeOf(name: string): string | null {
  const base = name.replace(/\.[^.]*$/, '');
  return BIO_ATTRIBUTES.includes(base) ? base : null;
}
