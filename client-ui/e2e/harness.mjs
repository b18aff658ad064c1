// Shared E2E harness: a fresh station (demo operators, sample country) served by the real
// `tessera-station ui` bridge, and headless Debian Chromium driven by playwright-core.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
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
  if (!url || !m || !process.env.TESSERA_E2E_ADMIN_TOKEN || !process.env.TESSERA_E2E_PACKET_KEY) return null;
  return { url, adminToken: process.env.TESSERA_E2E_ADMIN_TOKEN, packetKey: process.env.TESSERA_E2E_PACKET_KEY, firstPort: Number(m[1]), lastPort: Number(m[2]) };
}

/** Changes the SBI simulator device on `port` through its control API (`/admin/failure`, `/admin/score`). */
export async function simControl(port, what, body) {
  const r = await fetch(`http://127.0.0.1:${port}/admin/${what}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`simulator /admin/${what} on ${port}: HTTP ${r.status} ${await r.text()}`);
}
