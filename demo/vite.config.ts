/**
 * Vite config of the browser demo: the page in demo/, its kernels and network code imported from
 * the repository's wgsl/ and src/ (no copies), built to dist-demo/ and served on 127.0.0.1 only
 * (WebGPU needs a secure context: http://127.0.0.1 is one).
 *
 *   npm run demo        build, then serve the build (vite preview) and print its address
 *   npm run demo:dev    the dev server with hot reload
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const demoRoot = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root: demoRoot,
  base: './',
  publicDir: 'public',
  logLevel: 'info',
  build: {
    outDir: `${repoRoot}dist-demo`,
    emptyOutDir: true,
    target: 'es2022',
    // The demo model ships as separate files in public/model; never inline them.
    assetsInlineLimit: 0,
    // Two pages: single images (index.html) and whole slides (slide.html).
    rollupOptions: { input: { main: `${demoRoot}index.html`, slide: `${demoRoot}slide.html` } },
  },
  server: { host: '127.0.0.1', fs: { allow: [repoRoot] } },
  preview: { host: '127.0.0.1' },
});
