// Helpers shared by the specs.
import { expect, test, type Page } from '@playwright/test';

/**
 * Collects uncaught errors thrown in the page (a panic in the wasm shows up as one) and
 * Content-Security-Policy violations; any of them fails the test.
 */
export function watchPageErrors(page: Page) {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && message.text().startsWith('panicked at')) {
      errors.push(message.text().split('\n').slice(0, 2).join(' '));
    }
    // A script or style the Content-Security-Policy blocked.
    if (message.type() === 'error' && message.text().includes('Content Security Policy')) {
      errors.push(message.text());
    }
  });
  return async () => {
    if (errors.length === 0) return;
    const text = errors.join('\n');
    test.info().annotations.push({ type: 'page errors', description: text });
    console.warn(`page errors during "${test.info().title}":\n${text}`);
    expect(errors, 'uncaught errors in the page').toEqual([]);
  };
}

/** Waits until the page is loaded and the wasm has hydrated it (no requests left in flight). */
export async function settled(page: Page) {
  await page.waitForLoadState('load');
  await page.waitForLoadState('networkidle');
}

export async function reload(page: Page) {
  await page.reload();
  await settled(page);
}

/** Logs in as `email` and waits for the dashboard. */
export async function logIn(page: Page, email: string, password: string) {
  await page.goto('/login');
  await settled(page);
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Dashboard');
  await settled(page);
}

/** Logs out and waits for the login page. */
export async function logOut(page: Page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await settled(page);
}

/** Adds an admin from Settings > Admins, as the logged-in admin, who has just logged in. */
export async function addAdmin(page: Page, email: string, password: string) {
  await page.goto('/settings/admins');
  await settled(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel(/Initial password/).fill(password);
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByRole('status')).toHaveText(`${email} can now log in.`);
}

/**
 * Sums the page's layout shifts (the Cumulative Layout Shift of web-vitals) from the first
 * paint on; call once per page before navigating.
 */
export async function trackLayoutShift(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { __layoutShift: number };
    w.__layoutShift = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as unknown as { value: number; hadRecentInput: boolean }[]) {
        if (!entry.hadRecentInput) w.__layoutShift += entry.value;
      }
    }).observe({ type: 'layout-shift', buffered: true });
  });
}

export async function layoutShift(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { __layoutShift: number }).__layoutShift);
}

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

/**
 * Loads `path` fresh at desktop and at phone width: checks that hydration moves nothing
 * (layout shift under 0.05) and that nothing is wider than the phone's screen, and saves a
 * full-page screenshot of each as a test artifact (`test-results/`).
 */
export async function checkPage(page: Page, path: string, name: string) {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(viewport);
    await page.goto(path);
    await settled(page);
    expect(await layoutShift(page), `${name} (${size}): layout shift`).toBeLessThan(0.05);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} (${size}): wider than the screen by ${overflow}px`).toBeLessThanOrEqual(0);
    await page.screenshot({ path: test.info().outputPath(`${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}
