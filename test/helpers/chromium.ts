/**
 * Chromium for the browser tests: Debian's binary (installed by `npm run setup`) driven by
 * playwright-core with WebGPU on, and a free local port for the page's preview server.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { chromium, type Browser } from 'playwright-core';

/** The Chromium binary: `LUNGPATH_CHROMIUM`, else Debian's. */
export const CHROMIUM = process.env.LUNGPATH_CHROMIUM ?? '/usr/bin/chromium';

// Headless, no sandbox (the machines run as root), nothing fetched from the network, WebGPU on
// (lavapipe here through Vulkan).
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--enable-unsafe-webgpu',
];

/** Launches Chromium, or says how to install it when the binary is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing (${CHROMIUM}): run \`npm run setup\`, which installs Debian's chromium with apt (or set LUNGPATH_CHROMIUM to a Chromium binary)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A TCP port free on 127.0.0.1 at the time of asking. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}
