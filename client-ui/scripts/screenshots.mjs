// Regenerates docs/screenshots/<screen>-<lang>.png from the built front end against the real bridge.
// Usage: npm run build && npm run screenshots   (needs target/debug/tessera-station or TESSERA_STATION_BIN)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO, ROOT, SUPERVISOR, cleanup, fillDemographics, initStation, launchBrowser, startBridge } from '../e2e/harness.mjs';

const OUT = join(ROOT, 'docs/screenshots');
mkdirSync(OUT, { recursive: true });
const home = initStation();
const bridge = await startBridge(home);
const browser = await launchBrowser();
try {
  for (const lang of ['eng', 'fra', 'ara']) {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    await page.goto(bridge.url);
    await page.evaluate((l) => localStorage.setItem('tessera.lang', l), lang);
    await page.reload();
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
    await page.locator('#server-url').fill('https://tessera.example:8440');
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
    await page.locator('form.card button[type=submit]').click();
    await page.locator('[data-testid=no-devices], [data-testid=devices]').first().waitFor();
    await page.locator('[data-testid=finger-rightLittle]').click();
    await page.locator('[data-testid=missing-list]').waitFor();
    await shot('wizard-biometrics');
    await page.locator('[data-testid=nav-supervisor]').click();
    await page.locator('h2').first().waitFor();
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
  cleanup(home);
}
