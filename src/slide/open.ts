/**
 * Opening a slide in Node: OpenSlide when it is installed and recognises the file, else the
 * pure-JavaScript reader (with sharp's libjpeg-turbo for JPEG tiles); `reader` forces one.
 */
import { stat } from 'node:fs/promises';
import { openJsSlide } from './js_reader.ts';
import { fileSource } from './node_source.ts';
import { sharpJpegDecoder } from './node_jpeg.ts';
import { loadOpenSlide, openOpenSlide, openslideProblem } from './openslide.ts';
import { SlideError, type Slide } from './slide.ts';
import { jsJpegDecoder } from './jpeg.ts';

export type ReaderChoice = 'auto' | 'openslide' | 'js';
export const READER_CHOICES: readonly ReaderChoice[] = ['auto', 'openslide', 'js'];

export interface OpenSlideOptions {
  reader?: ReaderChoice;
  /** The JS reader's JPEG decoder: 'sharp' (libjpeg-turbo, default in Node) or 'js' (jpeg-js, as in a browser). */
  jpeg?: 'sharp' | 'js';
}

/** Opens the slide at `path`; errors are SlideErrors naming the file. */
export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<Slide> {
  const reader = options.reader ?? 'auto';
  await checkFile(path);
  if (reader === 'openslide') return openOpenSlide(path);
  if (reader === 'auto' && loadOpenSlide()) {
    try {
      return openOpenSlide(path);
    } catch (e) {
      // OpenSlide did not take it: the JS reader may. When neither does, both say why (the JS
      // reader's TIFF checks are often more specific, e.g. 'truncated').
      try {
        return await openJs(path, options);
      } catch (jsError) {
        if (!(e instanceof SlideError) || !(jsError instanceof SlideError)) throw e;
        throw new SlideError(path, `${e.problem}; the JavaScript TIFF reader: ${jsError.problem}`);
      }
    }
  }
  try {
    return await openJs(path, options);
  } catch (e) {
    if (reader === 'auto' && e instanceof SlideError && !loadOpenSlide()) {
      throw new SlideError(path, `${e.problem} (OpenSlide, which reads more formats, is not available: ${openslideProblem()})`);
    }
    throw e;
  }
}

async function openJs(path: string, options: OpenSlideOptions): Promise<Slide> {
  let source;
  try {
    source = await fileSource(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new SlideError(path, code === 'ENOENT' ? 'file does not exist' : code === 'EISDIR' ? 'is a folder, not a slide file' : `cannot open (${code ?? (e as Error).message})`);
  }
  try {
    return await openJsSlide(source, { decoder: options.jpeg === 'js' ? jsJpegDecoder() : sharpJpegDecoder });
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

/** A SlideError for a path that is not a readable file, before any reader looks at it. */
async function checkFile(path: string): Promise<void> {
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new SlideError(path, code === 'ENOENT' ? 'file does not exist' : `cannot read (${code ?? (e as Error).message})`);
  }
  if (s.isDirectory()) throw new SlideError(path, 'is a folder, not a slide file (MIRAX and other multi-file formats: give the main file, e.g. the .mrxs)');
  if (s.size === 0) throw new SlideError(path, 'file is empty');
}
