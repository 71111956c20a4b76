// The one Vite API the browser entry uses; declared here so `tsc` needs no Vite types.
interface ImportMeta {
  glob(pattern: string, options: { query: string; import: string; eager: true }): Record<string, unknown>;
}
