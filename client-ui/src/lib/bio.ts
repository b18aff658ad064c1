// The capture parts the station core knows (one SBI capture each) and the hands of the missing-finger diagram.

export interface Part { id: string; modality: 'finger' | 'iris' | 'face'; attributes: string[] }

export const PARTS: Part[] = [
  { id: 'leftSlap', modality: 'finger', attributes: ['leftIndex', 'leftMiddle', 'leftRing', 'leftLittle'] },
  { id: 'rightSlap', modality: 'finger', attributes: ['rightIndex', 'rightMiddle', 'rightRing', 'rightLittle'] },
  { id: 'thumbs', modality: 'finger', attributes: ['leftThumb', 'rightThumb'] },
  { id: 'irises', modality: 'iris', attributes: ['leftEye', 'rightEye'] },
  { id: 'face', modality: 'face', attributes: ['face'] },
];

export interface Finger { attribute: string; kind: 'thumb' | 'index' | 'middle' | 'ring' | 'little' }

/** Both hands palm down as the officer sees them: left hand little finger first, right hand thumb first. */
export const HANDS: { side: 'left' | 'right'; fingers: Finger[] }[] = [
  { side: 'left', fingers: (['little', 'ring', 'middle', 'index', 'thumb'] as const).map((k) => ({ attribute: `left${cap(k)}`, kind: k })) },
  { side: 'right', fingers: (['thumb', 'index', 'middle', 'ring', 'little'] as const).map((k) => ({ attribute: `right${cap(k)}`, kind: k })) },
];

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The part that captures `attribute`. */
export function partOf(attribute: string): Part | undefined {
  return PARTS.find((p) => p.attributes.includes(attribute));
}
