// Debian's chromium driven by playwright-core; tests that need it skip, naming the path, where it is absent.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.POLYTUNE_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.POLYTUNE_REQUIRE_CHROMIUM) throw new Error(`POLYTUNE_REQUIRE_CHROMIUM is set but there is no chromium at ${CHROMIUM}`);
export const noChromium = `skipped: no chromium at ${CHROMIUM} (apt-get install chromium, or set POLYTUNE_CHROMIUM)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Collects console errors, uncaught page errors and failed requests of a page. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}
