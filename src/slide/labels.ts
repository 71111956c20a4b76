/**
 * The labels CSV of `lungpath tiles --labels`: one row per slide, `slide,label[,patient]` with a
 * header line naming the columns (any order; extra columns ignored). `slide` is the slide's file
 * name, with or without its extension. Quoted fields ("a, b") are read as in RFC 4180. Every
 * problem names the file and line.
 */

export interface SlideLabel {
  label: string;
  patient: string | null;
  line: number;
}

/** Slide name (file name or its stem) → label row. */
export function parseLabelsCsv(path: string, text: string): Map<string, SlideLabel> {
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  const problems: string[] = [];
  const header = (rows[0] ?? []).map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  if (col('slide') < 0 || col('label') < 0) throw new Error(`${path}: line 1 must name the columns, with at least 'slide' and 'label' (found: ${header.join(', ') || 'nothing'})`);
  const out = new Map<string, SlideLabel>();
  rows.slice(1).forEach((row, i) => {
    const line = i + 2;
    if (row.length === 1 && row[0]!.trim() === '') return;
    const slide = (row[col('slide')] ?? '').trim();
    const label = (row[col('label')] ?? '').trim();
    const patient = col('patient') >= 0 ? (row[col('patient')] ?? '').trim() || null : null;
    if (!slide || !label) problems.push(`line ${line}: empty ${!slide ? 'slide' : 'label'}`);
    else if (out.has(slide)) problems.push(`line ${line}: slide '${slide}' is listed again (first on line ${out.get(slide)!.line})`);
    else out.set(slide, { label, patient, line });
  });
  if (problems.length > 0) throw new Error(`${path}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return out;
}

/** Rows of fields; "..." quotes a field, "" inside quotes is one quote. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** A CSV field, quoted when it needs to be. */
export function csvField(value: string | number | null): string {
  const text = value === null ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
