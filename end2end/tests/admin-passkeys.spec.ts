import { expect, test } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';
import { addAdmin, logIn, logOut, settled, watchPageErrors } from './helpers';

// Passkeys in a real browser, with Chromium's virtual authenticator (DevTools' WebAuthn
// domain) standing in for a phone or security key: an admin adds a passkey, then logs in
// with it instead of a password, uses it as the second factor after the password, and
// confirms a token reset with their password and the passkey once the one-minute step-up
// window of the server under test has lapsed.

const EMAIL = 'pk@acme.example';
const PASSWORD = 'a long password for pk';

test('an admin adds a passkey and logs in with it, with and without a password', async ({ page }) => {
  test.setTimeout(180_000);
  const checkPageErrors = watchPageErrors(page);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await test.step('Ada adds an admin', async () => {
    await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    await addAdmin(page, EMAIL, PASSWORD);
    await logOut(page);
  });

  await test.step('the new admin adds a passkey from the Account page', async () => {
    await logIn(page, EMAIL, PASSWORD);
    await page.goto('/account');
    await settled(page);
    await page.getByLabel('Name of the new passkey').fill('Laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect(page.getByTestId('recovery-codes').locator('code')).toHaveCount(10);
    await expect(page.getByTestId('second-factors').locator('li[data-kind=passkey]')).toContainText('Laptop');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    await logOut(page);
  });

  await test.step('a passkey logs in without the password', async () => {
    await page.locator('input[name=email]').fill(EMAIL);
    await page.getByRole('button', { name: 'Log in with a passkey instead' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Dashboard');
    await settled(page);
    await logOut(page);
  });

  await test.step('after the password, the passkey is the second factor', async () => {
    await page.locator('input[name=email]').fill(EMAIL);
    await page.locator('input[name=password]').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Second factor' })).toBeVisible();
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Dashboard');
    await settled(page);
  });

  await test.step('a token reset after the step-up window is confirmed with the password and the passkey', async () => {
    await page.goto('/settings/directory-integrations/entra');
    await settled(page);
    await page.getByRole('button', { name: 'Create provisioning token' }).click();
    await expect(page.getByTestId('token')).toHaveText(/^dcpt_[0-9a-f]{64}$/);
    // STEP_UP_MINUTES is one minute on the server under test.
    await page.waitForTimeout(62_000);
    await page.goto('/settings/directory-integrations/entra');
    await settled(page);
    await page.getByRole('button', { name: 'Reset provisioning token' }).click();
    await page.getByRole('button', { name: 'Yes, reset the token' }).click();
    const stepUp = page.getByTestId('step-up');
    await expect(stepUp).toBeVisible();
    await stepUp.getByLabel('Password').fill(PASSWORD);
    await stepUp.getByRole('button', { name: 'Confirm with a passkey instead of a code' }).click();
    await expect(page.getByTestId('token')).toHaveText(/^dcpt_[0-9a-f]{64}$/);
  });

  await test.step('the audit log shows the passkey logins', async () => {
    await page.goto('/audit');
    await settled(page);
    const audit = page.getByTestId('audit');
    await expect(audit).toContainText('Set up a second factor: passkey "Laptop"');
    await expect(audit).toContainText('Logged in with a passkey');
  });

  await checkPageErrors();
});
