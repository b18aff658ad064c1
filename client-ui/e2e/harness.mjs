// Shared E2E harness: a fresh station (demo operators, sample country) served by the real
// `tessera-station ui` bridge, and headless Debian Chromium driven by playwright-core.
import { spawn, execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const UI = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(UI, '..');
export const DEMO = join(ROOT, 'client/demo');
// Demo passwords from client/demo/README.md (test vectors only).
export const OFFICER = { id: 'officer1', pw: 'demo-officer-pass' };
export const SUPERVISOR = { id: 'super1', pw: 'demo-supervisor-pass' };

export function stationBin() {
  const bin = process.env.TESSERA_STATION_BIN ?? join(ROOT, 'target/debug/tessera-station');
  if (!existsSync(bin)) throw new Error(`${bin} not found: build it with cargo build -p tessera-station (or set TESSERA_STATION_BIN)`);
  return bin;
}

function ageKey() {
  const out = execFileSync('age-keygen', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /^# public key: (age1\S+)/m.exec(out);
  if (!m) throw new Error('age-keygen printed no public key');
  return m[1];
}

/** Initialises a station home with officer1 and a slot for super1 (packets sealed to `packetKey`). */
export function initStation(packetKey = ageKey()) {
  const home = mkdtempSync(join(tmpdir(), 'tessera-ui-e2e-'));
  const bin = stationBin();
  const env = { ...process.env, TESSERA_STATION_PASSWORD: OFFICER.pw, TESSERA_STATION_NEW_PASSWORD: SUPERVISOR.pw };
  execFileSync(bin, ['--home', home, 'init', '--center', '10001', '--machine', '10077',
    '--recovery-key', ageKey(), '--packet-key', packetKey, '--config', join(ROOT, 'config/sample-country'),
    '--operators', join(DEMO, 'operators.json'), '-o', OFFICER.id], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(bin, ['--home', home, 'add-slot', '-o', OFFICER.id, '--new', SUPERVISOR.id], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return home;
}

/** Starts the bridge; resolves with { url, origin, stop, launchedAt }. */
export function startBridge(home) {
  const launchedAt = Date.now();
  const child = spawn(stationBin(), ['--home', home, 'ui', '--listen', '127.0.0.1:0', '--dist', join(UI, 'dist')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`bridge printed no URL: ${buf}`)), 20000);
    child.on('exit', (c) => fail(new Error(`bridge exited with ${c}: ${buf}`)));
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/#token=([0-9a-f]+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        ok({ url: m[0], origin: m[1], token: m[2], launchedAt, stop: () => child.kill('SIGTERM') });
      }
    });
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export function cleanup(home) {
  rmSync(home, { recursive: true, force: true });
}

export async function login(page, who) {
  await page.getByLabel('Operator id').fill(who.id);
  await page.getByLabel('Password').fill(who.pw);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
}

/**
 * Opens the wizard from the dashboard or navigation (`open`: a locator to click), chooses the process by its
 * label (New registration is preselected), agrees to the consent, picks French as the secondary language when
 * `fra`, and stops at the Demographics step.
 */
export async function startWizard(page, { open, process = null, fra = true }) {
  await open.click();
  if (process) await page.getByLabel(process).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByLabel('The resident agrees').check();
  await page.getByRole('button', { name: 'Next' }).click();
  if (fra) await page.getByRole('checkbox', { name: 'fra' }).check();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByTestId('step-title').getByText('Demographics').waitFor();
}

/**
 * At the Biometrics step: imports the demo's capture records, goes through the review and the officer's
 * sign-off, and returns the RID the acknowledgement shows (back on the dashboard).
 */
export async function importCapturesAndSign(page) {
  const caps = readdirSync(join(DEMO, 'captures')).map((f) => join(DEMO, 'captures', f));
  await page.locator('#bio-files').setInputFiles(caps);
  await page.getByTestId('captured').getByText(`${caps.length} captures stored`).waitFor();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByTestId('review-ready').waitFor();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Confirm and sign' }).click();
  const rid = (await page.getByTestId('rid').textContent()).trim();
  assert.match(rid, /^\d{29}$/);
  await page.getByRole('button', { name: 'Back to dashboard' }).click();
  return rid;
}

/** Fills the demographics of the demo adult (answers-new-adult.json). */
export async function fillDemographics(page) {
  const text = async (id, v) => page.locator(`#f-${id}`).fill(v);
  await page.locator('#f-fullName-eng').fill('Amina Diallo');
  await page.locator('#f-fullName-fra').fill('Amina Diallo');
  await text('dateOfBirth', '1988-03-14');
  await page.locator('#f-gender').selectOption('FLE');
  await page.locator('#f-residenceStatus').selectOption('NFR');
  await page.locator('#f-addressLine1-eng').fill('12 Hill Street');
  await page.locator('#f-addressLine1-fra').fill('12 rue de la Colline');
  await page.locator('#f-region').selectOption('NOR');
  await page.locator('#f-province').selectOption('NOR-HL');
  await page.locator('#f-city').selectOption('HLB');
  await page.locator('#f-postalCode').selectOption('10101');
  await text('phone', '+22501020304');
  await text('email', 'amina@example.org');
}

/** The server and devices `tests/it/ui.rs` started for this run, or null when run by hand without them. */
export function liveServer() {
  const url = process.env.TESSERA_E2E_SERVER_URL;
  const m = /^(\d+)-(\d+)$/.exec(process.env.TESSERA_E2E_SBI_PORTS ?? '');
  const e = process.env;
  if (!url || !m || !e.TESSERA_E2E_ADMIN_TOKEN || !e.TESSERA_E2E_PACKET_KEY || !e.TESSERA_E2E_KIT || !e.TESSERA_E2E_KIT_FINGERPRINT) return null;
  return {
    url, adminToken: e.TESSERA_E2E_ADMIN_TOKEN, packetKey: e.TESSERA_E2E_PACKET_KEY, firstPort: Number(m[1]), lastPort: Number(m[2]),
    // The station set-up kit the server made for center 10001, and its server-key fingerprint (the slip).
    kit: e.TESSERA_E2E_KIT, kitFingerprint: e.TESSERA_E2E_KIT_FINGERPRINT,
  };
}

/** Changes the SBI simulator device on `port` through its control API (`/admin/failure`, `/admin/score`). */
export async function simControl(port, what, body) {
  const r = await fetch(`http://127.0.0.1:${port}/admin/${what}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`simulator /admin/${what} on ${port}: HTTP ${r.status} ${await r.text()}`);
}

// Verhoeff check digit (UINs carry one): tables of the dihedral group D5.
const VD = [[0,1,2,3,4,5,6,7,8,9],[1,2,3,4,0,6,7,8,9,5],[2,3,4,0,1,7,8,9,5,6],[3,4,0,1,2,8,9,5,6,7],[4,0,1,2,3,9,5,6,7,8],
  [5,9,8,7,6,0,4,3,2,1],[6,5,9,8,7,1,0,4,3,2],[7,6,5,9,8,2,1,0,4,3],[8,7,6,5,9,3,2,1,0,4],[9,8,7,6,5,4,3,2,1,0]];
const VP = [[0,1,2,3,4,5,6,7,8,9],[1,5,7,6,2,8,3,0,9,4],[5,8,0,3,7,9,6,1,4,2],[8,9,1,6,0,4,3,5,2,7],[9,4,5,3,1,2,6,8,7,0],
  [4,2,8,6,5,7,3,9,0,1],[2,7,9,3,8,0,6,4,1,5],[7,0,4,6,9,1,3,2,5,8]];
const VINV = [0,4,3,2,1,5,6,7,8,9];
/** `body` (9 digits) followed by its Verhoeff check digit. */
export function verhoeffUin(body) {
  let c = 0;
  const digits = [...body].reverse().map(Number);
  for (let i = 0; i < digits.length; i++) c = VD[c][VP[(i + 1) % 8][digits[i]]];
  return body + VINV[c];
}

/**
 * A station set-up kit (`tessera_packet::wire::kit`, version 1) for center 10001, made here the way
 * `tessera-server station-kit` makes one: the sample configuration as sync pages, the demo operators, a packet
 * key, `caPem` as the trusted device-provider CA, signed by a fresh (test) server key. For the screenshots,
 * which run without a server. Returns { path, fingerprint } (the server key's fingerprint, as on the slip).
 */
export async function makeKit(dir, { caPem = null, serverUrl = 'https://tessera.example:8440' } = {}) {
  const { generateKeyPairSync, sign, createHash } = await import('node:crypto');
  const { readFileSync: read, writeFileSync: write } = await import('node:fs');
  const cfgDir = join(ROOT, 'config/sample-country');
  const json = (f) => JSON.parse(read(join(cfgDir, f), 'utf8'));
  const manifest = json('manifest.json');
  let version = 0;
  const item = (key, body) => ({ key, version: ++version, deleted: false, body });
  const schema = [], specs = [], md = [];
  for (const [name, f] of Object.entries(manifest.files)) {
    if (name === 'idSchema') schema.push(item(manifest.idSchemaVersion ?? '1.0', json(f)));
    else if (name === 'uiSpecs') for (const [p, pf] of Object.entries(f)) specs.push(item(p, json(pf)));
    else if (name === 'labels') for (const [l, lf] of Object.entries(f)) md.push(item(`labels/${l}`, json(lf)));
    else md.push(item(name, json(f)));
  }
  md.push(item('manifest', manifest));
  const ops = JSON.parse(read(join(DEMO, 'operators.json'), 'utf8')).operators.filter((o) => o.centerId === '10001');
  const page = (kind, items) => ({ kind, items, next_cursor: String(version), has_more: false });
  const sections = [
    page('id-schema', schema), page('ui-spec', specs), page('master-data', md),
    page('operators', ops.map((o) => item(o.id, o))),
    page('packet-keys', [item('k1', { recipient: ageKey() })]),
    page('certificates', caPem ? [item('provider-ca', { pem: caPem })] : []),
  ];
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const kit = {
    centerId: '10001', machineId: '00000', serverUrl, serverKey: raw.toString('base64'), recoveryKey: ageKey(),
    createdAt: new Date().toISOString(), sections,
  };
  const payload = JSON.stringify(kit);
  const signature = sign(null, Buffer.concat([Buffer.from('TESSERA-STATION-KIT-V1\n'), Buffer.from(payload)]), privateKey).toString('base64');
  const path = join(dir, 'station-10001.tkit');
  write(path, JSON.stringify({ format: 'tessera-station-kit', version: 1, payload, signature }, null, 2));
  const hex = createHash('sha256').update(raw).digest('hex').toUpperCase();
  return { path, fingerprint: `SHA256:${hex.match(/.{4}/g).join(' ')}` };
}

/** Starts `tessera-sbi simulate` (the SBI device simulator) when built; resolves { firstPort, lastPort, caPem, stop } or null. */
export async function startSimulator(dir) {
  const bin = process.env.TESSERA_SBI_BIN ?? join(ROOT, 'target/debug/tessera-sbi');
  if (!existsSync(bin)) return null;
  const { readFileSync: read } = await import('node:fs');
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 20000 + Math.floor(Math.random() * 30000);
    const ca = join(dir, `sim-ca-${first}.pem`);
    const child = spawn(bin, ['simulate', '--first-port', String(first), '--ca-out', ca], { stdio: ['ignore', 'ignore', 'pipe'] });
    const up = await new Promise((ok) => {
      const deadline = Date.now() + 15000;
      const poll = async () => {
        if (child.exitCode !== null) return ok(false);
        try {
          const r = await fetch(`http://127.0.0.1:${first + 3}/admin/status`);
          if (r.ok && existsSync(ca)) return ok(true);
        } catch { /* not yet */ }
        if (Date.now() > deadline) return ok(false);
        setTimeout(poll, 200);
      };
      poll();
    });
    if (up) return { firstPort: first, lastPort: first + 3, caPem: read(ca, 'utf8'), stop: () => child.kill('SIGTERM') };
    child.kill('SIGKILL');
  }
  return null;
}
