/**
 * The WGSL sources for bundlers: wgsl/*.wgsl keyed by name without extension, as
 * loadShaderSources() reads them from disk in Node (node.ts).
 *
 * In this repository Vite's `import.meta.glob` inlines the files (the demo, its dev server and its
 * test). The package build (scripts/build.mjs) replaces the compiled file by one holding the same
 * texts as string literals, so a project bundling the published package needs no loader and no
 * configuration. wgsl/ stays the single source of both.
 */
const modules = import.meta.glob('../../wgsl/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

/** Every WGSL file bundled with the code, keyed by name without extension. */
export function bundledShaderSources(): Record<string, string> {
  const sources: Record<string, string> = {};
  for (const [path, text] of Object.entries(modules)) sources[path.slice(path.lastIndexOf('/') + 1, -5)] = text;
  return sources;
}
