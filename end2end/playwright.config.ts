import { defineConfig } from '@playwright/test';

// The server under test is started outside Playwright (see the README or .ci/run): a fresh
// database holding only the admin below. BASE_URL is where it listens, e.g.
// http://127.0.0.1:3917 (no trailing slash needed).
const baseURL = process.env.BASE_URL?.trim().replace(/\/+$/, '');
if (!baseURL) {
  throw new Error(
    'BASE_URL is not set: start the server, then run e.g. `BASE_URL=http://127.0.0.1:3917 npx playwright test`',
  );
}

export default defineConfig({
  testDir: './tests',
  outputDir: 'test-results',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  retries: 0,
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: {
    baseURL,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        browserName: 'chromium',
        launchOptions: {
          // The distribution's Chromium: Playwright's own browser downloads are not available.
          executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
            '--disable-quic',
          ],
        },
      },
    },
  ],
});
