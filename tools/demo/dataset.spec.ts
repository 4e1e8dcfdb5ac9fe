import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DatasetError, DEFAULT_DATASET, loadDataset, parseDataset, resolveDatasetPath } from './dataset';

const FIXTURE = join(__dirname, 'fixtures/dialogs.json');
const dir = mkdtempSync(join(tmpdir(), 'threadline-demo-'));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('loadDataset', () => {
  it('loads a file of the Taskmaster-4 format, utterances in index order', async () => {
    const dialogs = await loadDataset(FIXTURE);
    expect(dialogs.map((d) => d.conversation_id)).toEqual(['dlg-1', 'dlg-2']);
    expect(dialogs[0]?.utterances.map((u) => u.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('sorts utterances by index and takes missing annotations as none', () => {
    const [dialog] = parseDataset(
      [
        {
          conversation_id: 'c',
          utterances: [
            { index: 1, speaker: 'assistant', text: 'b' },
            { index: 0, speaker: 'user', text: 'a', annotations: null },
          ],
        },
      ],
      'inline',
    );
    expect(dialog?.utterances.map((u) => [u.text, u.annotations])).toEqual([
      ['a', []],
      ['b', []],
    ]);
  });

  it('names the file and each bad field of a file in another format', async () => {
    const path = file(
      'wrong.json',
      JSON.stringify([
        { conversation_id: 'ok', utterances: [] },
        {
          conversation_id: 'c',
          utterances: [
            { index: 0, speaker: 'customer', text: 'hi' },
            { index: 1, speaker: 'user' },
          ],
        },
      ]),
    );
    const error = await loadDataset(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).message).toContain(`${path} is not a Taskmaster-4 dialog file`);
    expect((error as DatasetError).message).toContain('[1].utterances[0].speaker');
    expect((error as DatasetError).message).toContain('[1].utterances[1].text');
  });

  it('gunzips a .gz file', async () => {
    const path = join(dir, 'dialogs.json.gz');
    writeFileSync(path, gzipSync(readFileSync(FIXTURE)));
    expect(await loadDataset(path)).toEqual(await loadDataset(FIXTURE));
  });

  it('names the file when it is an object, not JSON, or missing', async () => {
    await expect(loadDataset(file('object.json', '{"data": []}'))).rejects.toThrow(
      /object\.json is not a Taskmaster-4 dialog file[\s\S]*\(root\)/,
    );
    await expect(loadDataset(file('text.json', 'not json'))).rejects.toThrow(/text\.json is not JSON/);
    await expect(loadDataset(join(dir, 'missing.json'))).rejects.toThrow(/cannot read .*missing\.json/);
  });
});

describe('resolveDatasetPath', () => {
  it('resolves a given file against the working directory', () => {
    expect(resolveDatasetPath('data/x.json', '/srv/app', __dirname)).toBe('/srv/app/data/x.json');
    expect(resolveDatasetPath('/abs/x.json', '/srv/app', __dirname)).toBe('/abs/x.json');
  });

  it('without a file, is the bundled dataset of the repository above the module, from any directory', () => {
    const root = resolve(__dirname, '../..');
    expect(resolveDatasetPath(undefined, '/', __dirname)).toBe(join(root, DEFAULT_DATASET));
    expect(existsSync(join(root, DEFAULT_DATASET))).toBe(true);
  });

  it('without a file and outside any repository, fails naming what it looked for', () => {
    expect(() => resolveDatasetPath(undefined, dir, dir)).toThrow(DatasetError);
    expect(() => resolveDatasetPath(undefined, dir, dir)).toThrow(
      /bundled one is missing \(no repository above .*\); pass --file/,
    );
  });
});
