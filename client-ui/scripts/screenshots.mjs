// Regenerates docs/screenshots/<screen>-<lang>.png from the built front end against the real bridge.
// Usage: npm run build && npm run screenshots
//   (needs target/debug/tessera-station or TESSERA_STATION_BIN; with target/debug/tessera-sbi the biometrics
//   screens show the SBI simulator's devices and a live preview frame)
// The station starts from an empty folder and is created from a station set-up kit, as on a first run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO, OFFICER, ROOT, SUPERVISOR, cleanup, fillDemographics, launchBrowser, makeKit, startBridge, startSimulator, stationBin } from '../e2e/harness.mjs';

const OUT = join(ROOT, 'docs/screenshots');
const LANGS = ['eng', 'fra', 'ara'];
mkdirSync(OUT, { recursive: true });
const home = mkdtempSync(join(tmpdir(), 'tessera-ui-shots-'));
const work = mkdtempSync(join(tmpdir(), 'tessera-ui-shots-work-'));
const sim = await startSimulator(work);
if (!sim) console.log('tessera-sbi not built: the biometrics screens show no devices');
const kit = await makeKit(work, { caPem: sim?.caPem ?? null });
const bridge = await startBridge(home);
const browser = await launchBrowser();
const setLang = async (page, lang) => {
  await page.goto(bridge.url);
  await page.evaluate((l) => localStorage.setItem('tessera.lang', l), lang);
  await page.reload();
};
try {
  // First run: the set-up kit, before the station exists.
  for (const lang of LANGS) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    await setLang(page, lang);
    await page.locator('#kit-file').waitFor();
    await page.locator('#kit-file').setInputFiles(kit.path);
    await page.locator('[data-testid=kit-summary]').waitFor();
    await page.screenshot({ path: join(OUT, `firstrun-${lang}.png`), fullPage: true });
    if (lang === LANGS[LANGS.length - 1]) {
      await page.locator('input[type=checkbox]').check();
      await page.locator('#kit-operator').selectOption(OFFICER.id);
      await page.locator('#kit-password').fill(OFFICER.pw);
      await page.locator('form button[type=submit]').click();
      await page.locator('#server-url').waitFor();
    }
    await page.close();
  }
  execFileSync(stationBin(), ['--home', home, 'add-slot', '-o', OFFICER.id, '--new', SUPERVISOR.id], {
    env: { ...process.env, TESSERA_STATION_PASSWORD: OFFICER.pw, TESSERA_STATION_NEW_PASSWORD: SUPERVISOR.pw },
    stdio: ['ignore', 'ignore', 'inherit'],
  });

  for (const lang of LANGS) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    await setLang(page, lang);
    if (sim) await page.evaluate((d) => localStorage.setItem('tessera.devices', JSON.stringify(d)), { firstPort: sim.firstPort, lastPort: sim.lastPort });
    const shot = (name) => page.screenshot({ path: join(OUT, `${name}-${lang}.png`), fullPage: true });
    await page.locator('#login-user').waitFor();
    await shot('login');
    // Log in with English labels hidden: use ids (labels are translated).
    const as = async (who) => {
      await page.locator('#login-user').fill(who.id);
      await page.locator('#login-password').fill(who.pw);
      await page.locator('form button[type=submit]').click();
      await page.locator('[data-testid=count-drafts]').waitFor();
    };
    await as(SUPERVISOR);
    await shot('dashboard');
    await page.locator('[data-testid=go-setup]').click();
    await page.locator('#server-url').waitFor();
    await shot('setup');
    await page.locator('[data-testid=nav-new]').click();
    await page.locator('#wizard-heading').waitFor();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('input[name=consent]').check();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('input[value=fra]').check();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('#f-fullName-eng').waitFor();
    await fillDemographics(page);
    await page.locator('#f-email').fill('not-an-email');
    await page.locator('#f-email').blur();
    await shot('wizard-demographics');
    await page.locator('#f-email').fill('amina@example.org');
    await page.locator('form.card button[type=submit]').click();
    await page.locator('#dt-proofOfAddress').selectOption('DOC002');
    await page.locator('#df-proofOfAddress').setInputFiles(join(DEMO, 'proof-of-address.pdf'));
    await page.locator('[data-testid=imported-proofOfAddress]').waitFor();
    await page.locator('#dt-proofOfIdentity').selectOption('DOC001');
    await page.locator('#df-proofOfIdentity').setInputFiles(join(DEMO, 'passport.png'));
    await page.locator('[data-testid=imported-proofOfIdentity]').waitFor();
    await page.locator('[data-testid=docprev-img-proofOfIdentity]').waitFor();
    await shot('wizard-documents');
    await page.locator('form.card button[type=submit]').click();
    await page.locator('[data-testid=no-devices], [data-testid=devices]').first().waitFor();
    await page.locator('[data-testid=finger-rightLittle]').click();
    await page.locator('[data-testid=missing-list]').waitFor();
    if (sim) {
      await page.locator('[data-testid=preview-leftSlap]').click();
      await page.waitForFunction(() => Number(document.querySelector('[data-testid=preview]')?.dataset.frames) >= 2, null, { timeout: 20000 });
    }
    await shot('wizard-biometrics');
    if (sim) await page.locator('[data-testid=preview-leftSlap]').click();
    // Seal one registration (capture records), so the supervisor has a packet to review.
    await page.locator('[data-testid=finger-rightLittle]').click();
    await page.locator('details summary').click();
    await page.locator('#bio-files').setInputFiles(readdirSync(join(DEMO, 'captures')).map((f) => join(DEMO, 'captures', f)));
    await page.locator('[data-testid=captured]').getByText('13').waitFor();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('[data-testid=review-ready]').waitFor();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('form.card button[type=submit]').click();
    await page.locator('[data-testid=rid]').waitFor();
    await shot('wizard-ack');
    await page.locator('[data-testid=nav-supervisor]').click();
    await page.locator('[data-testid=review-copy]').first().click();
    await page.locator('[data-testid=review-copy-body] [data-testid=review-copy-bio]').waitFor();
    await page.locator('[data-testid=review-copy-body] [data-testid=docprev-img-proofOfIdentity]').waitFor();
    await shot('supervisor');
    await page.locator('[data-testid=nav-sync]').click();
    await page.locator('#export-dir').waitFor();
    await shot('sync');
    await page.locator('[data-testid=nav-audit]').click();
    await page.locator('[data-testid=audit-row]').first().waitFor();
    await shot('audit');
    await page.locator('[data-testid=nav-settings]').click();
    await page.locator('#ui-lang').waitFor();
    await shot('settings');
    await page.close();
  }
  console.log(`screenshots written to ${OUT}`);
} finally {
  await browser.close();
  bridge.stop();
  sim?.stop();
  cleanup(home);
  cleanup(work);
}
