/**
 * A CSV file's rows (RFC 4180: a quoted cell may hold commas, line breaks and doubled
 * quotes), each row its cells; for the tests that read exports back. Fails unless the text
 * ends with a whole line (CRLF, or LF).
 * @example readCsv('id,n\r\n"a, b",1\r\n') // [['id', 'n'], ['a, b', '1']]
 */
export function readCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
      if (c === '\r') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) throw new Error('the CSV text ends inside a row');
  return rows;
}
