import { expect, test, type APIRequestContext } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, BASE_URL } from './env';
import { reload, settled, watchPageErrors } from './helpers';

// The scenario, end to end in a real browser against one fresh server whose database
// holds only the admin: log in, open Directory integrations > OneLogin, create the
// provisioning token, provision a user over SCIM with it, see it hidden after a reload and
// Last Sync filled in, reset it, and check that only the new token works.

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const TOKEN_FORMAT = /^dcpt_[0-9a-f]{64}$/;
const ALREADY_CREATED =
  "You've already created your provisioning token. If you don't know it, click to reset.";
// "November 29, 2026 at 8:11:10 PM UTC" (Chromium may put a narrow no-break space before PM;
// the zone is the browser's).
const HUMAN_TIME = /^[A-Z][a-z]+ \d{1,2}, \d{4} at \d{1,2}:\d{2}:\d{2}\s[AP]M [A-Z][A-Za-z0-9+:-]*$/;

function scimUser(userName: string) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    name: { givenName: 'E', familyName: 'Two' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
  };
}

/** POSTs a SCIM user with the given bearer token and returns the HTTP status. */
async function createScimUser(request: APIRequestContext, token: string, userName: string) {
  const response = await request.post(`${BASE_URL}/scimapi/Users`, {
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/scim+json',
      Accept: 'application/scim+json',
    },
    data: JSON.stringify(scimUser(userName)),
  });
  return { status: response.status(), body: await response.text() };
}

test('admin creates, uses and resets the OneLogin provisioning token', async ({ page, request }) => {
  const nav = page.getByRole('navigation', { name: 'Main' });
  const tokenArea = page.getByTestId('token-area');
  const lastSync = page.getByTestId('last-sync');
  const checkPageErrors = watchPageErrors(page);

  await test.step('a wrong password is refused and stays on the login page', async () => {
    await page.goto('/login');
    await settled(page);
    await page.locator('input[name=email]').fill(ADMIN_EMAIL);
    await page.locator('input[name=password]').fill(`${ADMIN_PASSWORD} but wrong`);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
    await expect(page).toHaveURL(/\/login$/);
  });

  await test.step('the right password opens the dashboard', async () => {
    await page.locator('input[name=email]').fill(ADMIN_EMAIL);
    await page.locator('input[name=password]').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await expect(page).toHaveURL(`${BASE_URL}/`);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Dashboard');
    await settled(page);
  });

  await test.step('Directory integrations opens the OneLogin tab', async () => {
    await nav.getByRole('link', { name: 'Directory integrations' }).click();
    await expect(page).toHaveURL(`${BASE_URL}/settings/directory-integrations/onelogin`);
    await settled(page);
    await expect(page.getByTestId('scim-url')).toHaveText(`${BASE_URL}/scimapi/`);
    await expect(page.getByRole('button', { name: 'Copy SCIM base URL' })).toBeVisible();
    await expect(lastSync, 'a fresh server: no SCIM request seen yet').toHaveText('Never');
  });

  let firstToken = '';
  await test.step('creating the token shows it once', async () => {
    await tokenArea.getByRole('button', { name: 'Create provisioning token' }).click();
    const token = page.getByTestId('token');
    await expect(token).toHaveText(TOKEN_FORMAT);
    firstToken = (await token.textContent())?.trim() ?? '';
    expect(firstToken).toMatch(TOKEN_FORMAT);
    await expect(tokenArea).toContainText('will not be shown again');
  });

  await test.step('the token provisions a user over SCIM', async () => {
    const created = await createScimUser(request, firstToken, 'e2e-user@example.com');
    expect(created.status, created.body).toBe(201);
  });

  await test.step('after a reload the token is gone from the page and Last Sync is set', async () => {
    await reload(page);
    await expect(tokenArea.getByText(ALREADY_CREATED)).toBeVisible();
    await expect(tokenArea.getByRole('button', { name: 'Reset provisioning token' })).toBeVisible();
    await expect(page.getByTestId('token')).toHaveCount(0);
    expect(await page.content()).not.toContain(firstToken);

    await expect(async () => {
      await reload(page);
      await expect(lastSync).not.toHaveText('Never', { timeout: 1_000 });
    }).toPass({ timeout: 10_000, intervals: [250, 500, 1_000] });
    const time = lastSync.locator('time');
    await expect(time).toHaveText(HUMAN_TIME);
    const at = Date.parse((await time.getAttribute('datetime')) ?? '');
    expect(Number.isNaN(at), 'the <time> element has a machine-readable datetime').toBe(false);
    expect(Math.abs(Date.now() - at)).toBeLessThan(5 * 60_000);
  });

  let secondToken = '';
  await test.step('resetting asks first, then shows a new token', async () => {
    await tokenArea.getByRole('button', { name: 'Reset provisioning token' }).click();
    const confirm = tokenArea.getByRole('alertdialog');
    await expect(confirm).toBeVisible();
    await expect(confirm.getByRole('button', { name: 'Cancel' })).toBeVisible();
    await confirm.getByRole('button', { name: 'Yes, reset the token' }).click();
    const token = page.getByTestId('token');
    await expect(token).toHaveText(TOKEN_FORMAT);
    secondToken = (await token.textContent())?.trim() ?? '';
    expect(secondToken).toMatch(TOKEN_FORMAT);
    expect(secondToken).not.toBe(firstToken);
    await expect(tokenArea).toContainText('will not be shown again');
  });

  await test.step('only the new token works over SCIM, and the tab warns while the old one is sent', async () => {
    const withOld = await createScimUser(request, firstToken, 'e2e-old-token@example.com');
    expect(withOld.status, withOld.body).toBe(401);
    // Requests with a retired token are counted within a second.
    const warning = page.getByTestId('stale-token');
    await expect(async () => {
      await reload(page);
      await expect(warning).toBeVisible({ timeout: 1_000 });
    }).toPass({ timeout: 10_000, intervals: [250, 500, 1_000] });
    await expect(warning).toHaveAttribute('role', 'alert');
    await expect(warning).toContainText('OneLogin is still sending the old token: 1 request since the reset, last at');
    await expect(warning).toContainText('Paste the new token into OneLogin.');
    await expect(warning.locator('time')).toHaveText(HUMAN_TIME);
    // Sync activity lists the refused request under "Retired token", without a body.
    await page.goto('/activity');
    await settled(page);
    await page.getByLabel('Status').selectOption('retired');
    const refused = page.getByTestId('activity').locator('tbody tr');
    await expect(refused).toHaveCount(1);
    await expect(refused.first()).toHaveAttribute('data-status', '401');
    await expect(refused.first()).toContainText('/scimapi/Users');
    // The dashboard says it too, on OneLogin's card.
    await page.goto('/');
    await settled(page);
    await expect(page.locator('.health[data-kind=onelogin]').getByTestId('stale-token')).toContainText(
      'OneLogin is still sending the old token',
    );
    await page.goto('/settings/directory-integrations/onelogin');
    await settled(page);

    const withNew = await createScimUser(request, secondToken, 'e2e-user-2@example.com');
    expect(withNew.status, withNew.body).toBe(201);
    await expect(async () => {
      await reload(page);
      await expect(warning).toHaveCount(0, { timeout: 1_000 });
    }).toPass({ timeout: 10_000, intervals: [250, 500, 1_000] });
  });

  await test.step('what the console keeps of a deletion can be switched to erasing it', async () => {
    const setting = page.getByTestId('delete-behaviour');
    await expect(setting.getByLabel(/Keep a record/)).toBeChecked();
    await setting.getByLabel(/Erase: remove/).check();
    await expect(async () => {
      await reload(page);
      await expect(page.getByTestId('delete-behaviour').getByLabel(/Erase: remove/)).toBeChecked({ timeout: 1_000 });
    }).toPass({ timeout: 10_000 });
  });

  await test.step('the navigation counts both provisioned users', async () => {
    await reload(page);
    await expect(nav.getByRole('link', { name: 'Users (2)' })).toBeVisible();
    expect(await page.content()).not.toContain(secondToken);
  });

  await test.step("the user's page shows what each sync changed, and the group's too", async () => {
    const created = await createScimUser(request, secondToken, 'e2e-history@example.com');
    expect(created.status, created.body).toBe(201);
    const id: string = JSON.parse(created.body).id;
    const send = async (method: 'POST' | 'PATCH', path: string, body: object) => {
      const response = await request.fetch(`${BASE_URL}/scimapi${path}`, {
        method,
        headers: { Authorization: `Bearer ${secondToken}`, 'Content-Type': 'application/scim+json' },
        data: JSON.stringify(body),
      });
      expect(response.status(), await response.text()).toBeLessThan(300);
      return response.json();
    };
    const patch = (operations: object[]) => ({ schemas: [PATCH_OP], Operations: operations });
    await send('PATCH', `/Users/${id}`, patch([{ op: 'replace', path: 'title', value: 'Engineer' }]));
    await send(
      'PATCH',
      `/Users/${id}`,
      patch([{ op: 'replace', value: { title: 'Manager', active: false } }]),
    );
    const group = await send('POST', '/Groups', { displayName: 'Sales', members: [{ value: id }] });
    await send('PATCH', `/Groups/${group.id}`, patch([{ op: 'remove', path: `members[value eq "${id}"]` }]));

    await page.goto(`/users/${id}`);
    await settled(page);
    const history = page.getByTestId('history');
    const lines = history.locator('li');
    await expect(lines).toHaveCount(6);
    await expect(lines.first()).toContainText(/^removed from group Sales, by OneLogin, (just now|\d+ min ago)$/);
    await expect(history).toContainText('added to group Sales, by OneLogin');
    await expect(history).toContainText('title: Engineer → Manager, by OneLogin');
    await expect(history).toContainText('deactivated, by OneLogin');
    await expect(history).toContainText('title: (none) → Engineer, by OneLogin');
    await expect(lines.last()).toContainText('created, by OneLogin');
    await lines.first().getByRole('link', { name: 'removed from group Sales' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sales');
    await expect(page.getByTestId('history').locator('li').first()).toContainText(
      'e2e-history@example.com removed, by OneLogin',
    );
  });

  await checkPageErrors();
});

test('a logged-out visit to the OneLogin tab ends on the login page', async ({ page }) => {
  const checkPageErrors = watchPageErrors(page);
  await page.goto('/settings/directory-integrations/onelogin');
  await expect(page).toHaveURL(`${BASE_URL}/login`);
  await expect(page.getByRole('button', { name: 'Log in', exact: true })).toBeVisible();
  await expect(page.getByTestId('scim-url')).toHaveCount(0);
  await expect(page.getByTestId('token-area')).toHaveCount(0);
  await checkPageErrors();
});
