import { expect, test, type APIRequestContext } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, BASE_URL } from './env';
import { checkPage, logIn, settled, trackLayoutShift, watchPageErrors } from './helpers';

// What an administrator sees of provisioning, in a real browser against the real server
// (after onelogin-token.spec.ts, on the same database): Okta is connected from its tab, then
// creates, deactivates and groups users over SCIM, and fails once; every page shows it.
// Each page is also loaded at desktop and phone width, checked for layout shift and overflow,
// and screenshotted into test-results/.

const PASSWORD_SENT = 'Pl@intext-never-stored';

async function scim(request: APIRequestContext, token: string, method: string, path: string, body?: unknown) {
  const response = await request.fetch(`${BASE_URL}/scimapi${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status(), body: await response.json().catch(() => null) };
}

function user(userName: string, displayName: string) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    displayName,
    name: { givenName: displayName.split(' ')[0], familyName: displayName.split(' ')[1] },
    emails: [{ value: userName, type: 'work', primary: true }],
    password: PASSWORD_SENT,
    active: true,
  };
}

test('the console shows what Okta provisioned, and its failure', async ({ page, request }) => {
  const checkPageErrors = watchPageErrors(page);
  await trackLayoutShift(page);
  await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  const nav = page.getByRole('navigation', { name: 'Main' });

  let token = '';
  await test.step('the Okta tab creates its own token', async () => {
    await page.goto('/settings/directory-integrations/okta');
    await settled(page);
    await expect(page.getByRole('heading', { level: 2, name: 'Okta' })).toBeVisible();
    await page.getByText('Setup instructions for Okta').click();
    await expect(page.getByText('SCIM connector base URL')).toBeVisible();
    await page.getByRole('button', { name: 'Create provisioning token' }).click();
    token = ((await page.getByTestId('token').textContent()) ?? '').trim();
    expect(token).toMatch(/^dcpt_[0-9a-f]{64}$/);
    await checkPage(page, '/settings/directory-integrations/okta', 'integration-okta');
  });

  const ids: Record<string, string> = {};
  await test.step('Okta provisions over SCIM, and fails once', async () => {
    for (const [userName, name] of [
      ['grace@acme.example', 'Grace Hopper'],
      ['alan@acme.example', 'Alan Turing'],
      ['edsger@acme.example', 'Edsger Dijkstra'],
    ]) {
      const created = await scim(request, token, 'POST', '/Users', user(userName, name));
      expect(created.status).toBe(201);
      ids[userName] = created.body.id;
    }
    const deactivated = await scim(request, token, 'PATCH', `/Users/${ids['edsger@acme.example']}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(deactivated.status).toBe(200);
    const group = await scim(request, token, 'POST', '/Groups', {
      displayName: 'Pioneers',
      members: [{ value: ids['grace@acme.example'] }, { value: ids['alan@acme.example'] }],
    });
    expect(group.status).toBe(201);
    const duplicate = await scim(request, token, 'POST', '/Users', user('GRACE@acme.example', 'Grace Again'));
    expect(duplicate.status).toBe(409);
  });

  await test.step('Users: search, filters, and one user in detail', async () => {
    await nav.getByRole('link', { name: /^Users/ }).click();
    await settled(page);
    await page.getByLabel('Source').selectOption('okta');
    const rows = page.getByTestId('users').locator('tbody tr');
    await expect(rows).toHaveCount(3);
    await page.getByLabel('Status').selectOption('deactivated');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText('edsger@acme.example');
    await page.getByLabel('Status').selectOption('all');
    await page.getByLabel('Search').fill('hopper');
    await page.getByLabel('Search').press('Enter');
    await expect(rows).toHaveCount(1);
    await rows.first().getByRole('link', { name: 'grace@acme.example' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Grace Hopper');
    await expect(page.getByTestId('user-facts')).toContainText('Okta');
    await expect(page.getByTestId('user-groups')).toContainText('Pioneers');
    await expect(page.getByTestId('attributes')).toContainText('"givenName": "Grace"');
    await expect(page.getByTestId('attributes')).not.toContainText(PASSWORD_SENT);
    await expect(page.getByTestId('activity').locator('tbody tr')).toHaveCount(1);
    await checkPage(page, '/users', 'users');
    await checkPage(page, `/users/${ids['grace@acme.example']}`, 'user');
  });

  await test.step('Groups: member counts and members', async () => {
    await page.goto('/groups');
    await settled(page);
    const row = page.getByTestId('groups').locator('tbody tr', { hasText: 'Pioneers' });
    await expect(row).toContainText('2');
    await row.getByRole('link', { name: 'Pioneers' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Pioneers');
    await expect(page.getByTestId('members').locator('tbody tr')).toHaveCount(2);
    await checkPage(page, '/groups', 'groups');
    await checkPage(page, page.url().replace(BASE_URL, ''), 'group');
  });

  await test.step('Sync activity: the failed request with its error, without the password', async () => {
    await page.goto('/activity');
    await settled(page);
    await page.getByLabel('Integration').selectOption('okta');
    await page.getByLabel('Status').selectOption('failures');
    const failed = page.getByTestId('activity').locator('tbody tr');
    await expect(failed).toHaveCount(1);
    await expect(failed).toHaveAttribute('data-status', '409');
    await failed.getByText('Error and request').click();
    await expect(failed.locator('.error-detail')).toContainText('uniqueness');
    // The id the IdP was answered with, as X-Request-Id and at the end of the error's detail.
    await expect(failed.locator('.request-id code')).toHaveText(/^[0-9a-f-]{36}$/);
    await expect(failed.locator('pre.body')).toContainText('[redacted]');
    await expect(failed.locator('pre.body')).not.toContainText(PASSWORD_SENT);
    await checkPage(page, '/activity', 'activity');
  });

  await test.step('Dashboard: Okta health', async () => {
    await page.goto('/');
    await settled(page);
    const okta = page.locator('.health[data-kind=okta]');
    await expect(okta.getByTestId('requests-24h')).toHaveText('6 requests, 1 failed');
    await expect(okta).toContainText('2 active, 1 deactivated');
    await expect(okta).toContainText('uniqueness');
    await checkPage(page, '/', 'dashboard');
  });

  await test.step('Users: the Deleted filter shows who deleted a user, and when', async () => {
    const alan = ids['alan@acme.example'];
    expect((await scim(request, token, 'DELETE', `/Users/${alan}`)).status).toBe(204);
    expect((await scim(request, token, 'GET', `/Users/${alan}`)).status).toBe(404);
    await page.goto('/users');
    await settled(page);
    const rows = page.getByTestId('users').locator('tbody tr');
    await page.getByLabel('Source').selectOption('okta');
    await expect(rows).toHaveCount(2);
    await page.getByLabel('Status').selectOption('deleted');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText('alan@acme.example');
    await expect(rows.first()).toContainText('Deleted by Okta on');
    await expect(rows.first().locator('time').last()).toHaveAttribute('datetime', /^\d{4}-\d{2}-\d{2}T/);
    await rows.first().getByRole('link', { name: 'alan@acme.example' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Alan Turing');
    await expect(page.getByTestId('deleted-notice')).toContainText('Deleted by Okta on');
    await expect(page.getByTestId('user-groups')).toContainText('Pioneers');
    await checkPage(page, `/users/${alan}`, 'deleted-user');
    await page.goto('/');
    await settled(page);
    await expect(page.locator('.health[data-kind=okta]').getByTestId('users-deleted')).toHaveText(
      '1 user (kept as a record)',
    );
  });

  await test.step('Alerts: a webhook (its secret shown once), a test alert, a rule', async () => {
    await nav.getByRole('link', { name: 'Alerts' }).click();
    await expect(page).toHaveURL(`${BASE_URL}/settings/alerts`);
    await settled(page);
    await expect(page.getByTestId('no-smtp')).toContainText('SMTP_URL');
    await page.getByLabel(/HTTPS URL/).fill('https://hooks.example.com/services/e2e/secret-path');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await expect(page.getByTestId('secret')).toHaveText(/^whsec_[0-9a-f]{64}$/);
    const destinations = page.getByTestId('destinations');
    await expect(destinations).toContainText('https://hooks.example.com/…path');
    expect(await page.content()).not.toContain('secret-path');
    await destinations.getByRole('button', { name: 'Send test alert' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'Test alert queued' })).toBeVisible();
    const rule = page.locator('[data-rule=failure_rate]');
    await rule.getByRole('spinbutton').fill('35');
    await rule.getByRole('button', { name: 'Save' }).click();
    await expect(async () => {
      await page.reload();
      await settled(page);
      await expect(page.locator('[data-rule=failure_rate]').getByRole('spinbutton')).toHaveValue('35', {
        timeout: 1_000,
      });
    }).toPass({ timeout: 10_000 });
    await expect(page.getByTestId('secret')).toHaveCount(0);
    await checkPage(page, '/settings/alerts', 'alerts');
  });

  await test.step('Admins: add one; the audit log shows it with the token and logins', async () => {
    await page.goto('/settings/admins');
    await settled(page);
    await page.getByLabel('Email').fill('barbara@acme.example');
    await page.getByLabel(/Initial password/).fill('a long initial password');
    await page.getByRole('button', { name: 'Add admin' }).click();
    await expect(page.getByRole('status')).toHaveText('barbara@acme.example can now log in.');
    await expect(page.getByTestId('admins')).toContainText('barbara@acme.example');
    await checkPage(page, '/settings/admins', 'admins');
    await page.goto('/audit');
    await settled(page);
    const audit = page.getByTestId('audit');
    await expect(audit).toContainText('Added admin barbara@acme.example');
    await expect(audit).toContainText('Created the Okta provisioning token');
    await expect(audit).toContainText('Logged in');
    await expect(audit).toContainText('Added the alert destination https://hooks.example.com/…path');
    await expect(audit).toContainText('Set the alert rule failure_rate on, threshold 35');
    await checkPage(page, '/audit', 'audit');
  });

  await checkPageErrors();
});
