// Builds the wizard's fields from the synced UI spec and ID schema (the bridge's FormSpec), and validates
// entries live with the schema's own validators. The core validates again on save; its verdict wins.

export interface Coded { code: string; label: Record<string, string> }
export interface FieldDef {
  id: string;
  label: Record<string, string>;
  control: string;
  /** One value per data-entry language (side-by-side inputs). */
  multilingual: boolean;
  required: boolean;
  /** Only shown when the core says it applies (e.g. guardian of a minor). */
  conditional: boolean;
  list?: string;
  locationLevel?: string;
  /** Parent location field id, for chained location drop-downs. */
  parentField?: string;
  validators: { pattern: RegExp; lang?: string | null; errorCode?: string | null }[];
  maxLength?: number;
  /** Field group (UI spec's `group`, else the ID schema's): UPDATE shows only the groups that change. */
  group?: string;
}
export interface DocSlot { id: string; label: Record<string, string>; category: string; required: boolean; conditional: boolean; types: Coded[]; group?: string }
export type Value = string | Record<string, string>;
export interface Problem { field: string; code: string; language?: string; message: string }

export function compile(pattern: string): RegExp | null {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return null;
  }
}

function screen(spec: any, name: string): any[] {
  return (spec.uiSpec?.screens ?? []).find((s: any) => s.name === name)?.fields ?? [];
}

export function demographicFields(spec: any): FieldDef[] {
  const schema: any[] = spec.schema?.fields ?? [];
  const hierarchy: { level: number; name: string }[] = spec.locations?.hierarchy ?? [];
  const out: FieldDef[] = [];
  const byLevel = new Map<string, string>();
  // UPDATE asks which identity to update on its own screen (`uin`) before the changed details.
  for (const f of [...screen(spec, 'uin'), ...screen(spec, 'demographics')]) {
    const s = schema.find((x) => x.id === f.id) ?? {};
    const def: FieldDef = {
      id: f.id,
      label: f.label ?? {},
      control: f.controlType,
      multilingual: s.type === 'simpleType' && !s.dynamicList && !s.locationLevel,
      required: !!f.required,
      conditional: !!f.visible || (f.requiredOn?.length ?? 0) > 0,
      list: s.dynamicList ?? undefined,
      locationLevel: s.locationLevel ?? undefined,
      validators: (s.validators ?? [])
        .filter((v: any) => v.type === 'regex')
        .map((v: any) => ({ pattern: compile(v.validator), lang: v.langCode, errorCode: v.errorCode }))
        .filter((v: any) => v.pattern),
      maxLength: s.maxLength ?? undefined,
      group: f.group ?? s.group ?? undefined,
    };
    if (def.id === 'UIN') def.multilingual = false;
    if (def.locationLevel) byLevel.set(def.locationLevel, def.id);
    out.push(def);
  }
  for (const d of out) {
    if (!d.locationLevel) continue;
    const lvl = hierarchy.find((h) => h.name === d.locationLevel)?.level;
    const parent = hierarchy.find((h) => lvl !== undefined && h.level === lvl - 1);
    if (parent) d.parentField = byLevel.get(parent.name);
  }
  return out;
}

export function documentSlots(spec: any): DocSlot[] {
  const schema: any[] = spec.schema?.fields ?? [];
  const types: Coded[] = spec.documents?.types ?? [];
  const valid: any[] = spec.documents?.validDocuments ?? [];
  return screen(spec, 'documents').map((f: any) => {
    const category = schema.find((x) => x.id === f.id)?.subType ?? '';
    const codes = new Set(valid.filter((v) => v.category === category).map((v) => v.type));
    return {
      id: f.id,
      label: f.label ?? {},
      category,
      required: !!f.required,
      conditional: !!f.visible || (f.requiredOn?.length ?? 0) > 0,
      types: types.filter((t) => codes.has(t.code)),
      group: f.group ?? undefined,
    };
  });
}

/** Choices for a drop-down: a dynamic list, or locations under the chosen parent. */
export function choices(spec: any, f: FieldDef, values: Record<string, Value>): Coded[] {
  if (f.list) return spec.lists?.lists?.[f.list] ?? [];
  if (f.locationLevel) {
    const parent = f.parentField ? values[f.parentField] : undefined;
    return (spec.locations?.locations ?? [])
      .filter((l: any) => l.level === f.locationLevel && (!f.parentField || l.parent === parent))
      .map((l: any) => ({ code: l.code, label: l.name }));
  }
  return [];
}

/** Live validation of one field: the problems the officer sees as they type. */
export function validateField(f: FieldDef, value: Value | undefined, languages: string[]): Problem[] {
  const problems: Problem[] = [];
  const check = (v: string, lang?: string) => {
    if (v === '') {
      if (f.required) problems.push({ field: f.id, code: 'REQUIRED', language: lang, message: 'required' });
      return;
    }
    if (f.maxLength && [...v].length > f.maxLength) {
      problems.push({ field: f.id, code: 'INVALID', language: lang, message: `at most ${f.maxLength} characters` });
      return;
    }
    for (const val of f.validators) {
      if (val.lang && lang && val.lang !== lang) continue;
      if (!val.pattern.test(v)) {
        problems.push({ field: f.id, code: val.errorCode ?? 'INVALID', language: lang, message: 'invalid' });
        return;
      }
    }
  };
  if (f.multilingual) {
    const m = (typeof value === 'object' && value) || {};
    for (const l of languages) check((m[l] ?? '').trim(), l);
  } else {
    check(typeof value === 'string' ? value.trim() : '');
  }
  return problems;
}

/** The demographics part of the core's `Answers`: empty entries left out, texts trimmed. */
export function demographicsAnswer(fields: FieldDef[], values: Record<string, Value>, languages: string[]): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const f of fields) {
    const v = values[f.id];
    if (f.multilingual) {
      const m: Record<string, string> = {};
      for (const l of languages) {
        const s = (typeof v === 'object' && v ? v[l] : '')?.trim();
        if (s) m[l] = s;
      }
      if (Object.keys(m).length) out[f.id] = m;
    } else if (typeof v === 'string' && v.trim()) {
      out[f.id] = v.trim();
    }
  }
  return out;
}

/** UPDATE: the groups an officer may change, and those always included (e.g. the UIN). */
export function updateGroups(spec: any): { updatable: string[]; always: string[] } {
  return { updatable: spec?.uiSpec?.updatableGroups ?? [], always: spec?.uiSpec?.alwaysGroups ?? [] };
}

/** Whether a field or document belongs to the registration: every one for NEW and LOST; for UPDATE only
 * those of the chosen groups (plus the always-included ones). */
export function inScope(process: string, spec: any, item: { group?: string }, changedGroups: string[]): boolean {
  if (process !== 'UPDATE') return true;
  const { always } = updateGroups(spec);
  return !!item.group && (always.includes(item.group) || changedGroups.includes(item.group));
}
