import { createHmac } from 'node:crypto';
import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';
import { addAdmin, checkPage, logIn, logOut, settled, trackLayoutShift, watchPageErrors } from './helpers';

// An admin's own security, in a real browser against the real server (which runs with a
// one-minute STEP_UP_MINUTES): Ada adds an admin, who sets up an authenticator app (the
// test computes its codes from the key the page shows), logs out, logs in with a code, lets
// the step-up window lapse, and resets a provisioning token after confirming their password
// and a code inline. Ada herself keeps logging in with her password alone, as the other
// specs expect.

const EMAIL = 'sec@acme.example';
const PASSWORD = 'a long password for sec';

/** RFC 4648 Base32 (no padding), as the console shows the key. */
function base32(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `secret` for the step `offset` steps away. */
function totp(secret: string, offset = 0): string {
  const counter = Math.floor(Date.now() / 1000 / 30) + offset;
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const hash = createHmac('sha1', base32(secret)).update(message).digest();
  const at = hash[hash.length - 1] & 0xf;
  return ((hash.readUInt32BE(at) & 0x7fffffff) % 1_000_000).toString().padStart(6, '0');
}

test('an admin sets up an authenticator app, logs in with it, and confirms a token reset', async ({ page }) => {
  test.setTimeout(180_000);
  const checkPageErrors = watchPageErrors(page);
  await trackLayoutShift(page);

  await test.step('Ada adds an admin', async () => {
    await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await addAdmin(page, EMAIL, PASSWORD);
    await logOut(page);
  });

  let secret = '';
  let recovery: string[] = [];
  await test.step('the new admin sets up an authenticator app from the Account page', async () => {
    await logIn(page, EMAIL, PASSWORD);
    await page.getByRole('link', { name: EMAIL }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Account');
    await settled(page);
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const setup = page.getByTestId('totp-setup');
    await expect(setup.getByRole('img', { name: /QR code/ })).toBeVisible();
    secret = ((await page.getByTestId('totp-secret').textContent()) ?? '').trim();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await setup.getByLabel('Code from the app').fill(totp(secret));
    await setup.getByRole('button', { name: 'Confirm' }).click();
    const codes = page.getByTestId('recovery-codes').locator('code');
    await expect(codes).toHaveCount(10);
    recovery = await codes.allTextContents();
    await expect(page.getByTestId('second-factors')).toContainText('Phone');
    await checkPage(page, '/account', 'account');
    await logOut(page);
  });

  await test.step('logging in takes the password, then a code', async () => {
    await page.locator('input[name=email]').fill(EMAIL);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Second factor' })).toBeVisible();
    await page.getByLabel('Code from your authenticator app').fill('000000');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page.getByRole('alert')).toHaveText('That code is not right.');
    // The code that confirmed the app is spent: the next one logs in.
    await page.getByLabel('Code from your authenticator app').fill(totp(secret, 1));
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Dashboard');
    await settled(page);
  });

  await test.step('after the step-up window, a token reset asks for the password and a code first', async () => {
    await page.goto('/settings/directory-integrations/generic');
    await settled(page);
    await page.getByRole('button', { name: 'Create provisioning token' }).click();
    await expect(page.getByTestId('token')).toHaveText(/^dcpt_[0-9a-f]{64}$/);
    // STEP_UP_MINUTES is one minute on the server under test.
    await page.waitForTimeout(62_000);
    await page.goto('/settings/directory-integrations/generic');
    await settled(page);
    await page.getByRole('button', { name: 'Reset provisioning token' }).click();
    await page.getByRole('button', { name: 'Yes, reset the token' }).click();
    const stepUp = page.getByTestId('step-up');
    await expect(stepUp).toBeVisible();
    await expect(page.getByTestId('token')).toHaveCount(0);
    await stepUp.getByLabel('Password').fill(PASSWORD);
    await stepUp.getByLabel(/Code from your authenticator app/).fill(recovery[0]);
    await stepUp.getByRole('button', { name: 'Confirm and continue' }).click();
    await expect(page.getByTestId('token')).toHaveText(/^dcpt_[0-9a-f]{64}$/);
    await expect(stepUp).toHaveCount(0);
  });

  await test.step('the audit log shows all of it', async () => {
    await page.goto('/audit');
    await settled(page);
    const audit = page.getByTestId('audit');
    await expect(audit).toContainText('Set up a second factor: authenticator app "Phone"');
    await expect(audit).toContainText('Logged in with an authenticator app');
    await expect(audit).toContainText('Confirmed their password for a sensitive action');
    await expect(audit).toContainText('Used a recovery code');
    await expect(audit).toContainText('Reset the Other SCIM client provisioning token');
  });

  await checkPageErrors();
});
