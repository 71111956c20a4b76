/**
 * Images of another size than the model's are resized as they are decoded, and decode.ts says so
 * once per image. A folder of 224² tiles would print a line per tile; commands say it once, with
 * the count and the sizes.
 */
import { isResizeNote } from './decode.ts';

/** What `lungpath train` adds: the alternative is a config whose imageSize is the tiles' own. */
export const TRAIN_RESIZE_HINT = "a preset or config with imageSize equal to the tiles' size trains at their own size";

/** What evaluate and predict add: a trained run's input size is fixed. */
export const MODEL_SIZE_HINT = "the run's model was trained at that size";

/**
 * One line for all images of another size than the model's, from per-image lines that each contain
 * "image is W×H" (validateDataset's warnings or decodeImage's notes).
 */
export function resizeSummary(warnings: readonly string[], imageSize: number, hint: string = TRAIN_RESIZE_HINT): string {
  const sizes = new Map<string, number>();
  for (const w of warnings) {
    const size = /image is (\d+×\d+)/.exec(w)?.[1] ?? 'other';
    sizes.set(size, (sizes.get(size) ?? 0) + 1);
  }
  const list = [...sizes].sort((a, b) => b[1] - a[1]).map(([size, n]) => `${n} of ${size}`).join(', ');
  return `${warnings.length} images are not ${imageSize}×${imageSize} (${list}); they are resized to ${imageSize}×${imageSize} whenever they are loaded (${hint})`;
}

/** `warn` without decode.ts's per-image resize notes (for when resizeSummary has said it once). */
export function withoutResizeNotes(warn: (m: string) => void): (m: string) => void {
  return (m) => {
    if (!isResizeNote(m)) warn(m);
  };
}

/**
 * For a command that decodes images it has not validated beforehand (predict): `warn` passes every
 * other warning on and keeps the resize notes; `summary` is their one line, or null if there were none.
 */
export function collectResizeNotes(warn: (m: string) => void): { warn: (m: string) => void; summary: (imageSize: number, hint: string) => string | null } {
  const notes = new Set<string>(); // a note names its file: an image decoded twice counts once
  return {
    warn: (m) => (isResizeNote(m) ? notes.add(m) : warn(m)),
    summary: (imageSize, hint) => (notes.size === 0 ? null : resizeSummary([...notes], imageSize, hint)),
  };
}
