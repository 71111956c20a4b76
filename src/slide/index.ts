/**
 * `lungpath/slide` (browser-safe): whole-slide images without Node — the pure-JavaScript pyramidal
 * TIFF / Aperio SVS reader (`openJsSlide` on a `ByteSource`: bytes or a Blob, JPEG tiles decoded
 * by jpeg-js), tissue detection, thumbnails, the inference tile grid, QuPath GeoJSON annotations,
 * the labels CSV, the tile grid of `lungpath tiles` and the split by slide. Node adds `openSlide`
 * (OpenSlide through koffi, or the JS reader on a file with sharp's JPEG decoder), `fileSource`
 * and `cutTiles` (index.node.ts, chosen by the package's `node` export condition). Nothing here
 * imports fs, sharp or koffi: the package test bundles it for a browser and checks.
 *
 * @module lungpath/slide
 */
export { SlideError, checkRegion, levelDownsample, MAX_REGION_PIXELS, type ReaderName, type RgbImage, type Slide, type SlideInfo, type SlideLevel } from './slide.ts';
export { bytesSource, blobSource, type ByteSource } from './source.ts';
export { readTiff, MAX_IFDS, MAX_ENTRIES, MAX_TAG_BYTES, TAG, type Ifd, type TagValue, type TiffFile } from './tiff.ts';
export { jsJpegDecoder, joinJpegTables, type JpegDecoder } from './jpeg.ts';
export { openJsSlide, aperioFields, type JsReaderOptions } from './js_reader.ts';
export * from './thumbnail.ts';
export * from './tissue.ts';
export * from './inference_grid.ts';
export * from './geometry.ts';
export * from './geojson.ts';
export * from './labels.ts';
export * from './tiler.ts';
export * from './split.ts';
export * from './grid_regions.ts';
