/**
 * `lungpath/slide` in Node (the `node` export condition): everything of the browser-safe entry
 * (index.ts) plus `openSlide` — OpenSlide (Debian's libopenslide0 through koffi, loaded on first
 * use) with the JavaScript reader as the fallback, on a file path —, the file `ByteSource`, sharp's
 * JPEG decoder for the JS reader, and `cutTiles` (what `lungpath tiles` runs).
 *
 * @module lungpath/slide
 */
export * from './index.ts';
export { openSlide, READER_CHOICES, type OpenSlideOptions, type ReaderChoice } from './open.ts';
export { loadOpenSlide, openOpenSlide, openslideProblem } from './openslide.ts';
export { fileSource } from './node_source.ts';
export { sharpJpegDecoder } from './node_jpeg.ts';
export { cutTiles, TilesInputError, type CutOptions, type CutSummary, type SlideSummary } from './cut.ts';
