// The console's assets (wasm modules, JS, stylesheet) sit in a folder named by their build's
// hash and are sent compressed with a year-long immutable Cache-Control: the first visit
// fetches them, a page shown for the first time fetches only its own wasm module, every later
// page load (a navigation, a reload) takes them from the browser's cache, and the pages still
// hydrate from the cached wasm.
import { expect, test, type Page } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';
import { logIn, logOut, reload, settled, watchPageErrors } from './helpers';

type Fetch = {
  url: string;
  status: number;
  headers: Record<string, string>;
  /** Answered by the browser's memory or disk cache, without asking the server. */
  fromCache: boolean;
  /** What the response took on the network (headers and body as sent, so compressed). */
  bytes: number;
};

/** Records every request of the page through the DevTools protocol, phase by phase. */
async function watchNetwork(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  let fetches = new Map<string, Fetch>();
  cdp.on('Network.requestWillBeSent', ({ requestId, request }) => {
    fetches.set(requestId, { url: request.url, status: 0, headers: {}, fromCache: false, bytes: 0 });
  });
  cdp.on('Network.requestServedFromCache', ({ requestId }) => {
    const fetch = fetches.get(requestId);
    if (fetch) fetch.fromCache = true;
  });
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    const fetch = fetches.get(requestId);
    if (!fetch) return;
    fetch.status = response.status;
    fetch.fromCache ||= Boolean(response.fromDiskCache || response.fromPrefetchCache);
    for (const [name, value] of Object.entries(response.headers)) {
      fetch.headers[name.toLowerCase()] = String(value);
    }
  });
  cdp.on('Network.loadingFinished', ({ requestId, encodedDataLength }) => {
    const fetch = fetches.get(requestId);
    if (fetch) fetch.bytes = encodedDataLength;
  });
  await cdp.send('Network.enable');
  /** The requests since the previous call. */
  return () => {
    const taken = [...fetches.values()];
    fetches = new Map();
    return taken;
  };
}

const HASHED_ASSET = /^\/pkg\/[0-9a-f]{16}\/[\w.-]+\.(js|wasm|css)$/;

function assets(fetches: Fetch[]) {
  return fetches.filter((f) => new URL(f.url).pathname.startsWith('/pkg/'));
}

function kinds(fetches: Fetch[]) {
  return [...new Set(fetches.map((f) => new URL(f.url).pathname.split('.').pop()))].sort();
}

function networkBytes(fetches: Fetch[]) {
  return fetches.filter((f) => !f.fromCache).reduce((sum, f) => sum + f.bytes, 0);
}

/** Every asset of a page load after the first came from the cache, the wasm among them. */
function expectAllCached(fetches: Fetch[]) {
  const loaded = assets(fetches);
  expect(kinds(loaded)).toEqual(['css', 'js', 'wasm']);
  expect(
    loaded.filter((f) => !f.fromCache).map((f) => f.url),
    'assets fetched from the network again',
  ).toEqual([]);
}

test('a second page load takes the wasm, JS and CSS from the browser cache, and hydrates', async ({ page }) => {
  const pageErrors = watchPageErrors(page);
  const take = await watchNetwork(page);

  let firstVisit = 0;
  await test.step('the first visit fetches the hashed assets, compressed, cacheable for a year', async () => {
    await page.goto('/login');
    await settled(page);
    const fetches = take();
    firstVisit = networkBytes(fetches);
    const loaded = assets(fetches);
    expect(kinds(loaded)).toEqual(['css', 'js', 'wasm']);
    for (const asset of loaded) {
      expect(new URL(asset.url).pathname).toMatch(HASHED_ASSET);
      expect(asset.fromCache, asset.url).toBe(false);
      expect(asset.status, asset.url).toBe(200);
      expect(asset.headers['cache-control'], asset.url).toBe('public, max-age=31536000, immutable');
      expect(['br', 'gzip'], asset.url).toContain(asset.headers['content-encoding']);
    }
  });

  await test.step('a page of another group fetches only its own modules, then takes them from the cache', async () => {
    // Logging in shows the dashboard, which fetched the module of the console's pages; the
    // Account page's module has not been needed yet.
    await logIn(page, ADMIN_EMAIL, ADMIN_PASSWORD);
    take();
    await page.goto('/account');
    await settled(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Account');
    const fresh = assets(take()).filter((f) => !f.fromCache);
    const names = fresh.map((f) => new URL(f.url).pathname.split('/').pop() ?? '');
    expect(names.filter((name) => name.startsWith('console.')), 'the main module, JS or CSS fetched again').toEqual([]);
    expect(names, "the Account page's module, fetched when the page is first shown").toContainEqual(
      expect.stringMatching(/^split_account_pages_\w+\.wasm$/),
    );
    for (const asset of fresh) {
      expect(new URL(asset.url).pathname).toMatch(HASHED_ASSET);
      expect(asset.headers['cache-control'], asset.url).toBe('public, max-age=31536000, immutable');
      expect(['br', 'gzip'], asset.url).toContain(asset.headers['content-encoding']);
    }
    await reload(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Account');
    expectAllCached(take());
  });

  await test.step('a reload takes them from the cache, and the page hydrates from them', async () => {
    await logOut(page);
    take();
    await reload(page);
    const fetches = take();
    expectAllCached(fetches);
    // Only the hydrated page answers this button (it calls a server function).
    await page.getByRole('button', { name: 'Log in with a passkey instead' }).click();
    await expect(page.getByRole('alert')).toHaveText(
      'No passkey is set up for this email. Log in with your password.',
    );
    const repeatVisit = networkBytes(fetches);
    test.info().annotations.push({
      type: 'bytes over the network for /login',
      description: `first visit ${firstVisit}, repeat visit ${repeatVisit}`,
    });
    console.log(`/login over the network: first visit ${firstVisit} B, repeat visit ${repeatVisit} B`);
  });

  await pageErrors();
});
